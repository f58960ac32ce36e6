//! `corridor demo`: a hub and a few banks on loopback, a stream of payments among
//! them (some deliberately refused), and a readable account of what happened.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tonic::transport::Channel;

use super::{LocalNetwork, Rng};
use crate::model::{Bic, Currency, format_minor_units};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::reconcile::Report;
use crate::reconcile::sources::reconcile_live;

/// Banks the demo can start: fictional BICs in countries that built SWIFT alternatives
/// (SPFS, SEPAM, CIPS, SFMS) and in their partners.
pub const DEMO_BANKS: [(&str, &str); 8] = [
    ("CRDARUMMXXX", "Russia"),
    ("CRDBIRTHXXX", "Iran"),
    ("CRDCCNSHXXX", "China"),
    ("CRDDINBBXXX", "India"),
    ("CRDEBRSPXXX", "Brazil"),
    ("CRDFZAJJXXX", "South Africa"),
    ("CRDGTRISXXX", "Turkey"),
    ("CRDHAEADXXX", "United Arab Emirates"),
];
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
    /// Currency of every account and payment.
    pub currency: String,
    /// Where to keep the network (PKI and data); a temporary directory when `None`.
    pub data: Option<std::path::PathBuf>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { banks: 4, payments: 20, seed: 2026, currency: "CNY".into(), data: None }
    }
}

impl DemoConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<Currency, String> {
        if !(2..=DEMO_BANKS.len()).contains(&self.banks) {
            return Err(format!("--banks must be between 2 and {} (got {})", DEMO_BANKS.len(), self.banks));
        }
        if !(1..=DEMO_PAYMENTS_MAX).contains(&self.payments) {
            return Err(format!(
                "--payments must be between 1 and {DEMO_PAYMENTS_MAX} (got {})",
                self.payments
            ));
        }
        Currency::parse(&self.currency).map_err(|e| format!("--currency: {}", e.rule))
    }
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
    /// Per bank.
    pub banks: Vec<BankSummary>,
    /// The reconciliation of the hub with every bank at the end.
    pub reconciliation: Report,
}

impl DemoSummary {
    /// True when the demo succeeded: every order sent, every payment final, every
    /// ledger balanced.
    pub fn ok(&self) -> bool {
        self.orders_refused == 0 && self.all_final && self.ledgers_balanced && self.reconciliation.is_clean()
    }
}

/// One payment of the workload.
struct PlannedPayment {
    from: usize,
    to: usize,
    debtor: &'static str,
    creditor: String,
    minor_units: i64,
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
                minor_units: 100 + rng.below(500_000) as i64,
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
pub async fn run_demo(config: &DemoConfig, progress: &mut dyn FnMut(&str)) -> Result<DemoSummary, String> {
    let currency = config.validate()?;
    // Kept in `--data` when given (a new directory), else in one removed at the end.
    let temporary;
    let dir = match &config.data {
        Some(path) if path.exists() => {
            return Err(format!(
                "--data {}: already exists; the demo makes a new network there",
                path.display()
            ));
        }
        Some(path) => path.clone(),
        None => {
            temporary =
                tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            temporary.path().to_path_buf()
        }
    };
    let bics: Vec<Bic> =
        DEMO_BANKS[..config.banks].iter().map(|(bic, _)| Bic::parse(bic).expect("valid")).collect();
    progress(&format!("Creating a demo PKI for {} banks in {}", bics.len(), dir.display()));
    let mut network = LocalNetwork::create(&dir, &bics).await?;
    progress(&format!("Hub listening on {} (mTLS)", network.hub_url));
    // Enough for every payment to go one way: the demo shows messaging, not a liquidity squeeze.
    let liquidity = (PAYMENT_MAX * config.payments.max(1) as u64).to_string();
    network.fund_all(&config.currency, &liquidity).await?;
    progress(&format!("Hub operator prefunds each bank's position with {liquidity} {currency}"));
    let mut clients = Vec::new();
    for (index, bic) in bics.iter().enumerate() {
        network.start_bank(*bic).await?;
        progress(&format!(
            "Bank {bic} ({}) serving its operators on {}",
            DEMO_BANKS[index].1, network.banks[index].url
        ));
        let mut client = network.operator(index).await?;
        open_accounts(&mut client, &config.currency, index + 1 == bics.len(), config.payments).await?;
        clients.push(client);
    }
    let mut before = Vec::new();
    for client in &mut clients {
        before.push(balances(client).await?.0);
    }
    progress(&format!("Sending {} payments (seed {})", config.payments, config.seed));
    let mut sent = Vec::new();
    let mut orders_refused = 0;
    for planned in plan(config) {
        let request = pb::SubmitPaymentRequest {
            settlement_currency: String::new(),
            quote_id: String::new(),
            debtor_account: planned.debtor.into(),
            creditor_agent_bic: bics[planned.to].to_string(),
            creditor_account: planned.creditor.clone(),
            creditor_name: format!("Customer {}", planned.creditor),
            amount: format_minor_units(planned.minor_units, currency),
            currency: config.currency.clone(),
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
    let mut summary = summarise(config, &bics, &mut clients, &before, &sent, finals).await?;
    summary.orders_refused = orders_refused;
    progress("Reconciling the hub's journal with every bank's records");
    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    summary.reconciliation =
        reconcile_live(&network.network, &network.hub_url, &banks, SETTLE_TIMEOUT).await?;
    drop(clients);
    network.stop().await?;
    if config.data.is_some() {
        progress(&format!(
            "The network is kept in {}: `corridor reconcile --dir {}` checks it again offline",
            dir.display(),
            dir.display()
        ));
    }
    Ok(summary)
}

async fn open_accounts(
    client: &mut BankServiceClient<Channel>,
    currency: &str,
    block_last: bool,
    payments: usize,
) -> Result<(), String> {
    let deposit = OPENING_DEPOSIT + PAYMENT_MAX * payments as u64;
    for customer in CUSTOMERS {
        let request = pb::OpenAccountRequest {
            account_id: customer.into(),
            currency: currency.into(),
            name: format!("Customer {customer}"),
            opening_deposit: deposit.to_string(),
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
