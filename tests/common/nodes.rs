//! Separate `corridor` processes for the crash and failover tests: a node that can be
//! killed (SIGKILL), paused (SIGSTOP) and started again on the same port; payments through
//! a bank's operator API; and the offline checks on what the stopped nodes left.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::task::JoinSet;

use corridor::bank::{BankStore, Direction, RecoveredBank};
use corridor::hub::AcceptedRecord;
use corridor::ledger::AccountKind;
use corridor::model::{Bic, Body, MessageType, PaymentStatus, Uetr, wire};
use corridor::net::operator_client;
use corridor::pb;
use corridor::sim::Rng;
use corridor::tls::NetworkDir;

pub const BANKS: [&str; 3] = ["BANKRUMMXXX", "BANKIRTHXXX", "BANKCNSHXXX"];
pub const CUSTOMERS: [&str; 2] = ["C001", "C002"];
/// 1,000,000.00 CNY per customer.
pub const DEPOSIT_MINOR_UNITS: i64 = 100_000_000;
pub const PAYMENTS_PER_ROUND: usize = 12;

/// One `corridor` process that can be killed and started again on the same port, a
/// reserved one, so that nothing else takes it while the process is down.
pub struct Node {
    pub name: String,
    args: Vec<String>,
    port: u16,
    _reserved: super::ports::Reserved,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    pub fn new(name: &str, args: Vec<String>, logs: &Path) -> Self {
        let reserved = super::ports::reserve(1);
        let port = reserved.ports()[0];
        Self {
            name: name.into(),
            args,
            port,
            _reserved: reserved,
            child: None,
            log: logs.join(format!("{name}.log")),
        }
    }

    /// Starts the process and waits for its "listening on https://..." line.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_corridor"))
            .args(&self.args)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(port) = line.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} did not start: {line:?}\n{log}", self.name);
        };
        assert_eq!(port, self.port, "{} listens on the port it was given", self.name);
        // Keep draining stdout so that the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Whether it was started and not killed or stopped since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// If the process ended by itself, reaps it and says how it ended; it can then be
    /// started again. `None` while it runs (or when it was not started).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(status)
    }

    /// SIGSTOP: the process stops where it is, its sockets open, until [`Node::resume`].
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running node");
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// Waits, at most `wait`, for the process to end by itself; its exit status.
    pub fn wait_exit(&mut self, wait: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running node");
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop by itself", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it wrote on stderr, in every run so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGINT, and a bounded wait for a clean exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        panic!("{} did not stop on SIGINT", self.name);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn corridor(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_corridor")).args(args).status().unwrap();
    assert!(status.success(), "corridor {args:?}");
}

/// Submits one payment; `Some(uetr)` when the bank acknowledged it.
pub async fn pay(
    network: &NetworkDir,
    url: &str,
    to: usize,
    creditor: &str,
    minor_units: i64,
) -> Option<Uetr> {
    let mut client = operator_client(network, url).await.ok()?;
    let request = pb::SubmitPaymentRequest {
        debtor_account: CUSTOMERS[(minor_units % 2) as usize].into(),
        creditor_agent_bic: BANKS[to].into(),
        creditor_account: creditor.into(),
        creditor_name: "Beneficiary".into(),
        amount: format!("{}.{:02}", minor_units / 100, minor_units % 100),
        currency: "CNY".into(),
        remittance_information: String::new(),
        end_to_end_id: String::new(),
        ..Default::default()
    };
    let response = client.submit_payment(request).await.ok()?;
    Uetr::parse(&response.into_inner().payment?.uetr).ok()
}

/// The seed of a run, from the environment variable `variable` or the clock; printed, so
/// that a failing run is replayed with `variable=N`.
pub fn seed(variable: &str, test: &str) -> u64 {
    let seed = std::env::var(variable).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("{test}: seed {seed}; replay with {variable}={seed}");
    seed
}

/// How many rounds a run makes: `variable` (a soak), or `default`; printed.
pub fn rounds(variable: &str, default: usize, test: &str) -> usize {
    let rounds = std::env::var(variable).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    eprintln!("{test}: {rounds} rounds");
    rounds
}

/// Funds each of `participants` at the hub at `hub_url` with 1,000,000,000 CNY.
pub async fn fund(network: &NetworkDir, hub_url: &str, participants: impl IntoIterator<Item = &str>) {
    let mut admin = corridor::net::admin_client(network, hub_url).await.unwrap();
    for bic in participants {
        let request = pb::FundRequest {
            participant_bic: bic.into(),
            currency: "CNY".into(),
            amount: "1000000000".into(),
        };
        admin.fund(request).await.unwrap();
    }
}

/// Opens every customer account of [`CUSTOMERS`] at each bank, with its deposit.
pub async fn open_accounts(network: &NetworkDir, banks: &[Node]) {
    for bank in banks {
        let mut client = operator_client(network, &bank.url()).await.unwrap();
        for customer in CUSTOMERS {
            let request = pb::OpenAccountRequest {
                account_id: customer.into(),
                currency: "CNY".into(),
                name: customer.into(),
                opening_deposit: format!("{}", DEPOSIT_MINOR_UNITS / 100),
            };
            client.open_account(request).await.unwrap();
        }
    }
}

/// `count` payments submitted at the banks at once, each `(sender, receiver)` chosen by
/// `pick`; every fifth to an account that does not exist (rejected by the receiver: RJCT
/// AC01). Each task ends with `(sender, uetr)` once the sender's bank acknowledged it.
pub fn burst(
    network: &NetworkDir,
    banks: &[Node],
    rng: &mut Rng,
    count: usize,
    mut pick: impl FnMut(&mut Rng) -> (usize, usize),
) -> JoinSet<Option<(usize, Uetr)>> {
    let mut payments = JoinSet::new();
    for n in 0..count {
        let (from, to) = pick(rng);
        let creditor = if n % 5 == 4 { "NOSUCH" } else { CUSTOMERS[rng.below(2) as usize] };
        let minor_units = 100 + rng.below(100_000) as i64;
        let (network, url) = (network.clone(), banks[from].url());
        payments
            .spawn(async move { pay(&network, &url, to, creditor, minor_units).await.map(|u| (from, u)) });
    }
    payments
}

/// Any sender to any other of the three banks.
pub fn anyone(rng: &mut Rng) -> (usize, usize) {
    let from = rng.below(3) as usize;
    (from, (from + 1 + rng.below(2) as usize) % 3)
}

/// Waits for a burst: the payments the banks acknowledged.
pub async fn acknowledged(payments: JoinSet<Option<(usize, Uetr)>>) -> Vec<(usize, Uetr)> {
    payments.join_all().await.into_iter().flatten().collect()
}

/// Waits until every payment any of `banks` knows is final; panics, naming `seed`, if that
/// does not come.
pub async fn settle(network: &NetworkDir, banks: &[Node], seed: u64) {
    for _ in 0..1_200 {
        let mut all_final = true;
        for bank in banks {
            let Ok(mut client) = operator_client(network, &bank.url()).await else {
                all_final = false;
                continue;
            };
            match client.list_payments(pb::ListPaymentsRequest {}).await {
                Ok(list) => all_final &= list.into_inner().payments.iter().all(|p| p.r#final),
                Err(_) => all_final = false,
            }
        }
        if all_final {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("seed {seed}: payments did not all become final");
}

/// The offline checks, on the data the stopped nodes left.
pub fn check(
    network: &NetworkDir,
    hub_messages: &[AcceptedRecord],
    acknowledged: &[(usize, Uetr)],
    seed: u64,
) {
    let bics: Vec<Bic> = BANKS.iter().map(|b| Bic::parse(b).unwrap()).collect();
    let stores: Vec<RecoveredBank> =
        bics.iter().map(|bic| BankStore::read(&network.bank_data_dir(*bic), *bic).unwrap()).collect();

    let mut settlement_total = 0i64;
    let mut customer_total = 0i64;
    for (index, store) in stores.iter().enumerate() {
        assert!(store.outbox.is_empty(), "seed {seed}: {} still has unacknowledged messages", bics[index]);
        let ledger = store.ledger();
        assert!(ledger.is_balanced(), "seed {seed}: {}'s ledger", bics[index]);
        for account in ledger.accounts() {
            match account.kind {
                AccountKind::Settlement => settlement_total += account.balance,
                AccountKind::Customer => customer_total += account.balance,
                AccountKind::InFlight => assert_eq!(account.balance, 0, "seed {seed}: money left in flight"),
                _ => {}
            }
        }
    }
    assert_eq!(settlement_total, 0, "seed {seed}: settlement positions must net to zero");
    let deposits = DEPOSIT_MINOR_UNITS * (CUSTOMERS.len() * BANKS.len()) as i64;
    assert_eq!(customer_total, deposits, "seed {seed}: money is conserved");

    // Each store's postings, counted by id, per payment step.
    let postings: Vec<HashMap<String, usize>> = stores
        .iter()
        .map(|store| {
            let mut counts = HashMap::new();
            for posting in &store.postings {
                *counts.entry(posting.id.to_string()).or_insert(0) += 1;
            }
            counts
        })
        .collect();
    let count = |bank: usize, uetr: &Uetr, step: &str| {
        postings[bank].get(&format!("{uetr}:{step}")).copied().unwrap_or(0)
    };

    // The hub's view: for each UETR, its pacs.008 and its pacs.002 status.
    let mut hub_view: BTreeMap<Uetr, (usize, usize, Option<PaymentStatus>)> = BTreeMap::new();
    for message in hub_messages {
        let Some(uetr) = message.uetr else { continue };
        let entry = hub_view.entry(uetr).or_insert((0, 0, None));
        match message.message_type {
            MessageType::Pacs008 => entry.0 += 1,
            MessageType::Pacs002 => {
                entry.1 += 1;
                if let Body::Pacs002(report) = wire::decode_message(&message.envelope.payload).unwrap().body()
                {
                    entry.2 = Some(report.status);
                }
            }
            _ => {}
        }
    }

    let acknowledged: HashSet<Uetr> = acknowledged.iter().map(|(_, uetr)| *uetr).collect();
    let mut outgoing_seen = HashSet::new();
    for (sender, store) in stores.iter().enumerate() {
        for payment in store.payments.iter().filter(|p| p.direction == Direction::Outgoing) {
            let uetr = payment.uetr;
            outgoing_seen.insert(uetr);
            let receiver = bics.iter().position(|b| *b == payment.counterparty).unwrap();
            let at_receiver = stores[receiver].payments.iter().filter(|p| p.uetr == uetr).count();
            assert!(payment.status.is_final(), "seed {seed}: {uetr} is not final");
            assert_eq!(count(sender, &uetr, "out"), 1, "seed {seed}: {uetr} debited once");
            let (pacs008, pacs002, hub_status) = hub_view.get(&uetr).copied().unwrap_or_default();
            match payment.status {
                PaymentStatus::Acsc => {
                    assert_eq!(count(sender, &uetr, "settled"), 1, "seed {seed}: {uetr} settled once");
                    assert_eq!(count(sender, &uetr, "reversed"), 0, "seed {seed}: {uetr}");
                    assert_eq!(count(receiver, &uetr, "in"), 1, "seed {seed}: {uetr} credited exactly once");
                    assert_eq!(at_receiver, 1, "seed {seed}: {uetr} known once at the receiver");
                    assert_eq!(
                        (pacs008, pacs002, hub_status),
                        (1, 1, Some(PaymentStatus::Acsc)),
                        "seed {seed}: hub view of {uetr}"
                    );
                }
                PaymentStatus::Rjct => {
                    assert_eq!(count(sender, &uetr, "reversed"), 1, "seed {seed}: {uetr} reversed once");
                    assert_eq!(count(sender, &uetr, "settled"), 0, "seed {seed}: {uetr}");
                    assert_eq!(count(receiver, &uetr, "in"), 0, "seed {seed}: {uetr} never credited");
                    if pacs008 == 1 {
                        assert_eq!(
                            (pacs002, hub_status),
                            (1, Some(PaymentStatus::Rjct)),
                            "seed {seed}: hub view of {uetr}"
                        );
                        let incoming = stores[receiver].payments.iter().find(|p| p.uetr == uetr).unwrap();
                        assert_eq!(
                            incoming.status,
                            PaymentStatus::Rjct,
                            "seed {seed}: receiver's view of {uetr}"
                        );
                    }
                }
                other => panic!("seed {seed}: {uetr} ended {other}"),
            }
        }
    }
    for uetr in &acknowledged {
        assert!(outgoing_seen.contains(uetr), "seed {seed}: acknowledged payment {uetr} was lost");
    }
    for (uetr, (pacs008, pacs002, _)) in &hub_view {
        assert!(outgoing_seen.contains(uetr), "seed {seed}: the hub knows {uetr}, no sender does");
        assert!(*pacs008 <= 1 && *pacs002 <= 1, "seed {seed}: {uetr} accepted twice by the hub");
    }
    eprintln!(
        "crash test seed {seed}: {} payments acknowledged, {} in all, every check passed",
        acknowledged.len(),
        outgoing_seen.len()
    );
}
