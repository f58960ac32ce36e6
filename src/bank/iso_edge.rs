//! ISO 20022 at a bank node's edge: a payment ordered as a pacs.008 document, and a
//! payment's messages given back as XML, so that a bank's own systems can talk to a node
//! in the messages they already speak.
//!
//! A document is read strictly ([`iso20022::read_strict`]): one holding anything Corridor
//! would not carry is refused with the list, never half-sent. It is then an order like
//! any other (the debtor's account must be this bank's customer's, in the right currency,
//! not blocked; the creditor agent another participant), except that it keeps the
//! document's UETR, ids, settlement date, charge bearer and debtor: the UETR is the
//! payment's idempotency key, so the same document submitted twice pays once.

use super::store::KeptMessage;
use super::{Bank, BankError, Payment, PaymentOrder};
use crate::crypto::SignedEnvelope;
use crate::iso20022::{self, XmlError};
use crate::model::*;

/// Path of the transaction in a pacs.008 Document, for errors about its content.
const TRANSACTION_PATH: &str = "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]";

/// One message of a payment, as the bank holds it, written as XML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedMessage {
    /// Its message id.
    pub message_id: MessageId,
    /// Its type.
    pub message_type: MessageType,
    /// True when this bank sent it, false when it received it.
    pub sent: bool,
    /// AppHdr + Document ([`iso20022::write`]), or why it cannot be written (a type
    /// Corridor does not write as XML yet, or a value the schema cannot express).
    pub xml: Result<String, String>,
}

impl From<XmlError> for BankError {
    fn from(error: XmlError) -> Self {
        BankError::Xml(error.to_string())
    }
}

impl Bank {
    /// Starts an outgoing payment given as a pacs.008 document (XML text), after the
    /// checks of any order; answers the payment (with the document's UETR) once durable.
    /// A document whose UETR this bank already paid is answered with that payment again.
    pub async fn submit_xml(&self, document: &[u8]) -> Result<Payment, BankError> {
        let transfer = self.transfer_of_xml(document)?;
        let order = order_of_transfer(&transfer);
        let conversion = match self.payment_known(transfer.uetr)? {
            // A resubmission needs no rate: submit_payment_now answers it as it was.
            true => None,
            false => self.conversion_for(&order).await?,
        };
        if let Some((c, settlement)) = &conversion {
            check_conversion(&transfer, c, *settlement)?;
        }
        let (payment, ticket) =
            self.submit_payment_now(&order, conversion, Some(&transfer)).map_err(in_document)?;
        self.durable(ticket).await?;
        tracing::info!(uetr = %payment.uetr, bank = %self.bic(), receiver = %payment.counterparty, amount = %payment.amount, "payment submitted as pacs.008 XML");
        self.wake_outbox();
        Ok(payment)
    }

    /// The credit transfer of a pacs.008 document that this bank, as debtor agent, may pay.
    fn transfer_of_xml(&self, document: &[u8]) -> Result<CreditTransfer, BankError> {
        let message = iso20022::read_strict(document)?;
        let Body::Pacs008(transfer) = message.body() else {
            return Err(BankError::Xml(format!(
                "/Document: a payment is ordered with a pacs.008, not a {}",
                message.message_type()
            )));
        };
        // The reader checked that the debtor agent is the sender.
        if transfer.debtor_agent != self.bic() {
            return Err(BankError::Refused(format!(
                "{TRANSACTION_PATH}/DbtrAgt/FinInstnId/BICFI: the debtor agent is {}, this bank is {}",
                transfer.debtor_agent,
                self.bic()
            )));
        }
        Ok(transfer.clone())
    }

    /// Whether this bank has a payment under `uetr` (in memory or in its store).
    fn payment_known(&self, uetr: Uetr) -> Result<bool, BankError> {
        match self.payment(&uetr.to_string()) {
            Ok(_) => Ok(true),
            Err(BankError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Payment `uetr` and the messages of it that this bank sent or received, in that order,
    /// each written as XML.
    ///
    /// The messages are read from the store's derived state, so first everything
    /// journalled so far is waited for there: a payment's status is in memory as soon as
    /// it changes, while the message that changed it reaches the derived state a little
    /// after its group commit, and an operator who saw the status must find the message.
    pub async fn export_xml(&self, uetr: &str) -> Result<(Payment, Vec<ExportedMessage>), BankError> {
        let (payment, key) = self.payment_and_key(uetr)?;
        self.applied(self.inner.journal.appended()).await?;
        let kept = self.operator_reader().messages(payment.uetr, key)?;
        let messages = kept.into_iter().map(exported).collect::<Result<_, _>>()?;
        Ok((payment, messages))
    }
}

impl Bank {
    /// A statement of one account ([`Bank::statement`]) as camt.053 XML. It is this
    /// bank's record, so this bank is its sender; its receiver is the hub, which holds
    /// the other side of the settlement account and reconciles against it (an AppHdr
    /// names a BIC, and a customer has none). Creating it sends nothing and consumes no
    /// sequence number (0 in its supplementary data).
    pub fn statement_xml(
        &self,
        account_id: &str,
        currency: &str,
        from_time_unix_ms: i64,
        to_time_unix_ms: i64,
    ) -> Result<String, BankError> {
        // "All time" ends now: an ISO date-time cannot say "forever", and nothing is
        // booked after now.
        let now_unix_ms = self.now_unix_ms();
        let to_time_unix_ms = match to_time_unix_ms {
            i64::MAX => now_unix_ms.saturating_add(1).max(from_time_unix_ms.saturating_add(1)),
            to => to,
        };
        let statement = self.statement(account_id, currency, from_time_unix_ms, to_time_unix_ms)?;
        let header = Header {
            message_id: MessageId::generate(),
            uetr: None,
            sender: self.bic(),
            receiver: self.inner.credentials.directory().hub(),
            creation_time_unix_ms: now_unix_ms,
            sequence_number: 0,
            possible_duplicate: false,
        };
        let message = Message::new(header, Body::Camt053(statement))?;
        Ok(iso20022::write(&message)?)
    }
}

/// A kept message written as XML. The envelope verified (or was signed here) when it was
/// kept; it is decoded from the exact bytes signed.
fn exported(kept: KeptMessage) -> Result<ExportedMessage, BankError> {
    let envelope = SignedEnvelope::try_from(kept.envelope)
        .map_err(|e| BankError::Unavailable(format!("a kept message of {} is unreadable: {e}", kept.uetr)))?;
    let message = wire::decode_message(&envelope.payload)
        .map_err(|e| BankError::Unavailable(format!("a kept message of {} is unreadable: {e}", kept.uetr)))?;
    Ok(ExportedMessage {
        message_id: message.header().message_id.clone(),
        message_type: message.message_type(),
        sent: kept.sent,
        xml: iso20022::write(&message).map_err(|e| e.to_string()),
    })
}

/// An order's refusal, said of the document's element: the order's fields came from it.
fn in_document(error: BankError) -> BankError {
    let (BankError::NotFound(sentence) | BankError::Refused(sentence)) = &error else { return error };
    let elements = [
        ("debtor_account: ", "DbtrAcct/Id"),
        ("creditor_agent_bic: ", "CdtrAgt/FinInstnId/BICFI"),
        ("uetr: ", "PmtId/UETR"),
    ];
    match elements.iter().find(|(field, _)| sentence.starts_with(field)) {
        Some((field, element)) => {
            BankError::Refused(format!("{TRANSACTION_PATH}/{element}: {}", &sentence[field.len()..]))
        }
        None => error,
    }
}

/// The order a document gives: what any order says, from the transfer.
fn order_of_transfer(transfer: &CreditTransfer) -> PaymentOrder {
    let instructed = transfer.instructed_amount();
    let converted = transfer.conversion.as_ref();
    PaymentOrder {
        debtor_account: transfer.debtor.account.clone(),
        creditor_agent: transfer.creditor_agent.to_string(),
        creditor_account: transfer.creditor.account.clone(),
        creditor_name: transfer.creditor.name.clone(),
        amount: format_minor_units(instructed.minor_units(), instructed.currency()),
        currency: instructed.currency().to_string(),
        remittance_information: transfer.remittance_information.clone(),
        settlement_currency: converted.map(|_| transfer.amount.currency().to_string()).unwrap_or_default(),
        quote_id: converted.and_then(|c| c.quote_id.clone()).unwrap_or_default(),
    }
}

/// A converted document must convert as the bank would (its quote, or the hub's
/// agreement in force): the bank does not pay at a rate it was only told.
fn check_conversion(
    transfer: &CreditTransfer,
    bank: &Conversion,
    settlement: Amount,
) -> Result<(), BankError> {
    let document = transfer.conversion.as_ref().expect("a conversion was asked for");
    if document.rate != bank.rate || transfer.amount != settlement {
        return Err(BankError::Refused(format!(
            "{TRANSACTION_PATH}/XchgRate: the document converts {} at {} into {}; this bank converts at {} into {settlement}",
            document.instructed, document.rate, transfer.amount, bank.rate
        )));
    }
    Ok(())
}
