//! `corridor demo --scenario FILE`: a network described in a TOML file (banks,
//! currencies, balances, caps, a payment workload, faults) run from start to end and
//! reconciled, so that a teacher can prepare a lesson. Shipped scenarios are in
//! `scenarios/`; `scenarios/README.md` documents every field.
//!
//! Loading checks the whole file before anything starts: a bad field is refused with one
//! line that names it. The workload is expanded into a timeline of payments at load time
//! (from the file's seed), so that the same file sends the same payments every run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

mod cases;

use super::demo::{CaseLine, Rejection, RunningDashboard, serve_dashboard_on, start_dashboard};
use super::{LocalNetwork, Rng};
use crate::hub::{HubConfig, SettlementModel};
use crate::ledger::AccountId;
use crate::model::{
    Amount, BASE_ONE_RATE_DECIMALS, BASE_ONE_RATE_DIGITS, Bic, Currency, CurrencyPair, Rate, ReasonCode,
    SPREAD_BPS_MAX, format_minor_units,
};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::reconcile::Report;
use crate::reconcile::sources::reconcile_live;

/// Most banks in one scenario.
pub const BANKS_MAX: usize = 8;
/// Most customers of one bank.
pub const CUSTOMERS_MAX: usize = 20;
/// Most payments one scenario sends (workload and listed payments together).
pub const PAYMENTS_MAX: usize = 5_000;
/// Most events (faults and operator actions).
pub const EVENTS_MAX: usize = 100;
/// Every time in a scenario is within this many seconds of its start.
pub const RUN_SECONDS_MAX: f64 = 120.0;
/// Fastest workload, in payments per second.
pub const RATE_PER_S_MAX: u32 = 1_000;
/// How long the end of a run waits for every payment to be final, and for the
/// reconciler to see nothing in transit.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The reason of an order refused because its bank was offline.
pub const OFFLINE: &str = "offline";
/// The kinds of return and recall case, as the summary and `expect.cases` name them.
pub const CASE_KINDS: [&str; 3] = ["return", "recall accepted", "recall refused"];
/// How long an order is retried while its bank cannot reach the hub (during a hub restart).
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The file, as written. Every table refuses fields it does not know.
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "gross")]
    settlement: String,
    #[serde(default)]
    seed: u64,
    #[serde(rename = "bank")]
    banks: Vec<BankFile>,
    #[serde(default, rename = "agreement")]
    agreements: Vec<AgreementFile>,
    #[serde(default)]
    workload: Option<WorkloadFile>,
    #[serde(default, rename = "payment")]
    payments: Vec<PaymentFile>,
    #[serde(default, rename = "event")]
    events: Vec<EventFile>,
    #[serde(default)]
    expect: ExpectFile,
}

fn gross() -> String {
    SettlementModel::Gross.name().into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankFile {
    bic: String,
    #[serde(default)]
    country: String,
    currency: String,
    liquidity: String,
    #[serde(default)]
    net_debit_cap: Option<String>,
    customers: Vec<CustomerFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerFile {
    account: String,
    #[serde(default)]
    name: Option<String>,
    balance: String,
    #[serde(default)]
    blocked: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgreementFile {
    pair: String,
    rate: String,
    #[serde(default)]
    spread_bps: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    payments: usize,
    rate_per_s: u32,
    #[serde(default)]
    start_s: f64,
    amount_min_pct: u32,
    amount_max_pct: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentFile {
    at_s: f64,
    from: String,
    from_account: String,
    to: String,
    to_account: String,
    amount: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum EventFile {
    BankOffline { bank: String, at_s: f64, for_s: f64 },
    Suspend { bank: String, at_s: f64, for_s: f64 },
    HubRestart { at_s: f64 },
    Fund { bank: String, amount: String, at_s: f64 },
    NetDebitCap { bank: String, cap: String, at_s: f64 },
    CloseWindow { at_s: f64 },
    Return { payment: usize, at_s: f64, reason: String },
    Recall { payment: usize, at_s: f64, reason: String, answer: String, answer_reason: Option<String> },
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    #[serde(default)]
    reason_codes: Vec<String>,
    #[serde(default)]
    settled_min: usize,
    #[serde(default)]
    cases: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// The checked scenario.
// ---------------------------------------------------------------------------------------

/// One bank of a scenario.
#[derive(Clone, Debug)]
struct BankPlan {
    bic: Bic,
    country: String,
    currency: Currency,
    liquidity: i64,
    net_debit_cap: i64,
    /// (account, name, opening balance in minor units, blocked)
    customers: Vec<(String, String, i64, bool)>,
}

#[derive(Clone, Debug)]
struct AgreementPlan {
    pair: CurrencyPair,
    rate: String,
    spread_bps: u32,
}

/// One payment of the timeline.
#[derive(Clone, Debug)]
struct PaymentPlan {
    at_ms: u64,
    from: usize,
    debtor: String,
    to: usize,
    creditor: String,
    minor_units: i64,
    /// Listed in the file (told one by one) rather than from the workload.
    note: Option<String>,
    /// Its place among the file's `[[payment]]` tables, for the events that name it.
    listed: Option<usize>,
}

#[derive(Clone, Debug)]
enum EventKind {
    BankOffline {
        bank: usize,
        for_ms: u64,
    },
    Suspend {
        bank: usize,
        for_ms: u64,
    },
    HubRestart,
    Fund {
        bank: usize,
        minor_units: i64,
    },
    NetDebitCap {
        bank: usize,
        minor_units: i64,
    },
    CloseWindow,
    /// The beneficiary's bank returns the listed payment `payment` (a pacs.004).
    Return {
        payment: usize,
        reason: ReasonCode,
    },
    /// The sender's bank recalls the listed payment `payment` (a camt.056); the
    /// beneficiary's bank accepts (`refusal` none) or refuses with `refusal` (a camt.029).
    Recall {
        payment: usize,
        reason: ReasonCode,
        refusal: Option<ReasonCode>,
    },
}

#[derive(Clone, Debug)]
struct EventPlan {
    at_ms: u64,
    kind: EventKind,
}

/// A described network and what happens to it.
#[derive(Clone, Debug)]
pub struct Scenario {
    name: String,
    description: String,
    settlement: SettlementModel,
    seed: u64,
    banks: Vec<BankPlan>,
    agreements: Vec<AgreementPlan>,
    payments: Vec<PaymentPlan>,
    events: Vec<EventPlan>,
    expect_reason_codes: Vec<String>,
    expect_settled_min: usize,
    /// Kinds of case ([`CASE_KINDS`]) that must each be carried through once.
    expect_cases: Vec<String>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks the text of a scenario file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        check(file)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its description, for the teacher and the students.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Its banks, each with the currency it holds.
    pub fn bank_currencies(&self) -> Vec<(Bic, Currency)> {
        self.banks.iter().map(|b| (b.bic, b.currency)).collect()
    }

    /// Payments it sends (workload and listed).
    pub fn payment_count(&self) -> usize {
        self.payments.len()
    }

    /// Kinds of events it has (`bank_offline`, `hub_restart`, ...), each once.
    pub fn event_kinds(&self) -> BTreeSet<&'static str> {
        self.events.iter().map(|e| e.kind.name()).collect()
    }
}

impl EventKind {
    fn name(&self) -> &'static str {
        match self {
            Self::BankOffline { .. } => "bank_offline",
            Self::Suspend { .. } => "suspend",
            Self::HubRestart => "hub_restart",
            Self::Fund { .. } => "fund",
            Self::NetDebitCap { .. } => "net_debit_cap",
            Self::CloseWindow => "close_window",
            Self::Return { .. } => "return",
            Self::Recall { .. } => "recall",
        }
    }
}

/// A TOML error on one line: where it is and what is wrong.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// Decimal text of money in `currency`, zero allowed: minor units.
fn money(text: &str, currency: Currency, field: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b == b'0' || b == b'.') && text.starts_with('0') {
        return Ok(0);
    }
    Amount::parse(text, currency).map(|a| a.minor_units()).map_err(|e| format!("{field}: {}", e.rule))
}

/// Seconds from the start, checked: milliseconds.
fn seconds(value: f64, field: &str) -> Result<u64, String> {
    if !value.is_finite() || !(0.0..=RUN_SECONDS_MAX).contains(&value) {
        return Err(format!("{field}: must be between 0 and {RUN_SECONDS_MAX} seconds (got {value})"));
    }
    Ok((value * 1000.0).round() as u64)
}

fn check(file: ScenarioFile) -> Result<Scenario, String> {
    if file.name.trim().is_empty() {
        return Err("name: must not be empty".into());
    }
    let settlement = SettlementModel::parse(&file.settlement).map_err(|_| {
        format!("settlement: must be \"gross\" or \"deferred-net\" (got {:?})", file.settlement)
    })?;
    let banks = check_banks(&file.banks)?;
    let agreements = check_agreements(&file.agreements, &banks)?;
    let mut payments = check_payments(&file.payments, &banks)?;
    let events = check_events(&file.events, &banks, &payments, settlement)?;
    if let Some(workload) = &file.workload {
        payments.extend(expand_workload(workload, &banks, &events, file.seed)?);
    }
    if payments.is_empty() {
        return Err("a scenario needs payments: a [workload] or at least one [[payment]]".into());
    }
    if payments.len() > PAYMENTS_MAX {
        return Err(format!("at most {PAYMENTS_MAX} payments (workload and [[payment]] together)"));
    }
    payments.sort_by_key(|p| p.at_ms);
    let mut expect_reason_codes = Vec::new();
    for (n, code) in file.expect.reason_codes.iter().enumerate() {
        if code != OFFLINE && crate::model::ReasonCode::parse(code).is_err() {
            return Err(format!(
                "expect.reason_codes[{n}]: {code:?} is neither an ISO reason code Corridor uses nor \"{OFFLINE}\""
            ));
        }
        expect_reason_codes.push(code.clone());
    }
    for (n, kind) in file.expect.cases.iter().enumerate() {
        if !CASE_KINDS.contains(&kind.as_str()) {
            return Err(format!("expect.cases[{n}]: {kind:?} is none of {CASE_KINDS:?}"));
        }
    }
    // A currency pair without an agreement refuses every payment across it (AM11): only
    // where the lesson says it expects that.
    if !expect_reason_codes.iter().any(|c| c == "AM11") {
        let agreed: BTreeSet<(Currency, Currency)> =
            agreements.iter().map(|a| (a.pair.from, a.pair.to)).collect();
        for p in &payments {
            let (from, to) = (banks[p.from].currency, banks[p.to].currency);
            if from != to && !agreed.contains(&(from, to)) {
                return Err(format!(
                    "payments from {} to {} need an [[agreement]] with pair = \"{from}/{to}\" (or add \"AM11\" to \
                     expect.reason_codes if the lesson is that they are refused)",
                    banks[p.from].bic, banks[p.to].bic
                ));
            }
        }
    }
    Ok(Scenario {
        name: file.name,
        description: file.description.trim().to_owned(),
        settlement,
        seed: file.seed,
        banks,
        agreements,
        payments,
        events,
        expect_reason_codes,
        expect_settled_min: file.expect.settled_min,
        expect_cases: file.expect.cases,
    })
}

fn check_banks(files: &[BankFile]) -> Result<Vec<BankPlan>, String> {
    if !(2..=BANKS_MAX).contains(&files.len()) {
        return Err(format!("a scenario has 2 to {BANKS_MAX} [[bank]] tables (got {})", files.len()));
    }
    let mut banks: Vec<BankPlan> = Vec::new();
    for (n, bank) in files.iter().enumerate() {
        let at = format!("bank[{n}]");
        let bic = Bic::parse(&bank.bic).map_err(|e| format!("{at}.bic: {}", e.rule))?;
        if banks.iter().any(|b| b.bic == bic) {
            return Err(format!("{at}.bic: {bic} appears twice"));
        }
        let at = format!("bank {bic}");
        let currency = Currency::parse(&bank.currency).map_err(|e| format!("{at}.currency: {}", e.rule))?;
        let liquidity = money(&bank.liquidity, currency, &format!("{at}.liquidity"))?;
        let cap = bank.net_debit_cap.as_deref().unwrap_or("0");
        let net_debit_cap = money(cap, currency, &format!("{at}.net_debit_cap"))?;
        if !(1..=CUSTOMERS_MAX).contains(&bank.customers.len()) {
            return Err(format!(
                "{at}.customers: 1 to {CUSTOMERS_MAX} customers (got {})",
                bank.customers.len()
            ));
        }
        let mut customers: Vec<(String, String, i64, bool)> = Vec::new();
        for (c, customer) in bank.customers.iter().enumerate() {
            let field = format!("{at}.customers[{c}]");
            let account =
                AccountId::parse(&customer.account).map_err(|e| format!("{field}.account: {}", e.rule))?;
            if customers.iter().any(|(a, ..)| a == account.as_str()) {
                return Err(format!("{field}.account: {account} appears twice"));
            }
            let balance = money(&customer.balance, currency, &format!("{field}.balance"))?;
            let name = customer.name.clone().unwrap_or_else(|| format!("Customer {account}"));
            customers.push((account.as_str().to_owned(), name, balance, customer.blocked));
        }
        banks.push(BankPlan {
            bic,
            country: bank.country.clone(),
            currency,
            liquidity,
            net_debit_cap,
            customers,
        });
    }
    Ok(banks)
}

fn check_agreements(files: &[AgreementFile], banks: &[BankPlan]) -> Result<Vec<AgreementPlan>, String> {
    let held: BTreeSet<Currency> = banks.iter().map(|b| b.currency).collect();
    let mut agreements: Vec<AgreementPlan> = Vec::new();
    for (n, agreement) in files.iter().enumerate() {
        let at = format!("agreement[{n}]");
        let pair = CurrencyPair::parse(&agreement.pair).map_err(|e| format!("{at}.pair: {}", e.rule))?;
        for currency in [pair.from, pair.to] {
            if !held.contains(&currency) {
                return Err(format!("{at}.pair: no [[bank]] holds {currency}"));
            }
        }
        if agreements.iter().any(|a| a.pair == pair) {
            return Err(format!("{at}.pair: {pair} appears twice (one agreement per direction)"));
        }
        let rate = Rate::parse(&agreement.rate).map_err(|e| format!("{at}.rate: {}", e.rule))?;
        if agreement.spread_bps > SPREAD_BPS_MAX {
            return Err(format!("{at}.spread_bps: at most {SPREAD_BPS_MAX} (got {})", agreement.spread_bps));
        }
        check_writable_rate(&at, rate, agreement.spread_bps)?;
        agreements.push(AgreementPlan {
            pair,
            rate: agreement.rate.clone(),
            spread_bps: agreement.spread_bps,
        });
    }
    Ok(agreements)
}

/// Refuses an agreement whose applied rate (`rate` less the spread) ISO 20022's
/// `XchgRate` cannot hold: a payment under it could never be written as XML (issue 20),
/// and the writer refuses rather than rounds.
fn check_writable_rate(at: &str, rate: Rate, spread_bps: u32) -> Result<(), String> {
    let applied = rate.less_spread(spread_bps).map_err(|e| format!("{at}.{}: {}", e.field, e.rule))?;
    if applied.fits_base_one_rate() {
        return Ok(());
    }
    Err(format!(
        "{at}.rate: {rate} less {spread_bps} bp applies {applied}, more digits than ISO 20022's XchgRate holds \
         ({BASE_ONE_RATE_DIGITS}, {BASE_ONE_RATE_DECIMALS} after the point); use fewer decimals"
    ))
}

fn bank_index(banks: &[BankPlan], bic: &str, field: &str) -> Result<usize, String> {
    banks
        .iter()
        .position(|b| b.bic.as_str() == bic)
        .ok_or_else(|| format!("{field}: {bic:?} is not the bic of a [[bank]] of this scenario"))
}

fn check_events(
    files: &[EventFile],
    banks: &[BankPlan],
    listed: &[PaymentPlan],
    settlement: SettlementModel,
) -> Result<Vec<EventPlan>, String> {
    if files.len() > EVENTS_MAX {
        return Err(format!("at most {EVENTS_MAX} [[event]] tables"));
    }
    let mut events: Vec<EventPlan> = Vec::new();
    for (n, event) in files.iter().enumerate() {
        let at = format!("event[{n}]");
        let field = |name: &str| format!("{at}.{name}");
        let time = |value: f64| seconds(value, &field("at_s"));
        let duration = |at_s: f64, for_s: f64| -> Result<u64, String> {
            if for_s.is_nan() || for_s <= 0.0 {
                return Err(format!("{}: must be more than 0 seconds (got {for_s})", field("for_s")));
            }
            let start = seconds(at_s, &field("at_s"))?;
            Ok(seconds(at_s + for_s, &format!("{} + for_s", field("at_s")))? - start)
        };
        let plan = match event {
            EventFile::BankOffline { bank, at_s, for_s } => EventPlan {
                at_ms: time(*at_s)?,
                kind: EventKind::BankOffline {
                    bank: bank_index(banks, bank, &field("bank"))?,
                    for_ms: duration(*at_s, *for_s)?,
                },
            },
            EventFile::Suspend { bank, at_s, for_s } => EventPlan {
                at_ms: time(*at_s)?,
                kind: EventKind::Suspend {
                    bank: bank_index(banks, bank, &field("bank"))?,
                    for_ms: duration(*at_s, *for_s)?,
                },
            },
            EventFile::HubRestart { at_s } => EventPlan { at_ms: time(*at_s)?, kind: EventKind::HubRestart },
            EventFile::Fund { bank, amount, at_s } => {
                let bank = bank_index(banks, bank, &field("bank"))?;
                let minor_units = money(amount, banks[bank].currency, &field("amount"))?;
                if minor_units == 0 {
                    return Err(format!("{}: must be more than 0", field("amount")));
                }
                EventPlan { at_ms: time(*at_s)?, kind: EventKind::Fund { bank, minor_units } }
            }
            EventFile::NetDebitCap { bank, cap, at_s } => {
                let bank = bank_index(banks, bank, &field("bank"))?;
                let minor_units = money(cap, banks[bank].currency, &field("cap"))?;
                EventPlan { at_ms: time(*at_s)?, kind: EventKind::NetDebitCap { bank, minor_units } }
            }
            EventFile::CloseWindow { at_s } => {
                if settlement != SettlementModel::DeferredNet {
                    return Err(format!(
                        "{at}: close_window needs settlement = \"deferred-net\" (a gross hub has no windows)"
                    ));
                }
                EventPlan { at_ms: time(*at_s)?, kind: EventKind::CloseWindow }
            }
            EventFile::Return { .. } | EventFile::Recall { .. } => case_event(event, &field)?,
        };
        check_case(&plan, &at, banks, listed, &events)?;
        if let Some((bank, start, end)) = offline_window(&plan)
            && events.iter().filter_map(offline_window).any(|(b, s, e)| b == bank && s < end && start < e)
        {
            return Err(format!("{at}: {} is already offline then", banks[bank].bic));
        }
        events.push(plan);
    }
    check_cases_online(&events, banks, listed)?;
    Ok(events)
}

/// A return or a recall, its fields checked (what it refers to is checked in
/// [`check_case`]).
fn case_event(event: &EventFile, field: &dyn Fn(&str) -> String) -> Result<EventPlan, String> {
    let (payment, at_s, reason, answer) = match event {
        EventFile::Return { payment, at_s, reason } => (*payment, *at_s, reason, None),
        EventFile::Recall { payment, at_s, reason, answer, answer_reason } => {
            (*payment, *at_s, reason, Some((answer, answer_reason.as_deref())))
        }
        _ => unreachable!("only returns and recalls are cases"),
    };
    let at_ms = seconds(at_s, &field("at_s"))?;
    let reason = case_reason(reason, &field("reason"))?;
    let kind = match answer {
        None => EventKind::Return { payment, reason },
        Some((answer, answer_reason)) => {
            let refusal = recall_answer(answer, answer_reason, field)?;
            EventKind::Recall { payment, reason, refusal }
        }
    };
    Ok(EventPlan { at_ms, kind })
}

/// An ISO reason code of a return or a recall.
fn case_reason(text: &str, field: &str) -> Result<ReasonCode, String> {
    ReasonCode::parse(text).map_err(|e| format!("{field}: {}", e.rule))
}

/// A recall's answer: accepted (none), or refused with its reason.
fn recall_answer(
    answer: &str,
    answer_reason: Option<&str>,
    field: &dyn Fn(&str) -> String,
) -> Result<Option<ReasonCode>, String> {
    match (answer, answer_reason) {
        ("accept", None) => Ok(None),
        ("accept", Some(_)) => Err(format!("{}: only a refusal has a reason", field("answer_reason"))),
        ("refuse", Some(text)) => case_reason(text, &field("answer_reason")).map(Some),
        ("refuse", None) => {
            Err(format!("{}: a refusal needs its reason (for example \"NOAS\")", field("answer_reason")))
        }
        (other, _) => Err(format!("{}: \"accept\" or \"refuse\" (got {other:?})", field("answer"))),
    }
}

/// A return or a recall names a listed payment that can settle, comes after it, at most
/// once per payment, while both banks are online (their operators act).
fn check_case(
    plan: &EventPlan,
    at: &str,
    banks: &[BankPlan],
    listed: &[PaymentPlan],
    earlier: &[EventPlan],
) -> Result<(), String> {
    let (EventKind::Return { payment, .. } | EventKind::Recall { payment, .. }) = plan.kind else {
        return Ok(());
    };
    let field = format!("{at}.payment");
    let Some(paid) = listed.iter().find(|p| p.listed == Some(payment)) else {
        return Err(format!("{field}: there is no payment[{payment}] (the file lists {})", listed.len()));
    };
    let receiver = &banks[paid.to];
    if !receiver.customers.iter().any(|(account, .., blocked)| *account == paid.creditor && !blocked) {
        return Err(format!(
            "{field}: payment[{payment}] goes to {} {}, which is not an open customer there: it is rejected, so \
             there is nothing to return or recall",
            receiver.bic, paid.creditor
        ));
    }
    if plan.at_ms <= paid.at_ms {
        return Err(format!(
            "{at}.at_s: must come after payment[{payment}] (at {} s)",
            paid.at_ms as f64 / 1000.0
        ));
    }
    let same = |e: &&EventPlan| matches!(e.kind, EventKind::Return { payment: p, .. } | EventKind::Recall { payment: p, .. } if p == payment);
    if earlier.iter().any(|e| same(&e)) {
        return Err(format!("{field}: payment[{payment}] already has a return or a recall"));
    }
    Ok(())
}

/// The banks of a return or a recall are online when it starts: their operators act.
fn check_cases_online(
    events: &[EventPlan],
    banks: &[BankPlan],
    listed: &[PaymentPlan],
) -> Result<(), String> {
    for (n, event) in events.iter().enumerate() {
        let (EventKind::Return { payment, .. } | EventKind::Recall { payment, .. }) = event.kind else {
            continue;
        };
        let paid = listed.iter().find(|p| p.listed == Some(payment)).expect("checked with the event");
        for bank in [paid.from, paid.to] {
            let offline = events.iter().filter_map(offline_window);
            if offline.filter(|(b, ..)| *b == bank).any(|(_, s, e)| (s..e).contains(&event.at_ms)) {
                return Err(format!(
                    "event[{n}].at_s: {} is offline then, and its operators act in this case",
                    banks[bank].bic
                ));
            }
        }
    }
    Ok(())
}

/// The bank an event takes offline, and when: `[start, end)` in milliseconds.
fn offline_window(event: &EventPlan) -> Option<(usize, u64, u64)> {
    match event.kind {
        EventKind::BankOffline { bank, for_ms } => Some((bank, event.at_ms, event.at_ms + for_ms)),
        _ => None,
    }
}

fn check_payments(files: &[PaymentFile], banks: &[BankPlan]) -> Result<Vec<PaymentPlan>, String> {
    let mut payments = Vec::new();
    for (n, payment) in files.iter().enumerate() {
        let at = format!("payment[{n}]");
        let from = bank_index(banks, &payment.from, &format!("{at}.from"))?;
        let to = bank_index(banks, &payment.to, &format!("{at}.to"))?;
        if from == to {
            return Err(format!("{at}.to: a payment goes to another bank"));
        }
        if !banks[from].customers.iter().any(|(a, ..)| *a == payment.from_account) {
            return Err(format!(
                "{at}.from_account: {} has no customer {:?}",
                banks[from].bic, payment.from_account
            ));
        }
        // The creditor's account may be unknown on purpose: its bank then answers RJCT AC01.
        AccountId::parse(&payment.to_account).map_err(|e| format!("{at}.to_account: {}", e.rule))?;
        let minor_units = money(&payment.amount, banks[from].currency, &format!("{at}.amount"))?;
        if minor_units == 0 {
            return Err(format!("{at}.amount: must be more than 0"));
        }
        let note = if payment.note.is_empty() { "listed payment".to_owned() } else { payment.note.clone() };
        payments.push(PaymentPlan {
            at_ms: seconds(payment.at_s, &format!("{at}.at_s"))?,
            from,
            debtor: payment.from_account.clone(),
            to,
            creditor: payment.to_account.clone(),
            minor_units,
            note: Some(note),
            listed: Some(n),
        });
    }
    Ok(payments)
}

/// The workload as a timeline: payers are banks that are online then (an offline bank's
/// operators cannot reach it), receivers any other bank (offline ones get theirs later).
fn expand_workload(
    workload: &WorkloadFile,
    banks: &[BankPlan],
    events: &[EventPlan],
    seed: u64,
) -> Result<Vec<PaymentPlan>, String> {
    if !(1..=PAYMENTS_MAX).contains(&workload.payments) {
        return Err(format!("workload.payments: 1 to {PAYMENTS_MAX} (got {})", workload.payments));
    }
    if !(1..=RATE_PER_S_MAX).contains(&workload.rate_per_s) {
        return Err(format!("workload.rate_per_s: 1 to {RATE_PER_S_MAX} (got {})", workload.rate_per_s));
    }
    let (min, max) = (workload.amount_min_pct, workload.amount_max_pct);
    if !(1..=100).contains(&min) || !(min..=100).contains(&max) {
        return Err(format!(
            "workload.amount_min_pct and amount_max_pct: 1 <= min <= max <= 100 (got {min} and {max})"
        ));
    }
    let start_ms = seconds(workload.start_s, "workload.start_s")?;
    let step_ms = 1000.0 / f64::from(workload.rate_per_s);
    let end_ms = start_ms + ((workload.payments - 1) as f64 * step_ms) as u64;
    seconds(end_ms as f64 / 1000.0, "workload (start_s + payments / rate_per_s)")?;
    let payers = |at_ms: u64| -> Vec<usize> {
        (0..banks.len())
            .filter(|b| {
                !events.iter().filter_map(offline_window).any(|(o, s, e)| o == *b && (s..e).contains(&at_ms))
            })
            .filter(|b| banks[*b].customers.iter().any(|(_, _, balance, blocked)| *balance > 0 && !blocked))
            .collect()
    };
    let mut rng = Rng::new(seed);
    let mut payments = Vec::new();
    for n in 0..workload.payments {
        let at_ms = start_ms + (n as f64 * step_ms) as u64;
        let online = payers(at_ms);
        if online.is_empty() {
            return Err(format!(
                "workload: at {} s no bank with a funded customer is online to pay",
                at_ms / 1000
            ));
        }
        let from = online[rng.below(online.len() as u64) as usize];
        let to = (from + 1 + rng.below(banks.len() as u64 - 1) as usize) % banks.len();
        let debtors: Vec<_> =
            banks[from].customers.iter().filter(|(_, _, b, blocked)| *b > 0 && !blocked).collect();
        let (debtor, _, balance, _) = debtors[rng.below(debtors.len() as u64) as usize];
        let creditors = &banks[to].customers;
        let creditor = creditors[rng.below(creditors.len() as u64) as usize].0.clone();
        let low = (*balance as u128 * u128::from(min) / 100) as u64;
        let high = (*balance as u128 * u128::from(max) / 100) as u64;
        let minor_units = (low + rng.below(high - low + 1)).max(1) as i64;
        payments.push(PaymentPlan {
            at_ms,
            from,
            debtor: debtor.clone(),
            to,
            creditor,
            minor_units,
            note: None,
            listed: None,
        });
    }
    Ok(payments)
}

// ---------------------------------------------------------------------------------------
// The summary.
// ---------------------------------------------------------------------------------------

/// A payment order its bank refused before sending anything.
#[derive(Clone, Debug, Serialize)]
pub struct RefusedOrder {
    /// When, in seconds from the start.
    pub at_s: f64,
    /// The paying bank.
    pub from: String,
    /// The beneficiary's bank.
    pub to: String,
    /// Amount with currency.
    pub amount: String,
    /// ISO reason code when the refusal names one, else [`OFFLINE`] (the bank was down)
    /// or `refused`.
    pub reason_code: String,
    /// Why, in a sentence.
    pub detail: String,
}

/// One currency: payments instructed in it.
#[derive(Clone, Debug, Serialize)]
pub struct CurrencyLine {
    /// ISO 4217 code.
    pub currency: String,
    /// Orders taken and sent (pacs.008).
    pub sent: usize,
    /// Of those, settled (ACSC).
    pub settled: usize,
    /// Of those, rejected (RJCT).
    pub rejected: usize,
    /// Orders refused before sending.
    pub refused: usize,
    /// Total settled, decimal text.
    pub settled_amount: String,
}

/// A fault or operator action, and when it happened.
#[derive(Clone, Debug, Serialize)]
pub struct EventLine {
    /// `bank_offline`, `suspend`, `hub_restart`, `fund`, `net_debit_cap`, `close_window`,
    /// `return` or `recall`.
    pub kind: String,
    /// When the file said, in seconds from the start.
    pub at_s: f64,
    /// When it was done (later if the network was busy with an earlier event).
    pub done_at_s: f64,
    /// What happened, in a sentence.
    pub detail: String,
}

/// One currency of a closed settlement window (deferred net).
#[derive(Clone, Debug, Serialize)]
pub struct WindowLine {
    /// Window number.
    pub window_id: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Payments instructed in it.
    pub payments: u64,
    /// What gross settlement would have moved, decimal text.
    pub gross: String,
    /// What netting moved, decimal text.
    pub net: String,
    /// What netting saved, decimal text.
    pub saved: String,
}

/// One bank at the end.
#[derive(Clone, Debug, Serialize)]
pub struct BankLine {
    /// BIC.
    pub bic: String,
    /// Country.
    pub country: String,
    /// Currency.
    pub currency: String,
    /// Its own check that debits equal credits.
    pub ledger_balanced: bool,
    /// Its settlement account at the hub, decimal text.
    pub settlement_balance: String,
}

/// One expectation of the file (`[expect]`) and whether the run met it.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectationLine {
    /// What was expected.
    pub expected: String,
    /// Met.
    pub met: bool,
}

/// What a scenario run did.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioSummary {
    /// The scenario's name.
    pub name: String,
    /// `gross` or `deferred-net`.
    pub settlement: String,
    /// Seed of the workload.
    pub seed: u64,
    /// Orders put to the banks.
    pub orders: usize,
    /// Orders refused before sending.
    pub orders_refused: Vec<RefusedOrder>,
    /// pacs.008s sent.
    pub payments_sent: usize,
    /// Settled (ACSC).
    pub payments_settled: usize,
    /// Rejected (RJCT).
    pub payments_rejected: usize,
    /// Every payment sent reached ACSC or RJCT.
    pub all_final: bool,
    /// The rejections.
    pub rejections: Vec<Rejection>,
    /// How often each reason code came up, in refused orders and rejected payments.
    pub reason_codes: BTreeMap<String, usize>,
    /// Per currency.
    pub currencies: Vec<CurrencyLine>,
    /// The faults and operator actions, in order.
    pub events: Vec<EventLine>,
    /// The returns and recalls, in order, and how each ended.
    pub cases: Vec<CaseLine>,
    /// Closed settlement windows (deferred net), per currency.
    pub windows: Vec<WindowLine>,
    /// Per bank.
    pub banks: Vec<BankLine>,
    /// Every bank's ledger balances.
    pub ledgers_balanced: bool,
    /// The file's expectations.
    pub expectations: Vec<ExpectationLine>,
    /// The reconciliation of the hub with every bank at the end.
    pub reconciliation: Report,
}

impl ScenarioSummary {
    /// True when it ended as a lesson should: every payment final, every return and
    /// recall carried through, every ledger balanced, every expectation met and no
    /// reconciliation break.
    pub fn ok(&self) -> bool {
        self.all_final
            && self.cases.iter().all(|c| c.done)
            && self.ledgers_balanced
            && self.expectations.iter().all(|e| e.met)
            && self.reconciliation.is_clean()
    }

    /// The summary as text for a person.
    pub fn render(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "NO" };
        let mut out = format!(
            "\nScenario {:?} ({} settlement, seed {})\nOrders: {}, refused by their bank: {}. Payments: {} sent, \
             {} settled (ACSC), {} rejected (RJCT); all final: {}\n",
            self.name,
            self.settlement,
            self.seed,
            self.orders,
            self.orders_refused.len(),
            self.payments_sent,
            self.payments_settled,
            self.payments_rejected,
            yes_no(self.all_final)
        );
        if !self.events.is_empty() {
            out.push_str("\nEvents:\n");
            for e in &self.events {
                out.push_str(&format!("  {:>6.1} s  {:<13} {}\n", e.done_at_s, e.kind, e.detail));
            }
        }
        if !self.cases.is_empty() {
            out.push_str("\nReturns and recalls:\n");
            for c in &self.cases {
                out.push_str(&format!(
                    "  {:<16} {}  {} -> {}  {}: {}\n",
                    c.kind, c.uetr, c.from, c.to, c.reason_code, c.outcome
                ));
            }
        }
        if !self.reason_codes.is_empty() {
            let codes: Vec<String> = self.reason_codes.iter().map(|(c, n)| format!("{c} x{n}")).collect();
            out.push_str(&format!("\nRefusals and rejections by reason: {}\n", codes.join(", ")));
        }
        out.push_str("\nPer currency (payments instructed in it):\n");
        out.push_str(&format!(
            "  {:<4} {:>6} {:>8} {:>9} {:>8} {:>22}\n",
            "", "sent", "settled", "rejected", "refused", "settled amount"
        ));
        for c in &self.currencies {
            out.push_str(&format!(
                "  {:<4} {:>6} {:>8} {:>9} {:>8} {:>22}\n",
                c.currency, c.sent, c.settled, c.rejected, c.refused, c.settled_amount
            ));
        }
        if !self.windows.is_empty() {
            out.push_str(
                "\nSettlement windows closed (gross: what real-time settlement would have moved):\n",
            );
            for w in &self.windows {
                out.push_str(&format!(
                    "  window {:<3} {:<4} {:>5} payments  gross {:>18}  net {:>18}  saved {:>18}\n",
                    w.window_id, w.currency, w.payments, w.gross, w.net, w.saved
                ));
            }
        }
        out.push_str("\nBanks (settlement account at the hub):\n");
        for b in &self.banks {
            out.push_str(&format!(
                "  {} {:<22} {:>20} {}  ledger balances: {}\n",
                b.bic,
                b.country,
                b.settlement_balance,
                b.currency,
                yes_no(b.ledger_balanced)
            ));
        }
        for e in &self.expectations {
            out.push_str(&format!(
                "Expected: {} ... {}\n",
                e.expected,
                if e.met { "met" } else { "NOT MET" }
            ));
        }
        out.push('\n');
        out.push_str(&self.reconciliation.render());
        out
    }
}

// ---------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------

/// One step of the timeline; at equal times ends come before starts before payments, so
/// that a payment at the second a bank comes back finds it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    End(usize),
    Start(usize),
    Pay(usize),
}

struct Run<'a> {
    scenario: &'a Scenario,
    network: LocalNetwork,
    /// Operator clients of the running banks, by index in the scenario.
    clients: Vec<Option<BankServiceClient<Channel>>>,
    started: tokio::time::Instant,
    orders: usize,
    refused: Vec<RefusedOrder>,
    /// (sender index, UETR) of every payment sent.
    sent: Vec<(usize, String)>,
    /// Payments sent to each bank while it was offline, since it went offline.
    waiting: Vec<usize>,
    events: Vec<EventLine>,
    windows: Vec<WindowLine>,
    /// UETRs of the listed payments sent, by their place among the file's `[[payment]]`s.
    listed_uetrs: BTreeMap<usize, String>,
    /// The returns and recalls, in order.
    cases: Vec<CaseLine>,
    /// The hub's dashboard, when served: it holds the hub, so a restart stops it first.
    dashboard: Option<RunningDashboard>,
}

/// How to run a scenario, beyond what its file says.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where the hub serves its web dashboard while the scenario runs; none when `None`.
    /// Its URL is told before the run starts, and stays the same across a hub restart.
    pub dashboard: Option<std::net::SocketAddr>,
}

/// Runs `scenario`, telling each step to `progress`.
pub async fn run_scenario(
    scenario: &Scenario,
    progress: &mut dyn FnMut(&str),
) -> Result<ScenarioSummary, String> {
    let (summary, running) = start_scenario(scenario, &RunOptions::default(), progress).await?;
    running.stop().await?;
    Ok(summary)
}

/// A scenario's network (and dashboard) still running after its summary was made, with
/// the reconciliation posted to its dashboard.
pub struct RunningScenario {
    network: LocalNetwork,
    dashboard: Option<RunningDashboard>,
    _temporary: tempfile::TempDir,
}

impl RunningScenario {
    /// The running network (its hub, its banks).
    pub fn network(&self) -> &LocalNetwork {
        &self.network
    }

    /// The dashboard's URL (`http://ADDR/`), when it is served.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard.as_ref().map(|d| d.url.as_str())
    }

    /// Stops the dashboard, then every bank and the hub, gracefully.
    pub async fn stop(self) -> Result<(), String> {
        if let Some(dashboard) = self.dashboard {
            dashboard.stop().await?;
        }
        self.network.stop().await
    }
}

/// Runs `scenario` with `options` up to its summary (reconciliation included, and posted
/// to the hub for its dashboard) and leaves its network running: [`RunningScenario::stop`]
/// stops it.
pub async fn start_scenario(
    scenario: &Scenario,
    options: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(ScenarioSummary, RunningScenario), String> {
    let temporary = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    progress(&format!("Scenario {:?}", scenario.name));
    for line in scenario.description.lines() {
        progress(&format!("  {line}"));
    }
    let bics: Vec<Bic> = scenario.banks.iter().map(|b| b.bic).collect();
    let pki = crate::tls::init(temporary.path(), &bics).map_err(|e| e.to_string())?;
    let config = HubConfig { settlement_model: scenario.settlement, ..HubConfig::default() };
    let network = LocalNetwork::start_hub(pki, config).await?;
    progress(&format!(
        "Hub listening on {} ({} settlement), {} banks",
        network.hub_url,
        scenario.settlement.name(),
        bics.len()
    ));
    let mut run = Run {
        scenario,
        network,
        clients: vec![None; bics.len()],
        started: tokio::time::Instant::now(),
        orders: 0,
        refused: Vec::new(),
        sent: Vec::new(),
        waiting: vec![0; bics.len()],
        events: Vec::new(),
        windows: Vec::new(),
        listed_uetrs: BTreeMap::new(),
        cases: Vec::new(),
        dashboard: None,
    };
    if let Some(addr) = options.dashboard {
        let dashboard = start_dashboard(&run.network, addr).await?;
        progress(&format!("Dashboard: {}", dashboard.url));
        run.dashboard = Some(dashboard);
    }
    let summary = run.run(progress).await?;
    let Run { network, dashboard, .. } = run;
    Ok((summary, RunningScenario { network, dashboard, _temporary: temporary }))
}

impl Run<'_> {
    /// Sets the network up, runs the timeline, waits for every payment to be final and
    /// reconciles (posting the report to the hub for its dashboard).
    async fn run(&mut self, progress: &mut dyn FnMut(&str)) -> Result<ScenarioSummary, String> {
        let scenario = self.scenario;
        self.set_up(progress).await?;
        progress(&format!(
            "Running: {} payments and {} event(s) over {:.1} s",
            scenario.payments.len(),
            scenario.events.len(),
            self.timeline().last().map_or(0, |(at, _)| *at) as f64 / 1000.0
        ));
        self.started = tokio::time::Instant::now();
        for (at_ms, step) in self.timeline() {
            tokio::time::sleep_until(self.started + Duration::from_millis(at_ms)).await;
            self.step(step, progress).await?;
        }
        progress("Waiting for every payment's pacs.002");
        let finals = self.wait_final().await?;
        if scenario.settlement == SettlementModel::DeferredNet {
            progress("Closing the last settlement window: the hub nets what each bank owes");
            self.close_window(progress).await?;
        }
        progress("Reconciling the hub's journal with every bank's records");
        let network = &self.network;
        let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
        let reconciliation =
            reconcile_live(&network.network, &network.hub_url, &banks, SETTLE_TIMEOUT).await?;
        network.hub().set_last_reconciliation(reconciliation.to_json());
        self.summarise(finals, reconciliation).await
    }

    /// The hub operator sets the agreements, funds and caps each bank; each bank starts
    /// and opens its customers' accounts.
    async fn set_up(&mut self, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
        let mut admin = self.network.admin().await?;
        for agreement in &self.scenario.agreements {
            let (pair, rate) = (agreement.pair.to_string(), agreement.rate.clone());
            super::demo::set_agreement(&mut admin, pair, rate, agreement.spread_bps, progress).await?;
        }
        for (index, bank) in self.scenario.banks.iter().enumerate() {
            let (bic, currency) = (bank.bic, bank.currency);
            if bank.liquidity > 0 {
                self.operate(OperatorStep::Fund(index, bank.liquidity)).await?;
            }
            if bank.net_debit_cap > 0 {
                self.operate(OperatorStep::Cap(index, bank.net_debit_cap)).await?;
            }
            progress(&format!(
                "{bic} ({}, {currency}): liquidity {}, net debit cap {}",
                bank.country,
                format_minor_units(bank.liquidity, currency),
                format_minor_units(bank.net_debit_cap, currency)
            ));
            let mut client = self.start_bank(index).await?;
            for (account, name, balance, blocked) in &bank.customers {
                let request = pb::OpenAccountRequest {
                    account_id: account.clone(),
                    currency: currency.to_string(),
                    name: name.clone(),
                    opening_deposit: if *balance > 0 {
                        format_minor_units(*balance, currency)
                    } else {
                        String::new()
                    },
                };
                client.open_account(request).await.map_err(|s| format!("{bic}: {}", s.message()))?;
                if *blocked {
                    let request = pb::SetAccountBlockedRequest { account_id: account.clone(), blocked: true };
                    client
                        .set_account_blocked(request)
                        .await
                        .map_err(|s| format!("{bic}: {}", s.message()))?;
                }
                progress(&format!(
                    "  {account} {name}: {} {currency}{}",
                    format_minor_units(*balance, currency),
                    if *blocked { " (blocked)" } else { "" }
                ));
            }
        }
        Ok(())
    }

    async fn start_bank(&mut self, index: usize) -> Result<BankServiceClient<Channel>, String> {
        let running = self.network.start_bank(self.scenario.banks[index].bic).await?;
        let client = self.network.operator(running).await?;
        self.clients[index] = Some(client.clone());
        Ok(client)
    }

    fn timeline(&self) -> Vec<(u64, Step)> {
        let mut steps: Vec<(u64, Step)> =
            self.scenario.payments.iter().enumerate().map(|(n, p)| (p.at_ms, Step::Pay(n))).collect();
        for (n, event) in self.scenario.events.iter().enumerate() {
            steps.push((event.at_ms, Step::Start(n)));
            if let EventKind::BankOffline { for_ms, .. } | EventKind::Suspend { for_ms, .. } = event.kind {
                steps.push((event.at_ms + for_ms, Step::End(n)));
            }
        }
        steps.sort();
        steps
    }

    fn now_s(&self) -> f64 {
        (self.started.elapsed().as_millis() as f64 / 100.0).round() / 10.0
    }

    async fn step(&mut self, step: Step, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
        match step {
            Step::Pay(n) => self.pay(n, progress).await,
            Step::Start(n) | Step::End(n) => {
                let event = &self.scenario.events[n];
                let detail = self.apply(event, matches!(step, Step::End(_)), progress).await?;
                let line = EventLine {
                    kind: event.kind.name().into(),
                    at_s: event.at_ms as f64 / 1000.0,
                    done_at_s: self.now_s(),
                    detail,
                };
                progress(&format!("[{:>5.1} s] {}", line.done_at_s, line.detail));
                self.events.push(line);
                Ok(())
            }
        }
    }

    /// Does an event (or, with `end`, undoes it): a sentence for the teacher.
    async fn apply(
        &mut self,
        event: &EventPlan,
        end: bool,
        progress: &mut dyn FnMut(&str),
    ) -> Result<String, String> {
        let banks = &self.scenario.banks;
        Ok(match (&event.kind, end) {
            (EventKind::BankOffline { bank, for_ms }, false) => {
                self.clients[*bank] = None;
                self.network.stop_bank(banks[*bank].bic).await?;
                format!(
                    "{} goes offline for {:.1} s: payments to it wait at the hub (store and forward); its \
                     operators cannot pay",
                    banks[*bank].bic,
                    *for_ms as f64 / 1000.0
                )
            }
            (EventKind::BankOffline { bank, .. }, true) => {
                self.start_bank(*bank).await?;
                let waited = std::mem::take(&mut self.waiting[*bank]);
                format!(
                    "{} is back: it reconnects, the hub delivers the {waited} payments that waited for it, it \
                     resends what the hub had not ACKed",
                    banks[*bank].bic
                )
            }
            (EventKind::Suspend { bank, .. }, false) => {
                self.operate(OperatorStep::Suspend(*bank, true)).await?;
                format!(
                    "The hub operator suspends {}: payments from and to it are refused (AG01)",
                    banks[*bank].bic
                )
            }
            (EventKind::Suspend { bank, .. }, true) => {
                self.operate(OperatorStep::Suspend(*bank, false)).await?;
                format!("The hub operator resumes {}", banks[*bank].bic)
            }
            (EventKind::HubRestart, _) => self.restart_hub(progress).await?,
            (EventKind::Fund { bank, minor_units }, _) => {
                self.operate(OperatorStep::Fund(*bank, *minor_units)).await?;
                format!(
                    "The hub operator adds {} {} to {}'s liquidity",
                    format_minor_units(*minor_units, banks[*bank].currency),
                    banks[*bank].currency,
                    banks[*bank].bic
                )
            }
            (EventKind::NetDebitCap { bank, minor_units }, _) => {
                self.operate(OperatorStep::Cap(*bank, *minor_units)).await?;
                format!(
                    "The hub operator sets {}'s net debit cap to {} {}",
                    banks[*bank].bic,
                    format_minor_units(*minor_units, banks[*bank].currency),
                    banks[*bank].currency
                )
            }
            (EventKind::CloseWindow, _) => self.close_window(progress).await?,
            (EventKind::Return { payment, reason }, _) => self.return_case(*payment, *reason).await?,
            (EventKind::Recall { payment, reason, refusal }, _) => {
                self.recall_case(*payment, *reason, *refusal).await?
            }
        })
    }

    /// Restarts the hub from its journal. The dashboard holds the hub: it lets go first,
    /// and serves the new hub at the same address. If that address is taken meanwhile,
    /// the run goes on without it (the hub is fine) and a step says so.
    async fn restart_hub(&mut self, progress: &mut dyn FnMut(&str)) -> Result<String, String> {
        let dashboard = self.dashboard.take();
        let addr = dashboard.as_ref().map(|d| d.addr);
        if let Some(dashboard) = dashboard {
            dashboard.stop().await?;
        }
        progress(&format!("[{:>5.1} s] The hub stops (gracefully) ...", self.now_s()));
        self.network.restart_hub().await?;
        if let Some(addr) = addr {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => self.dashboard = Some(serve_dashboard_on(&self.network, listener)?),
                Err(error) => progress(&format!(
                    "[{:>5.1} s] The dashboard could not come back on {addr}: {error}; the run goes on without it",
                    self.now_s()
                )),
            }
        }
        Ok("The hub is back from its journal: the banks reconnect and resend what it had not ACKed".into())
    }

    async fn operate(&mut self, step: OperatorStep) -> Result<(), String> {
        let mut admin = self.network.admin().await?;
        let banks = &self.scenario.banks;
        let name = |index: usize| banks[index].bic.to_string();
        let failed =
            |what: &str, index: usize, s: tonic::Status| format!("{what} {}: {}", name(index), s.message());
        match step {
            OperatorStep::Fund(index, minor_units) => {
                let request = pb::FundRequest {
                    participant_bic: name(index),
                    currency: banks[index].currency.to_string(),
                    amount: format_minor_units(minor_units, banks[index].currency),
                };
                admin.fund(request).await.map_err(|s| failed("funding", index, s))?;
            }
            OperatorStep::Cap(index, minor_units) => {
                let request = pb::SetNetDebitCapRequest {
                    participant_bic: name(index),
                    currency: banks[index].currency.to_string(),
                    cap: if minor_units == 0 {
                        "0".into()
                    } else {
                        format_minor_units(minor_units, banks[index].currency)
                    },
                };
                admin.set_net_debit_cap(request).await.map_err(|s| failed("capping", index, s))?;
            }
            OperatorStep::Suspend(index, suspend) => {
                let request = pb::SuspendRequest { participant_bic: name(index) };
                if suspend {
                    admin.suspend(request).await.map_err(|s| failed("suspending", index, s))?;
                } else {
                    admin.resume(request).await.map_err(|s| failed("resuming", index, s))?;
                }
            }
        }
        Ok(())
    }

    async fn close_window(&mut self, progress: &mut dyn FnMut(&str)) -> Result<String, String> {
        let mut admin = self.network.admin().await?;
        let report =
            admin.close_window(pb::CloseWindowRequest {}).await.map_err(|s| s.message().to_owned())?;
        let report = report.into_inner();
        for total in &report.totals {
            let Ok(currency) = Currency::parse(&total.currency) else { continue };
            let line = WindowLine {
                window_id: report.window_id,
                currency: total.currency.clone(),
                payments: total.payments,
                gross: format_minor_units(total.gross, currency),
                net: format_minor_units(total.net, currency),
                saved: format_minor_units(total.saved, currency),
            };
            progress(&format!(
                "  window {} {}: {} payments, gross {}, net {}, netting saved {}",
                line.window_id, line.currency, line.payments, line.gross, line.net, line.saved
            ));
            self.windows.push(line);
        }
        Ok(format!(
            "The hub operator closes settlement window {}: each bank's net moves into its liquidity",
            report.window_id
        ))
    }

    /// Puts payment `n` to its bank, as its operator would.
    async fn pay(&mut self, n: usize, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
        let planned = &self.scenario.payments[n];
        let (from, to) = (&self.scenario.banks[planned.from], &self.scenario.banks[planned.to]);
        let amount = format_minor_units(planned.minor_units, from.currency);
        self.orders += 1;
        if let Some(note) = &planned.note {
            progress(&format!(
                "[{:>5.1} s] {} {} pays {} {} {amount} {}: {note}",
                self.now_s(),
                from.bic,
                planned.debtor,
                to.bic,
                planned.creditor,
                from.currency
            ));
        }
        let request = pb::SubmitPaymentRequest {
            debtor_account: planned.debtor.clone(),
            creditor_agent_bic: to.bic.to_string(),
            creditor_account: planned.creditor.clone(),
            creditor_name: format!("Customer {}", planned.creditor),
            amount: amount.clone(),
            currency: from.currency.to_string(),
            settlement_currency: to.currency.to_string(),
            remittance_information: format!("Scenario {}", self.scenario.name),
            ..Default::default()
        };
        let refusal = match self.clients[planned.from].clone() {
            None => {
                Some((OFFLINE.to_owned(), format!("{} is offline: its operators cannot reach it", from.bic)))
            }
            Some(mut client) => match submit(&mut client, request).await {
                Ok(uetr) => {
                    if let Some(listed) = planned.listed {
                        self.listed_uetrs.insert(listed, uetr.clone());
                    }
                    self.sent.push((planned.from, uetr));
                    if self.clients[planned.to].is_none() {
                        self.waiting[planned.to] += 1;
                    }
                    None
                }
                Err(detail) => Some((reason_in(&detail).unwrap_or_else(|| "refused".into()), detail)),
            },
        };
        if let Some((reason_code, detail)) = refusal {
            progress(&format!(
                "[{:>5.1} s] {} refused an order of {amount} {} to {}: {detail}",
                self.now_s(),
                from.bic,
                from.currency,
                to.bic
            ));
            self.refused.push(RefusedOrder {
                at_s: self.now_s(),
                from: from.bic.to_string(),
                to: to.bic.to_string(),
                amount: format!("{amount} {}", from.currency),
                reason_code,
                detail,
            });
        }
        Ok(())
    }

    /// Polls until every sent payment is final at its sender, or the timeout passes.
    async fn wait_final(&mut self) -> Result<BTreeMap<String, pb::Payment>, String> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut finals = BTreeMap::new();
            for client in self.clients.iter_mut().flatten() {
                let payments = client
                    .list_payments(pb::ListPaymentsRequest {})
                    .await
                    .map_err(|s| s.message().to_owned())?;
                for payment in payments.into_inner().payments {
                    if payment.direction == pb::PaymentDirection::Outgoing as i32 && payment.r#final {
                        finals.insert(payment.uetr.clone(), payment);
                    }
                }
            }
            if finals.len() >= self.sent.len() || tokio::time::Instant::now() >= deadline {
                return Ok(finals);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn summarise(
        &mut self,
        finals: BTreeMap<String, pb::Payment>,
        reconciliation: Report,
    ) -> Result<ScenarioSummary, String> {
        let scenario = self.scenario;
        let name = |index: usize| scenario.banks[index].bic.to_string();
        let mut reason_codes: BTreeMap<String, usize> = BTreeMap::new();
        let mut rejections = Vec::new();
        let mut currencies: BTreeMap<Currency, (CurrencyLine, i64)> = BTreeMap::new();
        for (from, uetr) in &self.sent {
            let currency = scenario.banks[*from].currency;
            let entry = currencies.entry(currency).or_insert_with(|| (empty_line(currency), 0));
            entry.0.sent += 1;
            let Some(payment) = finals.get(uetr) else { continue };
            let money = payment.amount.clone().unwrap_or_default();
            if payment.status == pb::PaymentStatus::Acsc as i32 {
                entry.0.settled += 1;
                entry.1 = entry.1.saturating_add(money.minor_units);
            } else if payment.status == pb::PaymentStatus::Rjct as i32 {
                entry.0.rejected += 1;
                *reason_codes.entry(payment.reason_code.clone()).or_default() += 1;
                rejections.push(Rejection {
                    uetr: uetr.clone(),
                    from: name(*from),
                    to: payment.counterparty_bic.clone(),
                    amount: format!("{} {currency}", format_minor_units(money.minor_units, currency)),
                    reason_code: payment.reason_code.clone(),
                    detail: payment.detail.clone(),
                });
            }
        }
        for order in &self.refused {
            *reason_codes.entry(order.reason_code.clone()).or_default() += 1;
            let index = scenario.banks.iter().position(|b| b.bic.as_str() == order.from).unwrap_or(0);
            let currency = scenario.banks[index].currency;
            currencies.entry(currency).or_insert_with(|| (empty_line(currency), 0)).0.refused += 1;
        }
        let banks = self.bank_lines().await?;
        let settled: usize = currencies.values().map(|(l, _)| l.settled).sum();
        let expectations = expectations(scenario, &reason_codes, settled, &self.cases);
        Ok(ScenarioSummary {
            name: scenario.name.clone(),
            settlement: scenario.settlement.name().into(),
            seed: scenario.seed,
            orders: self.orders,
            orders_refused: self.refused.clone(),
            payments_sent: self.sent.len(),
            payments_settled: settled,
            payments_rejected: rejections.len(),
            all_final: self.sent.iter().all(|(_, uetr)| finals.contains_key(uetr)),
            rejections,
            reason_codes,
            currencies: currencies
                .into_iter()
                .map(|(currency, (mut line, total))| {
                    line.settled_amount = format_minor_units(total, currency);
                    line
                })
                .collect(),
            events: self.events.clone(),
            cases: self.cases.clone(),
            windows: self.windows.clone(),
            ledgers_balanced: banks.iter().all(|b| b.ledger_balanced),
            banks,
            expectations,
            reconciliation,
        })
    }

    async fn bank_lines(&mut self) -> Result<Vec<BankLine>, String> {
        let mut lines = Vec::new();
        for (index, bank) in self.scenario.banks.iter().enumerate() {
            let Some(client) = self.clients[index].as_mut() else { continue };
            let accounts =
                client.list_accounts(pb::ListAccountsRequest {}).await.map_err(|s| s.message().to_owned())?;
            let accounts = accounts.into_inner();
            let settlement = accounts
                .accounts
                .iter()
                .filter(|a| a.kind == pb::AccountKind::Settlement as i32)
                .filter_map(|a| a.balance.as_ref())
                .find(|m| m.currency == bank.currency.to_string())
                .map_or(0, |m| m.minor_units);
            lines.push(BankLine {
                bic: bank.bic.to_string(),
                country: bank.country.clone(),
                currency: bank.currency.to_string(),
                ledger_balanced: accounts.ledger_balanced,
                settlement_balance: format_minor_units(settlement, bank.currency),
            });
        }
        Ok(lines)
    }
}

enum OperatorStep {
    Fund(usize, i64),
    Cap(usize, i64),
    Suspend(usize, bool),
}

/// The file's `[expect]`, each with whether the run met it.
fn expectations(
    scenario: &Scenario,
    reason_codes: &BTreeMap<String, usize>,
    settled: usize,
    cases: &[CaseLine],
) -> Vec<ExpectationLine> {
    let mut lines: Vec<ExpectationLine> = scenario
        .expect_reason_codes
        .iter()
        .map(|code| ExpectationLine {
            expected: format!("at least one refusal or rejection with reason {code}"),
            met: reason_codes.contains_key(code),
        })
        .collect();
    if scenario.expect_settled_min > 0 {
        lines.push(ExpectationLine {
            expected: format!("at least {} payments settled", scenario.expect_settled_min),
            met: settled >= scenario.expect_settled_min,
        });
    }
    for kind in &scenario.expect_cases {
        lines.push(ExpectationLine {
            expected: format!("a {kind} carried through"),
            met: cases.iter().any(|c| c.kind == *kind && c.done),
        });
    }
    lines
}

fn empty_line(currency: Currency) -> CurrencyLine {
    CurrencyLine {
        currency: currency.to_string(),
        sent: 0,
        settled: 0,
        rejected: 0,
        refused: 0,
        settled_amount: String::new(),
    }
}

/// Submits an order, retrying while its bank cannot reach the hub (a cross-currency order
/// reads the agreement in force from the hub): its UETR, or why it was refused.
async fn submit(
    client: &mut BankServiceClient<Channel>,
    request: pb::SubmitPaymentRequest,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + UNAVAILABLE_RETRY;
    loop {
        match client.submit_payment(request.clone()).await {
            Ok(response) => return Ok(response.into_inner().payment.unwrap_or_default().uetr),
            Err(status)
                if status.code() == tonic::Code::Unavailable && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(status.message().to_owned()),
        }
    }
}

/// The ISO reason code a refusal names in parentheses, like "(AM04)".
fn reason_in(detail: &str) -> Option<String> {
    detail.match_indices('(').find_map(|(at, _)| {
        let code = detail.get(at + 1..at + 5)?;
        let closed = detail.get(at + 5..at + 6) == Some(")");
        (closed && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            .then(|| code.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_read_from_refusals() {
        assert_eq!(reason_in("insufficient funds on C001 (AM04)").as_deref(), Some("AM04"));
        assert_eq!(
            reason_in("the hub has no RUB/IRR rate agreement in force (AM11)").as_deref(),
            Some("AM11")
        );
        assert_eq!(reason_in("no code (here) at all"), None);
    }
}
