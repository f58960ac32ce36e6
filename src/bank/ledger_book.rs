//! How a bank books each step of a payment in its ledger. Posting ids derive from the
//! UETR and the step, so booking the same step twice is a no-op.

use crate::ledger::{Account, AccountId, AccountKind, Ledger, LedgerError, Posting, PostingId};
use crate::model::{Amount, CreditTransfer, Currency, ReasonCode, Uetr};

/// Account ids starting with this are the bank's own, not customers'.
pub const SYSTEM_ACCOUNT_PREFIX: &str = "SYS-";

/// Id of a bank's own account of `kind` in `currency`, for example `SYS-SETTLEMENT-RUB`.
pub fn system_account(kind: AccountKind, currency: Currency) -> AccountId {
    let name = match kind {
        AccountKind::Settlement => "SETTLEMENT",
        AccountKind::InFlight => "INFLIGHT",
        AccountKind::Suspense => "SUSPENSE",
        AccountKind::Cash => "CASH",
        AccountKind::Customer => unreachable!("customer accounts are not system accounts"),
    };
    AccountId::parse(&format!("{SYSTEM_ACCOUNT_PREFIX}{name}-{currency}"))
        .expect("system account ids are valid")
}

const SYSTEM_KINDS: [AccountKind; 4] =
    [AccountKind::Settlement, AccountKind::InFlight, AccountKind::Suspense, AccountKind::Cash];

/// Opens the bank's own accounts in `currency` if it has none yet.
pub(super) fn ensure_system_accounts(ledger: &mut Ledger, currency: Currency) {
    for kind in SYSTEM_KINDS {
        let id = system_account(kind, currency);
        if ledger.account(&id).is_none() {
            let name = format!("{kind:?} {currency}");
            ledger.open_account(Account::new(id, kind, currency, &name)).expect("checked: not open yet");
        }
    }
}

fn posting_id(uetr: Uetr, step: &str) -> PostingId {
    PostingId::parse(&format!("{uetr}:{step}")).expect("UETR-based posting ids are valid")
}

/// Books a two-leg transfer for a step of payment `uetr`.
fn book(
    ledger: &mut Ledger,
    uetr: Uetr,
    step: &str,
    debit: &AccountId,
    credit: &AccountId,
    amount: Amount,
) -> Result<(), LedgerError> {
    ledger.post(Posting::transfer(posting_id(uetr, step), debit, credit, amount, step)).map(|_| ())
}

/// A customer account with an opening deposit (debit cash, credit the customer), opened
/// whole or not at all: only an overflowing cash balance can refuse it.
pub(super) fn open_funded(
    ledger: &mut Ledger,
    customer: Account,
    deposit: Amount,
) -> Result<(), LedgerError> {
    let cash = system_account(AccountKind::Cash, deposit.currency());
    let id = PostingId::parse(&format!("open:{}", customer.id)).expect("valid posting id");
    let funding = Posting::transfer(id, &cash, &customer.id, deposit, "opening deposit");
    ledger.open_funded_account(customer, funding)
}

/// Outgoing payment, step 1: debit the customer, credit in-flight. Refused (and nothing
/// changes) when the customer's balance is short.
pub(super) fn book_outgoing(
    ledger: &mut Ledger,
    uetr: Uetr,
    debtor: &AccountId,
    amount: Amount,
) -> Result<(), LedgerError> {
    book(ledger, uetr, "out", debtor, &system_account(AccountKind::InFlight, amount.currency()), amount)
}

/// Outgoing payment settled: debit in-flight, credit the settlement account.
pub(super) fn book_settled(ledger: &mut Ledger, uetr: Uetr, amount: Amount) -> Result<(), LedgerError> {
    let in_flight = system_account(AccountKind::InFlight, amount.currency());
    book(
        ledger,
        uetr,
        "settled",
        &in_flight,
        &system_account(AccountKind::Settlement, amount.currency()),
        amount,
    )
}

/// Outgoing payment rejected: debit in-flight, credit the customer back.
pub(super) fn book_reversal(
    ledger: &mut Ledger,
    uetr: Uetr,
    debtor: &AccountId,
    amount: Amount,
) -> Result<(), LedgerError> {
    book(ledger, uetr, "reversed", &system_account(AccountKind::InFlight, amount.currency()), debtor, amount)
}

/// Incoming payment: debit the settlement account, credit the beneficiary; or the ISO
/// reason why not (AC01 no such account, AC06 blocked, AM03 wrong currency, AM02 an
/// amount the account cannot take without its balance overflowing).
pub(super) fn book_incoming(
    ledger: &mut Ledger,
    transfer: &CreditTransfer,
) -> Result<(), (ReasonCode, String)> {
    let account = &transfer.creditor.account;
    let creditor = AccountId::parse(account)
        .ok()
        .and_then(|id| ledger.account(&id).filter(|a| a.kind == AccountKind::Customer).cloned())
        .ok_or_else(|| (ReasonCode::Ac01, format!("no account {account} at this bank")))?;
    if creditor.blocked {
        return Err((ReasonCode::Ac06, format!("account {account} is blocked")));
    }
    let currency = transfer.amount.currency();
    if creditor.currency != currency {
        return Err((
            ReasonCode::Am03,
            format!("account {account} holds {}, not {currency}", creditor.currency),
        ));
    }
    let settlement = system_account(AccountKind::Settlement, currency);
    book(ledger, transfer.uetr, "in", &settlement, &creditor.id, transfer.amount)
        .map_err(|error| (ReasonCode::Am02, format!("cannot credit {account}: {error}")))
}

/// A return, step 1 at the beneficiary's bank: debit the beneficiary, credit in-flight.
/// Refused (nothing changes) when the beneficiary's balance is short.
pub(super) fn book_return_out(
    ledger: &mut Ledger,
    uetr: Uetr,
    return_id: &str,
    creditor: &AccountId,
    amount: Amount,
) -> Result<(), LedgerError> {
    let in_flight = system_account(AccountKind::InFlight, amount.currency());
    book(ledger, uetr, &format!("return-out:{return_id}"), creditor, &in_flight, amount)
}

/// The hub accepted (and settled) the return: debit in-flight, credit settlement.
pub(super) fn book_return_settled(
    ledger: &mut Ledger,
    uetr: Uetr,
    return_id: &str,
    amount: Amount,
) -> Result<(), LedgerError> {
    let in_flight = system_account(AccountKind::InFlight, amount.currency());
    let settlement = system_account(AccountKind::Settlement, amount.currency());
    book(ledger, uetr, &format!("return-settled:{return_id}"), &in_flight, &settlement, amount)
}

/// The hub refused the return: debit in-flight, credit the beneficiary back.
pub(super) fn book_return_reversed(
    ledger: &mut Ledger,
    uetr: Uetr,
    return_id: &str,
    creditor: &AccountId,
    amount: Amount,
) -> Result<(), LedgerError> {
    let in_flight = system_account(AccountKind::InFlight, amount.currency());
    book(ledger, uetr, &format!("return-reversed:{return_id}"), &in_flight, creditor, amount)
}

/// A return arrived at the original debtor's bank: debit settlement, credit the debtor
/// with what it paid.
pub(super) fn book_returned(
    ledger: &mut Ledger,
    uetr: Uetr,
    return_id: &str,
    debtor: &AccountId,
    amount: Amount,
) -> Result<(), LedgerError> {
    let settlement = system_account(AccountKind::Settlement, amount.currency());
    book(ledger, uetr, &format!("returned:{return_id}"), &settlement, debtor, amount)
}
