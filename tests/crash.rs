//! Crash test (DESIGN.md, "No acknowledged message is lost" and "No payment is applied
//! twice"): the real `corridor` binary as separate processes, a hub and three banks,
//! killed with SIGKILL at random moments while payments flow, and restarted from their
//! data directories. At the end every acknowledged payment is final exactly once, money
//! is conserved, and the hub's journal and every bank's store agree on each payment.
//!
//! The schedule comes from a seed, printed at the start: `CORRIDOR_CRASH_SEED=N` replays
//! it. `CORRIDOR_CRASH_ROUNDS=N` (default 6) makes a longer soak run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corridor::bank::{BankStore, Direction, RecoveredBank};
use corridor::hub::HubJournal;
use corridor::ledger::AccountKind;
use corridor::model::{Bic, Body, MessageType, PaymentStatus, Uetr, wire};
use corridor::net::operator_client;
use corridor::pb;
use corridor::sim::Rng;
use corridor::tls::{HUB_BIC, NetworkDir};

const BANKS: [&str; 3] = ["BANKRUMMXXX", "BANKIRTHXXX", "BANKCNSHXXX"];
const CUSTOMERS: [&str; 2] = ["C001", "C002"];
/// 1,000,000.00 CNY per customer.
const DEPOSIT_MINOR_UNITS: i64 = 100_000_000;
const PAYMENTS_PER_ROUND: usize = 12;

/// One `corridor` process that can be killed and started again on the same port.
struct Node {
    name: String,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    fn new(name: &str, args: Vec<String>, logs: &Path) -> Self {
        Self { name: name.into(), args, port: 0, child: None, log: logs.join(format!("{name}.log")) }
    }

    /// Starts the process and waits for its "listening on https://..." line.
    fn start(&mut self) {
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
        let Some(port) = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} did not start: {line:?}\n{log}", self.name);
        };
        self.port = port;
        // Keep draining stdout so that the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        self.child = Some(child);
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no chance to flush or say goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGINT, and a bounded wait for a clean exit.
    fn stop(&mut self) {
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

fn corridor(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_corridor")).args(args).status().unwrap();
    assert!(status.success(), "corridor {args:?}");
}

/// Submits one payment; `Some(uetr)` when the bank acknowledged it.
async fn pay(network: &NetworkDir, url: &str, to: usize, creditor: &str, minor_units: i64) -> Option<Uetr> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_sigkill_of_any_node_at_any_moment() {
    let seed = std::env::var("CORRIDOR_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let rounds: usize = std::env::var("CORRIDOR_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    eprintln!("crash test seed {seed} ({rounds} rounds); replay with CORRIDOR_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);

    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let net_text = net.to_str().unwrap().to_owned();
    corridor(&["pki", "init", "--dir", &net_text, "--participants", &BANKS.join(",")]);
    let network = NetworkDir::new(&net);
    let mut hub = Node::new("hub", vec!["hub".into(), "--dir".into(), net_text.clone()], dir.path());
    hub.start();
    let mut admin = corridor::net::admin_client(&network, &hub.url()).await.unwrap();
    for bic in BANKS {
        let request = pb::FundRequest {
            participant_bic: bic.into(),
            currency: "CNY".into(),
            amount: "1000000000".into(),
        };
        admin.fund(request).await.unwrap();
    }
    drop(admin);
    let mut banks: Vec<Node> = BANKS
        .iter()
        .map(|bic| {
            let args = ["bank", "--dir", &net_text, "--bic", bic, "--hub", &hub.url()].map(String::from);
            let mut node = Node::new(bic, args.to_vec(), dir.path());
            node.start();
            node
        })
        .collect();
    for bank in &banks {
        let mut client = operator_client(&network, &bank.url()).await.unwrap();
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

    let mut acknowledged: Vec<(usize, Uetr)> = Vec::new();
    for round in 0..rounds {
        // A burst of payments in flight, then a kill at a random moment inside it.
        let mut burst = tokio::task::JoinSet::new();
        for n in 0..PAYMENTS_PER_ROUND {
            let from = rng.below(3) as usize;
            let to = (from + 1 + rng.below(2) as usize) % 3;
            // Every fifth goes to an account that does not exist: RJCT AC01.
            let creditor = if n % 5 == 4 { "NOSUCH" } else { CUSTOMERS[rng.below(2) as usize] };
            let minor_units = 100 + rng.below(100_000) as i64;
            let (network, url) = (network.clone(), banks[from].url());
            burst.spawn(
                async move { pay(&network, &url, to, creditor, minor_units).await.map(|u| (from, u)) },
            );
        }
        let victim = rng.below(4) as usize;
        let delay_ms = rng.below(60);
        let downtime_ms = rng.below(300);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let node = if victim == 3 { &mut hub } else { &mut banks[victim] };
        eprintln!("round {round}: SIGKILL {} after {delay_ms} ms, down {downtime_ms} ms", node.name);
        node.kill();
        acknowledged.extend(burst.join_all().await.into_iter().flatten());
        tokio::time::sleep(Duration::from_millis(downtime_ms)).await;
        node.start();
    }

    // Let everything settle: every payment any bank knows becomes final.
    let mut settled = false;
    for _ in 0..1_200 {
        let mut all_final = true;
        for bank in &banks {
            let Ok(mut client) = operator_client(&network, &bank.url()).await else {
                all_final = false;
                continue;
            };
            match client.list_payments(pb::ListPaymentsRequest {}).await {
                Ok(list) => all_final &= list.into_inner().payments.iter().all(|p| p.r#final),
                Err(_) => all_final = false,
            }
        }
        if all_final {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "seed {seed}: payments did not all become final");
    for bank in &mut banks {
        bank.stop();
    }
    hub.stop();

    check(&network, &acknowledged, seed);

    // The reconciler, run as a user would on the stopped network, agrees: no break.
    let output = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["reconcile", "--dir", &net_text, "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["breaks"], serde_json::json!([]), "seed {seed}: {report:#}");
    assert_eq!(output.status.code(), Some(0), "seed {seed}: {report:#}");
    assert!(report["payments_checked"].as_u64().unwrap() >= acknowledged.len() as u64);
}

/// The offline checks, on the data the stopped nodes left.
fn check(network: &NetworkDir, acknowledged: &[(usize, Uetr)], seed: u64) {
    let bics: Vec<Bic> = BANKS.iter().map(|b| Bic::parse(b).unwrap()).collect();
    let stores: Vec<RecoveredBank> =
        bics.iter().map(|bic| BankStore::read(&network.bank_data_dir(*bic), *bic).unwrap()).collect();
    let hub = HubJournal::read(&network.hub_data_dir(), Bic::parse(HUB_BIC).unwrap()).unwrap();

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
    for message in &hub.messages {
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
