//! The JSON documents the read commands print with `--json`: one value per command, with
//! field names that are part of the command line's contract (README.md, "Scripting with
//! --json"). Money is carried the way the dashboard's `/api/state` carries it: the integer
//! of minor units under the field's name, the decimal text beside it as `<name>_text`, and
//! the ISO 4217 code once per object (`currency`, or `<name>_currency` where an object holds
//! two currencies). A field that does not apply is `null`, never left out, so the shape of
//! each document is fixed.

use corridor::model::{Currency, format_minor_units};
use corridor::pb;
use serde::Serialize;

/// Prints `value` as one JSON document on stdout.
pub fn print(value: &impl Serialize) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The decimal text of `minor_units` of `currency` ("1234.56"); `None` for a currency this
/// build does not know (the integer still says everything).
fn text(minor_units: i64, currency: &str) -> Option<String> {
    Currency::parse(currency).ok().map(|currency| format_minor_units(minor_units, currency))
}

/// The parts of a `pb::Money`: minor units, decimal text, currency code.
fn parts(money: Option<&pb::Money>) -> (i64, Option<String>, String) {
    let money = money.cloned().unwrap_or_default();
    (money.minor_units, text(money.minor_units, &money.currency), money.currency)
}

/// Empty text as `None`: the wire's "not set" becomes JSON's `null`.
fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// A payment status's ISO code ("ACSC", "RJCT", ...); `None` while there is none.
fn status_code(status: i32) -> Option<String> {
    match pb::PaymentStatus::try_from(status) {
        Ok(pb::PaymentStatus::Unspecified) | Err(_) => None,
        Ok(status) => Some(status.as_str_name().trim_start_matches("PAYMENT_STATUS_").to_owned()),
    }
}

/// A recall's ISO status ("PDCR", "CNCL", "RJCR"); `None` when never recalled.
fn recall_code(status: i32) -> Option<String> {
    match pb::InvestigationStatus::try_from(status) {
        Ok(pb::InvestigationStatus::Unspecified) | Err(_) => None,
        Ok(status) => Some(status.as_str_name().trim_start_matches("INVESTIGATION_STATUS_").to_owned()),
    }
}

/// `status --json`, and each element of `payments --json`: a payment as a bank sees it.
#[derive(Serialize)]
pub struct Payment {
    uetr: String,
    message_id: String,
    /// "outgoing" or "incoming", seen from this bank.
    direction: &'static str,
    counterparty: String,
    debtor_account: String,
    creditor_account: String,
    amount: i64,
    amount_text: Option<String>,
    currency: String,
    status: Option<String>,
    reason_code: Option<String>,
    /// Final at this bank: settled, rejected or returned, nothing more to come.
    #[serde(rename = "final")]
    is_final: bool,
    detail: String,
    /// The other bank's side of a converted payment, and the rate.
    counter_amount: Option<i64>,
    counter_amount_text: Option<String>,
    counter_currency: Option<String>,
    exchange_rate: Option<String>,
    /// "none", "returning" or "returned".
    return_state: &'static str,
    return_reason_code: Option<String>,
    recall_case_id: Option<String>,
    recall_status: Option<String>,
    recall_reason_code: Option<String>,
}

impl From<&pb::Payment> for Payment {
    fn from(p: &pb::Payment) -> Self {
        let (amount, amount_text, currency) = parts(p.amount.as_ref());
        let converted = p.counter_amount.as_ref().filter(|_| !p.exchange_rate.is_empty());
        let incoming = p.direction == pb::PaymentDirection::Incoming as i32;
        Self {
            uetr: p.uetr.clone(),
            message_id: p.message_id.clone(),
            direction: if incoming { "incoming" } else { "outgoing" },
            counterparty: p.counterparty_bic.clone(),
            debtor_account: p.debtor_account.clone(),
            creditor_account: p.creditor_account.clone(),
            amount,
            amount_text,
            currency,
            status: status_code(p.status),
            reason_code: non_empty(&p.reason_code),
            is_final: p.r#final,
            detail: p.detail.clone(),
            counter_amount: converted.map(|m| m.minor_units),
            counter_amount_text: converted.and_then(|m| text(m.minor_units, &m.currency)),
            counter_currency: converted.map(|m| m.currency.clone()),
            exchange_rate: non_empty(&p.exchange_rate),
            return_state: match pb::ReturnState::try_from(p.return_state) {
                Ok(pb::ReturnState::Returning) => "returning",
                Ok(pb::ReturnState::Returned) => "returned",
                _ => "none",
            },
            return_reason_code: non_empty(&p.return_reason_code),
            recall_case_id: non_empty(&p.recall_case_id),
            recall_status: recall_code(p.recall_status),
            recall_reason_code: non_empty(&p.recall_reason_code),
        }
    }
}

/// `payments --json`.
#[derive(Serialize)]
pub struct Payments {
    payments: Vec<Payment>,
}

impl From<&pb::ListPaymentsResponse> for Payments {
    fn from(r: &pb::ListPaymentsResponse) -> Self {
        Self { payments: r.payments.iter().map(Payment::from).collect() }
    }
}

/// One account of `balances --json`.
#[derive(Serialize)]
struct Account {
    id: String,
    /// "customer", "settlement", "in_flight", "suspense" or "cash".
    kind: String,
    name: String,
    balance: i64,
    balance_text: Option<String>,
    currency: String,
    blocked: bool,
}

/// `balances --json`.
#[derive(Serialize)]
pub struct Balances {
    accounts: Vec<Account>,
    ledger_balanced: bool,
}

impl From<&pb::ListAccountsResponse> for Balances {
    fn from(r: &pb::ListAccountsResponse) -> Self {
        let accounts = r
            .accounts
            .iter()
            .map(|a| {
                let (balance, balance_text, currency) = parts(a.balance.as_ref());
                let kind = pb::AccountKind::try_from(a.kind)
                    .map(|k| k.as_str_name().trim_start_matches("ACCOUNT_KIND_").to_ascii_lowercase())
                    .unwrap_or_default();
                Account {
                    id: a.id.clone(),
                    kind,
                    name: a.name.clone(),
                    balance,
                    balance_text,
                    currency,
                    blocked: a.blocked,
                }
            })
            .collect();
        Self { accounts, ledger_balanced: r.ledger_balanced }
    }
}

/// One entry of `statement --json` (and `admin statement --json`).
#[derive(Serialize)]
struct Entry {
    entry_reference: String,
    uetr: String,
    message_id: String,
    /// "CRDT" or "DBIT".
    direction: &'static str,
    amount: i64,
    amount_text: Option<String>,
    booking_time_unix_ms: i64,
}

/// `statement --json` and `admin statement --json`: a camt.053-style statement.
#[derive(Serialize)]
pub struct Statement {
    statement_id: String,
    account: String,
    currency: String,
    from_unix_ms: i64,
    to_unix_ms: i64,
    opening_balance: i64,
    opening_balance_text: Option<String>,
    closing_balance: i64,
    closing_balance_text: Option<String>,
    entries: Vec<Entry>,
}

impl From<&pb::Statement> for Statement {
    fn from(s: &pb::Statement) -> Self {
        let (opening_balance, opening_balance_text, currency) = parts(s.opening_balance.as_ref());
        let (closing_balance, closing_balance_text, _) = parts(s.closing_balance.as_ref());
        let entries = s
            .entries
            .iter()
            .map(|e| {
                let (amount, amount_text, _) = parts(e.amount.as_ref());
                let credit = e.direction == pb::EntryDirection::Crdt as i32;
                Entry {
                    entry_reference: e.entry_reference.clone(),
                    uetr: e.uetr.clone(),
                    message_id: e.message_id.clone(),
                    direction: if credit { "CRDT" } else { "DBIT" },
                    amount,
                    amount_text,
                    booking_time_unix_ms: e.booking_time_unix_ms,
                }
            })
            .collect();
        Self {
            statement_id: s.statement_id.clone(),
            account: s.account.clone(),
            currency,
            from_unix_ms: s.from_time_unix_ms,
            to_unix_ms: s.to_time_unix_ms,
            opening_balance,
            opening_balance_text,
            closing_balance,
            closing_balance_text,
            entries,
        }
    }
}

/// `quote --json`.
#[derive(Serialize)]
pub struct Quote {
    quote_id: String,
    participant: String,
    instructed_amount: i64,
    instructed_amount_text: Option<String>,
    instructed_currency: String,
    settlement_amount: i64,
    settlement_amount_text: Option<String>,
    settlement_currency: String,
    exchange_rate: String,
    expires_unix_ms: i64,
}

impl From<&pb::Quote> for Quote {
    fn from(q: &pb::Quote) -> Self {
        let (instructed_amount, instructed_amount_text, instructed_currency) =
            parts(q.instructed_amount.as_ref());
        let (settlement_amount, settlement_amount_text, settlement_currency) =
            parts(q.settlement_amount.as_ref());
        Self {
            quote_id: q.quote_id.clone(),
            participant: q.participant_bic.clone(),
            instructed_amount,
            instructed_amount_text,
            instructed_currency,
            settlement_amount,
            settlement_amount_text,
            settlement_currency,
            exchange_rate: q.exchange_rate.clone(),
            expires_unix_ms: q.expires_unix_ms,
        }
    }
}

/// The payment of `track --json`: as the hub's journal has it (the names of the
/// dashboard's `/api/payments/{uetr}` where they overlap).
#[derive(Serialize)]
struct HubPayment {
    uetr: String,
    message_id: String,
    sender: String,
    receiver: String,
    /// What the receiver is credited, in its currency.
    amount: i64,
    amount_text: Option<String>,
    currency: String,
    /// What the sender instructed, in its currency (equal to amount when not converted).
    instructed_amount: i64,
    instructed_amount_text: Option<String>,
    instructed_currency: String,
    exchange_rate: Option<String>,
    status: Option<String>,
    reason_code: Option<String>,
    delivered_to_receiver: bool,
    status_delivered_to_sender: bool,
    settled: bool,
    returned: bool,
    return_reason_code: Option<String>,
    return_delivered_to_sender: bool,
    recall_case_id: Option<String>,
    recall_status: Option<String>,
    recall_reason_code: Option<String>,
}

/// One step of `track --json`.
#[derive(Serialize)]
struct TrackStep {
    step: String,
    time_unix_ms: i64,
    by: String,
    detail: String,
}

/// `track --json`: the payment and its steps through the hub, oldest first.
#[derive(Serialize)]
pub struct Track {
    payment: HubPayment,
    steps: Vec<TrackStep>,
}

impl From<&pb::TrackResponse> for Track {
    fn from(r: &pb::TrackResponse) -> Self {
        let p = r.payment.clone().unwrap_or_default();
        let (amount, amount_text, currency) = parts(p.amount.as_ref());
        let (instructed_amount, instructed_amount_text, instructed_currency) =
            parts(p.instructed_amount.as_ref());
        let payment = HubPayment {
            uetr: p.uetr,
            message_id: p.message_id,
            sender: p.sender_bic,
            receiver: p.receiver_bic,
            amount,
            amount_text,
            currency,
            instructed_amount,
            instructed_amount_text,
            instructed_currency,
            exchange_rate: non_empty(&p.exchange_rate),
            status: status_code(p.status),
            reason_code: non_empty(&p.reason_code),
            delivered_to_receiver: p.delivered_to_receiver,
            status_delivered_to_sender: p.status_delivered_to_sender,
            settled: p.settled,
            returned: p.returned,
            return_reason_code: non_empty(&p.return_reason_code),
            return_delivered_to_sender: p.return_delivered_to_sender,
            recall_case_id: non_empty(&p.recall_case_id),
            recall_status: recall_code(p.recall_status),
            recall_reason_code: non_empty(&p.recall_reason_code),
        };
        let steps = r
            .steps
            .iter()
            .map(|s| TrackStep {
                step: s.step.clone(),
                time_unix_ms: s.time_unix_ms,
                by: s.by_bic.clone(),
                detail: s.detail.clone(),
            })
            .collect();
        Self { payment, steps }
    }
}

/// "gross" or "deferred-net", as `hub --settlement` spells them.
fn model_name(model: i32) -> &'static str {
    match pb::SettlementModel::try_from(model) {
        Ok(pb::SettlementModel::DeferredNet) => "deferred-net",
        _ => "gross",
    }
}

/// A position in `admin positions --json`: the names and shape of the dashboard's
/// `/api/state` positions, with the text of every amount. A suspended participant
/// without any position is listed once with `currency` null and zero amounts.
#[derive(Serialize)]
struct Position {
    participant: String,
    currency: Option<String>,
    liquidity: i64,
    liquidity_text: Option<String>,
    net_debit_cap: i64,
    net_debit_cap_text: Option<String>,
    reserved: i64,
    reserved_text: Option<String>,
    window_net: i64,
    window_net_text: Option<String>,
    available: i64,
    available_text: Option<String>,
    settled_net: i64,
    settled_net_text: Option<String>,
    suspended: bool,
}

impl From<&pb::Position> for Position {
    fn from(p: &pb::Position) -> Self {
        let text = |minor_units: i64| text(minor_units, &p.currency);
        Self {
            participant: p.participant_bic.clone(),
            currency: non_empty(&p.currency),
            liquidity: p.liquidity,
            liquidity_text: text(p.liquidity),
            net_debit_cap: p.net_debit_cap,
            net_debit_cap_text: text(p.net_debit_cap),
            reserved: p.reserved,
            reserved_text: text(p.reserved),
            window_net: p.window_net,
            window_net_text: text(p.window_net),
            available: p.available,
            available_text: text(p.available),
            settled_net: p.settled_net,
            settled_net_text: text(p.settled_net),
            suspended: p.suspended,
        }
    }
}

/// An agreement's FX account in one currency (`fx_positions`, a report's `fx_lines`).
#[derive(Serialize)]
struct FxPosition {
    pair: String,
    currency: String,
    settled_net: i64,
    settled_net_text: Option<String>,
}

impl From<&pb::FxPosition> for FxPosition {
    fn from(f: &pb::FxPosition) -> Self {
        Self {
            pair: f.currency_pair.clone(),
            currency: f.currency.clone(),
            settled_net: f.settled_net,
            settled_net_text: text(f.settled_net, &f.currency),
        }
    }
}

/// `admin positions --json`.
#[derive(Serialize)]
pub struct Positions {
    settlement_model: &'static str,
    open_window_id: u64,
    positions: Vec<Position>,
    fx_positions: Vec<FxPosition>,
}

impl From<&pb::ListPositionsResponse> for Positions {
    fn from(r: &pb::ListPositionsResponse) -> Self {
        Self {
            settlement_model: model_name(r.model),
            open_window_id: r.open_window_id,
            positions: r.positions.iter().map(Position::from).collect(),
            fx_positions: r.fx_positions.iter().map(FxPosition::from).collect(),
        }
    }
}

/// One participant in one currency over a window.
#[derive(Serialize)]
struct ReportLine {
    participant: String,
    currency: String,
    sent: i64,
    sent_text: Option<String>,
    received: i64,
    received_text: Option<String>,
    net: i64,
    net_text: Option<String>,
}

/// One currency over a window.
#[derive(Serialize)]
struct ReportTotal {
    currency: String,
    payments: u64,
    gross: i64,
    gross_text: Option<String>,
    net: i64,
    net_text: Option<String>,
    saved: i64,
    saved_text: Option<String>,
}

/// One closed settlement window.
#[derive(Serialize)]
struct Report {
    window_id: u64,
    opened_unix_ms: i64,
    closed_unix_ms: i64,
    lines: Vec<ReportLine>,
    fx_lines: Vec<FxPosition>,
    totals: Vec<ReportTotal>,
}

impl From<&pb::SettlementReport> for Report {
    fn from(r: &pb::SettlementReport) -> Self {
        let lines = r
            .lines
            .iter()
            .map(|l| ReportLine {
                participant: l.participant_bic.clone(),
                currency: l.currency.clone(),
                sent: l.sent,
                sent_text: text(l.sent, &l.currency),
                received: l.received,
                received_text: text(l.received, &l.currency),
                net: l.net,
                net_text: text(l.net, &l.currency),
            })
            .collect();
        let totals = r
            .totals
            .iter()
            .map(|t| ReportTotal {
                currency: t.currency.clone(),
                payments: t.payments,
                gross: t.gross,
                gross_text: text(t.gross, &t.currency),
                net: t.net,
                net_text: text(t.net, &t.currency),
                saved: t.saved,
                saved_text: text(t.saved, &t.currency),
            })
            .collect();
        Self {
            window_id: r.window_id,
            opened_unix_ms: r.opened_unix_ms,
            closed_unix_ms: r.closed_unix_ms,
            lines,
            fx_lines: r.fx_lines.iter().map(FxPosition::from).collect(),
            totals,
        }
    }
}

/// `admin reports --json`: every closed window, oldest first.
#[derive(Serialize)]
pub struct Reports {
    settlement_model: &'static str,
    reports: Vec<Report>,
}

impl From<&pb::ListSettlementReportsResponse> for Reports {
    fn from(r: &pb::ListSettlementReportsResponse) -> Self {
        Self { settlement_model: model_name(r.model), reports: r.reports.iter().map(Report::from).collect() }
    }
}

/// One rate agreement of `admin agreements --json`.
#[derive(Serialize)]
struct Agreement {
    pair: String,
    rate: String,
    spread_bps: u32,
    applied_rate: String,
    valid_from_unix_ms: i64,
    /// `null` for an agreement without end.
    valid_until_unix_ms: Option<i64>,
    /// "in_force", "not_yet" or "expired", at the time of the command.
    state: &'static str,
}

/// `admin agreements --json`.
#[derive(Serialize)]
pub struct Agreements {
    agreements: Vec<Agreement>,
}

impl Agreements {
    /// The agreements, each said to be in force or not at `now_unix_ms`.
    pub fn at(agreements: &[pb::RateAgreement], now_unix_ms: i64) -> Self {
        let agreements = agreements
            .iter()
            .map(|a| Agreement {
                pair: a.currency_pair.clone(),
                rate: a.rate.clone(),
                spread_bps: a.spread_bps,
                applied_rate: a.applied_rate.clone(),
                valid_from_unix_ms: a.valid_from_unix_ms,
                valid_until_unix_ms: (a.valid_until_unix_ms != 0).then_some(a.valid_until_unix_ms),
                state: match agreement_state(a, now_unix_ms) {
                    AgreementState::NotYet => "not_yet",
                    AgreementState::Expired => "expired",
                    AgreementState::InForce => "in_force",
                },
            })
            .collect();
        Self { agreements }
    }
}

/// Whether an agreement is in force at a time.
pub enum AgreementState {
    NotYet,
    InForce,
    Expired,
}

/// Where `now_unix_ms` falls in the agreement's `[valid_from, valid_until)`.
pub fn agreement_state(a: &pb::RateAgreement, now_unix_ms: i64) -> AgreementState {
    let until = a.valid_until_unix_ms;
    if now_unix_ms < a.valid_from_unix_ms {
        AgreementState::NotYet
    } else if until != 0 && now_unix_ms >= until {
        AgreementState::Expired
    } else {
        AgreementState::InForce
    }
}
