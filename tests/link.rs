//! Linked national networks (issue 23) on real nodes: two networks, each with its own PKI
//! (`pki init`), hub, banks and currency, joined by a link session between their hubs
//! over real gRPC with mutual TLS, each hub trusting the other's CA for its link
//! certificate alone. A Russian network settles in roubles and an Iranian one in rials;
//! between them, the central banks' swap line at the agreed rates, with a cap.
//!
//! Every converted figure is checked against the test's own integer arithmetic.

mod common;

use std::path::Path;
use std::time::Duration;

use common::bic;
use common::net::final_status;
use corridor::bank::PaymentOrder;
use corridor::model::{Amount, Currency, Rate};
use corridor::pb;
use corridor::reconcile::sources;
use corridor::sim::{LinkTerms, LocalNetwork, link_networks};
use corridor::tls;

/// The Russian network's banks and link identity (the Bank of Russia).
const RU1: &str = "BANKRUMMXXX";
const RU2: &str = "VTBRRUMMXXX";
const RU_LINK: &str = "CBRFRUMMXXX";
/// The Iranian network's banks and link identity (Bank Markazi).
const IR1: &str = "BANKIRTHXXX";
const IR2: &str = "MELIIRTHXXX";
const IR_LINK: &str = "BMJIIRTHXXX";
/// The agreement: 450 rials a rouble, 0.0022 roubles a rial.
const RUB_IRR: &str = "450";
const IRR_RUB: &str = "0.0022";
/// Each bank's prefunded liquidity at its hub, in its currency.
const LIQUIDITY: &str = "1000000000.00";
/// Each bank's customer C001 opens with this; C002 opens empty.
const OPENING: &str = "100000.00";
const OPENING_MINOR: i64 = 10_000_000;
/// Bounds every wait at 30 s.
const POLLS_MAX: usize = 1_200;
const POLL_INTERVAL: Duration = Duration::from_millis(25);

fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

/// The two networks, linked, with their bank nodes running.
struct Linked {
    ru: LocalNetwork,
    ir: LocalNetwork,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Caps of the swap line: 1,000,000 roubles on the Russian side, 450,000,000 rials on
/// the Iranian.
fn terms(caps: (&str, &str)) -> LinkTerms {
    LinkTerms {
        a: (bic(RU_LINK), "Bank of Russia".into(), currency("RUB")),
        b: (bic(IR_LINK), "Bank Markazi".into(), currency("IRR")),
        rates: (Rate::parse(RUB_IRR).unwrap(), Rate::parse(IRR_RUB).unwrap()),
        caps: (
            Amount::parse(caps.0, currency("RUB")).unwrap(),
            Amount::parse(caps.1, currency("IRR")).unwrap(),
        ),
    }
}

async fn network(dir: &Path, banks: [&str; 2], code: &str) -> LocalNetwork {
    let pki = tls::init(dir, &[bic(banks[0]), bic(banks[1])]).unwrap();
    let network = LocalNetwork::start_hub(pki, Default::default()).await.unwrap();
    let mut admin = network.admin().await.unwrap();
    for bank in banks {
        let request =
            pb::FundRequest { participant_bic: bank.into(), currency: code.into(), amount: LIQUIDITY.into() };
        admin.fund(request).await.unwrap();
    }
    network
}

async fn start_banks(network: &mut LocalNetwork, banks: [&str; 2], code: &str) {
    for bank in banks {
        let index = network.start_bank(bic(bank)).await.unwrap();
        let node = &network.banks[index].bank;
        node.open_account("C001", code, "Payer", OPENING).await.unwrap();
        node.open_account("C002", code, "Beneficiary", "").await.unwrap();
    }
}

/// Waits until each hub has the link up and the other network's directory in force.
async fn wait_linked(ru: &LocalNetwork, ir: &LocalNetwork) {
    for _ in 0..POLLS_MAX {
        let up = ru.hub().link_up(bic(IR_LINK)) && ir.hub().link_up(bic(RU_LINK));
        let known = ru.hub().directory().link_of(bic(IR1)) == Some(bic(IR_LINK))
            && ir.hub().directory().link_of(bic(RU1)) == Some(bic(RU_LINK));
        if up && known {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("the link did not come up");
}

async fn linked(caps: (&str, &str)) -> Linked {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut ru = network(dirs.0.path(), [RU1, RU2], "RUB").await;
    let mut ir = network(dirs.1.path(), [IR1, IR2], "IRR").await;
    link_networks(&mut ru, &mut ir, &terms(caps)).await.unwrap();
    wait_linked(&ru, &ir).await;
    start_banks(&mut ru, [RU1, RU2], "RUB").await;
    start_banks(&mut ir, [IR1, IR2], "IRR").await;
    Linked { ru, ir, _dirs: dirs }
}

fn order(to: &str, amount: &str, from_currency: &str, to_currency: &str) -> PaymentOrder {
    PaymentOrder {
        debtor_account: "C001".into(),
        creditor_agent: to.into(),
        creditor_account: "C002".into(),
        creditor_name: "Beneficiary".into(),
        amount: amount.into(),
        currency: from_currency.into(),
        remittance_information: "across the link".into(),
        settlement_currency: to_currency.into(),
        quote_id: String::new(),
    }
}

fn balance(network: &LocalNetwork, bank: &str, account: &str) -> i64 {
    let index = network.banks.iter().position(|b| b.bic == bic(bank)).unwrap();
    let (accounts, balanced) = network.banks[index].bank.accounts();
    assert!(balanced, "every ledger balances");
    accounts.iter().find(|a| a.id.as_str() == account).map(|a| a.balance).unwrap()
}

fn index(network: &LocalNetwork, bank: &str) -> usize {
    network.banks.iter().position(|b| b.bic == bic(bank)).unwrap()
}

fn settled_net(network: &LocalNetwork, participant: &str, code: &str) -> i64 {
    network.hub().positions().position(bic(participant), currency(code)).settled_net
}

/// Waits until `bank`'s account holds `minor` units.
async fn wait_balance(network: &LocalNetwork, bank: &str, account: &str, minor: i64) {
    for _ in 0..POLLS_MAX {
        if balance(network, bank, account) == minor {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert_eq!(balance(network, bank, account), minor, "{bank} {account}");
}

/// How long a reconciliation waits for payments in transit.
const RECONCILE_WAIT: Duration = Duration::from_secs(20);

/// Each network reconciles clean on its own (its banks against its hub; the other
/// network's banks and link are not its to read), and the two hubs agree on every
/// payment that crossed the link and on the swap line.
async fn assert_reconciled(ru: &LocalNetwork, ir: &LocalNetwork) {
    for network in [ru, ir] {
        let banks: Vec<_> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
        let report = sources::reconcile_live(&network.network, &network.hub_url, &banks, RECONCILE_WAIT)
            .await
            .unwrap();
        assert!(report.is_clean(), "{}", report.render());
        assert_eq!(report.payments_in_transit, 0, "{}", report.render());
        assert!(report.participants_not_checked.is_empty(), "{}", report.render());
    }
    let report =
        sources::reconcile_link_live((&ru.network, &ru.hub_url), (&ir.network, &ir.hub_url), RECONCILE_WAIT)
            .await
            .unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.payments_in_transit, 0, "{}", report.render());
    assert!(report.payments_checked > 0, "{}", report.render());
}

/// One payment each way settles across the link, exact to the minor unit in both
/// currencies: 100.00 RUB from a Russian bank arrive as 45,000.00 IRR (450 a rouble) at
/// an Iranian bank, and 10,000.00 IRR from an Iranian bank arrive as 22.00 RUB (0.0022
/// a rial). Each hub settles in its own currency only: the sending bank against the link
/// at its own hub, the link against the receiving bank at the other; the swap line is
/// the two links' positions, mirror images at the agreed rates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_each_way_settles_across_the_link_exact_in_both_currencies() {
    let _ = tracing_subscriber::fmt().with_env_filter("corridor=info").with_test_writer().try_init();
    let Linked { ru, ir, _dirs } = linked(("1000000.00", "450000000.00")).await;

    let payer = &ru.banks[index(&ru, RU1)].bank;
    let payment = payer.submit_payment(&order(IR1, "100.00", "RUB", "IRR")).await.unwrap();
    let uetr = payment.uetr.to_string();
    let at_payer = final_status(&ru, index(&ru, RU1), &uetr).await;
    assert_eq!(at_payer.status, pb::PaymentStatus::Acsc as i32, "{at_payer:?}");
    wait_balance(&ir, IR1, "C002", 4_500_000).await;
    assert_eq!(balance(&ru, RU1, "C001"), OPENING_MINOR - 10_000);
    // The Russian hub: the bank paid 100.00 RUB, the link (Bank Markazi) was paid them.
    assert_eq!(settled_net(&ru, RU1, "RUB"), -10_000);
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 10_000);
    // The Iranian hub: the link (Bank of Russia) paid 45,000.00 IRR to the bank.
    assert_eq!(settled_net(&ir, RU_LINK, "IRR"), -4_500_000);
    assert_eq!(settled_net(&ir, IR1, "IRR"), 4_500_000);

    let payer = &ir.banks[index(&ir, IR2)].bank;
    let payment = payer.submit_payment(&order(RU2, "10000.00", "IRR", "RUB")).await.unwrap();
    let uetr = payment.uetr.to_string();
    let at_payer = final_status(&ir, index(&ir, IR2), &uetr).await;
    assert_eq!(at_payer.status, pb::PaymentStatus::Acsc as i32, "{at_payer:?}");
    wait_balance(&ru, RU2, "C002", 2_200).await;
    assert_eq!(balance(&ir, IR2, "C001"), OPENING_MINOR - 1_000_000);
    assert_eq!(settled_net(&ir, IR2, "IRR"), -1_000_000);
    assert_eq!(settled_net(&ir, RU_LINK, "IRR"), -4_500_000 + 1_000_000);
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 10_000 - 2_200);
    assert_eq!(settled_net(&ru, RU2, "RUB"), 2_200);
    assert_reconciled(&ru, &ir).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}
