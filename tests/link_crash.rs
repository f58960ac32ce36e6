//! Crash test of linked networks (issue 23: "kill -9 of either hub mid-flow, and of the
//! peer hub while the link is busy: nothing lost or doubled, and 0 breaks afterwards";
//! DESIGN.md, "No acknowledged message is lost" and "No payment is applied twice").
//!
//! Two networks made as an operator makes them, with the real `corridor` binary as
//! separate processes: a Russian one settling in roubles and an Iranian one in rials, each
//! with its own `pki init`, hub and two banks, joined by `corridor link init/export/add`
//! (the Russian hub dials the Iranian hub's `--link-listen`), funded with `corridor admin
//! fund`. Payments flow both ways across the link (RUB->IRR and IRR->RUB, converted at
//! the agreement's rates) and within each network, through the banks' operator API, while
//! seeded rounds SIGKILL:
//!
//! - the Russian hub mid-flow;
//! - the Iranian hub mid-flow;
//! - the peer hub while the link is busy: it is stopped (SIGSTOP) while one network's
//!   banks pay the other's, until its hub has ACKed every one of them (they wait in the
//!   link's outbox), and killed there or just after it runs again, as the queue drains.
//!
//! After each round the killed hub starts again from its data directory, and the round
//! ends once every payment every bank knows is final; the longest time that took from the
//! restart is printed. At the end:
//!
//! - every payment a bank acknowledged is final exactly once at both banks: debited once,
//!   settled or reversed once, credited once at the receiver or never; rejected exactly
//!   when its creditor account does not exist; amounts exact in both currencies at the
//!   agreed rates (the test's own integer arithmetic);
//! - each bank's settlement statement and its hub's statement of it name the same
//!   payments once each, and its settlement account equals its position at the hub;
//! - at each hub the positions sum to zero per currency, and the two hubs' views of the
//!   link mirror each other: the Russian hub's link position in RUB is the settled
//!   cross-link payments' RUB legs, the Iranian hub's in IRR their IRR legs;
//! - `corridor reconcile` finds no break: each network live with its banks and, across
//!   the link, with the other's hub (`--linked-dir/--linked-hub`), and each stopped
//!   network offline from its data directories.
//!
//! It caught a dialling hub killed between journalling a delivery's sequence number and
//! its message: restarted, it told the peer it had the message, which was never sent
//! again (src/hub/link.rs, `link_processed`).
//!
//! `CORRIDOR_LINK_CRASH_SEED=N` replays a schedule; `CORRIDOR_LINK_CRASH_ROUNDS=N`
//! (default 3: one of each kind, in a seeded order) makes a longer soak.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::nodes::{Node, corridor, seed};
use common::ports;
use corridor::bank::{BankStore, Direction, RecoveredBank};
use corridor::ledger::AccountKind;
use corridor::model::{Bic, PaymentStatus, Uetr};
use corridor::net::{admin_client, operator_client};
use corridor::pb;
use corridor::sim::Rng;
use corridor::tls::NetworkDir;
use tokio::task::JoinSet;

/// The Russian network: its banks, link identity (the Bank of Russia) and currency.
const RU_BANKS: [&str; 2] = ["BANKRUMMXXX", "VTBRRUMMXXX"];
const RU_LINK: &str = "CBRFRUMMXXX";
/// The Iranian network: its banks, link identity (Bank Markazi) and currency.
const IR_BANKS: [&str; 2] = ["BANKIRTHXXX", "MELIIRTHXXX"];
const IR_LINK: &str = "BMJIIRTHXXX";
/// The agreement: 450 rials a rouble, 0.0022 roubles a rial (22 / 10,000).
const RUB_IRR: i64 = 450;
const IRR_RUB: (i64, i64) = (22, 10_000);
/// Each customer's opening deposit, in minor units of its network's currency.
const DEPOSIT_MINOR: [i64; 2] = [1_000_000_000, 100_000_000_000];
/// Each bank's prefunded liquidity at its hub, and the swap line's cap at each hub.
const LIQUIDITY: [&str; 2] = ["1000000000.00", "450000000000.00"];
const CAP: [&str; 2] = ["1000000000.00", "450000000000.00"];
const CUSTOMERS: [&str; 2] = ["C001", "C002"];
/// Payments per round.
const BURST: usize = 16;
/// Bounds every wait (100 ms polls): 120 s.
const POLLS_MAX: usize = 1_200;
const POLL: Duration = Duration::from_millis(100);

/// One network: its directory, hub and banks (processes), and currency.
struct Network {
    dir: PathBuf,
    network: NetworkDir,
    code: &'static str,
    link: &'static str,
    bics: [&'static str; 2],
    hub: Node,
    banks: Vec<Node>,
}

impl Network {
    fn dir_text(&self) -> String {
        self.dir.to_str().unwrap().to_owned()
    }
}

/// A payment a bank acknowledged: sender and receiver as indexes into [`all_banks`],
/// what the sender instructed (its currency's minor units), and whether the creditor's
/// account exists.
#[derive(Clone, Debug)]
struct Sent {
    from: usize,
    to: usize,
    uetr: Uetr,
    instructed: i64,
    creditor_exists: bool,
}

/// The four banks: 0 and 1 Russian, 2 and 3 Iranian.
fn all_banks() -> [&'static str; 4] {
    [RU_BANKS[0], RU_BANKS[1], IR_BANKS[0], IR_BANKS[1]]
}

fn side(bank: usize) -> usize {
    bank / 2
}

/// What the receiver of `sent` is credited, in its currency's minor units: the test's
/// own arithmetic at the agreement's rates, to the nearest minor unit, ties away from zero.
fn expected_settlement(from: usize, to: usize, instructed: i64) -> i64 {
    match (side(from), side(to)) {
        (0, 1) => instructed * RUB_IRR,
        (1, 0) => (instructed * IRR_RUB.0 * 2 + IRR_RUB.1) / (IRR_RUB.1 * 2),
        _ => instructed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_across_a_link_survive_sigkill_of_either_hub() {
    let seed = seed("CORRIDOR_LINK_CRASH_SEED", "link crash test");
    let rounds = common::nodes::rounds("CORRIDOR_LINK_CRASH_ROUNDS", 3, "link crash test");
    let mut rng = Rng::new(seed);
    let temp = KeptOnFailure(Some(tempfile::tempdir().unwrap()));
    let (mut nets, _link_port) = linked_networks(temp.path()).await;

    let mut sent: Vec<Sent> = Vec::new();
    let mut longest_stall = Duration::ZERO;
    let first_kind = rng.below(3) as usize;
    for round in 0..rounds {
        let kind = (first_kind + round) % 3;
        let victim = match kind {
            0 | 1 => kill_mid_flow(&mut nets, kind, &mut rng, &mut sent, round).await,
            _ => kill_peer_while_link_busy(&mut nets, &mut rng, &mut sent, round, seed).await,
        };
        let downtime_ms = rng.below(300);
        tokio::time::sleep(Duration::from_millis(downtime_ms)).await;
        nets[victim].hub.start();
        let restarted = Instant::now();
        settle(&nets, seed).await;
        let stall = restarted.elapsed();
        eprintln!(
            "round {round}: {} hub down {downtime_ms} ms; every payment final {} ms after its restart",
            nets[victim].code,
            stall.as_millis()
        );
        longest_stall = longest_stall.max(stall);
    }
    eprintln!(
        "link crash test seed {seed}: {rounds} rounds, longest stall {} ms (a killed hub's restart to every payment final)",
        longest_stall.as_millis()
    );

    let live = check_live(&nets, seed).await;
    reconcile_live(&nets, seed);
    for net in &mut nets {
        for bank in &mut net.banks {
            bank.stop();
        }
        net.hub.stop();
    }
    check_stores(&nets, &sent, &live, seed);
    reconcile_offline(&nets, seed);
}

/// The test's directory, kept (and named) when the test fails: the hubs' journals and
/// the banks' stores are the evidence. Dropped after the nodes, which are killed first.
struct KeptOnFailure(Option<tempfile::TempDir>);

impl KeptOnFailure {
    fn path(&self) -> &Path {
        self.0.as_ref().expect("held until dropped").path()
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take().filter(|_| std::thread::panicking()) {
            eprintln!("the networks' directories are kept in {}", dir.keep().display());
        }
    }
}

/// The two networks' directories made by hand, as README.md's "Linking two networks"
/// does: each its own `pki init` and link identity, bundles exchanged, the link added on
/// both sides (the Russian hub dials the Iranian hub's link listener). Returns the link
/// listener's port, held (for the Iranian hub's restarts) until it is dropped.
fn link_by_hand(root: &Path, ru: &str, ir: &str) -> ports::Reserved {
    corridor(&["pki", "init", "--dir", ru, "--participants", &RU_BANKS.join(",")]);
    corridor(&["pki", "init", "--dir", ir, "--participants", &IR_BANKS.join(",")]);
    let init = |dir: &str, bic: &str, name: &str, code: &str| {
        corridor(&["link", "init", "--dir", dir, "--bic", bic, "--name", name, "--currency", code]);
    };
    init(ru, RU_LINK, "Bank of Russia", "RUB");
    init(ir, IR_LINK, "Bank Markazi", "IRR");
    let bundle = |name: &str| root.join(name).to_str().unwrap().to_owned();
    let (ru_bundle, ir_bundle) = (bundle("ru.bundle"), bundle("ir.bundle"));
    corridor(&["link", "export", "--dir", ru, "--out", &ru_bundle]);
    corridor(&["link", "export", "--dir", ir, "--out", &ir_bundle]);
    let link_port = ports::reserve(1);
    let url = format!("https://127.0.0.1:{}", link_port.ports()[0]);
    let rates = ["--rate", "RUB/IRR=450", "--rate", "IRR/RUB=0.0022"];
    let add = |dir: &str, peer: &str, more: &[&str]| {
        corridor(&[&["link", "add", "--dir", dir, "--peer", peer][..], &rates, more].concat());
    };
    add(ru, &ir_bundle, &["--cap", CAP[0], "--peer-url", &url]);
    add(ir, &ru_bundle, &["--cap", CAP[1]]);
    link_port
}

/// Both networks, linked, funded (`corridor admin fund`), with their banks running and
/// their customers' accounts open. The second value holds the link listener's port.
async fn linked_networks(root: &Path) -> ([Network; 2], ports::Reserved) {
    let (ru, ir) = (root.join("ru"), root.join("ir"));
    let text = |p: &Path| p.to_str().unwrap().to_owned();
    let link_port = link_by_hand(root, &text(&ru), &text(&ir));
    let hub_args = |dir: &Path| vec!["hub".to_owned(), "--dir".to_owned(), text(dir)];
    let ru_hub = Node::new("ru-hub", hub_args(&ru), root);
    let mut ir_hub_args = hub_args(&ir);
    ir_hub_args.extend(["--link-listen".to_owned(), format!("127.0.0.1:{}", link_port.ports()[0])]);
    let ir_hub = Node::new("ir-hub", ir_hub_args, root);
    let mut nets =
        [network(ru, "RUB", RU_LINK, RU_BANKS, ru_hub), network(ir, "IRR", IR_LINK, IR_BANKS, ir_hub)];
    for (index, net) in nets.iter_mut().enumerate() {
        net.hub.start();
        let (dir, url) = (net.dir_text(), net.hub.url());
        for bic in net.bics {
            let fund = ["--participant", bic, "--currency", net.code, "--amount", LIQUIDITY[index]];
            corridor(&[&["admin", "--dir", &dir, "--hub", &url, "fund"][..], &fund].concat());
        }
    }
    wait_for_published_directories(&nets);
    for net in &mut nets {
        start_banks(net, root).await;
    }
    (nets, link_port)
}

fn network(
    dir: PathBuf,
    code: &'static str,
    link: &'static str,
    bics: [&'static str; 2],
    hub: Node,
) -> Network {
    let network = NetworkDir::new(&dir);
    Network { dir, network, code, link, bics, hub, banks: Vec::new() }
}

/// Waits until each hub has taken in the other's signed directory (the link came up
/// once), so that the banks start knowing the other network's banks.
fn wait_for_published_directories(nets: &[Network; 2]) {
    let peer = |index: usize| Bic::parse(nets[1 - index].link).unwrap();
    for _ in 0..POLLS_MAX {
        if (0..2).all(|i| nets[i].network.published_directory_path(peer(i)).is_file()) {
            return;
        }
        std::thread::sleep(POLL);
    }
    panic!("the link did not come up\n{}\n{}", nets[0].hub.stderr(), nets[1].hub.stderr());
}

/// Starts the network's banks and opens both customers' accounts at each, with deposits.
async fn start_banks(net: &mut Network, logs: &Path) {
    let index = if net.code == "RUB" { 0 } else { 1 };
    for bic in net.bics {
        let args =
            ["bank", "--dir", &net.dir_text(), "--bic", bic, "--hub", &net.hub.url()].map(String::from);
        let mut node = Node::new(bic, args.to_vec(), logs);
        node.start();
        let mut client = operator_client(&net.network, &node.url()).await.unwrap();
        for customer in CUSTOMERS {
            let deposit = DEPOSIT_MINOR[index];
            let request = pb::OpenAccountRequest {
                account_id: customer.into(),
                currency: net.code.into(),
                name: customer.into(),
                opening_deposit: format!("{}.{:02}", deposit / 100, deposit % 100),
            };
            client.open_account(request).await.unwrap();
        }
        net.banks.push(node);
    }
}

/// The node of bank `index` (of [`all_banks`]).
fn bank_node(nets: &[Network; 2], index: usize) -> &Node {
    &nets[side(index)].banks[index % 2]
}

/// A payment from bank `from` to bank `to`: across the link three times in four, else
/// to the other bank of its own network; every fifth to an account that does not exist
/// (rejected by the receiver, RJCT AC01, and reversed at the sender).
fn pick(rng: &mut Rng, n: usize, senders: &[usize]) -> (usize, usize, i64, bool) {
    let from = senders[rng.below(senders.len() as u64) as usize];
    let across = senders.len() == 2 || rng.below(4) != 0;
    let to = if across { (1 - side(from)) * 2 + rng.below(2) as usize } else { from ^ 1 };
    let instructed = match side(from) {
        // 1.00 to 1,000.00 roubles.
        0 => 100 + rng.below(100_000) as i64,
        // 1,000.00 to 500,000.00 rials (0.22 to 1,100.00 roubles across the link).
        _ => 100_000 + rng.below(50_000_000) as i64,
    };
    (from, to, instructed, n % 5 != 4)
}

/// `BURST` payments submitted at once by the banks `senders`.
fn burst(nets: &[Network; 2], rng: &mut Rng, senders: &[usize]) -> JoinSet<Option<Sent>> {
    let mut payments = JoinSet::new();
    for n in 0..BURST {
        let (from, to, instructed, creditor_exists) = pick(rng, n, senders);
        let creditor = if creditor_exists { CUSTOMERS[rng.below(2) as usize] } else { "NOSUCH" };
        let network = nets[side(from)].network.clone();
        let url = bank_node(nets, from).url();
        let (code, to_code) = (nets[side(from)].code, nets[side(to)].code);
        let request = pb::SubmitPaymentRequest {
            debtor_account: CUSTOMERS[n % 2].into(),
            creditor_agent_bic: all_banks()[to].into(),
            creditor_account: creditor.into(),
            creditor_name: "Beneficiary".into(),
            amount: format!("{}.{:02}", instructed / 100, instructed % 100),
            currency: code.into(),
            settlement_currency: if code == to_code { String::new() } else { to_code.into() },
            ..Default::default()
        };
        payments.spawn(async move {
            let mut client = operator_client(&network, &url).await.ok()?;
            let payment = client.submit_payment(request).await.ok()?.into_inner().payment?;
            let uetr = Uetr::parse(&payment.uetr).ok()?;
            Some(Sent { from, to, uetr, instructed, creditor_exists })
        });
    }
    payments
}

/// A round killing hub `victim` (0 Russian, 1 Iranian) at a random moment while payments
/// flow every way; returns the victim.
async fn kill_mid_flow(
    nets: &mut [Network; 2],
    victim: usize,
    rng: &mut Rng,
    sent: &mut Vec<Sent>,
    round: usize,
) -> usize {
    let payments = burst(nets, rng, &[0, 1, 2, 3]);
    let delay_ms = rng.below(40);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    eprintln!("round {round}: SIGKILL the {} hub mid-flow, after {delay_ms} ms", nets[victim].code);
    nets[victim].hub.kill();
    sent.extend(payments.join_all().await.into_iter().flatten());
    victim
}

/// A round killing the peer hub while the link is busy: the peer is stopped while the
/// other network's banks pay its banks; once their hub has ACKed every one (they are in
/// the link's outbox), the peer is killed still stopped, or a moment after it runs again
/// and takes the queue in. Returns the peer.
async fn kill_peer_while_link_busy(
    nets: &mut [Network; 2],
    rng: &mut Rng,
    sent: &mut Vec<Sent>,
    round: usize,
    seed: u64,
) -> usize {
    let peer = rng.below(2) as usize;
    let senders = [(1 - peer) * 2, (1 - peer) * 2 + 1];
    nets[peer].hub.pause();
    let payments = burst(nets, rng, &senders).join_all().await;
    let queued: Vec<Sent> = payments.into_iter().flatten().collect();
    wait_acked_by_hub(nets, &queued, seed).await;
    // One time in three it dies stopped; otherwise it runs again for a moment first.
    let resumed_for_ms = if rng.below(3) == 0 { None } else { Some(rng.below(20)) };
    match resumed_for_ms {
        None => eprintln!(
            "round {round}: SIGKILL the {} hub, stopped, with {} payments queued for the link",
            nets[peer].code,
            queued.len()
        ),
        Some(ms) => {
            nets[peer].hub.resume();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            eprintln!(
                "round {round}: SIGKILL the {} hub {ms} ms after it resumed with {} payments queued for the link",
                nets[peer].code,
                queued.len()
            );
        }
    }
    nets[peer].hub.kill();
    sent.extend(queued);
    peer
}

/// Waits until each of `payments` has been ACKed by its sender's hub (no longer PDNG).
async fn wait_acked_by_hub(nets: &[Network; 2], payments: &[Sent], seed: u64) {
    for payment in payments {
        let node = bank_node(nets, payment.from);
        let mut client = operator_client(&nets[side(payment.from)].network, &node.url()).await.unwrap();
        let request = || pb::GetPaymentRequest { uetr: payment.uetr.to_string() };
        for poll in 0..=POLLS_MAX {
            let status = client.get_payment(request()).await.unwrap().into_inner().payment.unwrap().status;
            if status != pb::PaymentStatus::Pdng as i32 {
                break;
            }
            assert!(poll < POLLS_MAX, "seed {seed}: the hub never ACKed {}", payment.uetr);
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Waits until every payment any bank knows is final; panics, naming the seed and the
/// payments still open, if that does not come.
async fn settle(nets: &[Network; 2], seed: u64) {
    let mut open = Vec::new();
    for _ in 0..POLLS_MAX {
        open.clear();
        let mut reachable = true;
        for index in 0..4 {
            let network = &nets[side(index)].network;
            let Ok(mut client) = operator_client(network, &bank_node(nets, index).url()).await else {
                reachable = false;
                continue;
            };
            match client.list_payments(pb::ListPaymentsRequest {}).await {
                Ok(list) => open.extend(
                    list.into_inner().payments.into_iter().filter(|p| !p.r#final).map(|p| (index, p)),
                ),
                Err(_) => reachable = false,
            }
        }
        if reachable && open.is_empty() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    let logs: Vec<String> = nets
        .iter()
        .flat_map(|n| std::iter::once(&n.hub).chain(&n.banks))
        .map(|node| format!("--- {} ---\n{}", node.name, node.stderr()))
        .collect();
    panic!("seed {seed}: payments did not all become final: {open:#?}\n{}", logs.join("\n"));
}

/// What the running hubs say, for the offline checks: per network, each participant's
/// settled net in its currency.
struct Live {
    settled_net: [HashMap<String, i64>; 2],
}

/// Positions and statements, asked of the running hubs and banks.
async fn check_live(nets: &[Network; 2], seed: u64) -> Live {
    let mut settled_net = [HashMap::new(), HashMap::new()];
    for (index, net) in nets.iter().enumerate() {
        let mut admin = admin_client(&net.network, &net.hub.url()).await.unwrap();
        let positions = admin.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
        let mut per_currency: BTreeMap<String, i64> = BTreeMap::new();
        for position in &positions.positions {
            *per_currency.entry(position.currency.clone()).or_default() += position.settled_net;
            if position.currency == net.code {
                settled_net[index].insert(position.participant_bic.clone(), position.settled_net);
            }
        }
        for (currency, sum) in &per_currency {
            assert_eq!(*sum, 0, "seed {seed}: the {} hub's positions in {currency} sum to {sum}", net.code);
        }
        for fx in &positions.fx_positions {
            assert_eq!(
                fx.settled_net, 0,
                "seed {seed}: the {} hub converted nothing itself: {fx:?}",
                net.code
            );
        }
        for bic in net.bics {
            let hub_statement = admin
                .get_statement(pb::HubStatementRequest {
                    participant_bic: bic.into(),
                    currency: net.code.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let bank = all_banks().iter().position(|b| *b == bic).unwrap();
            let mut operator = operator_client(&net.network, &bank_node(nets, bank).url()).await.unwrap();
            let bank_statement = operator
                .get_statement(pb::GetStatementRequest { currency: net.code.into(), ..Default::default() })
                .await
                .unwrap()
                .into_inner();
            compare_statements(bic, &hub_statement, &bank_statement, seed);
        }
    }
    Live { settled_net }
}

/// A bank's settlement statement and its hub's statement of it: the same payments, each
/// once, with the same amounts, and the same closing balance.
fn compare_statements(bic: &str, hub: &pb::Statement, bank: &pb::Statement, seed: u64) {
    let entries = |statement: &pb::Statement| {
        let mut by_uetr: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for entry in &statement.entries {
            let minor = entry.amount.as_ref().unwrap().minor_units;
            let signed = if entry.direction == pb::EntryDirection::Dbit as i32 { -minor } else { minor };
            by_uetr.entry(entry.uetr.clone()).or_default().push(signed);
        }
        by_uetr
    };
    let (at_hub, at_bank) = (entries(hub), entries(bank));
    for (uetr, amounts) in at_hub.iter().chain(&at_bank) {
        assert_eq!(amounts.len(), 1, "seed {seed}: {bic}: {uetr} is on a statement {amounts:?}");
    }
    assert_eq!(at_hub, at_bank, "seed {seed}: {bic}'s settlement statement differs from its hub's");
    let closing = |s: &pb::Statement| s.closing_balance.as_ref().map_or(0, |m| m.minor_units);
    assert_eq!(closing(hub), closing(bank), "seed {seed}: {bic}'s closing settlement balance");
}

/// What the settled payments add up to, by the test's own arithmetic, in minor units of
/// each side's currency.
struct Expected {
    /// Each network's customers: their deposits, less what they paid, plus what they got.
    customers: [i64; 2],
    /// Each hub's link position: the settled cross-link payments' legs in its currency.
    links: [i64; 2],
    /// Each bank's settlement account, which is its position at its hub.
    banks: [i64; 4],
}

impl Expected {
    fn new() -> Self {
        Self { customers: DEPOSIT_MINOR.map(|deposit| deposit * 4), links: [0; 2], banks: [0; 4] }
    }

    /// A settled payment from bank `from` to bank `to`: `instructed` in the sender's
    /// currency, `credited` in the receiver's.
    fn settled(&mut self, from: usize, to: usize, instructed: i64, credited: i64) {
        self.customers[side(from)] -= instructed;
        self.customers[side(to)] += credited;
        self.banks[from] -= instructed;
        self.banks[to] += credited;
        // The Russian hub's leg is in roubles, the Iranian hub's in rials; each hub's link
        // was paid what the payment brought it and paid out what it took away.
        let (rub, irr) = match (side(from), side(to)) {
            (0, 1) => (instructed, -credited),
            (1, 0) => (-credited, instructed),
            _ => (0, 0),
        };
        self.links[0] += rub;
        self.links[1] += irr;
    }
}

/// The offline checks, on what the stopped banks left.
fn check_stores(nets: &[Network; 2], sent: &[Sent], live: &Live, seed: u64) {
    let bics: Vec<Bic> = all_banks().iter().map(|b| Bic::parse(b).unwrap()).collect();
    let stores: Vec<RecoveredBank> = (0..4)
        .map(|i| BankStore::read(&nets[side(i)].network.bank_data_dir(bics[i]), bics[i]).unwrap())
        .collect();
    let by_uetr: HashMap<Uetr, &Sent> = sent.iter().map(|s| (s.uetr, s)).collect();
    let mut expected = Expected::new();
    let mut outgoing = 0;
    for (from, store) in stores.iter().enumerate() {
        assert!(store.outbox.is_empty(), "seed {seed}: {} still has unacknowledged messages", bics[from]);
        for payment in store.payments.iter().filter(|p| p.direction == Direction::Outgoing) {
            outgoing += 1;
            let to = bics.iter().position(|b| *b == payment.counterparty).unwrap();
            let sent = by_uetr.get(&payment.uetr).copied();
            if let Some(credited) = check_payment(&stores, from, to, payment, sent, seed) {
                expected.settled(from, to, payment.amount.minor_units(), credited);
            }
        }
    }
    for s in sent {
        let known = stores[s.from].payments.iter().any(|p| p.uetr == s.uetr);
        assert!(known, "seed {seed}: acknowledged payment {} was lost", s.uetr);
    }
    check_balances(nets, &stores, live, &expected, seed);
    eprintln!(
        "link crash test seed {seed}: {} payments acknowledged, {outgoing} in all, every check passed",
        sent.len()
    );
}

/// One outgoing payment of bank `from` to bank `to`, at both banks: final, debited once,
/// then settled and credited once, or reversed and never credited; converted at the
/// agreed rate; rejected exactly when its creditor account does not exist (as far as the
/// test knows: `sent`). What the receiver was credited, when it settled.
fn check_payment(
    stores: &[RecoveredBank],
    from: usize,
    to: usize,
    payment: &corridor::bank::Payment,
    sent: Option<&Sent>,
    seed: u64,
) -> Option<i64> {
    let uetr = payment.uetr;
    let count = |bank: usize, step: &str| {
        stores[bank].postings.iter().filter(|p| p.id.to_string() == format!("{uetr}:{step}")).count()
    };
    let instructed = payment.amount.minor_units();
    let credited = expected_settlement(from, to, instructed);
    if let Some(s) = sent {
        assert_eq!((s.from, s.to, s.instructed), (from, to, instructed), "seed {seed}: {uetr}");
    }
    if side(from) != side(to) {
        let counter = payment.conversion.as_ref().map(|c| c.counter_amount.minor_units());
        assert_eq!(counter, Some(credited), "seed {seed}: {uetr} converted at the agreed rate");
    }
    let incoming: Vec<_> = stores[to].payments.iter().filter(|p| p.uetr == uetr).collect();
    let creditor_exists = sent.is_none_or(|s| s.creditor_exists);
    assert_eq!(count(from, "out"), 1, "seed {seed}: {uetr} debited once");
    match payment.status {
        PaymentStatus::Acsc => {
            assert_eq!(count(from, "settled"), 1, "seed {seed}: {uetr} settled once");
            assert_eq!(count(from, "reversed"), 0, "seed {seed}: {uetr}");
            assert_eq!(count(to, "in"), 1, "seed {seed}: {uetr} credited exactly once");
            assert_eq!(incoming.len(), 1, "seed {seed}: {uetr} known once at the receiver");
            assert_eq!(incoming[0].amount.minor_units(), credited, "seed {seed}: {uetr} credited");
            assert!(creditor_exists, "seed {seed}: {uetr} settled to an account that does not exist");
            Some(credited)
        }
        PaymentStatus::Rjct => {
            assert_eq!(count(from, "reversed"), 1, "seed {seed}: {uetr} reversed once");
            assert_eq!(count(from, "settled"), 0, "seed {seed}: {uetr}");
            assert_eq!(count(to, "in"), 0, "seed {seed}: {uetr} never credited");
            assert!(incoming.iter().all(|p| p.status == PaymentStatus::Rjct), "seed {seed}: {uetr}");
            assert!(
                !creditor_exists,
                "seed {seed}: {uetr} rejected ({:?}: {})",
                payment.reason, payment.detail
            );
            None
        }
        other => panic!("seed {seed}: {uetr} ended {other}"),
    }
}

/// Each network's customers hold their deposits moved by the settled payments; each bank's
/// settlement account is its position at its hub; each hub's link position is the
/// settled cross-link payments' legs in its currency.
fn check_balances(
    nets: &[Network; 2],
    stores: &[RecoveredBank],
    live: &Live,
    expected: &Expected,
    seed: u64,
) {
    let mut customers = [0i64; 2];
    for (index, store) in stores.iter().enumerate() {
        let bic = all_banks()[index];
        let ledger = store.ledger();
        assert!(ledger.is_balanced(), "seed {seed}: {bic}'s ledger");
        for account in ledger.accounts() {
            match account.kind {
                AccountKind::Customer => customers[side(index)] += account.balance,
                AccountKind::InFlight => {
                    assert_eq!(account.balance, 0, "seed {seed}: {bic}: money left in flight")
                }
                AccountKind::Settlement => {
                    let net = expected.banks[index];
                    assert_eq!(account.balance, net, "seed {seed}: {bic}'s settlement account");
                    let at_hub = live.settled_net[side(index)].get(bic).copied().unwrap_or(0);
                    assert_eq!(at_hub, net, "seed {seed}: {bic}'s position at its hub");
                }
                _ => {}
            }
        }
    }
    for (index, net) in nets.iter().enumerate() {
        assert_eq!(customers[index], expected.customers[index], "seed {seed}: {} customers", net.code);
        let peer_link = nets[1 - index].link;
        let link = live.settled_net[index].get(peer_link).copied().unwrap_or(0);
        let what = format!("the {} hub's link position ({peer_link}) in {}", net.code, net.code);
        assert_eq!(link, expected.links[index], "seed {seed}: {what}");
    }
}

/// `corridor reconcile` with `args`, as a user runs it: a report with no break.
fn reconcile(what: &str, args: &[String], seed: u64) {
    let output = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .arg("reconcile")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "seed {seed}: {what}: reconcile printed no report ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(report["breaks"], serde_json::json!([]), "seed {seed}: {what}: {report:#}");
    assert_eq!(output.status.code(), Some(0), "seed {seed}: {what}: {report:#}");
    eprintln!("{what}: no break ({} payments checked)", report["payments_checked"]);
}

/// Each network reconciled live with its banks and, across the link, with the other's hub.
fn reconcile_live(nets: &[Network; 2], seed: u64) {
    for (index, net) in nets.iter().enumerate() {
        let peer = &nets[1 - index];
        let mut args = vec!["--dir".to_owned(), net.dir_text(), "--hub".to_owned(), net.hub.url()];
        for (bic, bank) in net.bics.iter().zip(&net.banks) {
            args.extend(["--bank".to_owned(), format!("{bic}={}", bank.url())]);
        }
        args.extend(["--linked-dir".to_owned(), peer.dir_text(), "--linked-hub".to_owned(), peer.hub.url()]);
        reconcile(&format!("the {} network and the link, live", net.code), &args, seed);
    }
}

/// Each stopped network reconciled offline from its nodes' data directories.
fn reconcile_offline(nets: &[Network; 2], seed: u64) {
    for net in nets {
        reconcile(&format!("the {} network, offline", net.code), &["--dir".to_owned(), net.dir_text()], seed);
    }
}
