//! `corridor demo`: a hub and a few banks on loopback, each paying in its own country's
//! currency under the hub's bilateral rate agreements, a stream of payments among them
//! (some deliberately refused), a return and recalls after they settle, and a readable
//! account of what happened, per currency.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tonic::transport::Channel;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{LocalNetwork, Rng};
use crate::model::{Amount, Bic, Currency, format_minor_units};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::reconcile::Report;
use crate::reconcile::sources::reconcile_live;

/// Banks the demo can start: fictional BICs in countries that built SWIFT alternatives
/// (SPFS, SEPAM, CIPS, SFMS) and in their partners, with each country's currency and
/// roughly how many units of it a US dollar bought (in hundredths), which sets the demo's
/// agreed rates and keeps its amounts of similar value in every currency.
pub const DEMO_BANKS: [(&str, &str, &str, u64); 8] = [
    ("CRDARUMMXXX", "Russia", "RUB", 9_000),
    ("CRDBIRTHXXX", "Iran", "IRR", 4_200_000),
    ("CRDCCNSHXXX", "China", "CNY", 720),
    ("CRDDINBBXXX", "India", "INR", 8_400),
    ("CRDEBRSPXXX", "Brazil", "BRL", 540),
    ("CRDFZAJJXXX", "South Africa", "ZAR", 1_850),
    ("CRDGTRISXXX", "Turkey", "TRY", 3_400),
    ("CRDHAEADXXX", "United Arab Emirates", "AED", 367),
];
/// `--currency` value for "each bank in its own country's currency".
pub const HOME_CURRENCIES: &str = "home";
/// The network's margin on every demo agreement, in basis points.
const DEMO_SPREAD_BPS: u32 = 25;
/// Most payments one demo sends.
pub const DEMO_PAYMENTS_MAX: usize = 100_000;
/// Customers each demo bank opens.
const CUSTOMERS: [&str; 3] = ["C001", "C002", "C003"];
/// Opening deposit of each customer, in major units, before the part that scales with
/// the number of payments (so that no customer ever runs short, however long the run).
const OPENING_DEPOSIT: u64 = 100_000;
/// Largest demo payment, in major units, rounded up.
const PAYMENT_MAX: u64 = 5_001;
/// How long the demo waits for every payment to reach a final status.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Number of banks, 2 to 8.
    pub banks: usize,
    /// Number of payments.
    pub payments: usize,
    /// Seed of the workload: the same seed sends the same payments.
    pub seed: u64,
    /// Currency of every account and payment, or [`HOME_CURRENCIES`] for each bank's own.
    pub currency: String,
    /// Where to keep the network (PKI and data); a temporary directory when `None`.
    pub data: Option<std::path::PathBuf>,
    /// Where the hub serves its web dashboard; none when `None`. Its URL is told early,
    /// before any payment, in the progress line `Dashboard: http://ADDR/`.
    pub dashboard: Option<std::net::SocketAddr>,
    /// Pause between two payment orders (zero: none), so that people (or a browser test)
    /// can watch them flow.
    pub pace: Duration,
    /// When set, [`run_demo`] keeps the network and the dashboard up after the
    /// reconciliation (posted to the dashboard) until this is cancelled, then stops them.
    pub hold: Option<CancellationToken>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            banks: 4,
            payments: 20,
            seed: 2026,
            currency: HOME_CURRENCIES.into(),
            data: None,
            dashboard: None,
            pace: Duration::ZERO,
            hold: None,
        }
    }
}

impl DemoConfig {
    /// Checks the configuration; returns each bank's currency.
    pub fn validate(&self) -> Result<Vec<Currency>, String> {
        if !(2..=DEMO_BANKS.len()).contains(&self.banks) {
            return Err(format!("--banks must be between 2 and {} (got {})", DEMO_BANKS.len(), self.banks));
        }
        if !(1..=DEMO_PAYMENTS_MAX).contains(&self.payments) {
            return Err(format!(
                "--payments must be between 1 and {DEMO_PAYMENTS_MAX} (got {})",
                self.payments
            ));
        }
        if self.currency == HOME_CURRENCIES {
            return Ok(DEMO_BANKS[..self.banks]
                .iter()
                .map(|(.., code, _)| Currency::parse(code).expect("demo currencies are ISO 4217"))
                .collect());
        }
        let currency = Currency::parse(&self.currency)
            .map_err(|e| format!("--currency: {} (or {HOME_CURRENCIES} for each bank's own)", e.rule))?;
        Ok(vec![currency; self.banks])
    }

    /// Units of bank `index`'s currency a dollar buys, in hundredths (1 when every bank
    /// uses one currency: then amounts are as given).
    fn per_dollar(&self, index: usize) -> u64 {
        if self.currency == HOME_CURRENCIES { DEMO_BANKS[index].3 } else { 100 }
    }
}

/// Significant digits and decimals of the demo's agreed rates: a spread in basis points
/// adds 4 digits to the applied rate, and ISO 20022's `XchgRate` (BaseOneRate) holds at
/// most 11 digits, 10 after the point, so 7 and 6 keep every demo payment writable as
/// XML (issue 20; [`crate::model::Rate::fits_base_one_rate`]).
const DEMO_RATE_DIGITS: u32 = 7;
const DEMO_RATE_DECIMALS: u32 = 6;

/// The demo's agreed rate from `from`'s currency into `to`'s: the ratio of what a dollar
/// buys, to [`DEMO_RATE_DIGITS`] digits and at most [`DEMO_RATE_DECIMALS`] decimals
/// (rounded half up), as decimal text.
fn demo_rate(from: u64, to: u64) -> String {
    let whole_digits = (to / from).checked_ilog10().map_or(0, |d| d + 1);
    let decimals = DEMO_RATE_DIGITS.saturating_sub(whole_digits).min(DEMO_RATE_DECIMALS);
    let unit = 10u128.pow(decimals);
    let scaled = (u128::from(to) * unit * 2 + u128::from(from)) / (2 * u128::from(from));
    if decimals == 0 {
        return scaled.to_string();
    }
    let text = format!("{scaled:0width$}", width = decimals as usize + 1);
    let (whole, fraction) = text.split_at(text.len() - decimals as usize);
    format!("{whole}.{fraction}")
}

/// One rejected payment in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct Rejection {
    /// UETR.
    pub uetr: String,
    /// Sender bank.
    pub from: String,
    /// Receiver bank.
    pub to: String,
    /// Amount with currency.
    pub amount: String,
    /// ISO reason code.
    pub reason_code: String,
    /// Why.
    pub detail: String,
}

/// One account's balance before and after.
#[derive(Clone, Debug, Serialize)]
pub struct BalanceLine {
    /// Account id.
    pub account: String,
    /// Decimal text before the payments.
    pub before: String,
    /// Decimal text after.
    pub after: String,
    /// Currency.
    pub currency: String,
}

/// One bank in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct BankSummary {
    /// BIC.
    pub bic: String,
    /// Country.
    pub country: String,
    /// Its own check that debits equal credits.
    pub ledger_balanced: bool,
    /// Customer and settlement balances.
    pub balances: Vec<BalanceLine>,
}

/// One currency in the summary: what was paid in it and into it.
#[derive(Clone, Debug, Serialize)]
pub struct CurrencySummary {
    /// ISO 4217 code.
    pub currency: String,
    /// Payments instructed in it (settled or rejected).
    pub payments_out: usize,
    /// Total of those that settled, decimal text.
    pub paid_out: String,
    /// Settled payments received in it (after conversion).
    pub payments_in: usize,
    /// Their total, decimal text.
    pub received: String,
    /// Of those instructed in it and settled, how many were converted into another currency.
    pub converted: usize,
    /// Of those instructed in it, how many were returned (and so came back in it).
    pub returned: usize,
}

/// A return or a recall the demo (or a scenario) made, and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct CaseLine {
    /// What: "return", "recall accepted" or "recall refused".
    pub kind: String,
    /// UETR of the payment.
    pub uetr: String,
    /// Its sender.
    pub from: String,
    /// Its receiver.
    pub to: String,
    /// What the sender paid, with currency.
    pub paid: String,
    /// What the receiver got, with currency.
    pub received: String,
    /// ISO reason code.
    pub reason_code: String,
    /// How it ended at the sender, in a sentence.
    pub outcome: String,
    /// True once it ended as the demo (or the scenario) expected.
    pub done: bool,
}

/// What the demo did.
#[derive(Clone, Debug, Serialize)]
pub struct DemoSummary {
    /// Workload seed.
    pub seed: u64,
    /// Payment orders the banks refused before sending anything (none when all is well).
    pub orders_refused: usize,
    /// pacs.008s sent.
    pub payments_sent: usize,
    /// Settled (ACSC).
    pub payments_settled: usize,
    /// Rejected (RJCT).
    pub payments_rejected: usize,
    /// Every payment reached ACSC or RJCT.
    pub all_final: bool,
    /// Every bank's ledger balances.
    pub ledgers_balanced: bool,
    /// The rejections with reasons.
    pub rejections: Vec<Rejection>,
    /// Per currency.
    pub currencies: Vec<CurrencySummary>,
    /// The returns and recalls after settlement.
    pub cases: Vec<CaseLine>,
    /// Per bank.
    pub banks: Vec<BankSummary>,
    /// The reconciliation of the hub with every bank at the end.
    pub reconciliation: Report,
}

impl DemoSummary {
    /// True when the demo succeeded: every order sent, every payment final, every
    /// ledger balanced.
    pub fn ok(&self) -> bool {
        self.orders_refused == 0
            && self.all_final
            && self.ledgers_balanced
            && self.cases.iter().all(|c| c.done)
            && self.reconciliation.is_clean()
    }
}

/// One payment of the workload.
struct PlannedPayment {
    from: usize,
    to: usize,
    debtor: &'static str,
    creditor: String,
    /// Its value in US cents: the amount in the sender's currency follows from it.
    cents: u64,
}

fn plan(config: &DemoConfig) -> Vec<PlannedPayment> {
    let mut rng = Rng::new(config.seed);
    (0..config.payments)
        .map(|n| {
            let from = rng.below(config.banks as u64) as usize;
            let to = (from + 1 + rng.below(config.banks as u64 - 1) as usize) % config.banks;
            // Every seventh payment goes to an account that does not exist: AC01.
            let creditor = if n % 7 == 6 {
                "C999".to_owned()
            } else {
                CUSTOMERS[rng.below(CUSTOMERS.len() as u64) as usize].to_owned()
            };
            PlannedPayment {
                from,
                to,
                // The last customer of the last bank is blocked; it never pays.
                debtor: CUSTOMERS[rng.below(CUSTOMERS.len() as u64 - 1) as usize],
                creditor,
                cents: 100 + rng.below(500_000),
            }
        })
        .collect()
}

type Balances = BTreeMap<String, (i64, String)>;

async fn balances(client: &mut BankServiceClient<Channel>) -> Result<(Balances, bool), String> {
    let response =
        client.list_accounts(pb::ListAccountsRequest {}).await.map_err(|s| s.message().to_owned())?;
    let response = response.into_inner();
    let shown = response
        .accounts
        .into_iter()
        .filter(|a| {
            a.kind == pb::AccountKind::Customer as i32 || a.kind == pb::AccountKind::Settlement as i32
        })
        .map(|a| {
            let money = a.balance.unwrap_or_default();
            (a.id, (money.minor_units, money.currency))
        })
        .collect();
    Ok((shown, response.ledger_balanced))
}

/// Runs the demo and returns its summary. `progress` hears each step, for people.
/// With `config.hold`, the network and its dashboard stay up after the summary is made
/// until the token is cancelled.
pub async fn run_demo(config: &DemoConfig, progress: &mut dyn FnMut(&str)) -> Result<DemoSummary, String> {
    let (summary, running) = start_demo(config, progress).await?;
    if let Some(hold) = &config.hold {
        hold.cancelled().await;
    }
    running.stop(progress).await?;
    Ok(summary)
}

/// The demo's network (and dashboard) still running after its summary was made.
pub struct RunningDemo {
    network: LocalNetwork,
    dashboard: Option<RunningDashboard>,
    /// Kept in `--data`; otherwise the temporary directory, removed once stopped.
    kept: Option<std::path::PathBuf>,
    _temporary: Option<tempfile::TempDir>,
}

/// The hub's dashboard, served until stopped (or dropped).
pub(crate) struct RunningDashboard {
    /// `http://ADDR/`.
    pub(crate) url: String,
    /// Where it listens (the port chosen, when asked for port 0).
    pub(crate) addr: std::net::SocketAddr,
    /// Stops the dashboard when dropped (so that a demo that fails stops it too).
    shutdown: tokio_util::sync::DropGuard,
    task: JoinHandle<Result<(), String>>,
}

impl RunningDemo {
    /// The running network (its hub, its banks).
    pub fn network(&self) -> &LocalNetwork {
        &self.network
    }

    /// The dashboard's URL (`http://ADDR/`), when it is served.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard.as_ref().map(|d| d.url.as_str())
    }

    /// Stops the dashboard, then every bank and the hub, gracefully.
    pub async fn stop(self, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
        if let Some(dashboard) = self.dashboard {
            dashboard.stop().await?;
        }
        self.network.stop().await?;
        if let Some(dir) = self.kept {
            progress(&format!(
                "The network is kept in {}: `corridor reconcile --dir {}` checks it again offline",
                dir.display(),
                dir.display()
            ));
        }
        Ok(())
    }
}

impl RunningDashboard {
    /// Stops serving and lets go of the hub (before the hub can close or restart).
    pub(crate) async fn stop(self) -> Result<(), String> {
        drop(self.shutdown);
        self.task.await.map_err(|e| e.to_string())?
    }
}

/// Serves the dashboard of `network`'s hub on `addr` until it is stopped.
pub(crate) async fn start_dashboard(
    network: &LocalNetwork,
    addr: std::net::SocketAddr,
) -> Result<RunningDashboard, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--dashboard-addr: cannot listen on {addr}: {e}"))?;
    serve_dashboard_on(network, listener)
}

/// Serves the hub's dashboard on `listener`, bound already.
pub(crate) fn serve_dashboard_on(
    network: &LocalNetwork,
    listener: TcpListener,
) -> Result<RunningDashboard, String> {
    let hub = network.hub().clone();
    let name = hub.directory().hub().to_string();
    serve_dashboards_on(vec![crate::hub::dashboard::DashboardHub::new(name, hub)], listener)
}

/// Serves the dashboards of `hubs` on `listener`, bound already (the first at `/`).
pub(crate) fn serve_dashboards_on(
    hubs: Vec<crate::hub::dashboard::DashboardHub>,
    listener: TcpListener,
) -> Result<RunningDashboard, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(crate::hub::dashboard::serve_dashboards(
        hubs,
        listener,
        shutdown.clone().cancelled_owned(),
    ));
    Ok(RunningDashboard { url, addr, shutdown: shutdown.drop_guard(), task })
}

/// Runs the demo up to its summary (reconciliation included, and posted to the hub for
/// its dashboard) and leaves its network running: [`RunningDemo::stop`] stops it.
pub async fn start_demo(
    config: &DemoConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<(DemoSummary, RunningDemo), String> {
    let currencies = config.validate()?;
    let (dir, temporary) = network_dir(config.data.as_deref())?;
    let bics: Vec<Bic> =
        DEMO_BANKS[..config.banks].iter().map(|(bic, ..)| Bic::parse(bic).expect("valid")).collect();
    progress(&format!("Creating a demo PKI for {} banks in {}", bics.len(), dir.display()));
    let mut network = LocalNetwork::create(&dir, &bics).await?;
    progress(&format!("Hub listening on {} (mTLS)", network.hub_url));
    let dashboard = match config.dashboard {
        Some(addr) => {
            let dashboard = start_dashboard(&network, addr).await?;
            progress(&format!("Dashboard: {}", dashboard.url));
            Some(dashboard)
        }
        None => None,
    };
    set_agreements(&network, config, &currencies, progress).await?;
    // Enough for every payment to go one way: the demo shows messaging, not a liquidity squeeze.
    let mut admin = network.admin().await?;
    for (index, bic) in bics.iter().enumerate() {
        let liquidity = major_units(PAYMENT_MAX * config.payments.max(1) as u64, config.per_dollar(index));
        let request = pb::FundRequest {
            participant_bic: bic.to_string(),
            currency: currencies[index].to_string(),
            amount: liquidity.clone(),
        };
        admin.fund(request).await.map_err(|e| format!("funding {bic}: {}", e.message()))?;
        let shown = money_text(&liquidity, currencies[index]);
        progress(&format!("Hub operator prefunds {bic}'s position with {shown}"));
    }
    let mut clients = Vec::new();
    for (index, bic) in bics.iter().enumerate() {
        network.start_bank(*bic).await?;
        progress(&format!(
            "Bank {bic} ({}, {}) serving its operators on {}",
            DEMO_BANKS[index].1, currencies[index], network.banks[index].url
        ));
        let mut client = network.operator(index).await?;
        let deposit =
            major_units(OPENING_DEPOSIT + PAYMENT_MAX * config.payments as u64, config.per_dollar(index));
        open_accounts(&mut client, currencies[index], index + 1 == bics.len(), &deposit).await?;
        clients.push(client);
    }
    let mut before = Vec::new();
    for client in &mut clients {
        before.push(balances(client).await?.0);
    }
    progress(&format!("Sending {} payments (seed {})", config.payments, config.seed));
    let mut sent = Vec::new();
    let mut orders_refused = 0;
    for (n, planned) in plan(config).into_iter().enumerate() {
        if n > 0 && !config.pace.is_zero() {
            tokio::time::sleep(config.pace).await;
        }
        let from_currency = currencies[planned.from];
        let minor_units = (planned.cents * config.per_dollar(planned.from) / 100).max(1) as i64;
        let request = pb::SubmitPaymentRequest {
            debtor_account: planned.debtor.into(),
            creditor_agent_bic: bics[planned.to].to_string(),
            creditor_account: planned.creditor.clone(),
            creditor_name: format!("Customer {}", planned.creditor),
            amount: format_minor_units(minor_units, from_currency),
            currency: from_currency.to_string(),
            settlement_currency: currencies[planned.to].to_string(),
            quote_id: String::new(),
            remittance_information: "Corridor demo".into(),
            end_to_end_id: String::new(),
        };
        match clients[planned.from].submit_payment(request).await {
            Ok(response) => sent.push((planned.from, response.into_inner().payment.unwrap_or_default().uetr)),
            // Every order is funded and valid: a refusal here is a failure of the demo.
            Err(status) => {
                progress(&format!("  {} refused a payment order: {}", bics[planned.from], status.message()));
                orders_refused += 1;
            }
        }
    }
    progress("Waiting for every payment's pacs.002");
    let finals = wait_final(&mut clients, &sent).await?;
    let cases = after_settlement(&bics, &mut clients, &sent, &finals, progress).await?;
    let finals = wait_final(&mut clients, &sent).await?;
    let mut summary = summarise(config, &bics, &mut clients, &before, &sent, finals).await?;
    summary.orders_refused = orders_refused;
    summary.cases = cases;
    progress("Reconciling the hub's journal with every bank's records");
    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    summary.reconciliation =
        reconcile_live(&network.network, &network.hub_url, &banks, SETTLE_TIMEOUT).await?;
    network.hub().set_last_reconciliation(summary.reconciliation.to_json());
    drop(clients);
    let kept = config.data.is_some().then_some(dir);
    Ok((summary, RunningDemo { network, dashboard, kept, _temporary: temporary }))
}

/// Where a demo keeps its network: in `data` when given (a new directory: an existing one
/// is refused), else in a temporary directory, returned too, that is removed when dropped.
pub(super) fn network_dir(
    data: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, Option<tempfile::TempDir>), String> {
    match data {
        Some(path) if path.exists() => {
            Err(format!("--data {}: already exists; the demo makes a new network there", path.display()))
        }
        Some(path) => Ok((path.to_path_buf(), None)),
        None => {
            let temporary =
                tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            Ok((temporary.path().to_path_buf(), Some(temporary)))
        }
    }
}

/// `dollars` worth of a currency that a dollar buys `per_dollar` hundredths of, in whole
/// units, as decimal text.
fn major_units(dollars: u64, per_dollar: u64) -> String {
    (dollars * per_dollar).div_ceil(100).to_string()
}

/// An amount the simulation wrote as decimal text (`900180`), as its summaries show
/// money: with the currency's decimals, then its code (`900180.00 RUB`), so that what it
/// funds and deposits reads like the balances beside it.
pub(crate) fn money_text(text: &str, currency: Currency) -> String {
    let amount =
        Amount::parse_zero_or_positive(text, currency).expect("the simulation's own amounts are valid");
    format!("{} {currency}", format_minor_units(amount.map_or(0, |a| a.minor_units()), currency))
}

/// The hub operator sets an agreement for every ordered pair of the banks' currencies.
async fn set_agreements(
    network: &LocalNetwork,
    config: &DemoConfig,
    currencies: &[Currency],
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let mut admin = network.admin().await?;
    let mut seen = std::collections::BTreeSet::new();
    for (from, from_currency) in currencies.iter().enumerate() {
        for (to, to_currency) in currencies.iter().enumerate() {
            if from_currency == to_currency || !seen.insert((*from_currency, *to_currency)) {
                continue;
            }
            let pair = format!("{from_currency}/{to_currency}");
            let rate = demo_rate(config.per_dollar(from), config.per_dollar(to));
            set_agreement(&mut admin, pair, rate, DEMO_SPREAD_BPS, progress).await?;
        }
    }
    Ok(())
}

/// The hub operator sets the agreement of `pair` and the demo says what it applies.
pub(super) async fn set_agreement(
    admin: &mut crate::pb::hub_admin_service_client::HubAdminServiceClient<Channel>,
    pair: String,
    rate: String,
    spread_bps: u32,
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let agreement = pb::RateAgreement { currency_pair: pair, rate, spread_bps, ..Default::default() };
    let request = pb::SetAgreementRequest { agreement: Some(agreement) };
    let set = admin.set_agreement(request).await.map_err(|e| format!("agreement: {}", e.message()))?;
    let set = set.into_inner().agreement.unwrap_or_default();
    progress(&format!(
        "Rate agreement {}: {} less {} bp spread = {} applied",
        set.currency_pair, set.rate, set.spread_bps, set.applied_rate
    ));
    Ok(())
}

/// After the payments settle: the receiver of one settled payment returns it (AC04, the
/// account was closed), the sender of another recalls it (DUPL) and the receiver accepts,
/// and the sender of a third recalls it (CUST) and the receiver refuses (NOAS). Cross-
/// currency payments are preferred, so that the conversion back shows.
async fn after_settlement(
    bics: &[Bic],
    clients: &mut [BankServiceClient<Channel>],
    sent: &[(usize, String)],
    finals: &BTreeMap<String, pb::Payment>,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<CaseLine>, String> {
    let mut settled: Vec<(usize, &pb::Payment)> = sent
        .iter()
        .filter_map(|(from, uetr)| finals.get(uetr).map(|p| (*from, p)))
        .filter(|(_, p)| p.status == pb::PaymentStatus::Acsc as i32)
        .collect();
    // Converted ones first, in the order sent.
    settled.sort_by_key(|(_, p)| p.exchange_rate.is_empty());
    let to_index = |p: &pb::Payment| bics.iter().position(|b| b.as_str() == p.counterparty_bic);
    let mut cases = Vec::new();
    let kinds = [("return", "AC04"), ("recall accepted", "DUPL"), ("recall refused", "CUST")];
    for ((kind, reason), (from, payment)) in kinds.into_iter().zip(settled) {
        let Some(to) = to_index(payment) else { continue };
        let uetr = payment.uetr.clone();
        let status = |s: tonic::Status| format!("{kind} of {uetr}: {}", s.message());
        match kind {
            "return" => {
                progress(&format!(
                    "{} returns payment {uetr} to {} (pacs.004, AC04: account closed)",
                    bics[to], bics[from]
                ));
                let request = pb::ReturnPaymentRequest {
                    uetr: uetr.clone(),
                    reason_code: reason.into(),
                    additional_information: "beneficiary account closed".into(),
                };
                clients[to].return_payment(request).await.map_err(status)?;
            }
            _ => {
                progress(&format!(
                    "{} recalls payment {uetr} from {} (camt.056, {reason})",
                    bics[from], bics[to]
                ));
                let request = pb::RecallPaymentRequest {
                    uetr: uetr.clone(),
                    reason_code: reason.into(),
                    additional_information: "demo recall".into(),
                };
                clients[from].recall_payment(request).await.map_err(status)?;
                let accept = kind == "recall accepted";
                wait_for(&mut clients[to], &uetr, |p| {
                    p.recall_status == pb::InvestigationStatus::Pdcr as i32
                })
                .await?;
                progress(&format!(
                    "{} {} the recall (camt.029 {})",
                    bics[to],
                    if accept { "accepts" } else { "refuses" },
                    if accept {
                        "CNCL, then the funds back with a pacs.004 FOCR"
                    } else {
                        "RJCR, NOAS: no answer from the customer"
                    }
                ));
                let request = pb::AnswerRecallRequest {
                    uetr: uetr.clone(),
                    accept,
                    reason_code: if accept { String::new() } else { "NOAS".into() },
                    additional_information: "demo answer".into(),
                };
                clients[to].answer_recall(request).await.map_err(status)?;
            }
        }
        let returned = kind != "recall refused";
        let ended = wait_for(&mut clients[from], &uetr, |p| {
            if returned {
                p.return_state == pb::ReturnState::Returned as i32
            } else {
                p.recall_status == pb::InvestigationStatus::Rjcr as i32
            }
        })
        .await?;
        let money = |m: Option<&pb::Money>| {
            m.and_then(|m| {
                Currency::parse(&m.currency)
                    .ok()
                    .map(|c| format!("{} {c}", format_minor_units(m.minor_units, c)))
            })
            .unwrap_or_default()
        };
        let paid = money(payment.amount.as_ref());
        let received = money(payment.counter_amount.as_ref().or(payment.amount.as_ref()));
        cases.push(CaseLine {
            kind: kind.into(),
            uetr,
            from: bics[from].to_string(),
            to: bics[to].to_string(),
            outcome: match &ended {
                Some(p) if returned => format!("{paid} back to {} at the original rate", p.debtor_account),
                Some(p) => format!("refused ({})", p.recall_reason_code),
                None => "did not end in time".into(),
            },
            done: ended.is_some(),
            paid,
            received,
            reason_code: reason.into(),
        });
    }
    Ok(cases)
}

/// Polls bank `client`'s payment `uetr` until `done` holds (bounded): the payment then,
/// or `None` if it never did.
pub(crate) async fn wait_for(
    client: &mut BankServiceClient<Channel>,
    uetr: &str,
    done: impl Fn(&pb::Payment) -> bool,
) -> Result<Option<pb::Payment>, String> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let request = pb::GetPaymentRequest { uetr: uetr.into() };
        let payment = client.get_payment(request).await.map_err(|s| s.message().to_owned())?;
        let payment = payment.into_inner().payment.unwrap_or_default();
        if done(&payment) {
            return Ok(Some(payment));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_accounts(
    client: &mut BankServiceClient<Channel>,
    currency: Currency,
    block_last: bool,
    deposit: &str,
) -> Result<(), String> {
    for customer in CUSTOMERS {
        let request = pb::OpenAccountRequest {
            account_id: customer.into(),
            currency: currency.to_string(),
            name: format!("Customer {customer}"),
            opening_deposit: deposit.into(),
        };
        client.open_account(request).await.map_err(|s| s.message().to_owned())?;
    }
    if block_last {
        // One blocked account, so that the demo shows an AC06 rejection too.
        let request = pb::SetAccountBlockedRequest { account_id: CUSTOMERS[2].into(), blocked: true };
        client.set_account_blocked(request).await.map_err(|s| s.message().to_owned())?;
    }
    Ok(())
}

/// Polls until every sent payment is final at its sender, or the timeout passes.
async fn wait_final(
    clients: &mut [BankServiceClient<Channel>],
    sent: &[(usize, String)],
) -> Result<BTreeMap<String, pb::Payment>, String> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let mut finals = BTreeMap::new();
        for client in clients.iter_mut() {
            let payments =
                client.list_payments(pb::ListPaymentsRequest {}).await.map_err(|s| s.message().to_owned())?;
            for payment in payments.into_inner().payments {
                if payment.direction == pb::PaymentDirection::Outgoing as i32 && payment.r#final {
                    finals.insert(payment.uetr.clone(), payment);
                }
            }
        }
        if finals.len() == sent.len() || tokio::time::Instant::now() >= deadline {
            return Ok(finals);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn summarise(
    config: &DemoConfig,
    bics: &[Bic],
    clients: &mut [BankServiceClient<Channel>],
    before: &[Balances],
    sent: &[(usize, String)],
    finals: BTreeMap<String, pb::Payment>,
) -> Result<DemoSummary, String> {
    let settled = finals.values().filter(|p| p.status == pb::PaymentStatus::Acsc as i32).count();
    let rejections: Vec<Rejection> = sent
        .iter()
        .filter_map(|(from, uetr)| finals.get(uetr).map(|p| (from, p)))
        .filter(|(_, p)| p.status == pb::PaymentStatus::Rjct as i32)
        .map(|(from, p)| {
            let money = p.amount.clone().unwrap_or_default();
            let amount = Currency::parse(&money.currency)
                .map(|c| format!("{} {}", format_minor_units(money.minor_units, c), c))
                .unwrap_or_default();
            Rejection {
                uetr: p.uetr.clone(),
                from: bics[*from].to_string(),
                to: p.counterparty_bic.clone(),
                amount,
                reason_code: p.reason_code.clone(),
                detail: p.detail.clone(),
            }
        })
        .collect();
    let mut banks = Vec::new();
    for (index, client) in clients.iter_mut().enumerate() {
        let (after, ledger_balanced) = balances(client).await?;
        let lines = after
            .iter()
            .map(|(account, (minor_units, code))| {
                let currency = Currency::parse(code).map_err(|e| e.to_string())?;
                let was = before[index].get(account).map_or(0, |(units, _)| *units);
                Ok(BalanceLine {
                    account: account.clone(),
                    before: format_minor_units(was, currency),
                    after: format_minor_units(*minor_units, currency),
                    currency: code.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        banks.push(BankSummary {
            bic: bics[index].to_string(),
            country: DEMO_BANKS[index].1.into(),
            ledger_balanced,
            balances: lines,
        });
    }
    Ok(DemoSummary {
        currencies: per_currency(&finals),
        cases: Vec::new(),
        reconciliation: Report::default(),
        seed: config.seed,
        orders_refused: 0,
        payments_sent: sent.len(),
        payments_settled: settled,
        payments_rejected: rejections.len(),
        all_final: finals.len() == sent.len(),
        ledgers_balanced: banks.iter().all(|b| b.ledger_balanced),
        rejections,
        banks,
    })
}

/// What was paid in and into each currency, from the senders' final records.
fn per_currency(finals: &BTreeMap<String, pb::Payment>) -> Vec<CurrencySummary> {
    #[derive(Default)]
    struct Totals {
        out: (usize, i64),
        into: (usize, i64),
        converted: usize,
        returned: usize,
    }
    fn entry<'a>(
        totals: &'a mut BTreeMap<String, (Currency, Totals)>,
        money: &pb::Money,
    ) -> Option<&'a mut Totals> {
        let currency = Currency::parse(&money.currency).ok()?;
        Some(&mut totals.entry(money.currency.clone()).or_insert_with(|| (currency, Totals::default())).1)
    }
    let mut totals: BTreeMap<String, (Currency, Totals)> = BTreeMap::new();
    for payment in finals.values() {
        let Some(paid) = payment.amount.as_ref() else { continue };
        let settled = payment.status == pb::PaymentStatus::Acsc as i32;
        if let Some(t) = entry(&mut totals, paid) {
            t.out.0 += 1;
            if settled {
                t.out.1 = t.out.1.saturating_add(paid.minor_units);
                t.converted += usize::from(payment.counter_amount.is_some());
            }
            t.returned += usize::from(payment.return_state == pb::ReturnState::Returned as i32);
        }
        if settled {
            let received = payment.counter_amount.as_ref().unwrap_or(paid);
            if let Some(t) = entry(&mut totals, received) {
                t.into = (t.into.0 + 1, t.into.1.saturating_add(received.minor_units));
            }
        }
    }
    totals
        .into_iter()
        .map(|(code, (currency, t))| CurrencySummary {
            currency: code,
            payments_out: t.out.0,
            paid_out: format_minor_units(t.out.1, currency),
            payments_in: t.into.0,
            received: format_minor_units(t.into.1, currency),
            converted: t.converted,
            returned: t.returned,
        })
        .collect()
}

/// The summary as text for a person.
pub fn render(summary: &DemoSummary) -> String {
    let mut out = String::new();
    let yes_no = |b: bool| if b { "yes" } else { "NO" };
    out.push_str(&format!(
        "\nPayments: {} sent, {} settled (ACSC), {} rejected (RJCT); all final: {}\n",
        summary.payments_sent,
        summary.payments_settled,
        summary.payments_rejected,
        yes_no(summary.all_final)
    ));
    if summary.orders_refused > 0 {
        out.push_str(&format!(
            "{} payment orders were refused by their bank before sending\n",
            summary.orders_refused
        ));
    }
    if !summary.rejections.is_empty() {
        out.push_str("\nRejected payments (the beneficiary bank answered pacs.002 RJCT):\n");
        for r in &summary.rejections {
            out.push_str(&format!(
                "  {}  {} -> {}  {:>14}  {}  {}\n",
                r.uetr, r.from, r.to, r.amount, r.reason_code, r.detail
            ));
        }
    }
    if !summary.currencies.is_empty() {
        out.push_str(
            "\nPer currency (sent: payments instructed in it; paid: of those, what settled; received: settled \
             into it after conversion):\n",
        );
        out.push_str(&format!(
            "  {:<4} {:>5} {:>22} {:>5} {:>22} {:>10} {:>9}\n",
            "", "sent", "paid", "recd", "received", "converted", "returned"
        ));
        for c in &summary.currencies {
            out.push_str(&format!(
                "  {:<4} {:>5} {:>22} {:>5} {:>22} {:>10} {:>9}\n",
                c.currency, c.payments_out, c.paid_out, c.payments_in, c.received, c.converted, c.returned
            ));
        }
    }
    if !summary.cases.is_empty() {
        out.push_str("\nAfter settlement (returns and recalls):\n");
        for c in &summary.cases {
            out.push_str(&format!(
                "  {:<16} {}  {} -> {}  paid {}, received {}  {}: {}\n",
                c.kind, c.uetr, c.from, c.to, c.paid, c.received, c.reason_code, c.outcome
            ));
        }
    }
    out.push_str("\nBalances before -> after (customer accounts and the settlement account at the hub):\n");
    for bank in &summary.banks {
        out.push_str(&format!(
            "  {} ({})  ledger balances: {}\n",
            bank.bic,
            bank.country,
            yes_no(bank.ledger_balanced)
        ));
        for line in &bank.balances {
            out.push_str(&format!(
                "    {:<22} {:>16} -> {:>16} {}\n",
                line.account, line.before, line.after, line.currency
            ));
        }
    }
    out.push_str(&format!(
        "\nEvery ledger balances (debits = credits): {}\n",
        yes_no(summary.ledgers_balanced)
    ));
    out.push('\n');
    out.push_str(&summary.reconciliation.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rate;

    /// Issue 20: under every agreement the demo can set (any two of its eight banks, up to
    /// `--banks 8`), the applied rate fits ISO 20022's `XchgRate`, so every converted
    /// payment can be written as XML; and each agreed rate is within half a unit of its
    /// last digit of the true ratio (the rounding loses no more than that).
    #[test]
    fn every_demo_agreement_applies_a_rate_xml_can_hold() {
        for (_, _, from_code, from) in DEMO_BANKS {
            for (_, _, to_code, to) in DEMO_BANKS.iter().filter(|b| b.2 != from_code) {
                let text = demo_rate(from, *to);
                let rate = Rate::parse(&text).unwrap_or_else(|e| panic!("{from_code}/{to_code} {text}: {e}"));
                let applied = rate.less_spread(DEMO_SPREAD_BPS).unwrap();
                assert!(applied.fits_base_one_rate(), "{from_code}/{to_code}: {text} applies {applied}");
                let decimals = text.split_once('.').map_or(0, |(_, f)| f.len() as i32);
                let error = (text.parse::<f64>().unwrap() - *to as f64 / from as f64).abs();
                assert!(error <= 0.5 * 10f64.powi(-decimals) * 1.000001, "{from_code}/{to_code}: {text}");
            }
        }
    }
}
