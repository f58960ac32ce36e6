//! Crash test (DESIGN.md, "No acknowledged message is lost" and "No payment is applied
//! twice"): the real `corridor` binary as separate processes, a hub and three banks,
//! killed with SIGKILL at random moments while payments flow, and restarted from their
//! data directories. At the end every acknowledged payment is final exactly once, money
//! is conserved, and the hub's journal and every bank's store agree on each payment.
//!
//! The schedule comes from a seed, printed at the start: `CORRIDOR_CRASH_SEED=N` replays
//! it. `CORRIDOR_CRASH_ROUNDS=N` (default 6) makes a longer soak run.

mod common;

use std::process::Command;
use std::time::Duration;

use common::nodes::{
    BANKS, Node, PAYMENTS_PER_ROUND, acknowledged as acknowledged_in, anyone, burst, check, corridor, fund,
    open_accounts, seed, settle,
};
use corridor::hub::HubJournal;
use corridor::model::{Bic, Uetr};
use corridor::sim::Rng;
use corridor::tls::{HUB_BIC, NetworkDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_sigkill_of_any_node_at_any_moment() {
    let seed = seed("CORRIDOR_CRASH_SEED", "crash test");
    let rounds = common::nodes::rounds("CORRIDOR_CRASH_ROUNDS", 6, "crash test");
    let mut rng = Rng::new(seed);

    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let net_text = net.to_str().unwrap().to_owned();
    corridor(&["pki", "init", "--dir", &net_text, "--participants", &BANKS.join(",")]);
    let network = NetworkDir::new(&net);
    let mut hub = Node::new("hub", vec!["hub".into(), "--dir".into(), net_text.clone()], dir.path());
    hub.start();
    fund(&network, &hub.url(), BANKS).await;
    let mut banks: Vec<Node> = BANKS
        .iter()
        .map(|bic| {
            let args = ["bank", "--dir", &net_text, "--bic", bic, "--hub", &hub.url()].map(String::from);
            let mut node = Node::new(bic, args.to_vec(), dir.path());
            node.start();
            node
        })
        .collect();
    open_accounts(&network, &banks).await;

    let mut acknowledged: Vec<(usize, Uetr)> = Vec::new();
    for round in 0..rounds {
        // A burst of payments in flight, then a kill at a random moment inside it.
        let burst = burst(&network, &banks, &mut rng, PAYMENTS_PER_ROUND, anyone);
        let victim = rng.below(4) as usize;
        let delay_ms = rng.below(60);
        let downtime_ms = rng.below(300);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let node = if victim == 3 { &mut hub } else { &mut banks[victim] };
        eprintln!("round {round}: SIGKILL {} after {delay_ms} ms, down {downtime_ms} ms", node.name);
        node.kill();
        acknowledged.extend(acknowledged_in(burst).await);
        tokio::time::sleep(Duration::from_millis(downtime_ms)).await;
        node.start();
    }

    // Let everything settle: every payment any bank knows becomes final.
    settle(&network, &banks, seed).await;
    for bank in &mut banks {
        bank.stop();
    }
    hub.stop();

    let hub = HubJournal::read(&network.hub_data_dir(), Bic::parse(HUB_BIC).unwrap()).unwrap();
    check(&network, &hub, &acknowledged, seed);

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
