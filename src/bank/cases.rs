//! After a payment settles: returns (pacs.004) and recalls (camt.056, answered by a
//! camt.029). The operator starts them (`return_payment`, `recall_payment`,
//! `answer_recall`); the hub's ACKs and NAKs and the other bank's messages move them on
//! (`on_*_answered`, `receive_*`). Each answer to the operator comes once durable.
//!
//! A return undoes the payment along its path: the beneficiary's bank debits the
//! beneficiary and pays back the settlement amount; the hub settles it back at once,
//! converting at the original rate (the original conversion undone); the original
//! debtor's bank credits the debtor with exactly what it paid.

use super::state::BankState;
use super::{Bank, BankError, Direction, Payment, Recall, ReturnState, ledger_book};
use crate::ledger::{AccountId, LedgerError};
use crate::model::*;

/// A return's or a recall's reason code and free text, checked.
fn case_reason(reason: &str, information: &str) -> Result<(ReasonCode, String), BankError> {
    let reason = ReasonCode::parse(reason).map_err(|e| e.at("reason_code"))?;
    Ok((reason, additional_information(information)?))
}

/// Free text for the other bank, checked (ISO Max140Text).
fn additional_information(text: &str) -> Result<String, BankError> {
    Ok(message::check_text(text, "additional_information", message::TEXT_LENGTH_MAX, false)?)
}

/// Only a settled incoming payment not yet returned can be returned.
fn check_returnable(payment: &Payment) -> Result<(), BankError> {
    let uetr = payment.uetr;
    if payment.direction != Direction::Incoming || !payment.settled() {
        return Err(BankError::Refused(format!(
            "payment {uetr} is not a settled incoming payment ({:?}, {}): only those can be returned",
            payment.direction, payment.status
        )));
    }
    if payment.return_state != ReturnState::None {
        return Err(BankError::Refused(format!("payment {uetr} is already being returned or returned")));
    }
    Ok(())
}

/// A fresh id for a return or a case: a letter and 32 hexadecimal digits (ISO Max35Text).
fn fresh_id(prefix: char) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl Bank {
    /// Returns a settled incoming payment to its sender with `reason` (for example AC04):
    /// debits the beneficiary now and sends the pacs.004. Refused, changing nothing, when
    /// the payment is not a settled incoming one, is already returned, or the beneficiary
    /// cannot cover it.
    pub async fn return_payment(
        &self,
        uetr: &str,
        reason: &str,
        information: &str,
    ) -> Result<Payment, BankError> {
        let (reason, information) = case_reason(reason, information)?;
        self.change_case(uetr, |state, payment| {
            check_returnable(&payment)?;
            self.start_return(state, payment, reason, information)
        })
        .await
    }

    /// Asks the receiver of a settled outgoing payment for the money back (a camt.056)
    /// with `reason` (for example DUPL, FRAD or CUST).
    pub async fn recall_payment(
        &self,
        uetr: &str,
        reason: &str,
        information: &str,
    ) -> Result<Payment, BankError> {
        let (reason, information) = case_reason(reason, information)?;
        self.change_case(uetr, |state, payment| {
            let uetr = payment.uetr;
            if payment.direction != Direction::Outgoing
                || !payment.settled()
                || payment.return_state != ReturnState::None
            {
                return Err(BankError::Refused(format!(
                    "payment {uetr} is not a settled outgoing payment that was not returned: only those can be recalled"
                )));
            }
            if payment.recall.as_ref().is_some_and(|r| r.status == InvestigationStatus::Pdcr) {
                return Err(BankError::Refused(format!("payment {uetr} already has an open recall case")));
            }
            let case_id = fresh_id('C');
            let body = CancellationRequest {
                case_id: case_id.clone(),
                original_message_id: payment.message_id.clone(),
                uetr,
                original_amount: payment.settlement_amount(),
                reason,
                additional_information: information,
            };
            let message_id = self.queue(state, payment.counterparty, Some(uetr), Body::Camt056(body));
            tracing::info!(%uetr, bank = %self.bic(), %reason, "recalling a settled payment");
            let recall = Recall { case_id, message_id, status: InvestigationStatus::Pdcr, reason };
            let detail = format!("recall asked of {} ({reason})", payment.counterparty);
            state.put_payment(Payment { recall: Some(Box::new(recall)), detail, ..payment });
            Ok(())
        })
        .await
    }

    /// Answers the open recall of an incoming payment: accepting returns the funds (a
    /// pacs.004 with FOCR, then a camt.029 CNCL); refusing sends a camt.029 RJCR with
    /// `reason` (required).
    pub async fn answer_recall(
        &self,
        uetr: &str,
        accept: bool,
        reason: &str,
        information: &str,
    ) -> Result<Payment, BankError> {
        let information = additional_information(information)?;
        let refusal = match (accept, reason) {
            (true, _) => None,
            (false, "") => {
                return Err(BankError::Invalid(ModelError::new(
                    "reason_code",
                    "refusing a recall needs a reason",
                )));
            }
            (false, text) => Some(ReasonCode::parse(text).map_err(|e| e.at("reason_code"))?),
        };
        self.change_case(uetr, |state, payment| {
            let uetr = payment.uetr;
            let recall = payment
                .recall
                .clone()
                .filter(|r| payment.direction == Direction::Incoming && r.status == InvestigationStatus::Pdcr)
                .ok_or_else(|| {
                    BankError::Refused(format!("payment {uetr} has no open recall case to answer"))
                })?;
            let counterparty = payment.counterparty;
            let (status, reason) = match refusal {
                None => {
                    check_returnable(&payment)?;
                    self.start_return(state, payment, ReasonCode::Focr, information.clone())?;
                    (InvestigationStatus::Cncl, None)
                }
                Some(reason) => (InvestigationStatus::Rjcr, Some(reason)),
            };
            let body = ResolutionOfInvestigation {
                case_id: recall.case_id.clone(),
                original_message_id: recall.message_id.clone(),
                uetr,
                status,
                reason,
                additional_information: information,
            };
            self.queue(state, counterparty, Some(uetr), Body::Camt029(body));
            tracing::info!(%uetr, bank = %self.bic(), %status, "recall answered");
            let payment = state.payment(&uetr).expect("present").clone();
            let recall = Recall { status, reason: reason.unwrap_or(recall.reason), ..*recall };
            state.put_payment(Payment { recall: Some(Box::new(recall)), ..payment });
            Ok(())
        })
        .await
    }

    /// Runs `change` on payment `uetr` under the state lock, journals what it changed, and
    /// answers with the payment once that is durable (waking the session to send what it
    /// queued). A refused change must have changed nothing.
    async fn change_case(
        &self,
        uetr: &str,
        change: impl FnOnce(&mut BankState, Payment) -> Result<(), BankError>,
    ) -> Result<Payment, BankError> {
        let uetr = Uetr::parse(uetr)?;
        let (payment, ticket) = {
            let mut state = self.state();
            // A settled payment may have left memory: a case brings it back.
            let payment = state
                .load_payment(&self.reader(), uetr)?
                .ok_or_else(|| BankError::NotFound(format!("no payment {uetr}")))?
                .clone();
            change(&mut state, payment)?;
            let payment = state.payment(&uetr).expect("present").clone();
            (payment, state.commit(&self.inner.journal))
        };
        self.durable(ticket).await?;
        self.wake_outbox();
        Ok(payment)
    }

    /// Books the beneficiary's debit and queues the pacs.004.
    fn start_return(
        &self,
        state: &mut BankState,
        payment: Payment,
        reason: ReasonCode,
        information: String,
    ) -> Result<(), BankError> {
        let uetr = payment.uetr;
        let creditor = AccountId::parse(&payment.creditor_account).expect("booked from a valid account id");
        let return_id = fresh_id('R');
        ledger_book::book_return_out(&mut state.ledger, uetr, &return_id, &creditor, payment.amount)
            .map_err(|e| match e {
                LedgerError::FloorBreached { .. } => BankError::Refused(format!(
                    "{creditor} holds less than {}: cannot return it (AM04)",
                    payment.amount
                )),
                other => BankError::Ledger(other),
            })?;
        let body = PaymentReturn {
            return_id: return_id.clone(),
            original_message_id: payment.message_id.clone(),
            uetr,
            returned_amount: payment.amount,
            conversion: payment.wire_conversion(),
            reason,
            additional_information: information,
        };
        self.queue(state, payment.counterparty, Some(uetr), Body::Pacs004(body));
        tracing::info!(%uetr, bank = %self.bic(), %reason, "returning a settled payment");
        let detail = format!("returning {} to {} ({reason})", payment.amount, payment.counterparty);
        state.put_payment(Payment {
            return_state: ReturnState::Returning { reason, return_id },
            detail,
            ..payment
        });
        Ok(())
    }

    /// The hub answered a pacs.004, camt.056 or camt.029 of ours: an ACK (`refusal`
    /// none) or a NAK. An ACKed return has settled at the hub: in-flight goes to
    /// settlement. A refused return is reversed to the beneficiary; a refused recall or
    /// answer leaves the case as it was before.
    pub(super) fn on_case_answered(
        &self,
        state: &mut BankState,
        message_type: MessageType,
        uetr: Uetr,
        refusal: Option<&str>,
    ) {
        let Some(payment) = state.payment(&uetr).cloned() else { return };
        match (message_type, &payment.return_state, refusal) {
            (MessageType::Pacs004, ReturnState::Returning { reason, return_id }, None) => {
                let (reason, return_id) = (*reason, return_id.clone());
                if let Err(error) =
                    ledger_book::book_return_settled(&mut state.ledger, uetr, &return_id, payment.amount)
                {
                    tracing::error!(%uetr, bank = %self.bic(), %error, "cannot book the settled return");
                    return;
                }
                let detail = format!("returned {} to {} ({reason})", payment.amount, payment.counterparty);
                state.put_payment(Payment {
                    return_state: ReturnState::Returned { reason, return_id },
                    detail,
                    ..payment
                });
            }
            (MessageType::Pacs004, ReturnState::Returning { return_id, .. }, Some(refused)) => {
                let creditor =
                    AccountId::parse(&payment.creditor_account).expect("booked from a valid account id");
                let reversed = ledger_book::book_return_reversed(
                    &mut state.ledger,
                    uetr,
                    return_id,
                    &creditor,
                    payment.amount,
                );
                if let Err(error) = reversed {
                    tracing::error!(%uetr, bank = %self.bic(), %error, "cannot reverse the refused return");
                    return;
                }
                let detail = format!("return refused by the hub: {refused}");
                // A recall this return answered is open again: the CNCL that followed is refused too.
                let recall = payment.recall.clone().map(|r| match r.status {
                    InvestigationStatus::Cncl => Box::new(Recall { status: InvestigationStatus::Pdcr, ..*r }),
                    _ => r,
                });
                state.put_payment(Payment { return_state: ReturnState::None, recall, detail, ..payment });
            }
            (MessageType::Camt056, _, Some(refused)) if payment.direction == Direction::Outgoing => {
                let detail = format!("recall refused by the hub: {refused}");
                state.put_payment(Payment { recall: None, detail, ..payment });
            }
            (MessageType::Camt029, _, Some(refused)) if payment.direction == Direction::Incoming => {
                let recall = payment
                    .recall
                    .clone()
                    .map(|r| Box::new(Recall { status: InvestigationStatus::Pdcr, ..*r }));
                let detail = format!("recall answer refused by the hub: {refused}");
                state.put_payment(Payment { recall, detail, ..payment });
            }
            _ => {}
        }
    }

    /// A pacs.004 for one of our payments: the debtor gets back what it paid.
    pub(super) fn receive_return(&self, state: &mut BankState, header: &Header, ret: &PaymentReturn) {
        let uetr = ret.uetr;
        let Some(payment) = state.payment(&uetr).cloned().filter(|p| {
            p.direction == Direction::Outgoing
                && p.counterparty == header.sender
                && p.message_id == ret.original_message_id
        }) else {
            tracing::warn!(%uetr, bank = %self.bic(), sender = %header.sender, "a return that matches none of our payments; ignored");
            return;
        };
        if matches!(&payment.return_state, ReturnState::Returned { return_id, .. } if *return_id == ret.return_id)
        {
            // Postings of old payments leave memory, so the ledger cannot be relied on to
            // make a second booking of this return a no-op: the payment's state does.
            tracing::warn!(%uetr, bank = %self.bic(), return_id = %ret.return_id, "a return already booked; ignored");
            return;
        }
        let restored = ret.returned_instructed_amount();
        if restored != payment.amount || payment.return_state != ReturnState::None {
            tracing::error!(%uetr, bank = %self.bic(), %restored, paid = %payment.amount, "a return that does not undo our payment; the hub settled it, booking what arrived");
        }
        let debtor = AccountId::parse(&payment.debtor_account).expect("booked from a valid account id");
        if let Err(error) =
            ledger_book::book_returned(&mut state.ledger, uetr, &ret.return_id, &debtor, restored)
        {
            tracing::error!(%uetr, bank = %self.bic(), %error, "cannot book the return");
            let detail = format!("return of {restored} arrived but was not booked: {error}");
            state.put_payment(Payment { detail, ..payment });
            return;
        }
        tracing::info!(%uetr, bank = %self.bic(), reason = %ret.reason, "payment returned to the debtor");
        let detail = format!("returned by {} ({}): {restored} back to {debtor}", header.sender, ret.reason);
        let return_state = ReturnState::Returned { reason: ret.reason, return_id: ret.return_id.clone() };
        state.put_payment(Payment { return_state, detail, ..payment });
    }

    /// A camt.056 for a payment we received: the case opens (PDCR) until the operator answers.
    pub(super) fn receive_recall(
        &self,
        state: &mut BankState,
        header: &Header,
        request: &CancellationRequest,
    ) {
        let uetr = request.uetr;
        let Some(payment) = state.payment(&uetr).cloned().filter(|p| {
            p.direction == Direction::Incoming
                && p.counterparty == header.sender
                && p.message_id == request.original_message_id
        }) else {
            tracing::warn!(%uetr, bank = %self.bic(), sender = %header.sender, "a recall that matches none of our payments; ignored");
            return;
        };
        tracing::info!(%uetr, bank = %self.bic(), reason = %request.reason, case = %request.case_id, "recall received");
        let recall = Recall {
            case_id: request.case_id.clone(),
            message_id: header.message_id.clone(),
            status: InvestigationStatus::Pdcr,
            reason: request.reason,
        };
        let detail =
            format!("{} recalls it ({}): waiting for the operator's answer", header.sender, request.reason);
        state.put_payment(Payment { recall: Some(Box::new(recall)), detail, ..payment });
    }

    /// A camt.029 answering our recall.
    pub(super) fn receive_resolution(
        &self,
        state: &mut BankState,
        header: &Header,
        resolution: &ResolutionOfInvestigation,
    ) {
        let uetr = resolution.uetr;
        let Some(payment) = state.payment(&uetr).cloned() else { return };
        let Some(recall) = payment.recall.clone().filter(|r| {
            payment.direction == Direction::Outgoing
                && payment.counterparty == header.sender
                && r.case_id == resolution.case_id
                && r.message_id == resolution.original_message_id
        }) else {
            tracing::warn!(%uetr, bank = %self.bic(), sender = %header.sender, "an answer to no recall of ours; ignored");
            return;
        };
        if resolution.status == InvestigationStatus::Pdcr {
            return;
        }
        tracing::info!(%uetr, bank = %self.bic(), status = %resolution.status, "recall answered");
        let reason = resolution.reason.unwrap_or(recall.reason);
        let detail = match resolution.status {
            InvestigationStatus::Cncl => {
                format!("{} accepted the recall and returned the funds", header.sender)
            }
            _ => format!("{} refused the recall ({reason})", header.sender),
        };
        let recall = Recall { status: resolution.status, reason, ..*recall };
        state.put_payment(Payment { recall: Some(Box::new(recall)), detail, ..payment });
    }
}
