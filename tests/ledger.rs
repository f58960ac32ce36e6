//! The ledger core (DESIGN.md, "Money is conserved" and "No payment is applied
//! twice"): any sequence of postings keeps debits equal to credits in every currency,
//! never takes an account below its floor, and replaying a posting changes nothing.

mod common;

use common::*;
use corridor::ledger::*;
use corridor::model::Amount;
use proptest::prelude::*;

fn id(text: &str) -> AccountId {
    AccountId::parse(text).unwrap()
}

fn posting_id(n: usize) -> PostingId {
    PostingId::parse(&format!("p-{n}")).unwrap()
}

/// A bank with accounts in two currencies, of every kind.
fn ledger() -> (Ledger, Vec<AccountId>) {
    let mut ledger = Ledger::new();
    let mut ids = Vec::new();
    for code in ["RUB", "JPY"] {
        for (name, kind) in [
            ("CASH", AccountKind::Cash),
            ("SETTLEMENT", AccountKind::Settlement),
            ("IN-FLIGHT", AccountKind::InFlight),
            ("SUSPENSE", AccountKind::Suspense),
            ("ALICE", AccountKind::Customer),
            ("BOB", AccountKind::Customer),
        ] {
            let account_id = id(&format!("{name}-{code}"));
            ledger.open_account(Account::new(account_id.clone(), kind, currency(code), name)).unwrap();
            ids.push(account_id);
        }
    }
    (ledger, ids)
}

#[derive(Debug, Clone)]
struct RawPosting {
    /// (account index, debit?, minor units) for each leg.
    legs: Vec<(usize, bool, i64)>,
}

fn raw_posting() -> impl Strategy<Value = RawPosting> {
    // Two to four legs; balanced ones come from mirroring, unbalanced ones are kept
    // too, so refusals are exercised as well.
    (prop::collection::vec((0usize..12, any::<bool>(), 1i64..1_000_000), 1..3), any::<bool>()).prop_map(
        |(mut legs, balanced)| {
            let mirrored: Vec<_> = legs
                .iter()
                .map(|(account, debit, units)| {
                    // Mirror within the same currency (indices 0..6 RUB, 6..12 JPY).
                    let other = (account / 6) * 6 + (account + 1 + *units as usize) % 6;
                    (other, !debit, if balanced { *units } else { units + 1 })
                })
                .collect();
            legs.extend(mirrored);
            RawPosting { legs }
        },
    )
}

fn to_posting(raw: &RawPosting, n: usize, ledger: &Ledger, ids: &[AccountId]) -> Posting {
    let legs = raw
        .legs
        .iter()
        .map(|(account, debit, units)| {
            let account = &ids[*account];
            let amount = Amount::from_minor_units(*units, ledger.account(account).unwrap().currency).unwrap();
            if *debit { Leg::debit(account, amount) } else { Leg::credit(account, amount) }
        })
        .collect();
    Posting { id: posting_id(n), legs, description: format!("posting {n}") }
}

fn check_invariants(ledger: &Ledger) -> Result<(), TestCaseError> {
    prop_assert!(ledger.is_balanced(), "debits equal credits in every currency");
    for total in ledger.debit_minus_credit_by_currency().values() {
        prop_assert_eq!(*total, 0);
    }
    for account in ledger.accounts() {
        if let Floor::Minimum(floor) = account.floor {
            prop_assert!(account.balance >= floor, "{} is below its floor", account.id);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_postings_conserve_money_respect_floors_and_replay_as_no_ops(
        deposits in prop::collection::vec(1i64..10_000_000, 4),
        raws in prop::collection::vec(raw_posting(), 1..60),
        replays in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let (mut ledger, ids) = ledger();
        // Opening deposits: cash -> customers, so there is money to move.
        for (n, (customer, units)) in [(4usize, deposits[0]), (5, deposits[1]), (10, deposits[2]), (11, deposits[3])].into_iter().enumerate() {
            let cash = &ids[(customer / 6) * 6];
            let amount = Amount::from_minor_units(units, ledger.account(cash).unwrap().currency).unwrap();
            let deposit = Posting::transfer(posting_id(10_000 + n), cash, &ids[customer], amount, "deposit");
            prop_assert_eq!(ledger.post(deposit).unwrap(), PostOutcome::Applied);
        }
        let mut applied = Vec::new();
        for (n, raw) in raws.iter().enumerate() {
            let posting = to_posting(raw, n, &ledger, &ids);
            let before: Vec<Account> = ledger.accounts().cloned().collect();
            match ledger.post(posting.clone()) {
                Ok(outcome) => {
                    prop_assert_eq!(outcome, PostOutcome::Applied);
                    applied.push(posting);
                }
                Err(_) => {
                    let after: Vec<Account> = ledger.accounts().cloned().collect();
                    prop_assert_eq!(before, after, "a refused posting changes nothing");
                }
            }
            check_invariants(&ledger)?;
        }
        for index in replays {
            if applied.is_empty() { break; }
            let posting = index.get(&applied).clone();
            let before: Vec<Account> = ledger.accounts().cloned().collect();
            let count = ledger.postings().len();
            prop_assert_eq!(ledger.post(posting).unwrap(), PostOutcome::AlreadyApplied);
            prop_assert_eq!(before, ledger.accounts().cloned().collect::<Vec<_>>());
            prop_assert_eq!(count, ledger.postings().len());
        }
        check_invariants(&ledger)?;
    }

    /// A bank forgets its oldest postings (they stay in its store): the balances, and
    /// with them every invariant, are exactly those of a ledger that forgets nothing;
    /// a posting still held replays as a no-op.
    #[test]
    fn forgetting_old_postings_keeps_the_balances_and_the_invariants(
        deposits in prop::collection::vec(1i64..10_000_000, 4),
        raws in prop::collection::vec(raw_posting(), 1..60),
        forgets in prop::collection::vec(0usize..4, 60),
    ) {
        let (mut forgetful, ids) = ledger();
        let (mut complete, _) = ledger();
        for (n, (customer, units)) in [(4usize, deposits[0]), (5, deposits[1]), (10, deposits[2]), (11, deposits[3])].into_iter().enumerate() {
            let cash = &ids[(customer / 6) * 6];
            let amount = Amount::from_minor_units(units, forgetful.account(cash).unwrap().currency).unwrap();
            let deposit = Posting::transfer(posting_id(10_000 + n), cash, &ids[customer], amount, "deposit");
            prop_assert_eq!(forgetful.post(deposit.clone()).unwrap(), PostOutcome::Applied);
            prop_assert_eq!(complete.post(deposit).unwrap(), PostOutcome::Applied);
        }
        for (n, raw) in raws.iter().enumerate() {
            let posting = to_posting(raw, n, &complete, &ids);
            // Which currency an unbalanced posting is refused for first is not fixed: compare outcomes.
            prop_assert_eq!(forgetful.post(posting.clone()).ok(), complete.post(posting).ok());
            forgetful.forget_postings(forgets[n]);
            check_invariants(&forgetful)?;
            prop_assert_eq!(forgetful.accounts().collect::<Vec<_>>(), complete.accounts().collect::<Vec<_>>());
            prop_assert_eq!(forgetful.posting_count(), complete.postings().len());
            prop_assert_eq!(forgetful.postings_forgotten() + forgetful.postings().len(), forgetful.posting_count());
            let held = &complete.postings()[forgetful.postings_forgotten()..];
            prop_assert_eq!(forgetful.postings(), held, "the held postings are the newest");
        }
        if let Some(newest) = forgetful.postings().last().cloned() {
            let before: Vec<Account> = forgetful.accounts().cloned().collect();
            prop_assert_eq!(forgetful.post(newest).unwrap(), PostOutcome::AlreadyApplied);
            prop_assert_eq!(before, forgetful.accounts().cloned().collect::<Vec<_>>());
        }
    }
}

#[test]
fn refusals_say_why_and_change_nothing() {
    let (mut ledger, ids) = ledger();
    let rub = |text: &str| amount(text, "RUB");
    let (cash, alice, bob) = (&ids[0], &ids[4], &ids[5]);
    ledger.post(Posting::transfer(posting_id(1), cash, alice, rub("100"), "deposit")).unwrap();

    let overdraw = Posting::transfer(posting_id(2), alice, bob, rub("100.01"), "too much");
    assert!(matches!(ledger.post(overdraw), Err(LedgerError::FloorBreached { .. })));

    let unbalanced = Posting {
        id: posting_id(3),
        legs: vec![Leg::debit(alice, rub("1")), Leg::credit(bob, rub("2"))],
        description: String::new(),
    };
    assert!(matches!(ledger.post(unbalanced), Err(LedgerError::Unbalanced { .. })));

    let one_leg =
        Posting { id: posting_id(4), legs: vec![Leg::debit(alice, rub("1"))], description: String::new() };
    assert_eq!(ledger.post(one_leg), Err(LedgerError::TooFewLegs(1)));

    let wrong_currency = Posting::transfer(posting_id(5), alice, bob, amount("1", "JPY"), "");
    assert!(matches!(ledger.post(wrong_currency), Err(LedgerError::CurrencyMismatch { .. })));

    let unknown = Posting::transfer(posting_id(6), alice, &id("NOBODY"), rub("1"), "");
    assert_eq!(ledger.post(unknown), Err(LedgerError::UnknownAccount(id("NOBODY"))));

    let conflicting = Posting::transfer(posting_id(1), cash, alice, rub("5"), "deposit");
    assert_eq!(ledger.post(conflicting), Err(LedgerError::PostingConflict(posting_id(1))));

    assert_eq!(ledger.balance(alice).unwrap().minor_units, 10_000);
    assert_eq!(ledger.balance(bob).unwrap().minor_units, 0);
    assert_eq!(ledger.postings().len(), 1);
    assert!(ledger.is_balanced());
    assert!(
        ledger
            .open_account(Account::new(alice.clone(), AccountKind::Customer, currency("RUB"), "dup"))
            .is_err()
    );
}

#[test]
fn an_account_without_a_floor_may_go_negative() {
    let (mut ledger, ids) = ledger();
    let (settlement, alice) = (&ids[1], &ids[4]);
    // A payment in: debit settlement (the hub owes us), credit the customer.
    ledger.post(Posting::transfer(posting_id(1), settlement, alice, amount("5", "RUB"), "in")).unwrap();
    assert_eq!(ledger.balance(settlement).unwrap().minor_units, 500);
    // A payment out larger than the settlement balance: settlement goes negative.
    let cash = &ids[0];
    ledger.post(Posting::transfer(posting_id(2), cash, alice, amount("100", "RUB"), "deposit")).unwrap();
    ledger.post(Posting::transfer(posting_id(3), alice, settlement, amount("50", "RUB"), "out")).unwrap();
    assert_eq!(ledger.balance(settlement).unwrap().minor_units, -4_500);
    assert!(ledger.is_balanced());
}
