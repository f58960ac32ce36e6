//! A bank node's memory stays bounded under steady load (issue 6) without losing any
//! guarantee: finished payments, old postings and old processed messages leave memory a
//! retention after their last change, and everything that reads them still sees them,
//! from the store (DESIGN.md, "Guarantees": no acknowledged message is lost; no payment
//! is applied twice; money is conserved; bad input gets a clear error).
//!
//! Each test runs a real hub and real bank nodes (mTLS, SQLite stores) with a tiny
//! retention, so that eviction happens within the test.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::bic;
use common::net::{IR, RU, final_status, open_accounts, order};
use corridor::bank::{BankConfig, BankStore, Held, Payment, ReturnState, statement::account_statement};
use corridor::hub::HubConfig;
use corridor::model::{InvestigationStatus, PaymentStatus, Statement};
use corridor::reconcile::sources;
use corridor::sim::LocalNetwork;
use corridor::tls;

/// Retention of the banks in these tests: short enough to see everything leave memory.
const RETENTION: Duration = Duration::from_millis(150);
/// Payments per round; rounds are sent one after another.
const ROUND: usize = 30;
const ROUNDS: usize = 4;

/// RU and IR running with [`RETENTION`], accounts open (C001 with 1000.00 CNY, C002 empty).
async fn network(dir: &std::path::Path) -> LocalNetwork {
    let pki = tls::init(dir, &[bic(RU), bic(IR)]).unwrap();
    let mut network = LocalNetwork::start_hub(pki, HubConfig::default()).await.unwrap();
    network.bank_config = BankConfig { retention: RETENTION, ..BankConfig::default() };
    network.fund_all("CNY", common::net::HUB_LIQUIDITY).await.unwrap();
    for node in [RU, IR] {
        let index = network.start_bank(bic(node)).await.unwrap();
        open_accounts(&network, index).await;
    }
    network
}

/// Waits (bounded) until bank `index` holds nothing finished in memory.
async fn wait_emptied(network: &LocalNetwork, index: usize) -> Held {
    let bank = &network.banks[index].bank;
    for _ in 0..500 {
        let held = bank.held();
        if held == (Held { payments: 0, postings: 0, processed: 0 }) {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("bank {index} still holds {:?}", bank.held());
}

/// Pays `count` payments RU -> IR (amounts 1.01, 1.02, ...) and waits until each is
/// final at both banks; returns their UETRs.
async fn pay(network: &LocalNetwork, count: usize, first_cents: usize) -> Vec<String> {
    let mut uetrs = Vec::new();
    for n in 0..count {
        let cents = first_cents + n;
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        let payment = network.banks[0].bank.submit_payment(&order(IR, "C002", &amount)).await.unwrap();
        uetrs.push(payment.uetr.to_string());
    }
    for uetr in &uetrs {
        for index in [0, 1] {
            let payment = final_status(network, index, uetr).await;
            assert_eq!(payment.status, corridor::pb::PaymentStatus::Acsc as i32, "{payment:?}");
        }
    }
    uetrs
}

/// What each bank answers: every payment, each payment by UETR, and the statements of
/// its settlement and customer accounts over all time and over a window in the middle.
#[derive(Debug, PartialEq)]
struct Answers {
    payments: Vec<Payment>,
    statements: Vec<Statement>,
}

fn answers(network: &LocalNetwork, index: usize, window: (i64, i64)) -> Answers {
    let bank = &network.banks[index].bank;
    let payments = bank.payments().unwrap();
    for payment in &payments {
        assert_eq!(&bank.payment(&payment.uetr.to_string()).unwrap(), payment, "get equals list");
    }
    let customer = if index == 0 { "C001" } else { "C002" };
    let mut statements = Vec::new();
    for account in ["", customer] {
        statements.push(bank.statement(account, "CNY", 0, i64::MAX).unwrap());
        statements.push(bank.statement(account, "CNY", window.0, window.1).unwrap());
    }
    Answers { payments, statements }
}

/// The same answers computed the way a tool does, from the whole store of a stopped
/// bank with every posting in memory (no eviction anywhere).
fn answers_offline(pki: &tls::NetworkDir, index: usize, window: (i64, i64)) -> Answers {
    let bank = bic(if index == 0 { RU } else { IR });
    let store = BankStore::read(&pki.bank_data_dir(bank), bank).unwrap();
    let message_ids: HashMap<_, _> = store.payments.iter().map(|p| (p.uetr, p.message_id.clone())).collect();
    let customer = if index == 0 { "C001" } else { "C002" };
    let mut statements = Vec::new();
    for account in ["SYS-SETTLEMENT-CNY", customer] {
        let account = corridor::ledger::AccountId::parse(account).unwrap();
        for (from, to) in [(0, i64::MAX), window] {
            let statement =
                account_statement(store.ledger(), &store.posting_times, &message_ids, &account, from, to)
                    .unwrap();
            statements.push(statement);
        }
    }
    Answers { payments: store.payments, statements }
}

/// (a) Memory stays bounded: after each round the banks' payments, postings and
/// processed messages leave memory; the counts never grow with the payments sent.
/// (b) Reading old payments and statements gives the same answers after eviction as
/// before it, and as a tool reading the whole store computes them.
/// (d) A restart after eviction keeps everything, and holds nothing finished.
#[tokio::test]
async fn finished_payments_and_postings_leave_memory_and_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network(dir.path()).await;
    let mut uetrs = Vec::new();
    let mut window = (0, 0);
    for round in 0..ROUNDS {
        if round == 1 {
            window.0 = corridor::clock::unix_ms_now();
        }
        uetrs.extend(pay(&network, ROUND, 101 + round * ROUND).await);
        if round == 2 {
            window.1 = corridor::clock::unix_ms_now();
        }
        for index in [0, 1] {
            let held = network.banks[index].bank.held();
            assert!(held.payments <= ROUND, "round {round}: bank {index} holds {held:?}");
            assert!(held.processed <= ROUND, "round {round}: bank {index} holds {held:?}");
            wait_emptied(&network, index).await;
        }
    }

    let live: Vec<Answers> = [0, 1].iter().map(|&index| answers(&network, index, window)).collect();
    for (index, answers) in live.iter().enumerate() {
        assert_eq!(answers.payments.len(), ROUNDS * ROUND, "bank {index} lists every payment");
        assert!(answers.payments.iter().all(|p| p.status == PaymentStatus::Acsc));
        let listed: Vec<String> = answers.payments.iter().map(|p| p.uetr.to_string()).collect();
        assert_eq!(listed, uetrs, "bank {index} lists them oldest first");
        let settlement = &answers.statements[0];
        assert_eq!(settlement.entries.len(), ROUNDS * ROUND);
        assert!(settlement.entries.iter().all(|e| e.message_id.is_some()), "entries name their pacs.008");
        let window_settlement = &answers.statements[1];
        assert_eq!(window_settlement.entries.len(), 2 * ROUND, "two rounds in the window");
    }
    // Known amounts: 1.01 + 1.02 + ... over every round.
    let paid: i64 = (0..ROUNDS * ROUND).map(|n| 101 + n as i64).sum();
    // RU's settlement account (an asset) went down by what it paid out.
    assert_eq!(live[0].statements[0].closing_balance.minor_units, -paid, "RU's settlement account");
    assert_eq!(live[1].statements[2].closing_balance.minor_units, paid, "IR's customer C002");
    assert_eq!(live[0].statements[2].closing_balance.minor_units, 100_000 - paid, "RU's customer C001");

    // (d) Restart both banks: nothing finished comes back into memory, everything reads the same.
    for bank in [RU, IR] {
        network.stop_bank(bic(bank)).await.unwrap();
        network.start_bank(bic(bank)).await.unwrap();
    }
    network.banks.sort_by_key(|b| b.bic != bic(RU));
    for index in [0, 1] {
        assert_eq!(network.banks[index].bank.held().payments, 0, "bank {index} after its restart");
        assert_eq!(answers(&network, index, window), live[index], "bank {index} after its restart");
    }

    let banks: Vec<_> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let report = sources::reconcile_live(&network.network, &network.hub_url, &banks, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(report.is_clean(), "{}", report.render());
    let pki = network.network.clone();
    network.stop().await.unwrap();
    for (index, answers) in live.iter().enumerate() {
        assert_eq!(&answers_offline(&pki, index, window), answers, "bank {index} against its whole store");
    }
}

/// Each payment's signed messages as each bank exports them (`corridor export`): the
/// pacs.008 and the pacs.002 at first, then whatever a return or recall added.
async fn exports(network: &LocalNetwork, uetrs: &[String]) -> Vec<Vec<corridor::bank::ExportedMessage>> {
    let mut exports = Vec::new();
    for bank in &network.banks {
        for uetr in uetrs {
            exports.push(bank.bank.export_xml(uetr).await.unwrap().1);
        }
    }
    exports
}

/// (c) A return and a recall of settled payments that left memory (at both banks) work
/// end to end: the payment comes back into memory, the money goes back exactly once,
/// and the network reconciles clean. After another retention they leave memory again.
/// All along, each bank exports every message of each payment, as it did while the
/// payment was in memory (the kept messages are filed under the payment's first version).
#[tokio::test]
async fn a_return_and_a_recall_of_evicted_payments_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let uetrs = pay(&network, 3, 1_000).await;
    let settled = exports(&network, &uetrs).await;
    let types = |messages: &[corridor::bank::ExportedMessage]| -> Vec<(&str, bool)> {
        messages.iter().map(|m| (m.message_type.code(), m.sent)).collect()
    };
    for (n, messages) in settled.iter().enumerate() {
        let sender = n < uetrs.len();
        assert_eq!(types(messages), [("pacs.008", sender), ("pacs.002", !sender)], "{messages:?}");
    }
    wait_emptied(&network, 0).await;
    wait_emptied(&network, 1).await;
    assert_eq!(exports(&network, &uetrs).await, settled, "the same once they left memory");
    let (ru, ir) = (&network.banks[0].bank, &network.banks[1].bank);

    // A return by the beneficiary's bank.
    let returning = ir.return_payment(&uetrs[0], "AC04", "account closed").await.unwrap();
    assert!(matches!(returning.return_state, ReturnState::Returning { .. }), "{returning:?}");
    let returned = |payment: &Payment| matches!(payment.return_state, ReturnState::Returned { .. });
    wait_for(|| ru.payment(&uetrs[0]).is_ok_and(|p| returned(&p)), "the return reaches RU").await;
    wait_for(|| ir.payment(&uetrs[0]).is_ok_and(|p| returned(&p)), "IR's return settles").await;

    // A recall by the sender's bank, accepted.
    let asked = ru.recall_payment(&uetrs[1], "DUPL", "sent twice").await.unwrap();
    assert_eq!(asked.recall.as_ref().unwrap().status, InvestigationStatus::Pdcr);
    let open = |p: &Payment| p.recall.as_ref().is_some_and(|r| r.status == InvestigationStatus::Pdcr);
    wait_for(|| ir.payment(&uetrs[1]).is_ok_and(|p| open(&p)), "the recall reaches IR").await;
    ir.answer_recall(&uetrs[1], true, "", "").await.unwrap();
    let cancelled =
        |p: &Payment| returned(p) && p.recall.as_ref().is_some_and(|r| r.status == InvestigationStatus::Cncl);
    wait_for(|| ru.payment(&uetrs[1]).is_ok_and(|p| cancelled(&p)), "RU sees the recall accepted").await;
    wait_for(|| ir.payment(&uetrs[1]).is_ok_and(|p| cancelled(&p)), "IR's return settles").await;

    // Exactly the two payments came back: 10.00 and 10.01 of 10.00 + 10.01 + 10.02.
    let balance = |bank: &corridor::bank::Bank, account: &str| {
        let (accounts, balanced) = bank.accounts();
        assert!(balanced, "the ledger balances");
        accounts.iter().find(|a| a.id.as_str() == account).unwrap().balance
    };
    assert_eq!(balance(ru, "C001"), 100_000 - 1_002);
    assert_eq!(balance(ir, "C002"), 1_002);
    let banks: Vec<_> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let report = sources::reconcile_live(&network.network, &network.hub_url, &banks, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.payments_in_transit, 0, "{}", report.render());

    // Finished again: they leave memory again and read the same from the store.
    let before: Vec<Payment> = uetrs.iter().map(|u| ru.payment(u).unwrap()).collect();
    wait_emptied(&network, 0).await;
    wait_emptied(&network, 1).await;
    let after: Vec<Payment> = uetrs.iter().map(|u| ru.payment(u).unwrap()).collect();
    assert_eq!(after, before);
    // Each export kept what it had and gained the return's and the recall's messages.
    let finished = exports(&network, &uetrs).await;
    for (n, (now, then)) in finished.iter().zip(&settled).enumerate() {
        assert_eq!(&now[..2], &then[..], "export {n}");
        let added = match n % uetrs.len() {
            0 => 1,
            1 => 3,
            _ => 0,
        };
        assert_eq!(now.len(), 2 + added, "export {n}: {:?}", types(now));
    }
    // Every one filed under its payment: none waits in the UETR index for messages of no
    // payment, the random-key index that costs a page a message.
    for bank in [RU, IR] {
        let derived = network.network.bank_data_dir(bic(bank)).join("bank.sqlite");
        let store =
            rusqlite::Connection::open_with_flags(&derived, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let counts: (i64, i64) = store
            .query_row("SELECT count(*), count(payment) FROM messages", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!(counts, (10, 10), "{bank}: messages, and those filed under their payment");
    }
    network.stop().await.unwrap();
}

async fn wait_for(done: impl Fn() -> bool, what: &str) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 10 s");
}

/// (e) Garbage settings are refused with a message naming the setting, before anything
/// is opened or created.
#[test]
fn a_retention_out_of_range_is_refused_clearly() {
    for retention in [Duration::ZERO, Duration::from_secs(365 * 24 * 3600)] {
        let error = BankConfig { retention, ..BankConfig::default() }.validate().unwrap_err();
        assert!(error.contains("retention must be between"), "{error}");
    }
    assert!(BankConfig::default().validate().is_ok());

    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["bank", "--dir"])
        .arg(dir.path())
        .args([
            "--bic",
            RU,
            "--hub",
            "https://127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--retention-secs",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--retention-secs 0: the retention must be between"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was created");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["bank", "--dir", "x", "--bic", RU, "--hub", "h", "--listen", "127.0.0.1:0"])
        .args(["--retention-secs", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--retention-secs"));
}
