//! Two linked networks' hubs against each other: every payment that crossed the link is
//! the same payment at both (references, amounts in both currencies, how it ended), and
//! each hub's position of the link, the swap line, is exactly what the payments it
//! settled across the link add up to, in its own currency. With each network reconciled
//! on its own ([`super::reconcile`]: its banks against its hub, each currency adding up to
//! zero at its hub), this proves value conserved per currency across both networks.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Break, BreakKind, HubRecord, HubView, Report};
use crate::model::{Bic, Uetr};

/// One hub's side of a link.
#[derive(Clone, Copy, Debug)]
pub struct LinkSide<'a> {
    /// The hub's view.
    pub hub: &'a HubView,
    /// The other network's link identity, as this hub knows it (its link participant).
    pub link: Bic,
}

impl LinkSide<'_> {
    /// The payments that crossed this link, by UETR: a bank of the other network sent or
    /// received them.
    fn crossing(&self) -> HashMap<Uetr, &HubRecord> {
        let linked = &self.hub.linked;
        self.hub
            .payments
            .iter()
            .filter(|p| linked.contains(&p.sender) || linked.contains(&p.receiver))
            .map(|p| (p.uetr, p))
            .collect()
    }

    /// What `payment` moved on the link's position here, in this hub's currency: a
    /// payment out through the link credits it with what the sender paid, one in through
    /// it debits it with what the receiver got; a returned one moved nothing in the end.
    fn link_effect(&self, payment: &HubRecord) -> Option<(String, i64)> {
        if !payment.settled() || payment.returned {
            return None;
        }
        if self.hub.linked.contains(&payment.receiver) {
            Some((payment.instructed.currency().code().to_owned(), payment.instructed.minor_units()))
        } else {
            Some((payment.amount.currency().code().to_owned(), -payment.amount.minor_units()))
        }
    }
}

/// Compares the two hubs of a link.
pub fn reconcile_link(a: LinkSide<'_>, b: LinkSide<'_>) -> Report {
    let (at_a, at_b) = (a.crossing(), b.crossing());
    let uetrs: BTreeSet<Uetr> = at_a.keys().chain(at_b.keys()).copied().collect();
    let mut breaks = Vec::new();
    let mut excluded = HashSet::new();
    let mut in_transit = HashSet::new();
    let mut add = |kind, uetr: Uetr, side: &LinkSide<'_>, detail: String| {
        breaks.push(Break { kind, uetr: Some(uetr.to_string()), participant: side.link.to_string(), detail });
    };
    for uetr in &uetrs {
        match (at_a.get(uetr), at_b.get(uetr)) {
            (Some(pa), Some(pb)) => match compare(pa, pb) {
                Compared::Agree => {}
                Compared::Moving => {
                    in_transit.insert(*uetr);
                    excluded.insert(*uetr);
                }
                Compared::Differ(kind, detail) => {
                    add(kind, *uetr, &a, detail);
                    excluded.insert(*uetr);
                }
            },
            (Some(p), None) | (None, Some(p)) => {
                let (here, there) = if at_a.contains_key(uetr) { (&a, &b) } else { (&b, &a) };
                // Sent across and not yet taken by the other hub: still moving. Taken
                // (the other hub's ACK confirmed it), or received from it: it must be there.
                let outgoing = here.hub.linked.contains(&p.receiver);
                if outgoing && !p.delivered_to_receiver {
                    in_transit.insert(*uetr);
                } else {
                    let detail = format!(
                        "the hub linked to {} relayed {} from {} to {}; the hub linked to {} has no record",
                        here.link, p.amount, p.sender, p.receiver, there.link
                    );
                    add(BreakKind::MissingAtPeerHub, *uetr, there, detail);
                }
                excluded.insert(*uetr);
            }
            (None, None) => unreachable!("from one of the two"),
        }
    }
    for (side, crossing) in [(&a, &at_a), (&b, &at_b)] {
        breaks.extend(check_link_position(side, crossing, &excluded));
    }
    Report {
        breaks,
        payments_checked: uetrs.len(),
        payments_in_transit: in_transit.len(),
        participants_checked: 2,
        participants_not_checked: Vec::new(),
    }
}

enum Compared {
    Agree,
    /// Not final at both yet, or a return still crossing.
    Moving,
    Differ(BreakKind, String),
}

/// One payment as the two hubs have it.
fn compare(a: &HubRecord, b: &HubRecord) -> Compared {
    if a.amount != b.amount || a.instructed != b.instructed {
        let detail =
            format!("one hub {} for {}, the other {} for {}", a.instructed, a.amount, b.instructed, b.amount);
        return Compared::Differ(BreakKind::AmountMismatch, detail);
    }
    if a.message_id != b.message_id || a.sender != b.sender || a.receiver != b.receiver {
        let detail = format!(
            "one hub {} from {} to {}, the other {} from {} to {}",
            a.message_id, a.sender, a.receiver, b.message_id, b.sender, b.receiver
        );
        return Compared::Differ(BreakKind::ReferenceMismatch, detail);
    }
    match (a.final_status, b.final_status) {
        (Some(x), Some(y)) if x != y => {
            Compared::Differ(BreakKind::StatusMismatch, format!("one hub has it {x}, the other {y}"))
        }
        (Some(_), Some(_)) if a.returned != b.returned => Compared::Moving,
        (Some(_), Some(_)) => Compared::Agree,
        _ => Compared::Moving,
    }
}

/// The link's position at `side`'s hub against the payments it settled across the link,
/// leaving out on both sides those still moving or already a break.
fn check_link_position(
    side: &LinkSide<'_>,
    crossing: &HashMap<Uetr, &HubRecord>,
    excluded: &HashSet<Uetr>,
) -> Vec<Break> {
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut actual: BTreeMap<String, i64> = BTreeMap::new();
    for ((bic, code), net) in &side.hub.settled_net {
        if *bic == side.link {
            *actual.entry(code.clone()).or_default() += net;
            expected.entry(code.clone()).or_default();
        }
    }
    // A payment left out moved the position (or not) in a way not yet agreed: it comes off
    // the position instead of counting towards what is expected.
    for (uetr, payment) in crossing {
        let Some((code, effect)) = side.link_effect(payment) else { continue };
        if excluded.contains(uetr) {
            *actual.entry(code).or_default() -= effect;
        } else {
            *expected.entry(code).or_default() += effect;
        }
    }
    let codes: BTreeSet<String> = actual.keys().chain(expected.keys()).cloned().collect();
    codes
        .into_iter()
        .map(|code| (actual.get(&code).copied().unwrap_or_default(), code))
        .filter(|(net, code)| expected.get(code).copied().unwrap_or_default() != *net)
        .map(|(net, code)| Break {
            kind: BreakKind::LinkPositionMismatch,
            uetr: None,
            participant: side.link.to_string(),
            detail: format!(
                "the swap line with {} stands at {net} minor units of {code}; the payments settled across it add \
                 up to {}",
                side.link,
                expected.get(&code).copied().unwrap_or_default()
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Amount, Currency, MessageId, PaymentStatus};

    fn bic(text: &str) -> Bic {
        Bic::parse(text).unwrap()
    }

    fn amount(minor: i64, code: &str) -> Amount {
        Amount::from_minor_units(minor, Currency::parse(code).unwrap()).unwrap()
    }

    /// 100.00 RUB from a Russian bank to an Iranian one, settled: 45,000.00 IRR.
    fn payment(uetr: Uetr) -> HubRecord {
        HubRecord {
            uetr,
            message_id: MessageId::parse("M1").unwrap(),
            sender: bic("BANKRUMMXXX"),
            receiver: bic("BANKIRTHXXX"),
            amount: amount(4_500_000, "IRR"),
            instructed: amount(10_000, "RUB"),
            final_status: Some(PaymentStatus::Acsc),
            delivered_to_receiver: true,
            status_delivered_to_sender: true,
            returned: false,
            return_delivered_to_sender: false,
        }
    }

    /// The Russian hub's and the Iranian hub's views of one payment across the link.
    fn views(uetr: Uetr) -> (HubView, HubView) {
        let ru = HubView {
            payments: vec![payment(uetr)],
            settled_net: [
                ((bic("BANKRUMMXXX"), "RUB".to_owned()), -10_000),
                ((bic("BMJIIRTHXXX"), "RUB".to_owned()), 10_000),
            ]
            .into(),
            linked: [bic("BMJIIRTHXXX"), bic("BANKIRTHXXX")].into(),
            ..HubView::default()
        };
        let ir = HubView {
            payments: vec![payment(uetr)],
            settled_net: [
                ((bic("CBRFRUMMXXX"), "IRR".to_owned()), -4_500_000),
                ((bic("BANKIRTHXXX"), "IRR".to_owned()), 4_500_000),
            ]
            .into(),
            linked: [bic("CBRFRUMMXXX"), bic("BANKRUMMXXX")].into(),
            ..HubView::default()
        };
        (ru, ir)
    }

    fn check(ru: &HubView, ir: &HubView) -> Report {
        reconcile_link(
            LinkSide { hub: ru, link: bic("BMJIIRTHXXX") },
            LinkSide { hub: ir, link: bic("CBRFRUMMXXX") },
        )
    }

    fn kinds(report: &Report) -> Vec<BreakKind> {
        report.breaks.iter().map(|b| b.kind).collect()
    }

    /// Agreeing hubs are clean, and each way of disagreeing is the break it should be:
    /// an amount, a status, a payment one hub took that the other lacks, a swap line that
    /// does not add up. A payment not yet taken by the other hub is in transit, not a break.
    #[test]
    fn two_hubs_of_a_link_agree_or_each_difference_is_its_break() {
        let uetr = Uetr::generate();
        let (ru, ir) = views(uetr);
        let clean = check(&ru, &ir);
        assert!(clean.is_clean(), "{}", clean.render());
        assert_eq!((clean.payments_checked, clean.payments_in_transit), (1, 0));

        let (ru, mut ir) = views(uetr);
        ir.payments[0].amount = amount(4_500_001, "IRR");
        *ir.settled_net.get_mut(&(bic("CBRFRUMMXXX"), "IRR".to_owned())).unwrap() = -4_500_001;
        assert_eq!(kinds(&check(&ru, &ir)), [BreakKind::AmountMismatch]);

        let (ru, mut ir) = views(uetr);
        ir.payments[0].final_status = Some(PaymentStatus::Rjct);
        *ir.settled_net.get_mut(&(bic("CBRFRUMMXXX"), "IRR".to_owned())).unwrap() = 0;
        assert_eq!(kinds(&check(&ru, &ir)), [BreakKind::StatusMismatch]);

        let (ru, mut ir) = views(uetr);
        ir.payments.clear();
        *ir.settled_net.get_mut(&(bic("CBRFRUMMXXX"), "IRR".to_owned())).unwrap() = 0;
        assert_eq!(kinds(&check(&ru, &ir)), [BreakKind::MissingAtPeerHub]);

        let (mut ru, mut ir) = views(uetr);
        ir.payments.clear();
        ru.payments[0].delivered_to_receiver = false;
        ru.payments[0].final_status = None;
        *ru.settled_net.get_mut(&(bic("BMJIIRTHXXX"), "RUB".to_owned())).unwrap() = 0;
        *ir.settled_net.get_mut(&(bic("CBRFRUMMXXX"), "IRR".to_owned())).unwrap() = 0;
        let moving = check(&ru, &ir);
        assert!(moving.is_clean(), "{}", moving.render());
        assert_eq!(moving.payments_in_transit, 1);

        let (mut ru, ir) = views(uetr);
        *ru.settled_net.get_mut(&(bic("BMJIIRTHXXX"), "RUB".to_owned())).unwrap() = 10_001;
        assert_eq!(kinds(&check(&ru, &ir)), [BreakKind::LinkPositionMismatch]);
    }
}
