//! `corridor demo --linked`: two national networks joined by a link, told for a class.
//!
//! A Russian network (its own `pki init`, hub and two banks, settling in roubles) and an
//! Iranian one (the same, in rials) link their hubs under a bilateral agreement between
//! the Bank of Russia and Bank Markazi: 450 rials a rouble, 0.0022 roubles a rial, a swap
//! line with a cap on each side. The story: a payment each way, exact in both currencies;
//! the link goes down (the Iranian hub stops) and payments sent meanwhile wait at the
//! Russian hub; the link comes back and they are delivered exactly once; then each
//! network is reconciled.
//!
//! Everything told is read from the running networks: amounts from the banks' records
//! and statements, positions, queues and the link's state from the hubs.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::demo::{RunningDashboard, network_dir, serve_dashboards_on};
use super::narrate::{MOVE_TIMEOUT, wait_for};
use super::{LinkTerms, LocalNetwork, link_networks};
use crate::bank::{Bank, PaymentOrder};
use crate::hub::dashboard::DashboardHub;
use crate::model::{Amount, Bic, Currency, PaymentStatus, Rate, Uetr, format_minor_units};
use crate::net::tracker_client;
use crate::pb;
use crate::reconcile::Report;
use crate::reconcile::sources::{reconcile_link_live, reconcile_live};
use crate::tls;

/// One network of the story: its name, folder, currency, link identity and name, and
/// its two banks with their customer (account, name, opening deposit in major units).
struct Country {
    name: &'static str,
    adjective: &'static str,
    folder: &'static str,
    currency: &'static str,
    link: (&'static str, &'static str),
    banks: [(&'static str, &'static str, &'static str, &'static str); 2],
}

const RUSSIA: Country = Country {
    name: "Russia",
    adjective: "Russian",
    folder: "russia",
    currency: "RUB",
    link: ("CBRFRUMMXXX", "Bank of Russia"),
    banks: [("CRDARUMMXXX", "ANNA", "Anna Ivanova", "100000"), ("CRDCRUMMXXX", "BORIS", "Boris Petrov", "0")],
};
const IRAN: Country = Country {
    name: "Iran",
    adjective: "Iranian",
    folder: "iran",
    currency: "IRR",
    link: ("BMJIIRTHXXX", "Bank Markazi"),
    banks: [
        ("CRDBIRTHXXX", "DARIUS", "Darius Karimi", "0"),
        ("CRDDIRTHXXX", "LEILA", "Leila Ahmadi", "50000000"),
    ],
};
/// The agreement: rials a rouble, roubles a rial.
pub const RUB_IRR: &str = "450";
/// See [`RUB_IRR`].
pub const IRR_RUB: &str = "0.0022";
/// The swap line's cap on each side, in that side's currency.
const CAPS: (&str, &str) = ("1000000.00", "450000000.00");
/// What each bank prefunds at its own hub, in its currency.
const LIQUIDITY: &str = "10000000";
/// What to run.
#[derive(Clone, Debug, Default)]
pub struct LinkedConfig {
    /// Where to keep both networks (`russia/` and `iran/` in it, a new directory); a
    /// temporary directory when `None`.
    pub data: Option<PathBuf>,
    /// Where to serve the dashboard of both hubs; none when `None`.
    pub dashboard: Option<std::net::SocketAddr>,
}

/// One payment across the link, as the story ended it.
#[derive(Clone, Debug, Serialize)]
pub struct LinkedPayment {
    /// UETR.
    pub uetr: String,
    /// Sending bank.
    pub from: String,
    /// Receiving bank.
    pub to: String,
    /// What the sender paid, in its currency (`1000.00 RUB`).
    pub paid: String,
    /// What the receiver was credited, in its currency (`450000.00 IRR`).
    pub received: String,
    /// The agreed rate applied.
    pub rate: String,
    /// Its final status at the sender (`ACSC`).
    pub status: String,
    /// Sent while the link was down (and held at the sender's hub).
    pub sent_while_link_down: bool,
    /// Records of it at the receiving bank (one: delivered exactly once).
    pub records_at_receiver: usize,
    /// Credits of it to the beneficiary's account (one).
    pub credits_to_beneficiary: usize,
}

/// A swap line as one hub sees it: the other network's link participant's position.
#[derive(Clone, Debug, Serialize)]
pub struct SwapLine {
    /// The network whose hub this is.
    pub network: String,
    /// The peer's link identity.
    pub link: String,
    /// Its name.
    pub name: String,
    /// The position's settled net, in the hub's currency (received minus sent by the link).
    pub settled_net: String,
    /// The swap line's cap on this side.
    pub cap: String,
}

/// One network's reconciliation.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkReconciliation {
    /// The network.
    pub network: String,
    /// Its report.
    pub report: Report,
}

/// What the linked demo did.
#[derive(Clone, Debug, Serialize)]
pub struct LinkedSummary {
    /// The payments across the link, in the order sent.
    pub payments: Vec<LinkedPayment>,
    /// Messages the Russian hub held for the link while it was down.
    pub held_while_link_down: usize,
    /// The swap line at each hub at the end.
    pub swap_lines: Vec<SwapLine>,
    /// Each network's reconciliation.
    pub reconciliations: Vec<NetworkReconciliation>,
}

impl LinkedSummary {
    /// True when every payment settled and reached its beneficiary exactly once, and
    /// both networks reconcile without a break.
    pub fn ok(&self) -> bool {
        self.payments.iter().all(|p| {
            p.status == PaymentStatus::Acsc.to_string()
                && p.records_at_receiver == 1
                && p.credits_to_beneficiary == 1
        }) && self.held_while_link_down > 0
            && self.reconciliations.iter().all(|r| r.report.is_clean())
    }
}

/// The two networks (and the dashboard) still running after the story was told.
pub struct RunningLinked {
    russia: LocalNetwork,
    iran: LocalNetwork,
    dashboard: Option<Shown>,
    kept: Option<PathBuf>,
    _temporary: Option<tempfile::TempDir>,
}

impl RunningLinked {
    /// The Russian network and the Iranian one.
    pub fn networks(&self) -> (&LocalNetwork, &LocalNetwork) {
        (&self.russia, &self.iran)
    }

    /// The dashboard's URL (`http://ADDR/`), when it is served.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard.as_ref().map(|d| d.running.url.as_str())
    }

    /// Stops the dashboard, then both networks, gracefully.
    pub async fn stop(self, out: &mut dyn FnMut(&str)) -> Result<(), String> {
        if let Some(Shown { running, hubs }) = self.dashboard {
            running.stop().await?;
            // They hold the hubs: let go before the hubs close.
            drop(hubs);
        }
        self.russia.stop().await?;
        self.iran.stop().await?;
        if let Some(dir) = self.kept {
            out(&format!(
                "Both networks are kept in {}: `corridor reconcile --dir {}/russia` (or iran) checks one again",
                dir.display(),
                dir.display()
            ));
        }
        Ok(())
    }
}

/// A bank of the story: its country and its index there.
type BankAt = (&'static Country, usize);
/// A payment sent while the link was down: its UETR, its sender and its receiver.
type Held = (Uetr, BankAt, BankAt);

/// The stage: both networks running, linked, with their banks, and the dashboard.
struct Stage {
    russia: LocalNetwork,
    iran: LocalNetwork,
    dashboard: Option<Shown>,
}

/// The dashboard of both hubs (Russia's at `/`, Iran's at `/hubs/1/`), and the hubs it
/// shows, which the story takes away while the Iranian hub is down.
struct Shown {
    running: RunningDashboard,
    hubs: [DashboardHub; 2],
}

/// Serves the dashboard of both hubs on `addr`.
async fn show(
    russia: &LocalNetwork,
    iran: &LocalNetwork,
    addr: std::net::SocketAddr,
) -> Result<Shown, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--dashboard-addr: cannot listen on {addr}: {e}"))?;
    let hubs = [
        DashboardHub::new(format!("{} ({})", RUSSIA.name, RUSSIA.currency), russia.hub().clone()),
        DashboardHub::new(format!("{} ({})", IRAN.name, IRAN.currency), iran.hub().clone()),
    ];
    let running = serve_dashboards_on(hubs.to_vec(), listener)?;
    Ok(Shown { running, hubs })
}

impl Stage {
    fn network(&self, country: &Country) -> &LocalNetwork {
        if country.folder == RUSSIA.folder { &self.russia } else { &self.iran }
    }

    fn bank(&self, country: &Country, index: usize) -> &Bank {
        let network = self.network(country);
        &network.banks[network.index_of(bic(country.banks[index].0))].bank
    }
}

fn bic(text: &str) -> Bic {
    Bic::parse(text).expect("the demo's BICs are valid")
}

fn currency(country: &Country) -> Currency {
    Currency::parse(country.currency).expect("the demo's currencies are ISO 4217")
}

fn money(amount: Amount) -> String {
    format!("{} {}", format_minor_units(amount.minor_units(), amount.currency()), amount.currency())
}

/// Runs the story to its end (the reconciliations included) and leaves both networks
/// running: [`RunningLinked::stop`] stops them.
pub async fn start_linked(
    config: &LinkedConfig,
    out: &mut dyn FnMut(&str),
) -> Result<(LinkedSummary, RunningLinked), String> {
    let (dir, temporary) = network_dir(config.data.as_deref())?;
    out("Two national networks, linked: Russia (SPFS-like, roubles) and Iran (SEPAM-like, rials).");
    let mut stage = set_up(&dir, config.dashboard, out).await?;
    let mut payments = Vec::new();
    out("");
    out("1. A payment each way across the link");
    payments.push(pay(&stage, out, (&RUSSIA, 0), (&IRAN, 0), "1000.00", false).await?);
    out(
        "  Its whole path, as `corridor track UETR --linked-dir ... --linked-hub ...` shows it from both hubs:",
    );
    tell_path(&stage, out, &payments[0].uetr).await?;
    payments.push(pay(&stage, out, (&IRAN, 1), (&RUSSIA, 1), "100000.00", false).await?);
    tell_swap_lines(&stage, out);
    out("");
    out("2. The link goes down");
    let (held, sent) = link_down(&mut stage, out).await?;
    out("");
    out("3. The link comes back");
    payments.extend(link_back(&mut stage, out, &sent).await?);
    tell_swap_lines(&stage, out);
    out("");
    out("4. The reconciliation of both networks");
    let reconciliations = reconcile(&stage, out).await?;
    let summary = LinkedSummary {
        payments,
        held_while_link_down: held,
        swap_lines: swap_lines(&stage),
        reconciliations,
    };
    out("");
    out(if summary.ok() {
        "The end. Two networks, two currencies, one link that went down and came back: nothing lost, nothing doubled."
    } else {
        "The end, but not a good one: see above."
    });
    let Stage { russia, iran, dashboard } = stage;
    let kept = config.data.is_some().then_some(dir);
    Ok((summary, RunningLinked { russia, iran, dashboard, kept, _temporary: temporary }))
}

/// Runs the story and stops both networks; returns the summary.
pub async fn run_linked(config: &LinkedConfig, out: &mut dyn FnMut(&str)) -> Result<LinkedSummary, String> {
    let (summary, running) = start_linked(config, out).await?;
    running.stop(out).await?;
    Ok(summary)
}

/// Each network from its own `pki init`, its banks funded, the link, the banks' nodes
/// and their customers.
async fn set_up(
    dir: &Path,
    dashboard: Option<std::net::SocketAddr>,
    out: &mut dyn FnMut(&str),
) -> Result<Stage, String> {
    let mut russia = create(dir, &RUSSIA, out).await?;
    let mut iran = create(dir, &IRAN, out).await?;
    let terms = LinkTerms {
        a: (bic(RUSSIA.link.0), RUSSIA.link.1.into(), currency(&RUSSIA)),
        b: (bic(IRAN.link.0), IRAN.link.1.into(), currency(&IRAN)),
        rates: (
            Rate::parse(RUB_IRR).map_err(|e| e.to_string())?,
            Rate::parse(IRR_RUB).map_err(|e| e.to_string())?,
        ),
        caps: (
            Amount::parse(CAPS.0, currency(&RUSSIA)).map_err(|e| e.to_string())?,
            Amount::parse(CAPS.1, currency(&IRAN)).map_err(|e| e.to_string())?,
        ),
    };
    link_networks(&mut russia, &mut iran, &terms).await?;
    let dashboard = match dashboard {
        Some(addr) => Some(show(&russia, &iran, addr).await?),
        None => None,
    };
    let stage = Stage { russia, iran, dashboard };
    if let Some(shown) = &stage.dashboard {
        out(&format!("Dashboard: {}", shown.running.url));
        out(&format!("  (the Russian hub's; the Iranian hub's is at {}hubs/1/)", shown.running.url));
    }
    wait_for(|| link_is_up(&stage).then_some(()))
        .await
        .map_err(|_| "the link did not come up".to_string())?;
    out(&format!(
        "The link: {} ({}) and {} ({}) each take a link certificate from their own CA",
        RUSSIA.link.1, RUSSIA.link.0, IRAN.link.1, IRAN.link.0
    ));
    out(
        "and exchange bundles (CA certificate and hub keys). The Russian hub dials the Iranian hub's link listener;",
    );
    out("each trusts the other's CA for that one link certificate only. Over the link each hub sends");
    out("its directory, signed, so banks verify the other network's banks' own signatures end to end.");
    out(&format!(
        "The agreement: {RUB_IRR} IRR a rouble, {IRR_RUB} RUB a rial; the swap line's cap is {} RUB on the",
        CAPS.0
    ));
    out(&format!(
        "Russian side and {} IRR on the Iranian side. At each hub the other network is one",
        CAPS.1
    ));
    out("participant, its central bank, whose position is the swap line.");
    let mut stage = stage;
    start_banks(&mut stage.russia, &RUSSIA, out).await?;
    start_banks(&mut stage.iran, &IRAN, out).await?;
    Ok(stage)
}

/// Whether each hub has the link up and the other network's banks in its directory.
fn link_is_up(stage: &Stage) -> bool {
    stage.russia.hub().link_ready(bic(IRAN.link.0)) && stage.iran.hub().link_ready(bic(RUSSIA.link.0))
}

/// One network: `pki init` for its two banks, its hub, their liquidity.
async fn create(dir: &Path, country: &Country, out: &mut dyn FnMut(&str)) -> Result<LocalNetwork, String> {
    let path = dir.join(country.folder);
    let pki =
        tls::init(&path, &[bic(country.banks[0].0), bic(country.banks[1].0)]).map_err(|e| e.to_string())?;
    let network = LocalNetwork::start_hub(pki, Default::default()).await?;
    let mut admin = network.admin().await?;
    for (bank, ..) in country.banks {
        let request = pb::FundRequest {
            participant_bic: bank.into(),
            currency: country.currency.into(),
            amount: LIQUIDITY.into(),
        };
        admin.fund(request).await.map_err(|e| format!("funding {bank}: {}", e.message()))?;
    }
    out(&format!(
        "{}: its own CA (pki init) and hub in {}, hub on {};",
        country.name,
        path.display(),
        network.hub_url,
    ));
    out(&format!(
        "  banks {} and {}, each prefunded with {} at the hub.",
        country.banks[0].0,
        country.banks[1].0,
        super::demo::money_text(LIQUIDITY, currency(country))
    ));
    Ok(network)
}

async fn start_banks(
    network: &mut LocalNetwork,
    country: &Country,
    out: &mut dyn FnMut(&str),
) -> Result<(), String> {
    for (bank, account, name, deposit) in country.banks {
        let index = network.start_bank(bic(bank)).await?;
        let node = &network.banks[index].bank;
        node.open_account(account, country.currency, name, deposit).await.map_err(|e| e.to_string())?;
        let opening =
            Amount::parse_zero_or_positive(deposit, currency(country)).map_err(|e| e.to_string())?;
        let opening = opening.map_or_else(
            || format!("{} {}", format_minor_units(0, currency(country)), country.currency),
            money,
        );
        out(&format!("  {bank} ({}): {name} opens account {account} with {opening}", country.name));
    }
    Ok(())
}

/// Submits a payment of `amount` (in the payer's currency) from the customer of bank
/// `from` to the customer of bank `to`; returns its UETR.
async fn submit(
    stage: &Stage,
    from: (&Country, usize),
    to: (&Country, usize),
    amount: &str,
) -> Result<Uetr, String> {
    let (payee_bank, payee_account, payee_name, _) = to.0.banks[to.1];
    let order = PaymentOrder {
        debtor_account: from.0.banks[from.1].1.into(),
        creditor_agent: payee_bank.into(),
        creditor_account: payee_account.into(),
        creditor_name: payee_name.into(),
        amount: amount.into(),
        currency: from.0.currency.into(),
        remittance_information: "across the link".into(),
        settlement_currency: to.0.currency.into(),
        quote_id: String::new(),
    };
    let payment = stage.bank(from.0, from.1).submit_payment(&order).await.map_err(|e| e.to_string())?;
    Ok(payment.uetr)
}

/// Sends one payment and tells it once it has settled.
async fn pay(
    stage: &Stage,
    out: &mut dyn FnMut(&str),
    from: (&Country, usize),
    to: (&Country, usize),
    amount: &str,
    while_down: bool,
) -> Result<LinkedPayment, String> {
    let before = hub_moves(stage, from, to);
    let uetr = submit(stage, from, to, amount).await?;
    let (payer, payee) = (from.0.banks[from.1], to.0.banks[to.1]);
    out(&format!(
        "{} ({}, {}) pays {amount} {} to {} ({}, {}).",
        payer.2, payer.0, from.0.name, from.0.currency, payee.2, payee.0, to.0.name
    ));
    out(&format!(
        "  Path: {} -> {} hub -> link -> {} hub -> {}; the pacs.002 comes back the same way.",
        payer.0, from.0.adjective, to.0.adjective, payee.0
    ));
    let payment = settled(stage, out, uetr, from, to, while_down).await?;
    tell_hub_moves(stage, out, from, to, &before);
    Ok(payment)
}

/// The settled nets a payment from `from` to `to` moves: the sending bank's and the
/// link's at the sender's hub, the link's and the receiving bank's at the receiver's.
fn hub_moves(stage: &Stage, from: (&Country, usize), to: (&Country, usize)) -> [i64; 4] {
    let settled_net = |home: &Country, participant: &str| {
        stage.network(home).hub().positions().position(bic(participant), currency(home)).settled_net
    };
    [
        settled_net(from.0, from.0.banks[from.1].0),
        settled_net(from.0, to.0.link.0),
        settled_net(to.0, from.0.link.0),
        settled_net(to.0, to.0.banks[to.1].0),
    ]
}

/// Tells how each hub settled the payment, each in its own currency.
fn tell_hub_moves(
    stage: &Stage,
    out: &mut dyn FnMut(&str),
    from: (&Country, usize),
    to: (&Country, usize),
    before: &[i64; 4],
) {
    let after = hub_moves(stage, from, to);
    let change = |index: usize, home: &Country| {
        let code = currency(home);
        let moved = after[index] - before[index];
        format!("{}{} {code}", if moved > 0 { "+" } else { "" }, format_minor_units(moved, code))
    };
    out(&format!(
        "  The {} hub settles in {}: {} {}, {} (the link) {}.",
        from.0.adjective,
        from.0.currency,
        from.0.banks[from.1].0,
        change(0, from.0),
        to.0.link.1,
        change(1, from.0)
    ));
    out(&format!(
        "  The {} hub settles in {}: {} (the link) {}, {} {}.",
        to.0.adjective,
        to.0.currency,
        from.0.link.1,
        change(2, to.0),
        to.0.banks[to.1].0,
        change(3, to.0)
    ));
}

/// Waits until payment `uetr` is final at its sender and credited at its receiver, and
/// tells what each side booked.
async fn settled(
    stage: &Stage,
    out: &mut dyn FnMut(&str),
    uetr: Uetr,
    from: (&Country, usize),
    to: (&Country, usize),
    while_down: bool,
) -> Result<LinkedPayment, String> {
    let text = uetr.to_string();
    let (payer_bank, payee_bank) = (stage.bank(from.0, from.1), stage.bank(to.0, to.1));
    let payee_account = to.0.banks[to.1].1;
    let payment = wait_for(|| {
        let payment = payer_bank.payment(&text).ok().filter(|p| p.status.is_final())?;
        (!credits(payee_bank, payee_account, uetr).is_empty()).then_some(payment)
    })
    .await?;
    let received = payment.settlement_amount();
    let rate = payment.conversion.as_ref().map_or_else(|| "1".into(), |c| c.rate.to_string());
    let credited = credits(payee_bank, payee_account, uetr);
    let records = payee_bank.payments().map_err(|e| e.to_string())?.iter().filter(|p| p.uetr == uetr).count();
    out(&format!("  UETR {uetr}: {} at the sender", payment.status));
    out(&format!(
        "  {} debited {}; at {rate} the pacs.008 carries {} for {}; {} credited {}.",
        from.0.banks[from.1].1,
        money(payment.instructed_amount()),
        money(received),
        to.0.banks[to.1].0,
        payee_account,
        credited
            .iter()
            .map(|minor| format_minor_units(*minor, received.currency()))
            .collect::<Vec<_>>()
            .join(" + ")
            + " "
            + received.currency().code()
    ));
    Ok(LinkedPayment {
        uetr: text,
        from: from.0.banks[from.1].0.into(),
        to: to.0.banks[to.1].0.into(),
        paid: money(payment.instructed_amount()),
        received: money(received),
        rate,
        status: payment.status.to_string(),
        sent_while_link_down: while_down,
        records_at_receiver: records,
        credits_to_beneficiary: credited.len(),
    })
}

/// The credits of payment `uetr` to `account` at `bank`, in minor units, as its
/// statement (camt.053) has them.
fn credits(bank: &Bank, account: &str, uetr: Uetr) -> Vec<i64> {
    let Ok(statement) = bank.statement(account, "", 0, i64::MAX) else { return Vec::new() };
    statement.entries.iter().filter(|e| e.uetr == Some(uetr)).map(|e| e.signed_minor_units()).collect()
}

/// The Iranian hub stops; two Russian payments are ACKed by the Russian hub and held for
/// the link. Returns how many messages it held, and the payments.
async fn link_down(stage: &mut Stage, out: &mut dyn FnMut(&str)) -> Result<(usize, Vec<Held>), String> {
    let iranian_link = bic(IRAN.link.0);
    // Nothing of the first payments still waits for the link's ACK: what waits from now
    // on is what is sent while it is down.
    wait_for(|| (stage.russia.hub().queued_for(iranian_link) == 0).then_some(())).await?;
    out("The Iranian hub stops (its journal stays on disk; its banks wait for it).");
    // The dashboard holds the hub: it lets go first, and says the hub is down meanwhile.
    if let Some(shown) = &stage.dashboard {
        shown.hubs[1].set(None);
    }
    stage.iran.stop_hub().await?;
    wait_for(|| (!stage.russia.hub().link_up(iranian_link)).then_some(())).await?;
    out(&format!("it sees the link to {} ({}) down and keeps dialling it.", IRAN.link.1, IRAN.link.0));
    let plan: [(&'static Country, usize, &'static Country, usize, &str); 2] =
        [(&RUSSIA, 0, &IRAN, 1, "500.00"), (&RUSSIA, 0, &IRAN, 0, "20.50")];
    let mut sent = Vec::new();
    for (from, from_index, to, to_index, amount) in plan {
        let uetr = submit(stage, (from, from_index), (to, to_index), amount).await?;
        let text = uetr.to_string();
        let status = wait_for(|| {
            stage.russia.hub().payment(&uetr)?.acknowledged_unix_ms?;
            let status = stage.bank(from, from_index).payment(&text).ok()?.status;
            (status != PaymentStatus::Pdng).then_some(status)
        })
        .await?;
        let (payer, payee) = (from.banks[from_index], to.banks[to_index]);
        out(&format!("{} pays {amount} RUB to {} ({}) meanwhile: UETR {uetr}.", payer.2, payee.2, payee.0));
        out(&format!(
            "  The Russian hub checks it, reserves it against the swap line's cap, journals it and ACKs it: {status}"
        ));
        out("  at the sender (accepted by its hub, not settled yet).");
        sent.push((uetr, (from, from_index), (to, to_index)));
    }
    let held = stage.russia.hub().queued_for(iranian_link);
    out(&format!(
        "The Russian hub holds {held} message(s) for the link (store and forward); the link is {}.",
        if stage.russia.hub().link_up(iranian_link) { "up" } else { "down" }
    ));
    Ok((held, sent))
}

/// The Iranian hub starts again from its journal; the Russian hub dials it, resends
/// what it held, and each held payment settles once.
async fn link_back(
    stage: &mut Stage,
    out: &mut dyn FnMut(&str),
    sent: &[Held],
) -> Result<Vec<LinkedPayment>, String> {
    let iranian_link = bic(IRAN.link.0);
    stage.iran.start_hub_again().await?;
    if let Some(shown) = &stage.dashboard {
        shown.hubs[1].set(Some(stage.iran.hub().clone()));
    }
    out("The Iranian hub starts again from its journal, and its banks reconnect. The Russian hub dials it;");
    out("the link session's Hello says what each side last processed, and the Russian hub sends what it");
    out("held, in order of its output sequence numbers. Anything it may have sent before goes out flagged");
    out(
        "as a possible duplicate, and the Iranian hub answers a message it already has with its original ACK.",
    );
    wait_for(|| link_is_up(stage).then_some(())).await?;
    let mut payments = Vec::new();
    for (uetr, from, to) in sent {
        payments.push(settled(stage, out, *uetr, *from, *to, true).await?);
    }
    out("  The first one's path: between the Russian hub's ACK and the link hop (crossed_link), the time");
    out("  the link was down.");
    tell_path(stage, out, &payments[0].uetr).await?;
    wait_for(|| (stage.russia.hub().queued_for(iranian_link) == 0).then_some(())).await?;
    for payment in &payments {
        out(&format!(
            "Exactly once: {} has {} record(s) of {} and credited it {} time(s).",
            payment.to, payment.records_at_receiver, payment.uetr, payment.credits_to_beneficiary
        ));
    }
    out(&format!(
        "The Russian hub holds {} message(s) for the link now.",
        stage.russia.hub().queued_for(iranian_link)
    ));
    Ok(payments)
}

/// Payment `uetr`'s steps at both hubs, as their trackers have them, in time order.
async fn tell_path(stage: &Stage, out: &mut dyn FnMut(&str), uetr: &str) -> Result<(), String> {
    let mut steps = Vec::new();
    for country in [&RUSSIA, &IRAN] {
        let network = stage.network(country);
        let mut tracker = tracker_client(&network.network, &network.hub_url).await?;
        let request = pb::TrackRequest { uetr: uetr.to_owned(), this_hub_only: true };
        let tracked = tracker.track(request).await.map_err(|s| format!("track {uetr}: {}", s.message()))?;
        steps.extend(tracked.into_inner().steps.into_iter().map(|step| (country.adjective, step)));
    }
    steps.sort_by_key(|(_, step)| step.time_unix_ms);
    let start = steps.first().map_or(0, |(_, step)| step.time_unix_ms);
    for (hub, step) in &steps {
        out(&format!(
            "    +{:>5} ms  {:<8} hub  {:<19} by {}",
            step.time_unix_ms - start,
            hub,
            step.step,
            step.by_bic
        ));
    }
    Ok(())
}

/// The swap line at each hub: the other network's link participant's position.
fn swap_lines(stage: &Stage) -> Vec<SwapLine> {
    [(&RUSSIA, &IRAN), (&IRAN, &RUSSIA)]
        .into_iter()
        .map(|(home, peer)| {
            let code = currency(home);
            let position = stage.network(home).hub().positions().position(bic(peer.link.0), code);
            SwapLine {
                network: home.name.into(),
                link: peer.link.0.into(),
                name: peer.link.1.into(),
                settled_net: format!("{} {code}", format_minor_units(position.settled_net, code)),
                cap: format!("{} {code}", format_minor_units(position.net_debit_cap, code)),
            }
        })
        .collect()
}

fn tell_swap_lines(stage: &Stage, out: &mut dyn FnMut(&str)) {
    out("The swap line, as each hub keeps it (each in its own currency, the link's settled net):");
    for line in swap_lines(stage) {
        out(&format!(
            "  at the {} hub, {} ({}): {} (cap {})",
            if line.network == RUSSIA.name { RUSSIA.adjective } else { IRAN.adjective },
            line.name,
            line.link,
            line.settled_net,
            line.cap
        ));
    }
}

/// Each network's hub and banks, reconciled.
async fn reconcile(stage: &Stage, out: &mut dyn FnMut(&str)) -> Result<Vec<NetworkReconciliation>, String> {
    let mut reports = Vec::new();
    for country in [&RUSSIA, &IRAN] {
        let network = stage.network(country);
        let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
        let report = reconcile_live(&network.network, &network.hub_url, &banks, MOVE_TIMEOUT).await?;
        tell_report(
            &format!("{} (its hub and its {} banks)", country.name, report.participants_checked),
            &report,
            out,
        );
        network.hub().set_last_reconciliation(report.to_json());
        reports.push(NetworkReconciliation { network: country.name.into(), report });
    }
    out("Across the link: both hubs have every payment that crossed it, alike in both currencies, and each");
    out("hub's swap line is exactly what the payments it settled across the link add up to.");
    let russia = (&stage.russia.network, stage.russia.hub_url.as_str());
    let iran = (&stage.iran.network, stage.iran.hub_url.as_str());
    let report = reconcile_link_live(russia, iran, MOVE_TIMEOUT).await?;
    tell_report("The link", &report, out);
    reports.push(NetworkReconciliation { network: "the link".into(), report });
    Ok(reports)
}

fn tell_report(what: &str, report: &Report, out: &mut dyn FnMut(&str)) {
    out(&format!(
        "{what}: {} payments checked, {} in transit, {} breaks.",
        report.payments_checked,
        report.payments_in_transit,
        report.breaks.len()
    ));
    if !report.is_clean() {
        for line in report.render().lines() {
            out(&format!("  {line}"));
        }
    }
}
