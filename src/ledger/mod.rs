//! The double-entry ledger core: accounts, postings and their invariants. No I/O.
//!
//! Every posting has two or more legs whose debits equal their credits in every
//! currency; it applies whole or not at all; an account never goes below its floor; a
//! posting id makes applying the same posting twice a no-op. The invariant "debits
//! equal credits" is asserted on every posting and can be checked again, independently,
//! from the balances ([`Ledger::is_balanced`]), as the reconciler does.
//!
//! A long-running owner keeps the balances but not every posting: [`Ledger::forget_postings`]
//! drops the oldest postings (their owner keeps them durably elsewhere). Balances and the
//! invariants do not depend on them; only the no-op replay of a forgotten posting id does,
//! so an owner that forgets postings must guard replays itself (the bank does, by the
//! state of each payment).

mod account;
mod posting;

pub use account::{Account, AccountId, AccountKind, Floor, Side};
pub use posting::{Leg, PostOutcome, Posting, PostingId};

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

use crate::model::{Balance, Currency};

/// Why a posting or an account operation was refused. A refused operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    /// No such account.
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    /// An account with this id already exists.
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    /// A leg's currency is not its account's.
    #[error("account {account} is in {account_currency}, the leg is in {leg_currency}")]
    CurrencyMismatch {
        /// The account.
        account: AccountId,
        /// Its currency.
        account_currency: Currency,
        /// The leg's currency.
        leg_currency: Currency,
    },
    /// Fewer than two legs.
    #[error("a posting needs at least two legs (got {0})")]
    TooFewLegs(usize),
    /// Debits and credits differ in a currency.
    #[error("debits and credits differ by {difference_minor_units} minor units of {currency}")]
    Unbalanced {
        /// The currency.
        currency: Currency,
        /// Debits minus credits.
        difference_minor_units: i128,
    },
    /// The posting would take an account below its floor.
    #[error("account {account} would fall to {balance_after} below its floor {floor}")]
    FloorBreached {
        /// The account.
        account: AccountId,
        /// Its balance after the posting, on its normal side.
        balance_after: i64,
        /// Its floor.
        floor: i64,
    },
    /// A balance would overflow.
    #[error("balance of account {0} would overflow")]
    Overflow(AccountId),
    /// The same posting id was used for a different posting.
    #[error("posting {0} was already applied with different legs")]
    PostingConflict(PostingId),
}

/// A bank's ledger: accounts and the postings applied to them, in order.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    accounts: BTreeMap<AccountId, Account>,
    /// Account ids in the order they were opened.
    opening_order: Vec<AccountId>,
    /// The postings held, oldest first: every posting applied but the first
    /// `postings_forgotten`.
    postings: Vec<Posting>,
    /// Postings applied and then forgotten (they were the oldest).
    postings_forgotten: usize,
    /// Number (0 for the first ever applied) of each held posting by id, to make replays
    /// of held postings no-ops.
    posting_index: BTreeMap<PostingId, usize>,
    /// Per currency, the sum of every account's debit-minus-credit balance. Kept from the
    /// balance changes themselves, so it checks the arithmetic, not just the legs.
    debit_minus_credit: HashMap<Currency, i128>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens an account with a zero balance.
    pub fn open_account(&mut self, account: Account) -> Result<(), LedgerError> {
        if self.accounts.contains_key(&account.id) {
            return Err(LedgerError::AccountExists(account.id));
        }
        assert_eq!(account.balance, 0, "accounts open at zero; money arrives by posting");
        self.opening_order.push(account.id.clone());
        self.accounts.insert(account.id.clone(), account);
        Ok(())
    }

    /// Opens an account and applies its funding posting, both or neither.
    pub fn open_funded_account(&mut self, account: Account, funding: Posting) -> Result<(), LedgerError> {
        let id = account.id.clone();
        self.open_account(account)?;
        if let Err(error) = self.post(funding) {
            // A refused posting changed nothing, so removing the account restores the ledger.
            self.accounts.remove(&id);
            self.opening_order.pop();
            return Err(error);
        }
        Ok(())
    }

    /// The account, if it exists.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Account ids in the order they were opened.
    pub fn opening_order(&self) -> &[AccountId] {
        &self.opening_order
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Blocks or unblocks an account (a bank-level policy: postings still apply).
    pub fn set_blocked(&mut self, id: &AccountId, blocked: bool) -> Result<&Account, LedgerError> {
        let account = self.accounts.get_mut(id).ok_or_else(|| LedgerError::UnknownAccount(id.clone()))?;
        account.blocked = blocked;
        Ok(account)
    }

    /// The postings held, in order: every posting applied unless some were forgotten.
    /// The first is number [`Ledger::postings_forgotten`].
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// How many postings were applied, held or forgotten.
    pub fn posting_count(&self) -> usize {
        self.postings_forgotten + self.postings.len()
    }

    /// How many of the oldest postings were forgotten: the number of the first held one.
    pub fn postings_forgotten(&self) -> usize {
        self.postings_forgotten
    }

    /// Forgets the `count` oldest held postings (all of them if fewer are held). The
    /// balances stay; applying a forgotten posting's id again is no longer a no-op.
    pub fn forget_postings(&mut self, count: usize) {
        let count = count.min(self.postings.len());
        for posting in self.postings.drain(..count) {
            self.posting_index.remove(&posting.id);
        }
        self.postings_forgotten += count;
    }

    /// Applies a posting whole, or refuses it and changes nothing. Applying a posting
    /// whose id was applied before is a no-op ([`PostOutcome::AlreadyApplied`]).
    pub fn post(&mut self, posting: Posting) -> Result<PostOutcome, LedgerError> {
        if let Some(&number) = self.posting_index.get(&posting.id) {
            return if self.postings[number - self.postings_forgotten] == posting {
                Ok(PostOutcome::AlreadyApplied)
            } else {
                Err(LedgerError::PostingConflict(posting.id))
            };
        }
        let new_balances = self.balances_after(&posting)?;
        for (id, balance) in new_balances {
            let account = self.accounts.get_mut(&id).expect("checked in balances_after");
            let change = i128::from(balance) - i128::from(account.balance);
            *self.debit_minus_credit.entry(account.currency).or_default() += match account.kind.normal_side()
            {
                Side::Debit => change,
                Side::Credit => -change,
            };
            account.balance = balance;
        }
        for (currency, total) in &self.debit_minus_credit {
            assert_eq!(*total, 0, "double-entry invariant broken in {currency} by posting {}", posting.id);
        }
        self.posting_index.insert(posting.id.clone(), self.posting_count());
        self.postings.push(posting);
        Ok(PostOutcome::Applied)
    }

    /// Checks a posting and computes the balances it would leave, without changing anything.
    fn balances_after(&self, posting: &Posting) -> Result<BTreeMap<AccountId, i64>, LedgerError> {
        if posting.legs.len() < 2 {
            return Err(LedgerError::TooFewLegs(posting.legs.len()));
        }
        let mut net: HashMap<Currency, i128> = HashMap::new();
        let mut balances: BTreeMap<AccountId, i64> = BTreeMap::new();
        for leg in &posting.legs {
            let account = self
                .accounts
                .get(&leg.account)
                .ok_or_else(|| LedgerError::UnknownAccount(leg.account.clone()))?;
            let currency = leg.amount.currency();
            if account.currency != currency {
                return Err(LedgerError::CurrencyMismatch {
                    account: account.id.clone(),
                    account_currency: account.currency,
                    leg_currency: currency,
                });
            }
            let minor_units = leg.amount.minor_units();
            *net.entry(currency).or_default() += match leg.side {
                Side::Debit => i128::from(minor_units),
                Side::Credit => -i128::from(minor_units),
            };
            let balance = balances.entry(account.id.clone()).or_insert(account.balance);
            let change = if leg.side == account.kind.normal_side() { minor_units } else { -minor_units };
            *balance =
                balance.checked_add(change).ok_or_else(|| LedgerError::Overflow(account.id.clone()))?;
        }
        if let Some((currency, difference)) = net.into_iter().find(|(_, difference)| *difference != 0) {
            return Err(LedgerError::Unbalanced { currency, difference_minor_units: difference });
        }
        for (id, balance) in &balances {
            if let Floor::Minimum(floor) = self.accounts[id].floor
                && *balance < floor
            {
                return Err(LedgerError::FloorBreached {
                    account: id.clone(),
                    balance_after: *balance,
                    floor,
                });
            }
        }
        Ok(balances)
    }

    /// Recomputes, from the balances alone, that debits equal credits in every currency.
    pub fn is_balanced(&self) -> bool {
        self.debit_minus_credit_by_currency().values().all(|total| *total == 0)
    }

    /// Per currency, the sum of every account's balance counted debit-positive; zero in
    /// a balanced ledger. Computed from the accounts, independently of the postings.
    pub fn debit_minus_credit_by_currency(&self) -> HashMap<Currency, i128> {
        let mut totals: HashMap<Currency, i128> = HashMap::new();
        for account in self.accounts.values() {
            *totals.entry(account.currency).or_default() += i128::from(account.debit_balance());
        }
        totals
    }

    /// An account's balance on its normal side.
    pub fn balance(&self, id: &AccountId) -> Option<Balance> {
        self.accounts.get(id).map(Account::balance)
    }
}
