//! What arrives from the hub: ACKs, NAKs and deliveries. Each moves payments along and
//! books every step; each is journalled, and a delivery is confirmed to the hub only
//! once its effects are durable.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::state::BankState;
use super::{Bank, Direction, Payment, ledger_book};
use crate::crypto::{KeyDirectory, ReceiptHash, ReceiptProof, SignatureCheck, SignedEnvelope};
use crate::ledger::AccountId;
use crate::model::*;
use crate::pb;
use crate::store::{StoreError, Ticket};

impl Bank {
    /// A new session began: everything not yet ACKed goes out again.
    ///
    /// The hub must expect an input sequence number no lower than the oldest unanswered
    /// message: a lower one means the hub lost (or never had) messages it answered, and
    /// carrying on would repeat numbers. A higher one than this bank's next means the hub
    /// consumed numbers this node never sent. That is harmless when every one of them was
    /// consumed by a duplicate or a refusal, which changed nothing at the hub (a captured
    /// message replayed on this bank's session is answered with its original ACK): the
    /// hub's `last_isn_accepted` is then below this bank's next, nothing of this bank's
    /// falls in between (its unanswered messages go out again under their own numbers, as
    /// resends), and the bank carries on from the hub's number; refusing would lock it out
    /// of every session until its own new messages had filled the difference. But a new
    /// message accepted on one of those numbers is one this store lacks (restored from an
    /// older copy, it lost messages it had sent): the session is refused, since carrying
    /// on would leave them out of this bank's books for good.
    pub(crate) fn on_welcome(&self, welcome: &pb::Welcome) -> Result<(), String> {
        let (next_isn_expected, last_isn_accepted) = (welcome.next_isn_expected, welcome.last_isn_accepted);
        let mut state = self.state();
        let next = state.cursor.next_isn;
        let oldest = state.outbox.keys().next().copied().unwrap_or(next);
        if next_isn_expected < oldest {
            return Err(format!(
                "the hub expects input sequence {next_isn_expected}, but this bank's oldest unanswered message is \
                 {oldest} and its next is {next}: the hub's journal does not match this bank's store"
            ));
        }
        if last_isn_accepted >= next {
            return Err(format!(
                "the hub accepted a new message from this bank on input sequence {last_isn_accepted}, but this \
                 bank's store says its next is {next}: the store is behind the hub's journal (restored from an \
                 older copy?) and lacks messages it sent; refusing the session until an operator puts the \
                 newest copy back"
            ));
        }
        if next_isn_expected > next {
            tracing::warn!(
                bank = %self.bic(), next_isn = next, next_isn_expected,
                "the hub consumed {} input sequence number(s) on this bank's certificate that this node did not \
                 send, each with a duplicate or a refusal (a replayed message, or another client with its \
                 certificate): carrying on from the hub's number",
                next_isn_expected - next
            );
            state.cursor.next_isn = next_isn_expected;
            // Not waited for: a message numbered after this is journalled after it.
            state.commit(&self.inner.journal);
        }
        state.unsent_from = 0;
        state.shed_at = None;
        state.resume_at = None;
        tracing::info!(bank = %self.bic(), next_isn_expected, unacknowledged = state.outbox.len(), "session welcomed");
        Ok(())
    }

    /// Up to `limit` durable submissions not yet put on this session, in sequence order;
    /// fewer if `window` are already on the session unanswered.
    pub(crate) fn take_unsent(&self, limit: usize, window: usize) -> Vec<pb::Submit> {
        let durable = self.inner.journal.durable();
        let mut state = self.state();
        if state.resume_at.is_some_and(|at| tokio::time::Instant::now() < at) {
            return Vec::new();
        }
        // What this session has sent is a prefix of the outbox (it sends in sequence order).
        let unsent_from = state.unsent_from;
        let in_flight = state.outbox.range(..unsent_from).count();
        let limit = limit.min(window.saturating_sub(in_flight));
        let mut submits = Vec::new();
        // Tickets grow with sequence numbers: stop at the first not yet durable.
        let unsent = state.outbox.range_mut(unsent_from..).map(|(_, o)| o);
        for outgoing in unsent.take_while(|o| o.ticket <= durable).take(limit) {
            submits.push(pb::Submit {
                isn: outgoing.entry.isn,
                envelope: Some(outgoing.entry.envelope.clone()),
                possible_duplicate: outgoing.sent_before,
            });
            outgoing.sent_before = true;
        }
        if let Some(last) = submits.last() {
            state.unsent_from = last.isn + 1;
        }
        submits
    }

    /// Notified whenever more of the store is durable.
    pub(crate) fn durability(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.journal.subscribe()
    }

    /// The signature checks of frames that arrived together, verified in one batch: the
    /// root signature of each distinct receipt tree the ACKs' receipts hash up to (their
    /// paths are only hashed; a root verified before, in `roots`, is not verified again)
    /// and each delivery's sender signature. One result per frame, with a delivery's parsed
    /// envelope once verified; other frames have nothing to verify.
    pub(crate) fn verify_responses(
        &self,
        responses: &[pb::session_response::Frame],
        roots: &mut VerifiedRoot,
    ) -> Vec<Result<Option<SignedEnvelope>, String>> {
        use pb::session_response::Frame;
        let directory = self.inner.credentials.directory();
        let keys = directory.keys();
        let hub = directory.hub();
        let state = self.state();
        // The root checks of this read, once per distinct root, by their index in `ready`.
        let mut ready: Vec<SignatureCheck> = Vec::new();
        let mut root_checks: HashMap<RootKey, usize> = HashMap::new();
        let mut check_once = |check: SignatureCheck, root: Option<RootKey>| match root {
            Some(root) => *root_checks.entry(root).or_insert_with(|| {
                ready.push(check);
                ready.len() - 1
            }),
            None => {
                ready.push(check);
                ready.len() - 1
            }
        };
        let pending: Vec<Pending> = responses
            .iter()
            .map(|response| {
                let checked = match response {
                    Frame::Ack(ack) => {
                        let Some(outgoing) = state.outbox.get(&ack.isn) else { return Pending::Nothing };
                        receipt_root(ack, &outgoing.entry.envelope).and_then(|(proof, root)| {
                            let key = (
                                proof.key_id.clone(),
                                proof.leaf_count,
                                root,
                                proof.root_signature.to_bytes(),
                            );
                            if roots.0.as_ref() == Some(&key) {
                                return Ok(Pending::Verified);
                            }
                            let check =
                                keys.receipt_root_check(hub, &proof, &root).map_err(|e| e.to_string())?;
                            Ok(Pending::Check(
                                check_once(check, Some(key.clone())),
                                None,
                                Some(Box::new(key)),
                            ))
                        })
                    }
                    Frame::Deliver(deliver) => delivered_envelope(deliver).and_then(|envelope| {
                        let check = keys.envelope_check(&envelope).map_err(|e| e.to_string())?;
                        Ok(Pending::Check(check_once(check, None), Some(Box::new(envelope)), None))
                    }),
                    _ => Ok(Pending::Nothing),
                };
                checked.unwrap_or_else(Pending::Refused)
            })
            .collect();
        drop(state);
        let verified = KeyDirectory::verify_checks(&ready);
        pending
            .into_iter()
            .map(|pending| match pending {
                Pending::Nothing | Pending::Verified => Ok(None),
                Pending::Refused(problem) => Err(problem),
                Pending::Check(index, envelope, root) => {
                    if !verified[index] {
                        return Err("the signature does not verify".to_owned());
                    }
                    if let Some(root) = root {
                        roots.0 = Some(*root);
                    }
                    Ok(envelope.map(|envelope| *envelope))
                }
            })
            .collect()
    }

    /// The hub accepted a message; `receipt` says whether its receipt verified. An ACK
    /// whose receipt does not is refused: the message stays unanswered, to go out again
    /// on the next session, and the session ends with the reason.
    pub(crate) fn on_ack(&self, ack: &pb::Ack, receipt: Result<(), String>) -> Result<(), String> {
        let mut state = self.state();
        let Some(outgoing) = state.outbox.get(&ack.isn) else { return Ok(()) };
        if outgoing.entry.message_id.as_str() != ack.message_id {
            tracing::error!(isn = ack.isn, acked = %ack.message_id, sent = %outgoing.entry.message_id, "the hub ACKed another message under our ISN");
            return Ok(());
        }
        if let Err(problem) = receipt {
            return Err(format!(
                "the hub's receipt for message {} (ISN {}) does not verify ({problem}): its ACK is refused, and \
                 the message goes out again on the next session",
                outgoing.entry.message_id, ack.isn
            ));
        }
        let outgoing = state.outbox_remove(ack.isn).expect("present");
        state.answered(ack.isn);
        if let (MessageType::Pacs004 | MessageType::Camt056 | MessageType::Camt029, Some(uetr)) =
            (outgoing.entry.message_type, outgoing.entry.uetr)
        {
            self.on_case_answered(&mut state, outgoing.entry.message_type, uetr, None);
        }
        if let (MessageType::Pacs008, Some(uetr)) = (outgoing.entry.message_type, outgoing.entry.uetr)
            && let Some(payment) = state.payment(&uetr).filter(|p| p.status == PaymentStatus::Pdng)
        {
            let payment = Payment {
                status: PaymentStatus::Actc,
                detail: "accepted by the hub".into(),
                ..payment.clone()
            };
            state.put_payment(payment);
            tracing::info!(%uetr, bank = %self.bic(), "ACTC: hub accepted the pacs.008");
        }
        // Not waited for: if it is lost, the bank resends and the hub ACKs again.
        state.commit(&self.inner.journal);
        Ok(())
    }

    /// The hub refused a message. A refused pacs.008 is a rejected payment: reverse it.
    /// A pacs.002 refused as too old (TM01, it waited in the outbox past the hub's replay
    /// window) is issued again, fresh. A sequence gap (FAILED_PRECONDITION without an ISO
    /// reason) is not a refusal of the message: it stays, and the session ends so that the
    /// next one starts from the number the hub expects. Nor is shedding (a time to retry):
    /// the message stays, and the session resends from it after that time.
    pub(crate) fn on_nak(&self, nak: &pb::Nak) -> Result<(), String> {
        if nak.code == tonic::Code::FailedPrecondition as i32 && nak.reason_code.is_empty() {
            return Err(format!("the hub reports a sequence problem: {}", nak.detail));
        }
        let mut state = self.state();
        if nak.retry_after_ms > 0 {
            // Everything the session sent after the first shed message was shed too.
            if state.shed_at.is_some_and(|at| nak.isn > at) {
                return Ok(());
            }
            state.shed_at = Some(nak.isn);
            state.unsent_from = state.unsent_from.min(nak.isn);
            let wait = std::time::Duration::from_millis(nak.retry_after_ms);
            state.resume_at = Some(tokio::time::Instant::now() + wait);
            metrics::counter!(crate::metrics::BANK_SHED).increment(1);
            tracing::info!(bank = %self.bic(), isn = nak.isn, retry_after_ms = nak.retry_after_ms, "the hub shed our submissions; resending later");
            return Ok(());
        }
        state.answered(nak.isn);
        match state.outbox.get(&nak.isn) {
            Some(outgoing) if outgoing.entry.message_id.as_str() == nak.message_id => {}
            Some(outgoing) => {
                return Err(format!(
                    "the hub NAKed ISN {} for message {:?}, we sent {}",
                    nak.isn, nak.message_id, outgoing.entry.message_id
                ));
            }
            None => return Ok(()),
        }
        let outgoing = state.outbox_remove(nak.isn).expect("present");
        let uetr = outgoing.entry.uetr.map(|u| u.to_string()).unwrap_or_default();
        tracing::warn!(%uetr, bank = %self.bic(), message_id = %outgoing.entry.message_id, reason = %nak.reason_code, detail = %nak.detail, "hub refused our {}", outgoing.entry.message_type);
        let reason = ReasonCode::parse(&nak.reason_code).unwrap_or(ReasonCode::Narr);
        match (outgoing.entry.message_type, outgoing.entry.uetr) {
            (MessageType::Pacs008, Some(uetr)) => {
                let detail = format!("refused by the hub: {}", nak.detail);
                self.finish_outgoing(&mut state, uetr, PaymentStatus::Rjct, Some(reason), detail);
            }
            (MessageType::Pacs002, Some(uetr)) if reason == ReasonCode::Tm01 => {
                self.reissue_status(&mut state, uetr);
            }
            (
                message_type @ (MessageType::Pacs004 | MessageType::Camt056 | MessageType::Camt029),
                Some(uetr),
            ) => {
                let refusal = format!("{} ({})", nak.detail, nak.reason_code);
                self.on_case_answered(&mut state, message_type, uetr, Some(&refusal));
            }
            _ => {}
        }
        state.commit(&self.inner.journal);
        Ok(())
    }

    /// Processes one delivery from the hub. Returns the confirmation to send once the
    /// returned ticket is durable, or an error (ending the session) on a sequence gap:
    /// output sequence numbers are processed one after another, never skipped.
    pub(crate) fn on_deliver(
        &self,
        deliver: &pb::Deliver,
        verified: Result<SignedEnvelope, String>,
    ) -> Result<(pb::Delivered, Ticket), String> {
        // Decoding is checked before taking the lock: CPU work, no state.
        let checked = verified.and_then(|envelope| self.check_delivery(&envelope));
        let mut state = self.state();
        let last = state.cursor.last_osn_processed;
        if deliver.osn > last + 1 {
            return Err(format!(
                "output sequence gap: processed up to {last}, the hub delivered {}",
                deliver.osn
            ));
        }
        if deliver.osn == last + 1 {
            // A store that cannot be read ends the session before anything changed: the
            // hub delivers the message again on the next one.
            let unreadable = |e: crate::store::StoreError| format!("cannot read the bank's store: {e}");
            match checked {
                Ok(message) => self.process_delivery(&mut state, &message, deliver).map_err(unreadable)?,
                Err(problem) => self.refuse_delivery(&mut state, deliver, &problem).map_err(unreadable)?,
            }
            state.cursor.last_osn_processed = deliver.osn;
        }
        // A redelivery of something already processed is confirmed once that is durable.
        let ticket = state.commit(&self.inner.journal);
        drop(state);
        self.inner.outbox_wake.notify_one();
        Ok((pb::Delivered { osn: deliver.osn }, ticket))
    }

    /// A delivered message that does not verify is never applied. If it reads as a
    /// pacs.008 to this bank from a participant, the claimed sender gets a pacs.002 RJCT
    /// saying why, so that its payment does not wait in in-flight forever (a sender that
    /// sent nothing finds no matching payment and ignores it).
    fn refuse_delivery(
        &self,
        state: &mut BankState,
        deliver: &pb::Deliver,
        problem: &str,
    ) -> Result<(), StoreError> {
        tracing::error!(bank = %self.bic(), osn = deliver.osn, %problem, "refused a delivered message");
        let Some(envelope) = &deliver.envelope else { return Ok(()) };
        let Ok(message) = wire::decode_message(&envelope.payload) else { return Ok(()) };
        let (header, Body::Pacs008(transfer)) = (message.header(), message.body()) else { return Ok(()) };
        if header.receiver != self.bic()
            || header.sender.as_str() != envelope.signer_bic
            || !self.inner.credentials.directory().reaches(header.sender)
            || !self.fresh_message(state, header, transfer.uetr, true)?
        {
            return Ok(());
        }
        state.record_processed(header.sender, &header.message_id, header.creation_time_unix_ms);
        tracing::warn!(uetr = %transfer.uetr, bank = %self.bic(), sender = %header.sender, "answering an unverifiable pacs.008 with RJCT");
        let detail = format!("not applied: {problem}");
        self.answer_transfer(state, header, transfer, PaymentStatus::Rjct, Some(ReasonCode::Narr), detail);
        Ok(())
    }

    /// Whether a delivered message is new: not processed before, and (a pacs.008) not for
    /// a payment this bank already has. Brings the payment it is about back into memory
    /// if it had left it, so that processing it needs nothing more from the store.
    /// Changes nothing the journal records.
    fn fresh_message(
        &self,
        state: &mut BankState,
        header: &Header,
        uetr: Uetr,
        transfer: bool,
    ) -> Result<bool, StoreError> {
        let reader = self.reader();
        if state.already_processed(
            &reader,
            header.sender,
            &header.message_id,
            header.creation_time_unix_ms,
        )? {
            tracing::info!(bank = %self.bic(), message_id = %header.message_id, "duplicate delivery ignored");
            return Ok(false);
        }
        let known = state.load_payment(&reader, uetr)?.is_some();
        if known && transfer {
            // The UETR is the payment's idempotency key: a second pacs.008 for it (a new
            // message id: not a resend) is not a second payment.
            tracing::warn!(%uetr, bank = %self.bic(), sender = %header.sender, message_id = %header.message_id, "a pacs.008 for a payment this bank already has; ignored");
            return Ok(false);
        }
        Ok(true)
    }

    /// The processing of every delivery up to `osn` is durable.
    pub(crate) fn delivered_durably(&self, osn: u64) {
        self.inner.last_osn_durable.fetch_max(osn, Ordering::AcqRel);
    }

    /// End to end: the bank checks the sender's signature itself (verified by
    /// [`Bank::verify_responses`]), trusting the hub for nothing, and that the message is
    /// addressed to it.
    fn check_delivery(&self, envelope: &SignedEnvelope) -> Result<Message, String> {
        let message = wire::decode_message(&envelope.payload).map_err(|e| e.to_string())?;
        let header = message.header();
        if header.sender != envelope.signer || header.receiver != self.bic() {
            return Err(format!(
                "message {} from {} to {} is not for us",
                header.message_id, header.sender, header.receiver
            ));
        }
        // The key must have been valid when the message was created (and not revoked by
        // then): the hub may hold a message for an offline bank, so it is judged by its
        // creation time, which the hub checked against its replay window.
        let created = header.creation_time_unix_ms;
        self.inner
            .credentials
            .directory()
            .keys()
            .check_validity(envelope.signer, &envelope.key_id, created, created)
            .map_err(|e| e.to_string())?;
        Ok(message)
    }

    fn process_delivery(
        &self,
        state: &mut BankState,
        message: &Message,
        deliver: &pb::Deliver,
    ) -> Result<(), StoreError> {
        let header = message.header();
        let fresh = match message.body().uetr() {
            Some(uetr) => {
                self.fresh_message(state, header, uetr, matches!(message.body(), Body::Pacs008(_)))?
            }
            None => !state.already_processed(
                &self.reader(),
                header.sender,
                &header.message_id,
                header.creation_time_unix_ms,
            )?,
        };
        if !fresh {
            return Ok(());
        }
        state.record_processed(header.sender, &header.message_id, header.creation_time_unix_ms);
        if let Some(uetr) = message.body().uetr() {
            // The delivery's own wire envelope, kept as it came (its bytes are shared).
            let envelope = deliver.envelope.clone().expect("a checked delivery has its envelope");
            state.keep_message(uetr, false, envelope);
        }
        match message.body() {
            Body::Pacs008(transfer) => self.receive_transfer(state, header, transfer),
            Body::Pacs002(report) => self.receive_status(state, header, report),
            Body::Pacs004(ret) => self.receive_return(state, header, ret),
            Body::Camt056(request) => self.receive_recall(state, header, request),
            Body::Camt029(resolution) => self.receive_resolution(state, header, resolution),
            other => {
                tracing::warn!(bank = %self.bic(), "{} is not handled by bank nodes yet", other.message_type())
            }
        }
        Ok(())
    }

    fn receive_transfer(&self, state: &mut BankState, header: &Header, transfer: &CreditTransfer) {
        // End to end: a conversion's arithmetic is checked here too, not taken on trust.
        let booked = match transfer.check_conversion() {
            Ok(()) => ledger_book::book_incoming(&mut state.ledger, transfer),
            Err(error) => Err((ReasonCode::Am12, error.to_string())),
        };
        let (status, reason, detail) = match booked {
            Ok(()) => (PaymentStatus::Acsc, None, format!("credited to {}", transfer.creditor.account)),
            Err((reason, detail)) => (PaymentStatus::Rjct, Some(reason), detail),
        };
        tracing::info!(uetr = %transfer.uetr, bank = %self.bic(), sender = %header.sender, status = %status, reason = reason.map(|r| r.code()), "incoming pacs.008 processed");
        self.answer_transfer(state, header, transfer, status, reason, detail);
    }

    /// Records an incoming payment's outcome and queues the pacs.002 that tells its sender.
    fn answer_transfer(
        &self,
        state: &mut BankState,
        header: &Header,
        transfer: &CreditTransfer,
        status: PaymentStatus,
        reason: Option<ReasonCode>,
        detail: String,
    ) {
        let uetr = transfer.uetr;
        state.put_payment(Payment {
            uetr,
            message_id: header.message_id.clone(),
            direction: Direction::Incoming,
            counterparty: header.sender,
            debtor_account: transfer.debtor.account.clone(),
            creditor_account: transfer.creditor.account.clone(),
            amount: transfer.amount,
            status,
            reason,
            detail: detail.clone(),
            conversion: transfer
                .conversion
                .as_ref()
                .map(|c| Box::new(super::PaymentConversion { counter_amount: c.instructed, rate: c.rate })),
            return_state: super::ReturnState::None,
            recall: None,
        });
        let report = PaymentStatusReport {
            original_message_id: header.message_id.clone(),
            uetr,
            status,
            reason,
            // ISO Max140Text: the sentence is cut, never the message refused.
            additional_information: detail.chars().take(message::TEXT_LENGTH_MAX).collect(),
        };
        self.queue(state, header.sender, Some(uetr), Body::Pacs002(report));
    }

    /// Queues a fresh pacs.002 (new id, created now) for an incoming payment whose status
    /// report the hub refused as too old.
    fn reissue_status(&self, state: &mut BankState, uetr: Uetr) {
        let Some(payment) = state.payment(&uetr).filter(|p| p.direction == Direction::Incoming).cloned()
        else {
            return;
        };
        tracing::warn!(%uetr, bank = %self.bic(), "issuing the status report again: the hub found the first one too old");
        let report = PaymentStatusReport {
            original_message_id: payment.message_id,
            uetr,
            status: payment.status,
            reason: payment.reason,
            additional_information: payment.detail.chars().take(message::TEXT_LENGTH_MAX).collect(),
        };
        self.queue(state, payment.counterparty, Some(uetr), Body::Pacs002(report));
    }

    fn receive_status(&self, state: &mut BankState, header: &Header, report: &PaymentStatusReport) {
        let uetr = report.uetr;
        let Some(payment) = state.payment(&uetr) else {
            tracing::warn!(%uetr, bank = %self.bic(), "status report for an unknown payment");
            return;
        };
        if payment.direction != Direction::Outgoing
            || payment.counterparty != header.sender
            || payment.message_id != report.original_message_id
        {
            tracing::warn!(%uetr, bank = %self.bic(), sender = %header.sender, "status report does not match our payment; ignored");
            return;
        }
        let detail =
            format!("{} reports {}: {}", header.sender, report.status, report.additional_information);
        self.finish_outgoing(state, uetr, report.status, report.reason, detail);
    }

    /// Moves an outgoing payment to `status`, booking settlement or the reversal once.
    fn finish_outgoing(
        &self,
        state: &mut BankState,
        uetr: Uetr,
        status: PaymentStatus,
        reason: Option<ReasonCode>,
        detail: String,
    ) {
        let payment = state.payment(&uetr).expect("caller checked the payment exists").clone();
        if payment.status.is_final() {
            tracing::info!(%uetr, bank = %self.bic(), "payment already final; status {} ignored", status);
            return;
        }
        let debtor = AccountId::parse(&payment.debtor_account).expect("booked from a valid account id");
        let booked = match status {
            PaymentStatus::Acsc | PaymentStatus::Accc => {
                ledger_book::book_settled(&mut state.ledger, uetr, payment.amount)
            }
            PaymentStatus::Rjct => {
                ledger_book::book_reversal(&mut state.ledger, uetr, &debtor, payment.amount)
            }
            _ => Ok(()),
        };
        if let Err(error) = booked {
            // Only an overflowing balance can refuse these postings. The payment stays
            // open, in-flight keeps the money, and the operator sees why.
            tracing::error!(%uetr, bank = %self.bic(), %error, "cannot book the payment's {status}");
            let detail = format!("{status} received but not booked: {error}; held in in-flight");
            state.put_payment(Payment { detail, ..payment });
            return;
        }
        tracing::info!(%uetr, bank = %self.bic(), status = %status, reason = reason.map(|r| r.code()), "outgoing payment {}", if status.is_final() { "final" } else { "updated" });
        state.put_payment(Payment { status, reason, detail, ..payment });
    }
}

/// The envelope of a delivery, well formed.
fn delivered_envelope(deliver: &pb::Deliver) -> Result<SignedEnvelope, String> {
    let envelope = deliver.envelope.clone().ok_or("a delivery without an envelope")?;
    SignedEnvelope::try_from(envelope).map_err(|e| e.to_string())
}

/// A receipt tree's root as a bank verified it: the hub key, the leaf count, the root and
/// the signature over them.
type RootKey = (crate::crypto::KeyId, u32, ReceiptHash, [u8; 64]);

/// The receipt root a session verified last: the ACKs of one hub batch may arrive over
/// several reads, and their root is verified once.
#[derive(Default)]
pub(crate) struct VerifiedRoot(Option<RootKey>);

/// What a frame of a read needs verified.
enum Pending {
    /// Nothing (not an ACK or a delivery, or an ACK of nothing outstanding).
    Nothing,
    /// An ACK whose root was verified by an earlier read.
    Verified,
    /// Malformed, or its key is unknown.
    Refused(String),
    /// The check at this index of the read's batch, with a delivery's envelope or an
    /// ACK's root.
    Check(usize, Option<Box<SignedEnvelope>>, Option<Box<RootKey>>),
}

/// An ACK's receipt for the message the bank sent (`outgoing`), with the root its path
/// hashes up to.
fn receipt_root(ack: &pb::Ack, outgoing: &pb::SignedEnvelope) -> Result<(ReceiptProof, ReceiptHash), String> {
    let receipt = ack.receipt.clone().ok_or("an ACK carries the hub's receipt")?;
    let proof = ReceiptProof::try_from(receipt).map_err(|e| e.to_string())?;
    let envelope = SignedEnvelope::try_from(outgoing.clone()).map_err(|e| e.to_string())?;
    let root = proof.root_for(&envelope).ok_or("the receipt's path does not fit its place in a tree")?;
    Ok((proof, root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::PaymentOrder;

    /// The Welcome check of input sequence numbers (SECURITY.md, item 4): a hub that
    /// expects a number below this bank's oldest unanswered message lost messages it
    /// answered, and the session is refused. A hub that expects one above this bank's
    /// next consumed numbers this node never sent: if it accepted a new message on one of
    /// them (its `last_isn_accepted` is at or past this bank's next), this bank's store
    /// lacks messages it sent (restored from an older copy), and the session is refused
    /// with nothing changed; if only duplicates and refusals consumed them (a replayed
    /// message), the bank carries on from the hub's number, its unanswered message going
    /// out again under its own number (a resend, which the hub may have accepted before
    /// its ACK was lost) and its next new one under the hub's. Here with a payment still
    /// unanswered, which the end-to-end test in tests/security.rs cannot hold across a
    /// restart.
    #[tokio::test]
    async fn a_hub_ahead_of_the_bank_is_followed_and_a_hub_behind_its_unanswered_messages_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (bank, ir) = crate::bank::tests::bank_with_a_customer(dir.path()).await;
        let order = |amount: &str| PaymentOrder {
            debtor_account: "C001".into(),
            creditor_agent: ir.to_string(),
            creditor_account: "C002".into(),
            creditor_name: "Beneficiary".into(),
            amount: amount.into(),
            currency: "CNY".into(),
            remittance_information: String::new(),
            settlement_currency: String::new(),
            quote_id: String::new(),
        };
        bank.submit_payment(&order("1.00")).await.unwrap();
        let unanswered = bank.state().cursor.next_isn - 1;
        let next = unanswered + 1;
        let welcome = |next_isn_expected, last_isn_accepted| pb::Welcome {
            bic: bank.bic().to_string(),
            next_isn_expected,
            last_isn_accepted,
            contract_version: crate::net::CONTRACT_VERSION,
            network_directory: None,
        };

        let refusal =
            bank.on_welcome(&welcome(unanswered - 1, 0)).expect_err("a hub behind an unanswered message");
        assert!(refusal.contains("does not match this bank's store"), "{refusal}");

        let hub_next = unanswered + 3;
        for accepted in [next, hub_next - 1] {
            let refusal = bank
                .on_welcome(&welcome(hub_next, accepted))
                .expect_err("a hub that accepted a new message on a number this store never used");
            assert!(
                refusal.contains("behind the hub's journal (restored from an older copy?)")
                    && refusal.contains(&format!("input sequence {accepted},"))
                    && refusal.contains(&format!("its next is {next}:")),
                "{refusal}"
            );
            assert_eq!(bank.state().cursor.next_isn, next, "a refused Welcome changes nothing");
        }

        // The hub accepted the unanswered message (its ACK was lost); duplicates used the rest.
        bank.on_welcome(&welcome(hub_next, unanswered)).expect("a hub ahead of this bank is followed");
        let resent = bank.take_unsent(64, 64);
        assert_eq!(
            resent.iter().map(|s| s.isn).collect::<Vec<_>>(),
            vec![unanswered],
            "a resend, below the hub's"
        );
        bank.submit_payment(&order("2.00")).await.unwrap();
        let sent = bank.take_unsent(64, 64);
        assert_eq!(
            sent.iter().map(|s| s.isn).collect::<Vec<_>>(),
            vec![hub_next],
            "the next new number is the hub's"
        );
    }

    /// The bank checks the hub's receipts (SECURITY.md, receipts): ACKs of one batch share
    /// one root signature, verified once (a later read of the same root is not verified
    /// again); an ACK whose receipt does not prove its message (a bent path, another
    /// index, a forged signature, no receipt) is refused: the message stays unanswered, to
    /// go out again, and the session ends with why.
    #[tokio::test]
    async fn an_ack_whose_receipt_does_not_prove_its_message_is_refused_and_the_message_kept() {
        use crate::crypto::{ReceiptTree, receipt_leaf};
        use pb::session_response::Frame;
        let dir = tempfile::tempdir().unwrap();
        let (bank, ir) = crate::bank::tests::bank_with_a_customer(dir.path()).await;
        let hub = crate::tls::NetworkDir::new(dir.path()).signing_identity(crate::tls::Role::Hub).unwrap();
        let order = PaymentOrder {
            debtor_account: "C001".into(),
            creditor_agent: ir.to_string(),
            creditor_account: "C002".into(),
            creditor_name: "Beneficiary".into(),
            amount: "1.00".into(),
            currency: "CNY".into(),
            remittance_information: String::new(),
            settlement_currency: String::new(),
            quote_id: String::new(),
        };
        for _ in 0..3 {
            bank.submit_payment(&order).await.unwrap();
        }
        bank.inner.journal.wait(bank.inner.journal.appended()).await.unwrap();
        let sent = bank.take_unsent(64, 64);
        assert_eq!(sent.len(), 3);
        let envelopes: Vec<SignedEnvelope> =
            sent.iter().map(|s| SignedEnvelope::try_from(s.envelope.clone().unwrap()).unwrap()).collect();
        let receipts = hub.sign_receipts(&ReceiptTree::new(envelopes.iter().map(receipt_leaf).collect()));
        let message_id = |envelope: &SignedEnvelope| {
            crate::model::wire::decode_message(&envelope.payload).unwrap().header().message_id.to_string()
        };
        let ack = |index: usize, receipt: Option<pb::Receipt>| pb::Ack {
            isn: sent[index].isn,
            message_id: message_id(&envelopes[index]),
            receipt,
        };
        let good = |index: usize| ack(index, Some(pb::Receipt::from(&receipts[index])));
        let mut roots = VerifiedRoot::default();

        // Bent receipts for message 0, each refused; the good one for message 1 passes.
        let mut bent_path = pb::Receipt::from(&receipts[0]);
        bent_path.path[0] = vec![0; 32].into();
        let other_index = pb::Receipt { leaf_index: 2, ..pb::Receipt::from(&receipts[0]) };
        let forged = pb::Receipt { root_signature: vec![9; 64].into(), ..pb::Receipt::from(&receipts[0]) };
        let frames: Vec<Frame> =
            [ack(0, Some(bent_path)), ack(0, Some(other_index)), ack(0, Some(forged)), ack(0, None), good(1)]
                .into_iter()
                .map(Frame::Ack)
                .collect();
        let verified = bank.verify_responses(&frames, &mut roots);
        assert!(verified[..4].iter().all(Result::is_err), "{verified:?}");
        assert!(verified[4].is_ok(), "{verified:?}");
        assert!(roots.0.is_some(), "the good root is remembered");
        let Frame::Ack(bent) = &frames[0] else { unreachable!() };
        let refusal = bank.on_ack(bent, verified[0].clone().map(drop)).unwrap_err();
        assert!(refusal.contains("does not verify") && refusal.contains(&bent.message_id), "{refusal}");
        assert!(bank.state().outbox.contains_key(&sent[0].isn), "a refused ACK answers nothing");
        let Frame::Ack(fine) = &frames[4] else { unreachable!() };
        bank.on_ack(fine, verified[4].clone().map(drop)).unwrap();
        assert!(!bank.state().outbox.contains_key(&sent[1].isn), "a proven ACK answers its message");

        // The same root on a later read is taken from the cache; its path is still hashed.
        let later = bank.verify_responses(
            &[Frame::Ack(good(0)), Frame::Ack(ack(2, Some(pb::Receipt::from(&receipts[0]))))],
            &mut roots,
        );
        assert!(later[0].is_ok() && later[1].is_err(), "{later:?}");
    }

    /// Across a link, the receiving bank checks the sending bank's own signature with the
    /// key the sender's network published (its hub's signed directory), not the word of
    /// the hubs that relayed it: a pacs.008 from a linked network's bank signed with its
    /// published key verifies; the same message signed with another key of that bank,
    /// which its network did not publish, does not, though a hub delivered it.
    #[tokio::test]
    async fn a_delivery_from_a_linked_networks_bank_verifies_only_with_the_key_its_network_published() {
        use crate::crypto::{KeyId, SigningIdentity};
        use crate::directory::{Directory, KeyEntry, ParticipantEntry, PublishedDirectory};
        use crate::model::{
            Amount, Body, ChargeBearer, CreditTransfer, Currency, Header, Message, MessageId, MessageType,
            Party, Uetr,
        };
        use pb::session_response::Frame;
        let dir = tempfile::tempdir().unwrap();
        let ru = Bic::parse("BANKRUMMXXX").unwrap();
        let pki = crate::tls::init(dir.path(), &[ru, Bic::parse("VTBRRUMMXXX").unwrap()]).unwrap();
        let (link, remote) = (Bic::parse("BMJIIRTHXXX").unwrap(), Bic::parse("MELIIRTHXXX").unwrap());
        let k1 = KeyId::parse("k1").unwrap();
        let peer_hub = SigningIdentity::generate(Bic::parse(crate::tls::HUB_BIC).unwrap(), k1.clone());
        let published_key = SigningIdentity::generate(remote, k1.clone());
        let unpublished_key = SigningIdentity::generate(remote, k1.clone());
        let entry = |identity: &SigningIdentity| KeyEntry::new("k1", &identity.verifying_key_bytes(), None);
        let published = PublishedDirectory {
            version: crate::directory::PUBLISHED_DIRECTORY_VERSION,
            network: link.to_string(),
            issued_unix_ms: 0,
            participants: vec![ParticipantEntry {
                bic: remote.to_string(),
                name: "Bank Melli".into(),
                keys: vec![entry(&published_key)],
            }],
            accepts: vec!["pacs.008".into()],
        };
        let directory = Directory::load(pki.root())
            .unwrap()
            .with_link(link, &[MessageType::Pacs008], &[entry(&peer_hub)])
            .unwrap()
            .with_published(&published)
            .unwrap();
        let identity = pki.signing_identity(crate::tls::Role::Bank(ru)).unwrap();
        let bank = crate::bank::Bank::open(identity, directory, &pki.bank_data_dir(ru)).unwrap();

        let uetr = Uetr::generate();
        let irr = Currency::parse("IRR").unwrap();
        let transfer = CreditTransfer {
            conversion: None,
            instruction_id: "I-1".into(),
            end_to_end_id: "E-1".into(),
            uetr,
            amount: Amount::parse("450.00", irr).unwrap(),
            settlement_date: time::macros::date!(2026 - 12 - 05),
            charge_bearer: ChargeBearer::Shar,
            debtor: Party::new("Sara Ahmadi", "C001").unwrap(),
            debtor_agent: remote,
            creditor: Party::new("Ivan Petrov", "C002").unwrap(),
            creditor_agent: ru,
            remittance_information: String::new(),
        };
        let header = Header {
            message_id: MessageId::generate(),
            uetr: Some(uetr),
            sender: remote,
            receiver: ru,
            creation_time_unix_ms: crate::clock::unix_ms_now(),
            sequence_number: 1,
            possible_duplicate: false,
        };
        let message = Message::new(header, Body::Pacs008(transfer)).unwrap();
        let deliver = |osn: u64, signer: &SigningIdentity| {
            Frame::Deliver(pb::Deliver {
                osn,
                envelope: Some(pb::SignedEnvelope::from(&signer.sign(&message))),
                possible_duplicate: false,
            })
        };
        let frames = [deliver(1, &published_key), deliver(2, &unpublished_key)];
        let verified = bank.verify_responses(&frames, &mut VerifiedRoot::default());
        assert!(verified[0].is_ok(), "signed with the published key: {verified:?}");
        let refusal = verified[1].clone().unwrap_err();
        assert!(refusal.contains("does not verify"), "signed with an unpublished key: {refusal}");
    }
}
