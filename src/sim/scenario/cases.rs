//! A scenario's returns and recalls of its listed payments: each waits until its payment
//! settled, is started by the bank's operator, is answered (a recall) and is followed
//! until the funds are back at the sender (or the recall refused). A case that cannot
//! go on (its payment never settled, a bank refused) is told and counted as not done.

use super::{CASE_KINDS, Run};
use crate::model::{Currency, ReasonCode, format_minor_units};
use crate::pb;
use crate::sim::demo::{CaseLine, wait_for};

/// The payment a case is about, as the run sent it.
struct CasePayment {
    from: usize,
    to: usize,
    uetr: String,
}

impl Run<'_> {
    /// The beneficiary's bank returns listed payment `listed` with `reason` (a pacs.004);
    /// done once the funds are back at the sender. A sentence for the teacher.
    pub(super) async fn return_case(&mut self, listed: usize, reason: ReasonCode) -> Result<String, String> {
        let kind = CASE_KINDS[0];
        let Some(case) = self.case_payment(listed) else {
            return Ok(self.not_done(kind, listed, reason, "it was never sent"));
        };
        let (from, to) = (self.scenario.banks[case.from].bic, self.scenario.banks[case.to].bic);
        let settled = |p: &pb::Payment| p.status == pb::PaymentStatus::Acsc as i32;
        if self.wait(case.to, &case.uetr, settled).await?.is_none() {
            return Ok(self.not_done(kind, listed, reason, &format!("{to} never saw it settle")));
        }
        let request = pb::ReturnPaymentRequest {
            uetr: case.uetr.clone(),
            reason_code: reason.code().into(),
            additional_information: "returned in the scenario".into(),
        };
        let client = self.clients[case.to].as_mut().expect("online: the wait used it");
        if let Err(status) = client.return_payment(request).await {
            return Ok(self.not_done(kind, listed, reason, &format!("{to} refused: {}", status.message())));
        }
        let returned = |p: &pb::Payment| p.return_state == pb::ReturnState::Returned as i32;
        let ended = self.wait(case.from, &case.uetr, returned).await?;
        self.record(kind, &case, reason, ended);
        Ok(format!("{to} returns payment[{listed}] {} to {from} (pacs.004, {reason})", case.uetr))
    }

    /// The sender's bank recalls listed payment `listed` with `reason` (a camt.056); the
    /// beneficiary's bank accepts (`refusal` none: the funds come back with a pacs.004)
    /// or refuses with `refusal` (a camt.029 RJCR). A sentence for the teacher.
    pub(super) async fn recall_case(
        &mut self,
        listed: usize,
        reason: ReasonCode,
        refusal: Option<ReasonCode>,
    ) -> Result<String, String> {
        let kind = if refusal.is_none() { CASE_KINDS[1] } else { CASE_KINDS[2] };
        let Some(case) = self.case_payment(listed) else {
            return Ok(self.not_done(kind, listed, reason, "it was never sent"));
        };
        let (from, to) = (self.scenario.banks[case.from].bic, self.scenario.banks[case.to].bic);
        let settled = |p: &pb::Payment| p.status == pb::PaymentStatus::Acsc as i32;
        if self.wait(case.from, &case.uetr, settled).await?.is_none() {
            return Ok(self.not_done(kind, listed, reason, &format!("{from} never saw it settle")));
        }
        let request = pb::RecallPaymentRequest {
            uetr: case.uetr.clone(),
            reason_code: reason.code().into(),
            additional_information: "recalled in the scenario".into(),
        };
        let client = self.clients[case.from].as_mut().expect("online: the wait used it");
        if let Err(status) = client.recall_payment(request).await {
            return Ok(self.not_done(kind, listed, reason, &format!("{from} refused: {}", status.message())));
        }
        let open = |p: &pb::Payment| p.recall_status == pb::InvestigationStatus::Pdcr as i32;
        if self.wait(case.to, &case.uetr, open).await?.is_none() {
            return Ok(self.not_done(kind, listed, reason, &format!("the recall never reached {to}")));
        }
        let request = pb::AnswerRecallRequest {
            uetr: case.uetr.clone(),
            accept: refusal.is_none(),
            reason_code: refusal.map(|r| r.code().to_owned()).unwrap_or_default(),
            additional_information: "answered in the scenario".into(),
        };
        let client = self.clients[case.to].as_mut().expect("online: the wait used it");
        if let Err(status) = client.answer_recall(request).await {
            return Ok(self.not_done(
                kind,
                listed,
                reason,
                &format!("{to} could not answer: {}", status.message()),
            ));
        }
        let ended = match refusal {
            None => {
                self.wait(case.from, &case.uetr, |p| p.return_state == pb::ReturnState::Returned as i32)
                    .await?
            }
            Some(_) => {
                let refused = |p: &pb::Payment| p.recall_status == pb::InvestigationStatus::Rjcr as i32;
                self.wait(case.from, &case.uetr, refused).await?
            }
        };
        self.record(kind, &case, reason, ended);
        Ok(match refusal {
            None => format!(
                "{from} recalls payment[{listed}] {} ({reason}); {to} accepts (camt.029 CNCL) and sends the funds \
                 back (pacs.004 FOCR)",
                case.uetr
            ),
            Some(refusal) => format!(
                "{from} recalls payment[{listed}] {} ({reason}); {to} refuses (camt.029 RJCR, {refusal})",
                case.uetr
            ),
        })
    }

    /// Listed payment `listed`, if its bank took the order.
    fn case_payment(&self, listed: usize) -> Option<CasePayment> {
        let planned = self.scenario.payments.iter().find(|p| p.listed == Some(listed))?;
        let uetr = self.listed_uetrs.get(&listed)?.clone();
        Some(CasePayment { from: planned.from, to: planned.to, uetr })
    }

    /// Polls bank `index`'s payment `uetr` until `done` holds (bounded); `None` if it
    /// never did or the bank is offline.
    async fn wait(
        &mut self,
        index: usize,
        uetr: &str,
        done: impl Fn(&pb::Payment) -> bool,
    ) -> Result<Option<pb::Payment>, String> {
        match self.clients[index].as_mut() {
            Some(client) => wait_for(client, uetr, done).await,
            None => Ok(None),
        }
    }

    /// Keeps a case that ended (`ended`: the sender's payment then, or `None` if it did not).
    fn record(&mut self, kind: &str, case: &CasePayment, reason: ReasonCode, ended: Option<pb::Payment>) {
        let money = |m: Option<&pb::Money>| {
            m.and_then(|m| Currency::parse(&m.currency).ok().map(|c| (m.minor_units, c)))
                .map(|(units, c)| format!("{} {c}", format_minor_units(units, c)))
                .unwrap_or_default()
        };
        let (paid, received) = ended.as_ref().map_or_else(Default::default, |p| {
            (money(p.amount.as_ref()), money(p.counter_amount.as_ref().or(p.amount.as_ref())))
        });
        let outcome = match &ended {
            Some(p) if kind == CASE_KINDS[2] => format!("refused ({})", p.recall_reason_code),
            Some(p) => format!("{paid} back to {}", p.debtor_account),
            None => "did not end in time".into(),
        };
        self.cases.push(CaseLine {
            kind: kind.into(),
            uetr: case.uetr.clone(),
            from: self.scenario.banks[case.from].bic.to_string(),
            to: self.scenario.banks[case.to].bic.to_string(),
            paid,
            received,
            reason_code: reason.code().into(),
            outcome,
            done: ended.is_some(),
        });
    }

    /// Keeps a case that could not go on, and says why.
    fn not_done(&mut self, kind: &str, listed: usize, reason: ReasonCode, why: &str) -> String {
        let planned =
            self.scenario.payments.iter().find(|p| p.listed == Some(listed)).expect("checked at load");
        let (from, to) = (&self.scenario.banks[planned.from], &self.scenario.banks[planned.to]);
        self.cases.push(CaseLine {
            kind: kind.into(),
            uetr: self.listed_uetrs.get(&listed).cloned().unwrap_or_default(),
            from: from.bic.to_string(),
            to: to.bic.to_string(),
            paid: String::new(),
            received: String::new(),
            reason_code: reason.code().into(),
            outcome: format!("not done: {why}"),
            done: false,
        });
        format!("The {kind} of payment[{listed}] cannot go on: {why}")
    }
}
