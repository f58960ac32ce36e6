//! What a bank's operator can do: open and block accounts, start payments. Each answer
//! is given only once its changes are durable.

use super::store::OutboxEntry;
use super::{Bank, BankError, Direction, Payment, ledger_book, state::BankState};
use crate::ledger::{Account, AccountId, AccountKind, LedgerError};
use crate::model::*;
use crate::pb;
use crate::store::Ticket;

use super::ledger_book::SYSTEM_ACCOUNT_PREFIX;

/// An operator's request to pay.
#[derive(Clone, Debug)]
pub struct PaymentOrder {
    /// Paying customer's account here.
    pub debtor_account: String,
    /// Beneficiary's bank.
    pub creditor_agent: String,
    /// Beneficiary's account there.
    pub creditor_account: String,
    /// Beneficiary's name.
    pub creditor_name: String,
    /// Decimal text.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Free text.
    pub remittance_information: String,
}

impl Bank {
    /// Opens a customer account, with an optional opening cash deposit (decimal text).
    pub async fn open_account(
        &self,
        id: &str,
        currency: &str,
        name: &str,
        deposit: &str,
    ) -> Result<Account, BankError> {
        let (account, ticket) = self.open_account_now(id, currency, name, deposit)?;
        self.durable(ticket).await?;
        Ok(account)
    }

    fn open_account_now(
        &self,
        id: &str,
        currency: &str,
        name: &str,
        deposit: &str,
    ) -> Result<(Account, Ticket), BankError> {
        let id = AccountId::parse(id).map_err(|e| e.at("account_id"))?;
        if id.as_str().starts_with(SYSTEM_ACCOUNT_PREFIX) {
            return Err(BankError::Refused(format!(
                "account ids starting with {SYSTEM_ACCOUNT_PREFIX} are the bank's own"
            )));
        }
        let currency = Currency::parse(currency)?;
        let name = message::check_text(name, "name", message::TEXT_LENGTH_MAX, true)?;
        let deposit = match deposit {
            "" | "0" => None,
            text => Some(Amount::parse(text, currency).map_err(|e| e.at("opening_deposit"))?),
        };
        let mut state = self.state();
        if state.ledger.account(&id).is_some() {
            return Err(BankError::Refused(format!("account {id} already exists")));
        }
        ledger_book::ensure_system_accounts(&mut state.ledger, currency);
        let account = Account::new(id.clone(), AccountKind::Customer, currency, &name);
        let opened = match deposit {
            Some(deposit) => ledger_book::open_funded(&mut state.ledger, account, deposit),
            None => state.ledger.open_account(account),
        };
        // Commit even on refusal: the system accounts may be new.
        let ticket = state.commit(&self.inner.journal);
        opened?;
        Ok((state.ledger.account(&id).expect("just opened").clone(), ticket))
    }

    /// Blocks or unblocks a customer account: incoming payments to it are refused (AC06).
    pub async fn set_account_blocked(&self, id: &str, blocked: bool) -> Result<Account, BankError> {
        let id = AccountId::parse(id).map_err(|e| e.at("account_id"))?;
        let (account, ticket) = {
            let mut state = self.state();
            match state.ledger.account(&id) {
                Some(account) if account.kind == AccountKind::Customer => {}
                _ => return Err(BankError::NotFound(format!("no customer account {id}"))),
            }
            let account = state.ledger.set_blocked(&id, blocked)?.clone();
            state.account_changed(&id);
            (account, state.commit(&self.inner.journal))
        };
        self.durable(ticket).await?;
        Ok(account)
    }

    /// Starts an outgoing payment: validates the order, books debit customer / credit
    /// in-flight, signs the pacs.008 and queues it for the hub. Nothing changes if any
    /// check fails; the answer (with the UETR) comes once all of it is durable.
    pub async fn submit_payment(&self, order: &PaymentOrder) -> Result<Payment, BankError> {
        let (payment, ticket) = self.submit_payment_now(order)?;
        self.durable(ticket).await?;
        tracing::info!(uetr = %payment.uetr, bank = %self.bic(), receiver = %payment.counterparty, amount = %payment.amount, "payment submitted");
        self.wake_outbox();
        Ok(payment)
    }

    /// Takes an order now (validated, booked, signed, queued), without waiting: the
    /// payment may be told to anyone, and sent, only once the ticket is durable.
    pub(crate) fn submit_payment_now(&self, order: &PaymentOrder) -> Result<(Payment, Ticket), BankError> {
        let bic = self.bic();
        let creditor_agent = Bic::parse(&order.creditor_agent).map_err(|e| e.at("creditor_agent_bic"))?;
        if creditor_agent == bic || !self.inner.credentials.directory().is_participant(creditor_agent) {
            return Err(BankError::Refused(format!(
                "creditor_agent_bic: {creditor_agent} is not another participant of this network"
            )));
        }
        let currency = Currency::parse(&order.currency)?;
        let amount = Amount::parse(&order.amount, currency)?;
        let debtor_id = AccountId::parse(&order.debtor_account).map_err(|e| e.at("debtor_account"))?;
        let creditor =
            Party::new(&order.creditor_name, &order.creditor_account).map_err(|e| e.under("creditor"))?;
        let remittance = message::check_text(
            &order.remittance_information,
            "remittance_information",
            message::TEXT_LENGTH_MAX,
            false,
        )?;
        let uetr = Uetr::generate();
        let mut state = self.state();
        let debtor = match state.ledger.account(&debtor_id) {
            Some(account) if account.kind == AccountKind::Customer => account.clone(),
            _ => return Err(BankError::NotFound(format!("debtor_account: no customer account {debtor_id}"))),
        };
        if debtor.blocked {
            return Err(BankError::Refused(format!("debtor_account: {debtor_id} is blocked (AC06)")));
        }
        if debtor.currency != currency {
            return Err(BankError::Refused(format!(
                "debtor_account: {debtor_id} holds {}, not {currency}",
                debtor.currency
            )));
        }
        let debtor_party = Party::new(&debtor.name, debtor_id.as_str())?;
        // Booking is the last step that may refuse the order; after it, it must be queued.
        ledger_book::book_outgoing(&mut state.ledger, uetr, &debtor_id, amount).map_err(|e| match e {
            LedgerError::FloorBreached { .. } => {
                BankError::Refused(format!("insufficient funds on {debtor_id} (AM04)"))
            }
            other => BankError::Ledger(other),
        })?;
        let transfer = CreditTransfer {
            instruction_id: uetr.as_uuid().simple().to_string(),
            end_to_end_id: uetr.as_uuid().simple().to_string(),
            uetr,
            amount,
            settlement_date: time::OffsetDateTime::now_utc().date(),
            charge_bearer: ChargeBearer::Shar,
            debtor: debtor_party,
            debtor_agent: bic,
            creditor,
            creditor_agent,
            remittance_information: remittance,
        };
        let message_id = self.queue(&mut state, creditor_agent, Some(uetr), Body::Pacs008(transfer));
        let payment = Payment {
            uetr,
            message_id,
            direction: Direction::Outgoing,
            counterparty: creditor_agent,
            debtor_account: debtor_id.to_string(),
            creditor_account: order.creditor_account.clone(),
            amount,
            status: PaymentStatus::Pdng,
            reason: None,
            detail: "booked and queued for the hub".into(),
        };
        state.put_payment(payment.clone());
        let ticket = state.commit(&self.inner.journal);
        Ok((payment, ticket))
    }

    /// Builds, signs and queues a message for the hub; returns its id.
    pub(super) fn queue(
        &self,
        state: &mut BankState,
        receiver: Bic,
        uetr: Option<Uetr>,
        body: Body,
    ) -> MessageId {
        let message_type = body.message_type();
        let header = Header {
            message_id: MessageId::generate(),
            uetr,
            sender: self.bic(),
            receiver,
            creation_time_unix_ms: super::unix_ms_now(),
            sequence_number: state.cursor.next_sequence_number,
            possible_duplicate: false,
        };
        state.cursor.next_sequence_number += 1;
        let message_id = header.message_id.clone();
        let message = Message::new(header, body).expect("the bank builds consistent messages");
        let envelope = self.inner.credentials.identity().sign(&message);
        let isn = state.cursor.next_isn;
        state.cursor.next_isn += 1;
        state.outbox_put(OutboxEntry {
            isn,
            message_id: message_id.clone(),
            uetr,
            message_type,
            envelope: pb::SignedEnvelope::from(&envelope),
        });
        message_id
    }
}
