//! Settlement positions at the hub, per participant and currency. Pure: no clocks, no I/O.
//!
//! A position is bounded by prefunded liquidity plus a net debit cap. A pacs.008
//! reserves its amount against the sender before the hub ACKs it; the receiver's ACSC
//! settles it (gross: liquidity moves at once; deferred net: it joins the open window,
//! which [`Positions::close_window`] nets multilaterally); its RJCT releases it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::{Amount, Bic, Currency, CurrencyPair, format_minor_units};

/// How the hub settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettlementModel {
    /// Real-time gross settlement: each payment final against liquidity at once.
    Gross,
    /// Deferred net settlement in windows.
    DeferredNet,
}

impl SettlementModel {
    /// The name used on the command line and in the journal.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gross => "gross",
            Self::DeferredNet => "deferred-net",
        }
    }

    /// Parses [`SettlementModel::name`].
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "gross" => Ok(Self::Gross),
            "deferred-net" => Ok(Self::DeferredNet),
            other => Err(format!("settlement model is gross or deferred-net, not {other:?}")),
        }
    }
}

impl fmt::Display for SettlementModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One participant's position in one currency, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Prefunded liquidity, plus the nets of closed windows (deferred net) or of settled
    /// payments (gross).
    pub liquidity: i64,
    /// How far below its liquidity the position may go.
    pub net_debit_cap: i64,
    /// Sent and ACKed, not yet answered.
    pub reserved: i64,
    /// Sent in the open window (deferred net only; zero under gross settlement).
    pub window_sent: i64,
    /// Received in the open window (deferred net only).
    pub window_received: i64,
    /// Net of every payment ever settled: received minus sent.
    pub settled_net: i64,
}

impl Position {
    /// Net of the payments settled in the open window: received minus sent.
    pub fn window_net(&self) -> i64 {
        // Both are zero or more, so the difference cannot overflow.
        self.window_received - self.window_sent
    }

    /// What the participant can still send: liquidity + cap + window net - reserved.
    pub fn available(&self) -> i128 {
        i128::from(self.liquidity) + i128::from(self.net_debit_cap) + i128::from(self.window_net())
            - i128::from(self.reserved)
    }
}

/// Why a position change was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionError(pub String);

impl fmt::Display for PositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One participant in one currency over a closed window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementLine {
    /// Who.
    pub participant: Bic,
    /// Which currency.
    pub currency: Currency,
    /// Gross sent.
    pub sent: i64,
    /// Gross received.
    pub received: i64,
    /// Received minus sent: what settling the window moves.
    pub net: i64,
}

/// One currency over a closed window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementTotal {
    /// Which currency.
    pub currency: Currency,
    /// Payments settled in the window.
    pub payments: u64,
    /// Their sum: what gross settlement moves.
    pub gross: i64,
    /// Sum of the net debit positions: what netting moves.
    pub net: i64,
}

/// A rate agreement's FX account in one currency: the other side of every conversion
/// under the agreement. In each currency, the participants' settled nets and these add
/// up to zero: value is conserved per currency across conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FxLine {
    /// The agreement's pair.
    pub pair: CurrencyPair,
    /// Which of its two currencies.
    pub currency: Currency,
    /// Received minus paid out in `currency`, minor units.
    pub net: i64,
}

/// What closing a window settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementReport {
    /// Window number, from 1.
    pub window_id: u64,
    /// When it opened (the previous close, or the first event), Unix ms.
    pub opened_unix_ms: i64,
    /// When it closed, Unix ms.
    pub closed_unix_ms: i64,
    /// Per participant and currency, sorted.
    pub lines: Vec<SettlementLine>,
    /// Per currency, sorted.
    pub totals: Vec<SettlementTotal>,
    /// What the window's conversions moved on each FX account, sorted.
    pub fx: Vec<FxLine>,
}

/// Every position at the hub, the suspensions and the settlement windows.
#[derive(Clone, Debug)]
pub struct Positions {
    model: SettlementModel,
    book: BTreeMap<(Bic, String), (Currency, Position)>,
    suspended: BTreeSet<Bic>,
    window_id: u64,
    window_opened_unix_ms: i64,
    window_payments: BTreeMap<String, u64>,
    reports: Vec<SettlementReport>,
    /// FX accounts by (pair, currency): (settled net, net in the open window).
    fx: BTreeMap<(CurrencyPair, Currency), (i64, i64)>,
}

fn add(value: i64, delta: i64, what: &str) -> Result<i64, PositionError> {
    value.checked_add(delta).ok_or_else(|| PositionError(format!("{what} would overflow")))
}

impl Positions {
    /// No positions yet; the first window opens at `opened_unix_ms`.
    pub fn new(model: SettlementModel, opened_unix_ms: i64) -> Self {
        Self {
            model,
            book: BTreeMap::new(),
            suspended: BTreeSet::new(),
            window_id: 1,
            window_opened_unix_ms: opened_unix_ms,
            window_payments: BTreeMap::new(),
            reports: Vec::new(),
            fx: BTreeMap::new(),
        }
    }

    /// Every FX account's settled net, by pair then currency.
    pub fn fx_positions(&self) -> impl Iterator<Item = FxLine> + '_ {
        self.fx.iter().map(|((pair, currency), (net, _))| FxLine {
            pair: *pair,
            currency: *currency,
            net: *net,
        })
    }

    /// When the open settlement window opened.
    pub fn window_opened_unix_ms(&self) -> i64 {
        self.window_opened_unix_ms
    }

    /// The settlement model.
    pub fn model(&self) -> SettlementModel {
        self.model
    }

    /// Number of the open window.
    pub fn open_window_id(&self) -> u64 {
        self.window_id
    }

    /// A participant's position in a currency (zero if it has none).
    pub fn position(&self, participant: Bic, currency: Currency) -> Position {
        self.book.get(&(participant, currency.code().to_owned())).map(|(_, p)| *p).unwrap_or_default()
    }

    /// Every position, by participant then currency.
    pub fn positions(&self) -> impl Iterator<Item = (Bic, Currency, &Position)> {
        self.book.iter().map(|((bic, _), (currency, position))| (*bic, *currency, position))
    }

    /// Closed windows' reports, oldest first.
    pub fn reports(&self) -> &[SettlementReport] {
        &self.reports
    }

    /// Whether `participant` is suspended.
    pub fn is_suspended(&self, participant: Bic) -> bool {
        self.suspended.contains(&participant)
    }

    /// Suspends or resumes `participant`; false if it already was in that state.
    pub fn set_suspended(&mut self, participant: Bic, suspended: bool) -> bool {
        if suspended { self.suspended.insert(participant) } else { self.suspended.remove(&participant) }
    }

    /// Applies `change` to a copy of the position, then stores it: all or nothing.
    fn update(
        &mut self,
        participant: Bic,
        currency: Currency,
        change: impl FnOnce(&mut Position) -> Result<(), PositionError>,
    ) -> Result<Position, PositionError> {
        let mut position = self.position(participant, currency);
        change(&mut position)?;
        self.book.insert((participant, currency.code().to_owned()), (currency, position));
        Ok(position)
    }

    /// Adds prefunded liquidity.
    pub fn fund(&mut self, participant: Bic, amount: Amount) -> Result<Position, PositionError> {
        self.update(participant, amount.currency(), |p| {
            p.liquidity = add(p.liquidity, amount.minor_units(), "liquidity")?;
            Ok(())
        })
    }

    /// Takes liquidity back: at most what the participant's own funds cover once its
    /// reservations and the open window's debts are met. The net debit cap is credit the
    /// hub extends for payments, never money to take out.
    pub fn defund(&mut self, participant: Bic, amount: Amount) -> Result<Position, PositionError> {
        let currency = amount.currency();
        self.update(participant, currency, |p| {
            let own = i128::from(p.liquidity) + i128::from(p.window_net().min(0)) - i128::from(p.reserved);
            if own < i128::from(amount.minor_units()) {
                return Err(PositionError(format!(
                    "{participant} has only {} {currency} of its own funds free (liquidity less reservations and \
                     window debts, the net debit cap not counted); cannot take back {amount}",
                    format_i128(own, currency)
                )));
            }
            p.liquidity = add(p.liquidity, -amount.minor_units(), "liquidity")?;
            Ok(())
        })
    }

    /// Sets the net debit cap (minor units, zero or more).
    pub fn set_net_debit_cap(
        &mut self,
        participant: Bic,
        currency: Currency,
        cap_minor_units: i64,
    ) -> Result<Position, PositionError> {
        if cap_minor_units < 0 {
            return Err(PositionError("a net debit cap is zero or more".into()));
        }
        self.update(participant, currency, |p| {
            p.net_debit_cap = cap_minor_units;
            Ok(())
        })
    }

    /// Reserves a payment's amount against its sender's position, or refuses it (AM04)
    /// when the position cannot cover it.
    pub fn reserve(&mut self, sender: Bic, amount: Amount) -> Result<(), PositionError> {
        let currency = amount.currency();
        self.update(sender, currency, |p| {
            let available = p.available();
            if available < i128::from(amount.minor_units()) {
                return Err(PositionError(format!(
                    "{sender}'s position cannot cover {amount}: liquidity {} + net debit cap {} + window net {} - \
                     reserved {} leaves {} available; the hub operator funds it with `corridor admin fund`",
                    format_minor_units(p.liquidity, currency),
                    format_minor_units(p.net_debit_cap, currency),
                    format_minor_units(p.window_net(), currency),
                    format_minor_units(p.reserved, currency),
                    format_i128(available, currency),
                )));
            }
            p.reserved = add(p.reserved, amount.minor_units(), "reserved")?;
            Ok(())
        })
        .map(|_| ())
    }

    /// The receiver rejected a reserved payment: the reservation goes.
    pub fn release(&mut self, sender: Bic, amount: Amount) {
        let released = self.update(sender, amount.currency(), |p| {
            p.reserved -= amount.minor_units();
            Ok(())
        });
        let position = released.expect("releasing cannot fail");
        assert!(position.reserved >= 0, "released more than was reserved");
    }

    /// The receiver accepted a reserved payment: it settles. The sender pays `debit`
    /// (what was reserved) and the receiver gets `credit`; when their currencies differ,
    /// the agreement of `pair` takes `debit` and pays `credit` on its FX accounts. Fails
    /// (changing nothing) only when a figure would overflow.
    pub fn settle(
        &mut self,
        sender: Bic,
        receiver: Bic,
        debit: Amount,
        credit: Amount,
        pair: Option<CurrencyPair>,
    ) -> Result<(), PositionError> {
        let gross = self.model == SettlementModel::Gross;
        let converted = debit.currency() != credit.currency();
        let pair = match (converted, pair) {
            (false, _) => None,
            (true, Some(pair)) => Some(pair),
            (true, None) => panic!("a conversion settles against an agreement's FX accounts"),
        };
        let (debit_minor, credit_minor) = (debit.minor_units(), credit.minor_units());
        let mut sender_position = self.position(sender, debit.currency());
        sender_position.reserved -= debit_minor;
        assert!(sender_position.reserved >= 0, "settled more than was reserved");
        sender_position.settled_net = add(sender_position.settled_net, -debit_minor, "settled net")?;
        // Same currency: the receiver's position is read after the sender's change (they
        // may be one record only if sender == receiver, which messages never are).
        let mut receiver_position = self.position(receiver, credit.currency());
        receiver_position.settled_net = add(receiver_position.settled_net, credit_minor, "settled net")?;
        if gross {
            sender_position.liquidity = add(sender_position.liquidity, -debit_minor, "liquidity")?;
            receiver_position.liquidity = add(receiver_position.liquidity, credit_minor, "liquidity")?;
        } else {
            sender_position.window_sent = add(sender_position.window_sent, debit_minor, "window gross")?;
            receiver_position.window_received =
                add(receiver_position.window_received, credit_minor, "window gross")?;
        }
        let fx_updates = match pair {
            None => Vec::new(),
            Some(pair) => {
                let (debit_side, credit_side) =
                    (self.fx_entry(pair, debit.currency()), self.fx_entry(pair, credit.currency()));
                vec![
                    (
                        (pair, debit.currency()),
                        (
                            add(debit_side.0, debit_minor, "FX net")?,
                            add(debit_side.1, debit_minor, "FX window net")?,
                        ),
                    ),
                    (
                        (pair, credit.currency()),
                        (
                            add(credit_side.0, -credit_minor, "FX net")?,
                            add(credit_side.1, -credit_minor, "FX window net")?,
                        ),
                    ),
                ]
            }
        };
        self.book.insert((sender, debit.currency().code().to_owned()), (debit.currency(), sender_position));
        self.book
            .insert((receiver, credit.currency().code().to_owned()), (credit.currency(), receiver_position));
        self.fx.extend(fx_updates);
        if !gross {
            *self.window_payments.entry(debit.currency().code().to_owned()).or_default() += 1;
        }
        Ok(())
    }

    fn fx_entry(&self, pair: CurrencyPair, currency: Currency) -> (i64, i64) {
        self.fx.get(&(pair, currency)).copied().unwrap_or_default()
    }

    /// Closes the open window (deferred net only): each participant's window net moves
    /// into its liquidity, and the report shows gross and net side by side.
    pub fn close_window(&mut self, closed_unix_ms: i64) -> Result<&SettlementReport, PositionError> {
        if self.model != SettlementModel::DeferredNet {
            return Err(PositionError(
                "this hub settles gross in real time: there are no settlement windows to close".into(),
            ));
        }
        let mut lines = Vec::new();
        let mut totals: BTreeMap<String, SettlementTotal> = BTreeMap::new();
        for ((participant, code), (currency, position)) in &mut self.book {
            if position.window_sent == 0 && position.window_received == 0 {
                continue;
            }
            lines.push(SettlementLine {
                participant: *participant,
                currency: *currency,
                sent: position.window_sent,
                received: position.window_received,
                net: position.window_net(),
            });
            let total = totals.entry(code.clone()).or_insert_with(|| SettlementTotal {
                currency: *currency,
                payments: 0,
                gross: 0,
                net: 0,
            });
            // Each payment is sent once: the sum of gross sent is the window's gross.
            total.gross = total.gross.saturating_add(position.window_sent);
            total.net = total.net.saturating_add((-position.window_net()).max(0));
            position.liquidity = position.liquidity.saturating_add(position.window_net());
            (position.window_sent, position.window_received) = (0, 0);
        }
        for (code, total) in &mut totals {
            total.payments = self.window_payments.get(code).copied().unwrap_or(0);
        }
        let mut fx = Vec::new();
        for ((pair, currency), (_, window_net)) in &mut self.fx {
            if *window_net != 0 {
                fx.push(FxLine { pair: *pair, currency: *currency, net: *window_net });
                *window_net = 0;
            }
        }
        let report = SettlementReport {
            window_id: self.window_id,
            opened_unix_ms: self.window_opened_unix_ms,
            closed_unix_ms,
            lines,
            totals: totals.into_values().collect(),
            fx,
        };
        self.window_id += 1;
        self.window_opened_unix_ms = closed_unix_ms;
        self.window_payments.clear();
        self.reports.push(report);
        Ok(self.reports.last().expect("just pushed"))
    }
}

fn format_i128(minor_units: i128, currency: Currency) -> String {
    match i64::try_from(minor_units) {
        Ok(value) => format_minor_units(value, currency),
        Err(_) => format!("{minor_units} minor units"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bic(text: &str) -> Bic {
        Bic::parse(text).unwrap()
    }

    fn rub(units: i64) -> Amount {
        Amount::from_minor_units(units, Currency::parse("RUB").unwrap()).unwrap()
    }

    #[test]
    fn a_reservation_beyond_liquidity_plus_cap_is_refused_and_changes_nothing() {
        let (a, b) = (bic("AAAARUMMXXX"), bic("BBBBRUMMXXX"));
        let mut positions = Positions::new(SettlementModel::Gross, 0);
        positions.fund(a, rub(100)).unwrap();
        positions.set_net_debit_cap(a, rub(1).currency(), 50).unwrap();
        let before = positions.position(a, rub(1).currency());
        assert!(positions.reserve(a, rub(151)).is_err());
        assert_eq!(positions.position(a, rub(1).currency()), before);
        positions.reserve(a, rub(150)).unwrap();
        positions.settle(a, b, rub(150), rub(150), None).unwrap();
        let after = positions.position(a, rub(1).currency());
        assert_eq!(
            (after.liquidity, after.reserved, after.settled_net, after.available()),
            (-50, 0, -150, 0)
        );
        assert_eq!(positions.position(b, rub(1).currency()).liquidity, 150);
    }

    #[test]
    fn the_net_debit_cap_is_never_paid_out() {
        let a = bic("AAAARUMMXXX");
        let mut positions = Positions::new(SettlementModel::Gross, 0);
        positions.fund(a, rub(1_000)).unwrap();
        positions.set_net_debit_cap(a, rub(1).currency(), 100_000).unwrap();
        positions.reserve(a, rub(300)).unwrap();
        let before = positions.position(a, rub(1).currency());
        assert!(positions.defund(a, rub(701)).is_err(), "only 1,000 - 300 reserved is its own");
        assert_eq!(positions.position(a, rub(1).currency()), before);
        assert_eq!(positions.defund(a, rub(700)).unwrap().liquidity, 300);
    }

    fn irr(units: i64) -> Amount {
        Amount::from_minor_units(units, Currency::parse("IRR").unwrap()).unwrap()
    }

    /// Per currency: the participants' settled nets and the FX accounts add up to zero.
    fn conserved(positions: &Positions) -> bool {
        let mut totals: BTreeMap<Currency, i64> = BTreeMap::new();
        for (_, currency, p) in positions.positions() {
            *totals.entry(currency).or_default() += p.settled_net;
        }
        for line in positions.fx_positions() {
            *totals.entry(line.currency).or_default() += line.net;
        }
        totals.values().all(|total| *total == 0)
    }

    #[test]
    fn a_conversion_settles_in_two_currencies_against_the_fx_accounts_and_a_return_undoes_it() {
        let (a, b) = (bic("AAAARUMMXXX"), bic("BBBBIRTHXXX"));
        let pair = CurrencyPair::parse("RUB/IRR").unwrap();
        let mut positions = Positions::new(SettlementModel::Gross, 0);
        positions.fund(a, rub(10_000)).unwrap();
        positions.reserve(a, rub(10_000)).unwrap();
        positions.settle(a, b, rub(10_000), irr(5_122_500), Some(pair)).unwrap();
        assert!(conserved(&positions));
        assert_eq!(positions.position(a, rub(1).currency()).liquidity, 0);
        assert_eq!(positions.position(b, irr(1).currency()).liquidity, 5_122_500);
        let fx: Vec<(Currency, i64)> = positions.fx_positions().map(|l| (l.currency, l.net)).collect();
        assert_eq!(fx, [(irr(1).currency(), -5_122_500), (rub(1).currency(), 10_000)]);
        // The return: the receiver pays back what it got, the sender gets back what it paid.
        positions.reserve(b, irr(5_122_500)).unwrap();
        positions.settle(b, a, irr(5_122_500), rub(10_000), Some(pair)).unwrap();
        assert!(conserved(&positions));
        assert!(positions.fx_positions().all(|l| l.net == 0));
        assert_eq!(positions.position(a, rub(1).currency()).liquidity, 10_000);
        assert_eq!(positions.position(b, irr(1).currency()).settled_net, 0);
    }

    #[test]
    fn a_window_reports_what_its_conversions_moved() {
        let (a, b) = (bic("AAAARUMMXXX"), bic("BBBBIRTHXXX"));
        let pair = CurrencyPair::parse("RUB/IRR").unwrap();
        let mut positions = Positions::new(SettlementModel::DeferredNet, 0);
        positions.fund(a, rub(100)).unwrap();
        positions.reserve(a, rub(100)).unwrap();
        positions.settle(a, b, rub(100), irr(51_225), Some(pair)).unwrap();
        let report = positions.close_window(5).unwrap().clone();
        let fx: Vec<(String, i64)> = report.fx.iter().map(|l| (l.currency.to_string(), l.net)).collect();
        assert_eq!(fx, [("IRR".to_owned(), -51_225), ("RUB".to_owned(), 100)]);
        assert_eq!(positions.position(b, irr(1).currency()).liquidity, 51_225);
        assert!(conserved(&positions));
        // The next window starts empty.
        assert!(positions.close_window(6).unwrap().fx.is_empty());
    }

    #[test]
    fn a_circle_of_payments_nets_to_nothing() {
        let (a, b, c) = (bic("AAAARUMMXXX"), bic("BBBBRUMMXXX"), bic("CCCCRUMMXXX"));
        let mut positions = Positions::new(SettlementModel::DeferredNet, 0);
        for (from, to) in [(a, b), (b, c), (c, a)] {
            positions.fund(from, rub(100)).unwrap();
            positions.reserve(from, rub(100)).unwrap();
            positions.settle(from, to, rub(100), rub(100), None).unwrap();
        }
        let report = positions.close_window(10).unwrap().clone();
        // The window moved nothing: each can take back its 100, and not a fen more.
        assert!(positions.defund(a, rub(101)).is_err());
        assert_eq!(report.totals.len(), 1);
        assert_eq!((report.totals[0].gross, report.totals[0].net, report.totals[0].payments), (300, 0, 3));
        assert!(report.lines.iter().all(|l| l.sent == 100 && l.received == 100 && l.net == 0));
        assert_eq!(positions.position(a, rub(1).currency()).liquidity, 100);
        assert_eq!(positions.open_window_id(), 2);
    }
}
