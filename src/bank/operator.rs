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
    /// The creditor agent's currency when it differs from `currency` (empty: the same).
    pub settlement_currency: String,
    /// A quote from [`Bank::get_quote`] for this amount and pair (empty: the agreement in force).
    pub quote_id: String,
}

/// A quote the hub gave this bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteOffer {
    /// Its id.
    pub id: String,
    /// The instructed amount quoted.
    pub instructed: Amount,
    /// What it converts to.
    pub settlement: Amount,
    /// The rate.
    pub rate: Rate,
    /// Honoured before this time (Unix ms).
    pub expires_unix_ms: i64,
}

fn quote_offer(quote: pb::Quote) -> Result<QuoteOffer, String> {
    Ok(QuoteOffer {
        id: quote.quote_id,
        instructed: wire::amount(quote.instructed_amount, "instructed_amount").map_err(|e| e.to_string())?,
        settlement: wire::amount(quote.settlement_amount, "settlement_amount").map_err(|e| e.to_string())?,
        rate: Rate::parse(&quote.exchange_rate).map_err(|e| e.to_string())?,
        expires_unix_ms: quote.expires_unix_ms,
    })
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
        // Zero, however written, opens the account empty (the CLI's default is "0").
        let deposit = match deposit {
            "" => None,
            text => Amount::parse_zero_or_positive(text, currency).map_err(|e| e.at("opening_deposit"))?,
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

    /// A client of the hub's service, with this bank's certificate.
    async fn hub_client(
        &self,
    ) -> Result<crate::pb::hub_service_client::HubServiceClient<tonic::transport::Channel>, BankError> {
        let link = self.inner.hub_link.lock().expect("hub link lock").clone();
        let (network, url) =
            link.ok_or_else(|| BankError::Refused("this bank node is not connected to a hub".into()))?;
        let channel = crate::net::connect(&network, crate::tls::Role::Bank(self.bic()), &url)
            .await
            .map_err(|e| BankError::Unavailable(format!("cannot reach the hub: {e}")))?;
        Ok(crate::pb::hub_service_client::HubServiceClient::new(channel))
    }

    /// Asks the hub for a firm quote converting `amount` of `currency` into
    /// `settlement_currency`; a payment citing it pays at it until it expires.
    pub async fn get_quote(
        &self,
        amount: &str,
        currency: &str,
        settlement_currency: &str,
    ) -> Result<QuoteOffer, BankError> {
        let currency = Currency::parse(currency)?;
        let instructed = Amount::parse(amount, currency)?;
        let to = Currency::parse(settlement_currency).map_err(|e| e.at("settlement_currency"))?;
        let request = pb::QuoteRequest {
            instructed_amount: Some(wire::money_of_amount(&instructed)),
            settlement_currency: to.to_string(),
        };
        let quote = self
            .hub_client()
            .await?
            .get_quote(request)
            .await
            .map_err(|status| BankError::Refused(format!("the hub gives no quote: {}", status.message())))?
            .into_inner();
        let offer = quote_offer(quote)
            .map_err(|e| BankError::Unavailable(format!("the hub's quote is unreadable: {e}")))?;
        let mut quotes = self.inner.quotes.lock().expect("quotes lock");
        // Bounded as at the hub: a quote expired for longer than a quote lasts is
        // forgotten; until then a payment citing it goes out and the hub says it expired.
        let now = self.now_unix_ms();
        let lifetime_ms = offer.expires_unix_ms.saturating_sub(now);
        quotes.retain(|_, q| q.expires_unix_ms.saturating_add(lifetime_ms) > now);
        quotes.insert(offer.id.clone(), offer.clone());
        Ok(offer)
    }

    /// The conversion an order asks for: none in one currency; a cited quote's; or the
    /// rate of the hub's agreement in force for the pair, less its spread.
    pub(crate) async fn conversion_for(
        &self,
        order: &PaymentOrder,
    ) -> Result<Option<(Conversion, Amount)>, BankError> {
        let currency = Currency::parse(&order.currency)?;
        let to = match order.settlement_currency.as_str() {
            "" => currency,
            text => Currency::parse(text).map_err(|e| e.at("settlement_currency"))?,
        };
        if to == currency {
            if !order.quote_id.is_empty() {
                return Err(BankError::Refused(
                    "quote_id: a quote is for a payment in two currencies".into(),
                ));
            }
            return Ok(None);
        }
        let instructed = Amount::parse(&order.amount, currency)?;
        let (rate, quote_id) = if order.quote_id.is_empty() {
            let agreements = self
                .hub_client()
                .await?
                .list_agreements(pb::ListAgreementsRequest {})
                .await
                .map_err(|status| {
                    BankError::Unavailable(format!("cannot read the hub's agreements: {}", status.message()))
                })?
                .into_inner()
                .agreements;
            let pair = format!("{currency}/{to}");
            let now = self.now_unix_ms();
            let agreement = agreements
                .into_iter()
                .find(|a| {
                    a.currency_pair == pair
                        && a.valid_from_unix_ms <= now
                        && (a.valid_until_unix_ms == 0 || now < a.valid_until_unix_ms)
                })
                .ok_or_else(|| {
                    BankError::Refused(format!("the hub has no {pair} rate agreement in force (AM11)"))
                })?;
            let rate = Rate::parse(&agreement.applied_rate)
                .map_err(|e| BankError::Unavailable(format!("the hub's {pair} rate is unreadable: {e}")))?;
            (rate, None)
        } else {
            let quotes = self.inner.quotes.lock().expect("quotes lock");
            let quote = quotes.get(&order.quote_id).ok_or_else(|| {
                BankError::NotFound(format!("quote_id: no quote {} from the hub here", order.quote_id))
            })?;
            if quote.instructed != instructed || quote.settlement.currency() != to {
                return Err(BankError::Refused(format!(
                    "quote_id: quote {} is for {} into {}, not {instructed} into {to}",
                    quote.id,
                    quote.instructed,
                    quote.settlement.currency()
                )));
            }
            (quote.rate, Some(quote.id.clone()))
        };
        let settlement = rate.convert(instructed, to)?;
        Ok(Some((Conversion { instructed, rate, quote_id }, settlement)))
    }

    /// Starts an outgoing payment: validates the order, books debit customer / credit
    /// in-flight, signs the pacs.008 and queues it for the hub. Nothing changes if any
    /// check fails; the answer (with the UETR) comes once all of it is durable. A payment
    /// into another currency first learns its rate (agreement or quote).
    pub async fn submit_payment(&self, order: &PaymentOrder) -> Result<Payment, BankError> {
        let conversion = self.conversion_for(order).await?;
        let (payment, ticket) = self.submit_payment_now(order, conversion, None)?;
        self.durable(ticket).await?;
        tracing::info!(uetr = %payment.uetr, bank = %self.bic(), receiver = %payment.counterparty, amount = %payment.amount, "payment submitted");
        self.wake_outbox();
        Ok(payment)
    }

    /// Takes an order now (validated, booked, signed, queued), without waiting: the
    /// payment may be told to anyone, and sent, only once the ticket is durable.
    ///
    /// An order read from a pacs.008 document (`imported`, see `iso_edge`) keeps the
    /// document's UETR, ids, settlement date, charge bearer and debtor; the UETR is its
    /// idempotency key, so a payment this bank already has under it is answered again
    /// (the same order) or refused (another), and nothing is booked twice.
    pub(crate) fn submit_payment_now(
        &self,
        order: &PaymentOrder,
        conversion: Option<(Conversion, Amount)>,
        imported: Option<&CreditTransfer>,
    ) -> Result<(Payment, Ticket), BankError> {
        let bic = self.bic();
        let creditor_agent = Bic::parse(&order.creditor_agent).map_err(|e| e.at("creditor_agent_bic"))?;
        if creditor_agent == bic || !self.inner.credentials.directory().reaches(creditor_agent) {
            return Err(BankError::Refused(format!(
                "creditor_agent_bic: {creditor_agent} is not another participant of this network or of a network linked to it"
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
        let uetr = imported.map_or_else(Uetr::generate, |t| t.uetr);
        if let Some((c, _)) = &conversion
            && c.instructed != amount
        {
            return Err(BankError::Refused(format!(
                "the conversion is for {}, the order for {amount}",
                c.instructed
            )));
        }
        let mut state = self.state();
        if imported.is_some() && state.load_payment(&self.reader(), uetr)?.is_some() {
            let known = state.payment(&uetr).expect("just loaded").clone();
            let same = known.direction == Direction::Outgoing
                && known.debtor_account == debtor_id.as_str()
                && known.creditor_account == order.creditor_account
                && known.counterparty == creditor_agent
                && known.amount == amount;
            if !same {
                return Err(BankError::Refused(format!("uetr: {uetr} already names another payment here")));
            }
            // Nothing new: the ticket is the last append's, after the payment's own.
            return Ok((known, state.commit(&self.inner.journal)));
        }
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
        let debtor_party = match imported {
            Some(transfer) => transfer.debtor.clone(),
            None => Party::new(&debtor.name, debtor_id.as_str())?,
        };
        // Booking is the last step that may refuse the order; after it, it must be queued.
        ledger_book::book_outgoing(&mut state.ledger, uetr, &debtor_id, amount).map_err(|e| match e {
            LedgerError::FloorBreached { .. } => {
                BankError::Refused(format!("insufficient funds on {debtor_id} (AM04)"))
            }
            other => BankError::Ledger(other),
        })?;
        let settlement_amount = conversion.as_ref().map_or(amount, |(_, settlement)| *settlement);
        let payment_conversion = conversion.as_ref().map(|(c, settlement)| {
            Box::new(super::PaymentConversion { counter_amount: *settlement, rate: c.rate })
        });
        let transfer = CreditTransfer {
            instruction_id: imported
                .map_or_else(|| uetr.as_uuid().simple().to_string(), |t| t.instruction_id.clone()),
            end_to_end_id: imported
                .map_or_else(|| uetr.as_uuid().simple().to_string(), |t| t.end_to_end_id.clone()),
            uetr,
            amount: settlement_amount,
            conversion: conversion.map(|(c, _)| c),
            settlement_date: imported.map_or_else(|| self.today(), |t| t.settlement_date),
            charge_bearer: imported.map_or(ChargeBearer::Shar, |t| t.charge_bearer),
            debtor: debtor_party,
            debtor_agent: bic,
            creditor,
            creditor_agent,
            remittance_information: remittance,
        };
        let quote_id = transfer.conversion.as_ref().and_then(|c| c.quote_id.clone());
        let message_id = self.queue(&mut state, creditor_agent, Some(uetr), Body::Pacs008(transfer));
        if let Some(id) = quote_id {
            // Used once: the hub would refuse a second payment citing it.
            self.inner.quotes.lock().expect("quotes lock").remove(&id);
        }
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
            conversion: payment_conversion,
            return_state: super::ReturnState::None,
            recall: None,
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
        let created_unix_ms = self.now_unix_ms();
        let header = Header {
            message_id: MessageId::generate(),
            uetr,
            sender: self.bic(),
            receiver,
            creation_time_unix_ms: created_unix_ms,
            sequence_number: state.cursor.next_sequence_number,
            possible_duplicate: false,
        };
        state.cursor.next_sequence_number += 1;
        let message_id = header.message_id.clone();
        let message = Message::new(header, body).expect("the bank builds consistent messages");
        // The key usable when the message was created: what the hub and the receiver
        // judge it by.
        let envelope = self.inner.credentials.identity(created_unix_ms).sign(&message);
        let isn = state.cursor.next_isn;
        state.cursor.next_isn += 1;
        let envelope = pb::SignedEnvelope::from(&envelope);
        if let Some(uetr) = uetr {
            state.keep_message(uetr, true, envelope.clone());
        }
        state.outbox_put(OutboxEntry { isn, message_id: message_id.clone(), uetr, message_type, envelope });
        message_id
    }
}
