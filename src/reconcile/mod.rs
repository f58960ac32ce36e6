//! The reconciler: statements in, breaks out. Pure: it compares what the hub's journal
//! says with what every bank's records say, matched by UETR and message id, and names
//! each difference. [`sources`] gathers the inputs, live over gRPC or offline from data
//! directories.
//!
//! A payment still moving (a message queued or not yet processed) is *in transit*, not
//! a break: it is counted, and left out of the position check on both sides. Everything
//! else that differs is a break.

pub mod link;
pub mod sources;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::model::{Amount, Bic, Currency, EntryDirection, MessageId, PaymentStatus, Statement, Uetr};

/// A payment as the hub's journal has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubRecord {
    /// UETR.
    pub uetr: Uetr,
    /// Message id of the pacs.008.
    pub message_id: MessageId,
    /// Sender.
    pub sender: Bic,
    /// Receiver.
    pub receiver: Bic,
    /// Interbank settlement amount: what the receiver gets.
    pub amount: Amount,
    /// What the sender instructed and pays (`amount` when not converted).
    pub instructed: Amount,
    /// The receiver's final answer the hub relayed, if any.
    pub final_status: Option<PaymentStatus>,
    /// The receiver confirmed the pacs.008 processed.
    pub delivered_to_receiver: bool,
    /// The sender confirmed the status report processed.
    pub status_delivered_to_sender: bool,
    /// The hub accepted and settled a return (pacs.004) of it.
    pub returned: bool,
    /// The sender confirmed the return processed.
    pub return_delivered_to_sender: bool,
}

impl HubRecord {
    fn settled(&self) -> bool {
        matches!(self.final_status, Some(PaymentStatus::Acsc | PaymentStatus::Accc))
    }

    /// The amount `direction`'s bank books: the sender its instructed amount, the
    /// receiver the settlement amount.
    fn amount_at(&self, direction: Direction) -> Amount {
        if direction == Direction::Outgoing { self.instructed } else { self.amount }
    }

    /// What the payment (and its return) moved on `bic`'s position, per currency.
    fn position_effect(&self, bic: Bic, currency: Currency) -> i64 {
        if !self.settled() {
            return 0;
        }
        let mut effect = 0;
        for (party, amount, sign) in [(self.sender, self.instructed, -1), (self.receiver, self.amount, 1)] {
            if party == bic && amount.currency() == currency && !self.returned {
                effect += sign * amount.minor_units();
            }
        }
        effect
    }
}

/// The hub's side.
#[derive(Clone, Debug, Default)]
pub struct HubView {
    /// Every payment.
    pub payments: Vec<HubRecord>,
    /// Each participant's net of settled payments per currency (received minus sent).
    pub settled_net: BTreeMap<(Bic, String), i64>,
    /// Each rate agreement's FX account per currency: (pair, currency) to its net.
    pub fx_net: BTreeMap<(String, String), i64>,
    /// The linked networks' link identities and banks: their records are not this
    /// network's to read; [`link::reconcile_link`] compares this hub with theirs instead.
    pub linked: BTreeSet<Bic>,
}

/// Which way a payment goes, seen from a bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// It pays.
    Outgoing,
    /// It is paid.
    Incoming,
}

/// A payment as a bank's records have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankRecord {
    /// UETR.
    pub uetr: Uetr,
    /// Message id of the pacs.008.
    pub message_id: MessageId,
    /// Which way.
    pub direction: Direction,
    /// The other bank.
    pub counterparty: Bic,
    /// Amount as the bank booked it, in its own currency.
    pub amount: Amount,
    /// Status.
    pub status: PaymentStatus,
    /// Where a return of it stands at the bank.
    pub returned: ReturnView,
}

/// Where a return stands at a bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnView {
    /// Not returned.
    None,
    /// Sent by the beneficiary's bank, not yet ACKed by the hub.
    Returning,
    /// Returned.
    Returned,
}

/// One bank's side.
#[derive(Clone, Debug)]
pub struct BankView {
    /// Its BIC.
    pub bic: Bic,
    /// Every payment it knows.
    pub payments: Vec<BankRecord>,
    /// The statement of its settlement account in each currency, over all time.
    pub settlement: Vec<Statement>,
    /// Its own check that debits equal credits.
    pub ledger_balanced: bool,
}

/// Kinds of break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The hub relayed a payment a bank has no record of.
    MissingAtBank,
    /// A bank has a payment the hub never relayed.
    MissingAtHub,
    /// A participant the hub exchanged payments with (or whose settled position moved)
    /// had its records not read at all, so its side of them was not compared: a break
    /// about the participant, with no one payment to name.
    ParticipantNotRead,
    /// Amount or currency differ.
    AmountMismatch,
    /// Message id or counterparty differ.
    ReferenceMismatch,
    /// Hub and bank disagree on how the payment ended.
    StatusMismatch,
    /// A payment booked more than once on a settlement account.
    AppliedTwice,
    /// The hub's position and the bank's settlement account differ.
    PositionMismatch,
    /// A bank's ledger does not balance.
    LedgerUnbalanced,
    /// At the hub, the participants' positions and the FX accounts do not add up to
    /// zero in a currency: value was created or lost.
    ValueNotConserved,
    /// One linked hub relayed a payment across the link that the other has no record of.
    MissingAtPeerHub,
    /// A hub's position of the link (the swap line) differs from what the payments it
    /// settled across the link add up to.
    LinkPositionMismatch,
}

impl BreakKind {
    /// The name in reports (`missing_at_bank`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingAtBank => "missing_at_bank",
            Self::MissingAtHub => "missing_at_hub",
            Self::ParticipantNotRead => "participant_not_read",
            Self::AmountMismatch => "amount_mismatch",
            Self::ReferenceMismatch => "reference_mismatch",
            Self::StatusMismatch => "status_mismatch",
            Self::AppliedTwice => "applied_twice",
            Self::PositionMismatch => "position_mismatch",
            Self::LedgerUnbalanced => "ledger_unbalanced",
            Self::ValueNotConserved => "value_not_conserved",
            Self::MissingAtPeerHub => "missing_at_peer_hub",
            Self::LinkPositionMismatch => "link_position_mismatch",
        }
    }
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A difference between two records that must agree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    /// What kind.
    pub kind: BreakKind,
    /// The payment, where there is one.
    pub uetr: Option<String>,
    /// The participant whose records differ from the hub's.
    pub participant: String,
    /// What differs, in a sentence.
    pub detail: String,
}

/// The reconciler's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every break found.
    pub breaks: Vec<Break>,
    /// Payments compared (distinct UETRs at the hub and the banks).
    pub payments_checked: usize,
    /// Payments still moving, left out of the position check.
    pub payments_in_transit: usize,
    /// Participants whose records were read.
    pub participants_checked: usize,
    /// Participants the hub's records name (a payment to or from it, a position) whose
    /// own records were not read, so their side was not compared: out of scope
    /// ([`Scope::Only`]), or never part of any exchange (only payments held for it, which
    /// are in transit). One that took part while in scope is also a
    /// [`BreakKind::ParticipantNotRead`] break.
    pub participants_not_checked: Vec<String>,
}

/// Whose records a reconciliation compares with the hub's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every participant: one the hub exchanged payments with, or whose settled position
    /// moved, must have been read, or the report has a [`BreakKind::ParticipantNotRead`]
    /// break for it.
    #[default]
    Every,
    /// Only these (`corridor reconcile --participants`): another participant's side is not
    /// compared, and the report lists it as not checked instead of as a break.
    Only(BTreeSet<Bic>),
}

impl Scope {
    /// Whether `bic`'s records are to be compared.
    pub fn includes(&self, bic: Bic) -> bool {
        match self {
            Self::Every => true,
            Self::Only(participants) => participants.contains(&bic),
        }
    }
}

impl Report {
    /// True when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.breaks.is_empty()
    }

    /// The report as JSON, with whether it is clean and its table for people (`clean`,
    /// `text`): what the hub's dashboard shows.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("clean".into(), serde_json::Value::Bool(self.is_clean()));
            map.insert("text".into(), serde_json::Value::String(self.render()));
        }
        value
    }

    /// A table for people.
    pub fn render(&self) -> String {
        let mut text = format!(
            "reconciliation: {} payments checked across {} participants, {} in transit, {} breaks\n",
            self.payments_checked,
            self.participants_checked,
            self.payments_in_transit,
            self.breaks.len()
        );
        if !self.breaks.is_empty() {
            text += &format!("{:<19} {:<12} {:<37} detail\n", "kind", "participant", "uetr");
        }
        for b in &self.breaks {
            let uetr = b.uetr.as_deref().unwrap_or("-");
            text += &format!("{:<19} {:<12} {:<37} {}\n", b.kind.name(), b.participant, uetr, b.detail);
        }
        if !self.participants_not_checked.is_empty() {
            text +=
                &format!("not checked (records not read): {}\n", self.participants_not_checked.join(", "));
        }
        text
    }
}

struct Reconciliation<'a> {
    hub: HashMap<Uetr, &'a HubRecord>,
    banks: HashMap<Bic, (&'a BankView, HashMap<Uetr, &'a BankRecord>)>,
    breaks: Vec<Break>,
    /// Payments left out of the position check: in transit, or already a break.
    excluded: HashSet<Uetr>,
    in_transit: HashSet<Uetr>,
}

/// Compares the hub with every bank, expecting the records of every participant that took
/// part ([`Scope::Every`]).
pub fn reconcile(hub: &HubView, banks: &[BankView]) -> Report {
    reconcile_in_scope(hub, banks, &Scope::Every)
}

/// Compares the hub with every bank; `scope` says whose records were meant to be read.
pub fn reconcile_in_scope(hub: &HubView, banks: &[BankView], scope: &Scope) -> Report {
    let mut run = Reconciliation {
        hub: hub.payments.iter().map(|p| (p.uetr, p)).collect(),
        banks: banks.iter().map(|b| (b.bic, (b, b.payments.iter().map(|p| (p.uetr, p)).collect()))).collect(),
        breaks: Vec::new(),
        excluded: HashSet::new(),
        in_transit: HashSet::new(),
    };
    for payment in &hub.payments {
        run.check_hub_payment(payment);
    }
    let mut checked: HashSet<Uetr> = run.hub.keys().copied().collect();
    for bank in banks {
        run.check_bank_payments(bank);
        checked.extend(bank.payments.iter().map(|p| p.uetr));
        run.check_applied_once(bank);
        if !bank.ledger_balanced {
            run.add(
                BreakKind::LedgerUnbalanced,
                None,
                bank.bic,
                "debits do not equal credits in its ledger".into(),
            );
        }
    }
    for bank in banks {
        run.check_positions(hub, bank);
    }
    let participants_not_checked = run.check_every_participant_read(hub, scope);
    run.check_conservation(hub);
    run.breaks.sort_by(|a, b| (a.kind, &a.participant, &a.uetr).cmp(&(b.kind, &b.participant, &b.uetr)));
    Report {
        breaks: run.breaks,
        payments_checked: checked.len(),
        payments_in_transit: run.in_transit.len(),
        participants_checked: banks.len(),
        participants_not_checked,
    }
}

impl<'a> Reconciliation<'a> {
    fn add(&mut self, kind: BreakKind, uetr: Option<Uetr>, participant: Bic, detail: String) {
        if let Some(uetr) = uetr {
            self.excluded.insert(uetr);
        }
        let uetr = uetr.map(|u| u.to_string());
        self.breaks.push(Break { kind, uetr, participant: participant.to_string(), detail });
    }

    fn transit(&mut self, uetr: Uetr) {
        self.in_transit.insert(uetr);
        self.excluded.insert(uetr);
    }

    fn record_at(&self, bank: Bic, uetr: &Uetr) -> Option<Option<&'a BankRecord>> {
        self.banks.get(&bank).map(|(_, payments)| payments.get(uetr).copied())
    }

    /// The hub's payment against the sender's and the receiver's records.
    fn check_hub_payment(&mut self, hub: &HubRecord) {
        let uetr = hub.uetr;
        for (bank, direction) in [(hub.sender, Direction::Outgoing), (hub.receiver, Direction::Incoming)] {
            let Some(record) = self.record_at(bank, &uetr) else { continue };
            let Some(record) = record else {
                if direction == Direction::Incoming && !hub.delivered_to_receiver {
                    self.transit(uetr);
                } else {
                    let detail = format!(
                        "the hub relayed {} from {} to {}; {bank} has no record",
                        hub.amount, hub.sender, hub.receiver
                    );
                    self.add(BreakKind::MissingAtBank, Some(uetr), bank, detail);
                }
                continue;
            };
            let counterparty = if direction == Direction::Outgoing { hub.receiver } else { hub.sender };
            if record.amount != hub.amount_at(direction) {
                let detail = format!("hub {}, bank {}", hub.amount_at(direction), record.amount);
                self.add(BreakKind::AmountMismatch, Some(uetr), bank, detail);
            }
            if record.message_id != hub.message_id
                || record.direction != direction
                || record.counterparty != counterparty
            {
                let detail = format!(
                    "hub: {} {direction:?} with {counterparty}; bank: {} {:?} with {}",
                    hub.message_id, record.message_id, record.direction, record.counterparty
                );
                self.add(BreakKind::ReferenceMismatch, Some(uetr), bank, detail);
            }
            self.check_status(hub, record, bank, direction);
            self.check_return(hub, record, bank, direction);
        }
    }

    /// Hub and bank agree on whether the payment was returned, once the return is no
    /// longer moving: the returner's ACK or the original sender's delivery may lag.
    fn check_return(&mut self, hub: &HubRecord, record: &BankRecord, bank: Bic, direction: Direction) {
        let uetr = hub.uetr;
        match (hub.returned, record.returned, direction) {
            (true, ReturnView::Returned, _) | (false, ReturnView::None, _) => {}
            // The returner sent it; the hub has not answered, or the answer is not processed.
            (_, ReturnView::Returning, Direction::Incoming) => self.transit(uetr),
            // The hub settled the return; the original sender has not processed it yet.
            (true, ReturnView::None, Direction::Outgoing) if !hub.return_delivered_to_sender => {
                self.transit(uetr)
            }
            (true, _, _) => {
                let detail = format!("hub settled a return of it, the bank has it {:?}", record.returned);
                self.add(BreakKind::StatusMismatch, Some(uetr), bank, detail);
            }
            (false, _, _) => {
                let detail =
                    format!("the bank has it {:?}, the hub settled no return of it", record.returned);
                self.add(BreakKind::StatusMismatch, Some(uetr), bank, detail);
            }
        }
    }

    /// In each currency, the participants' settled nets and the FX accounts add up to
    /// zero: conversions move value between currencies only through the agreements.
    fn check_conservation(&mut self, hub: &HubView) {
        let mut totals: BTreeMap<&str, i128> = BTreeMap::new();
        for ((_, code), net) in &hub.settled_net {
            *totals.entry(code).or_default() += i128::from(*net);
        }
        for ((_, code), net) in &hub.fx_net {
            *totals.entry(code).or_default() += i128::from(*net);
        }
        let hub_bic = Bic::parse(crate::tls::HUB_BIC).expect("valid");
        for (code, total) in totals.into_iter().filter(|(_, total)| *total != 0) {
            let detail = format!(
                "in {code}, the participants' settled positions and the FX accounts add up to {total} minor units, not 0"
            );
            self.add(BreakKind::ValueNotConserved, None, hub_bic, detail);
        }
    }

    fn check_status(&mut self, hub: &HubRecord, record: &BankRecord, bank: Bic, direction: Direction) {
        let uetr = hub.uetr;
        let bank_final = record.status.is_final().then_some(record.status);
        let settled_family = |s: PaymentStatus| matches!(s, PaymentStatus::Acsc | PaymentStatus::Accc);
        let agree = |a: PaymentStatus, b: PaymentStatus| a == b || (settled_family(a) && settled_family(b));
        match (hub.final_status, bank_final, direction) {
            (Some(h), Some(b), _) if agree(h, b) => {}
            (Some(h), Some(b), _) => {
                self.add(
                    BreakKind::StatusMismatch,
                    Some(uetr),
                    bank,
                    format!("hub relayed {h}, bank has {b}"),
                );
            }
            // The receiver answered; its answer has not reached the hub yet.
            (None, Some(_), Direction::Incoming) => self.transit(uetr),
            // The hub relayed the answer; the sender has not processed it yet.
            (Some(_), None, Direction::Outgoing) if !hub.status_delivered_to_sender => self.transit(uetr),
            (Some(h), None, _) => {
                let detail =
                    format!("hub relayed {h} and the bank confirmed it, but the bank has {}", record.status);
                self.add(BreakKind::StatusMismatch, Some(uetr), bank, detail);
            }
            (None, Some(b), Direction::Outgoing) => {
                let detail = format!("bank has {b}, but the hub relayed no final status");
                self.add(BreakKind::StatusMismatch, Some(uetr), bank, detail);
            }
            (None, None, _) => self.transit(uetr),
        }
    }

    /// A participant the hub exchanged payments with (it sent them, or they were delivered
    /// to it) or whose settled position moved must have had its records read, if it is in
    /// `scope`: otherwise its side of them was not checked, and saying "clean" would be a
    /// lie. One the hub only holds payments for (never delivered: it never connected) has
    /// nothing to compare; those payments are in transit. Returns every participant the hub
    /// names whose records were not read.
    fn check_every_participant_read(&mut self, hub: &HubView, scope: &Scope) -> Vec<String> {
        #[derive(Default)]
        struct Unread {
            exchanged: usize,
            held: usize,
            position_moved: bool,
        }
        let mut unread: BTreeMap<Bic, Unread> = BTreeMap::new();
        let ours = |bic: &Bic| !hub.linked.contains(bic);
        for payment in &hub.payments {
            if !self.banks.contains_key(&payment.sender) && ours(&payment.sender) {
                unread.entry(payment.sender).or_default().exchanged += 1;
            }
            if !self.banks.contains_key(&payment.receiver) && ours(&payment.receiver) {
                let entry = unread.entry(payment.receiver).or_default();
                if payment.delivered_to_receiver {
                    entry.exchanged += 1;
                } else {
                    entry.held += 1;
                }
            }
        }
        for ((bic, _), net) in &hub.settled_net {
            if !self.banks.contains_key(bic) && ours(bic) {
                unread.entry(*bic).or_default().position_moved |= *net != 0;
            }
        }
        for (bic, unread) in &unread {
            if !scope.includes(*bic) || (unread.exchanged == 0 && !unread.position_moved) {
                continue;
            }
            let moved = if unread.position_moved { " and its settled position moved" } else { "" };
            let detail = format!(
                "the hub exchanged {} payments with {bic}{moved} (and holds {} more for it), but its records were \
                 not read (offline: no store; live: no --bank {bic}=URL), so its side was not checked; read them, \
                 or name the participants to check with --participants",
                unread.exchanged, unread.held
            );
            self.add(BreakKind::ParticipantNotRead, None, *bic, detail);
        }
        unread.into_keys().map(|bic| bic.to_string()).collect()
    }

    /// A bank's payments the hub never relayed.
    fn check_bank_payments(&mut self, bank: &BankView) {
        for record in &bank.payments {
            if self.hub.contains_key(&record.uetr) {
                continue;
            }
            // Not yet sent, or refused by the hub (a NAK): the hub never accepted it.
            let never_accepted = record.direction == Direction::Outgoing
                && matches!(record.status, PaymentStatus::Pdng | PaymentStatus::Rjct);
            if never_accepted {
                if record.status == PaymentStatus::Pdng {
                    self.transit(record.uetr);
                }
                continue;
            }
            let detail = format!(
                "{:?} {} {} {} is {} at the bank; the hub's journal has no such payment",
                record.direction,
                record.amount,
                if record.direction == Direction::Outgoing { "to" } else { "from" },
                record.counterparty,
                record.status
            );
            self.add(BreakKind::MissingAtHub, Some(record.uetr), bank.bic, detail);
        }
    }

    /// Each payment moves a bank's settlement account once in each direction at most.
    fn check_applied_once(&mut self, bank: &BankView) {
        for statement in &bank.settlement {
            let mut seen: HashMap<(Uetr, bool), usize> = HashMap::new();
            for entry in &statement.entries {
                if let Some(uetr) = entry.uetr {
                    *seen.entry((uetr, entry.direction == EntryDirection::Crdt)).or_default() += 1;
                }
            }
            let mut twice: Vec<_> = seen.into_iter().filter(|(_, count)| *count > 1).collect();
            twice.sort_by_key(|((uetr, credit), _)| (uetr.to_string(), *credit));
            for ((uetr, credit), count) in twice {
                let side = if credit { "credited" } else { "debited" };
                let detail = format!("{} {side} {count} times for one payment", statement.account);
                self.add(BreakKind::AppliedTwice, Some(uetr), bank.bic, detail);
            }
        }
    }

    /// The hub's settled net equals the bank's settlement balance in each currency, once
    /// the payments in transit or already broken are left out on both sides.
    fn check_positions(&mut self, hub: &HubView, bank: &BankView) {
        let mut currencies: BTreeMap<String, (Currency, i64, i64)> = BTreeMap::new();
        for ((bic, code), net) in &hub.settled_net {
            if *bic == bank.bic
                && let Ok(currency) = Currency::parse(code)
            {
                currencies.entry(code.clone()).or_insert((currency, 0, 0)).1 = *net;
            }
        }
        for statement in &bank.settlement {
            let currency = statement.closing_balance.currency;
            let excluded: i64 = statement
                .entries
                .iter()
                .filter(|e| e.uetr.is_some_and(|u| self.excluded.contains(&u)))
                .map(|e| e.signed_minor_units())
                .sum();
            let balance = statement.closing_balance.minor_units - excluded;
            currencies.entry(currency.code().to_owned()).or_insert((currency, 0, 0)).2 = balance;
        }
        for (code, (currency, hub_net, bank_balance)) in currencies {
            let hub_excluded: i64 = self
                .hub
                .values()
                .filter(|p| self.excluded.contains(&p.uetr))
                .map(|p| p.position_effect(bank.bic, currency))
                .sum();
            let hub_net = hub_net - hub_excluded;
            if hub_net != bank_balance {
                let show = |m: i64| crate::model::format_minor_units(m, currency);
                let detail = format!(
                    "hub position {} {code}, bank settlement account {} {code} (payments in transit or broken left out)",
                    show(hub_net),
                    show(bank_balance)
                );
                self.add(BreakKind::PositionMismatch, None, bank.bic, detail);
            }
        }
    }
}
