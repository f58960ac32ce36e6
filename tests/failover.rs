//! Failover of the hub on its replicated log (issue 22): a real 3-node NATS JetStream
//! cluster on loopback, two hubs on one stream (one active, one standby) and three banks
//! given both hubs' URLs, all the real `corridor` binary as separate processes.
//!
//! - The active hub is killed (SIGKILL) at seeded random moments while payments flow: a
//!   standby takes over each time, every acknowledged payment ends final exactly once at
//!   both banks, value is conserved, and the reconciler finds no break. The longest stall
//!   (from the kill to a hub serving again) is printed. After each round the restarted
//!   hub, now the standby, serves the same positions and track as the active hub. `CORRIDOR_FAILOVER_SEED=N` replays
//!   a schedule, `CORRIDOR_FAILOVER_ROUNDS=N` (default 10) makes a longer soak.
//! - A paused hub is fenced: the active hub stopped (SIGSTOP) past its lease, a standby
//!   takes over, and when it runs again the submission it had read is refused by the log
//!   and never acknowledged, and nothing more leaves it.

mod common;

use std::time::{Duration, Instant};

use common::nats::NatsCluster;
use common::net::{RawSession, transfer};
use common::nodes::{
    BANKS, CUSTOMERS, PAYMENTS_PER_ROUND, acknowledged as acknowledged_in, anyone, burst, check, pay, seed,
};
use common::replicated::{BY_HAND, Replicated, wait_until_serving};
use corridor::model::Uetr;
use corridor::pb;
use corridor::sim::Rng;
use corridor::store::nats::NatsLog;
use corridor::tls::{HUB_BIC, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_hub_and_nothing_is_lost_or_doubled() {
    let seed = seed("CORRIDOR_FAILOVER_SEED", "failover test");
    let rounds = common::nodes::rounds("CORRIDOR_FAILOVER_ROUNDS", 10, "failover test");
    let mut rng = Rng::new(seed);
    let Some(mut net) = Replicated::start().await else { return };

    let mut acknowledged: Vec<(usize, Uetr)> = Vec::new();
    let mut longest_stall = Duration::ZERO;
    for round in 0..rounds {
        let burst = burst(&net.network, &net.banks, &mut rng, PAYMENTS_PER_ROUND, anyone);
        let delay_ms = rng.below(80);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let victim =
            net.active().await.unwrap_or_else(|| panic!("seed {seed}: round {round}: no hub is active"));
        eprintln!("round {round}: SIGKILL {} (the active hub) after {delay_ms} ms", net.hubs[victim].name);
        net.hubs[victim].kill();
        let killed = Instant::now();
        let standby = 1 - victim;
        wait_until_serving(&net.network, &net.hubs[standby]).await;
        let stall = killed.elapsed();
        eprintln!(
            "round {round}: {} took over {} ms after the kill",
            net.hubs[standby].name,
            stall.as_millis()
        );
        longest_stall = longest_stall.max(stall);
        acknowledged.extend(acknowledged_in(burst).await);
        // The killed hub comes back as the standby.
        net.hubs[victim].start();
        net.settle(seed).await;
        net.reconcile(seed).await;
        if let Some((_, uetr)) = acknowledged.last() {
            net.standby_agrees(&uetr.to_string(), seed).await;
        }
    }
    eprintln!(
        "failover test seed {seed}: {rounds} takeovers, longest stall {} ms (kill to the standby serving)",
        longest_stall.as_millis()
    );

    for bank in &mut net.banks {
        bank.stop();
    }
    for hub in &mut net.hubs {
        hub.stop();
    }
    check(&net.network, &net.hub_messages(), &acknowledged, seed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_paused_past_its_lease_is_fenced_and_sends_nothing_after_it() {
    let Some(mut net) = Replicated::start().await else { return };
    let bank = BY_HAND;
    let identity = common::net::signer(&net.network, bank);
    // A session of the test's own, as a bank no node runs, with the active hub.
    let mut session = RawSession::open(&net.network, bank, &net.hubs[0].url()).await.unwrap();
    let before = net.hub_messages().len();

    net.hubs[0].pause();
    // The standby takes over once the paused hub's lease lapses.
    wait_until_serving(&net.network, &net.hubs[1]).await;
    // A submission the paused hub will read when it runs again: it must never ACK it.
    let message = transfer(bank, BANKS[1], CUSTOMERS[0]);
    let submit = pb::Submit {
        isn: session.next_isn,
        envelope: Some(pb::SignedEnvelope::from(&identity.sign(&message))),
        possible_duplicate: false,
    };
    session
        .sender
        .send(pb::SessionRequest { frame: Some(pb::session_request::Frame::Submit(submit)) })
        .await
        .unwrap();
    net.hubs[0].resume();

    // Whatever the woken hub still sends on this session: no ACK, no delivery.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), session.inbound.message()).await {
            Ok(Ok(Some(pb::SessionResponse { frame: Some(frame) }))) => {
                panic!("the hub sent {frame:?} after its lease ended")
            }
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None) | Err(_)) => break,
            Err(_) => panic!("the woken hub neither answered nor ended the session"),
        }
    }
    // It stops, saying why; its submission is not in the log.
    let status = net.hubs[0].wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "the fenced hub must stop with an error, not {status}");
    let said = net.hubs[0].stderr();
    assert!(
        said.contains("refused an append") || said.contains("lease"),
        "the fenced hub must say why it stopped:\n{said}"
    );
    let messages = net.hub_messages();
    let id = message.header().message_id.clone();
    assert!(
        messages.iter().all(|m| m.message_id != id),
        "the paused hub's submission reached the log after its lease ended"
    );
    assert!(messages.len() >= before);
    // The network carries on with the hub that took over.
    let uetr = pay(&net.network, &net.banks[0].url(), 1, CUSTOMERS[1], 12_345).await;
    assert!(uetr.is_some(), "a payment after the takeover is acknowledged");
    net.settle(0).await;
    net.reconcile(0).await;
}

/// The fence itself, in one process and without the lease: a hub that took over the log
/// (its Active record appended) makes the next append of the hub before it refused, so
/// that hub can never acknowledge anything again, and it stops saying so; what it had
/// written before stays, and the new active hub holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_log_another_hub_took_over_has_its_next_append_refused() {
    use corridor::directory::Directory;
    use corridor::hub::{Hub, HubConfig, OperatorAction};
    use corridor::model::{Amount, Bic};

    let Some(cluster) = NatsCluster::start(3) else { return };
    let dir = tempfile::tempdir().unwrap();
    let bics = [Bic::parse(BANKS[0]).unwrap(), Bic::parse(BANKS[1]).unwrap()];
    let pki = corridor::tls::init(&dir.path().join("net"), &bics).unwrap();
    let open = |name: &str| {
        let log = NatsLog::open(&cluster.servers(), "corridor-fence", &format!("hub {HUB_BIC}"), 3).unwrap();
        let directory = Directory::load(pki.root()).unwrap();
        let identity = pki.signing_identity(Role::Hub).unwrap();
        Hub::open_standby(HubConfig::default(), directory, identity, &dir.path().join(name), Box::new(log))
            .unwrap()
    };
    let cny = || "CNY".parse().unwrap();
    let fund =
        || OperatorAction::Fund(Bic::parse(BANKS[0]).unwrap(), Amount::parse("1000.00", cny()).unwrap());

    let (first, follower) = open("first");
    tokio::task::block_in_place(|| first.take_over(follower, "https://127.0.0.1:1")).unwrap();
    first.operate(fund()).await.expect("the active hub writes");

    let (second, follower) = open("second");
    tokio::task::block_in_place(|| second.take_over(follower, "https://127.0.0.1:2")).unwrap();
    let refused = first.operate(fund()).await;
    assert!(refused.is_err(), "the hub before the takeover appended after it: {refused:?}");
    let reason = first.storage_failure().await;
    assert!(reason.contains("refused an append"), "{reason}");

    // The new active hub holds what the first wrote before, and not what it was refused.
    let position = second.positions().position(Bic::parse(BANKS[0]).unwrap(), cny());
    assert_eq!(position.liquidity, 100_000, "one fund of 1000.00 CNY, not two");
}
