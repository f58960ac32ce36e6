//! What a run has seen so far: shared by the generator, each bank's link and the
//! progress counter, behind one `std::sync::Mutex` held only for short bookkeeping
//! (never across an `.await`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{LATENCY_MAX, LatencyMs};
use crate::model::Uetr;
use crate::pb;

/// How a payment ended, as the load generator learnt it.
#[derive(Clone, Debug)]
pub(super) struct Final {
    /// When the load generator learnt it.
    pub at: Instant,
    /// False when rejected (RJCT).
    pub settled: bool,
    /// The ISO reason code of a rejection.
    pub reason: String,
}

impl Final {
    /// The end a bank reports, now.
    pub fn of(status: i32, reason_code: &str) -> Self {
        let settled = status != pb::PaymentStatus::Rjct as i32;
        let reason = if reason_code.is_empty() { "none given".to_owned() } else { reason_code.to_owned() };
        Self { at: Instant::now(), settled, reason }
    }
}

/// Orders one bank may have waiting to be written to its stream (while it is away, or
/// slower than the rate asked): past it, the generator waits for that bank. 24 bytes
/// each, so at most 24 MiB a bank.
pub(super) const ORDERS_WAITING_MAX: usize = 1 << 20;

/// How long an end that matched nothing yet is kept: a final event before the answer
/// to its order (the answer comes within moments), or a payment found final by a query
/// after an outage whose event may still come. What matches nothing this long never
/// will: the end of a duplicate made by an order sent again after an outage, of a
/// payment not the run's at a running bank, an event missed while the watch was down.
/// Without it, both would grow with every outage for the whole run.
pub(super) const UNMATCHED_RETENTION: Duration = Duration::from_secs(60);
/// How often those past their retention are forgotten (so each is kept at most
/// [`UNMATCHED_RETENTION`] and this much more).
const UNMATCHED_FORGET_EVERY: Duration = Duration::from_secs(15);

/// The run's bookkeeping.
pub(super) struct Book {
    /// Per bank: each order the generator gave it, not yet answered, in order (answers
    /// come in that order): when it was due and the index of the bank it pays. Each
    /// bank's queue is its own, so that a bank away holds up only its own orders.
    pub due: Vec<VecDeque<(Instant, usize)>>,
    /// Per bank: how many of the first `due` orders were written to its stream (the
    /// rest wait for its link to take them). When the stream breaks, these are sent again.
    pub written: Vec<usize>,
    /// Past this many orders waiting at one bank, the generator waits for it.
    pub waiting_max: usize,
    /// Payments answered, not yet final: the index of the bank that sent each, and when
    /// it was due.
    pub open: HashMap<Uetr, (usize, Instant)>,
    /// Final before their submission's answer was read (kept for
    /// [`UNMATCHED_RETENTION`]).
    pub early: HashMap<Uetr, Final>,
    /// Found final by a query after an outage, and when: their event, should it come
    /// too, is not counted again (kept for [`UNMATCHED_RETENTION`]).
    pub queried: HashMap<Uetr, Instant>,
    /// When `early` and `queried` are next rid of what is past its retention.
    forget_at: Instant,
    /// Measure payments due from this instant on.
    pub measure_from: Instant,
    /// And due before this one (`None`: until `payments` are measured).
    pub measure_until: Option<Instant>,
    pub latency: Histogram<u64>,
    pub completed: u64,
    pub rejected: u64,
    pub refused: u64,
    /// Measured payments given to a bank so far.
    pub measured_due: u64,
    /// When the last measured payment became final.
    pub last_final: Instant,
    /// Rejected payments and refused orders (measured) by reason code.
    pub rejections_by_reason: BTreeMap<String, u64>,
    /// Times a bank's streams broke and were opened again.
    pub outages: u64,
    /// How long those outages lasted, in all.
    pub outage: Duration,
    /// Orders written on a stream that broke before answering them, sent again.
    pub orders_resent: u64,
    /// Banks whose streams are broken right now.
    pub banks_down: usize,
    /// When a bank last came back.
    pub last_reconnect: Option<Instant>,
}

impl Book {
    /// The book of a run over `banks` banks measuring from `measure_from` (until
    /// `measure_until`, if given).
    pub fn new(banks: usize, measure_from: Instant, measure_until: Option<Instant>) -> Self {
        Self {
            due: (0..banks).map(|_| VecDeque::new()).collect(),
            written: vec![0; banks],
            waiting_max: ORDERS_WAITING_MAX,
            open: HashMap::new(),
            early: HashMap::new(),
            queried: HashMap::new(),
            forget_at: measure_from,
            measure_from,
            measure_until,
            latency: LatencyMs::histogram(),
            completed: 0,
            rejected: 0,
            refused: 0,
            measured_due: 0,
            last_final: measure_from,
            rejections_by_reason: BTreeMap::new(),
            outages: 0,
            outage: Duration::ZERO,
            orders_resent: 0,
            banks_down: 0,
            last_reconnect: None,
        }
    }

    /// Whether a payment due at `due` is measured.
    pub fn measured(&self, due: Instant) -> bool {
        due >= self.measure_from && self.measure_until.is_none_or(|until| due < until)
    }

    /// Orders bank `index` has waiting to be written to its stream.
    pub fn waiting(&self, index: usize) -> usize {
        self.due[index].len() - self.written[index]
    }

    /// Up to `max` of bank `index`'s waiting orders (the index of the bank each pays),
    /// oldest first, counted as written from now on.
    pub fn take_waiting(&mut self, index: usize, max: usize) -> Vec<usize> {
        let taken: Vec<usize> =
            self.due[index].iter().skip(self.written[index]).take(max).map(|(_, to)| *to).collect();
        self.written[index] += taken.len();
        taken
    }

    /// Every measured payment is final or refused.
    pub fn drained(&self) -> bool {
        self.completed + self.rejected + self.refused >= self.measured_due
    }

    /// A payment due at `due` ended.
    fn finish(&mut self, due: Instant, end: &Final) {
        if !self.measured(due) {
            return;
        }
        let micros = end.at.saturating_duration_since(due).min(LATENCY_MAX).as_micros() as u64;
        self.latency.record(micros.max(1)).expect("clamped to the histogram's range");
        if end.settled {
            self.completed += 1;
        } else {
            self.rejected += 1;
            *self.rejections_by_reason.entry(end.reason.clone()).or_default() += 1;
        }
        self.last_final = self.last_final.max(end.at);
    }

    /// Bank `index` answered its oldest order. True when that order is over (refused,
    /// or its payment already final): its slot in the window is free again.
    pub fn answered(&mut self, index: usize, answer: pb::SubmitPaymentResult) -> Result<bool, String> {
        let never_sent = || format!("bank #{index} answered an order never sent");
        self.written[index] = self.written[index].checked_sub(1).ok_or_else(never_sent)?;
        let (due, _) = self.due[index].pop_front().ok_or_else(never_sent)?;
        let Some(payment) = answer.payment else {
            if self.measured(due) {
                self.refused += 1;
                *self.rejections_by_reason.entry(refusal_reason(answer.code, &answer.detail)).or_default() +=
                    1;
            }
            tracing::warn!(detail = %answer.detail, "the bank refused a load generator order");
            return Ok(true);
        };
        let uetr = Uetr::parse(&payment.uetr).map_err(|e| e.to_string())?;
        match self.early.remove(&uetr) {
            Some(end) => {
                self.finish(due, &end);
                Ok(true)
            }
            None => {
                self.open.insert(uetr, (index, due));
                Ok(false)
            }
        }
    }

    /// A bank reported one of its outgoing payments final. True when it was one of
    /// this run's, open until now.
    pub fn reported(&mut self, uetr: Uetr, end: Final) -> bool {
        self.forget_unmatched(end.at);
        if self.queried.remove(&uetr).is_some() {
            return false;
        }
        match self.open.remove(&uetr) {
            Some((_, due)) => {
                self.finish(due, &end);
                true
            }
            None => {
                self.early.insert(uetr, end);
                false
            }
        }
    }

    /// A query after an outage found payment `uetr` final. True when it was open until
    /// now (and so ends here).
    pub fn found_final(&mut self, uetr: Uetr, end: Final) -> bool {
        self.forget_unmatched(end.at);
        let Some((_, due)) = self.open.remove(&uetr) else { return false };
        self.finish(due, &end);
        self.queried.insert(uetr, end.at);
        true
    }

    /// Forgets, as of `now`, the early ends and the queried payments that have matched
    /// nothing for [`UNMATCHED_RETENTION`]; at most every [`UNMATCHED_FORGET_EVERY`].
    fn forget_unmatched(&mut self, now: Instant) {
        if now < self.forget_at {
            return;
        }
        self.forget_at = now + UNMATCHED_FORGET_EVERY;
        let kept = |at: Instant| now.saturating_duration_since(at) < UNMATCHED_RETENTION;
        self.early.retain(|_, end| kept(end.at));
        self.queried.retain(|_, at| kept(*at));
    }

    /// The open payments of bank `index`.
    pub fn open_at(&self, index: usize) -> Vec<Uetr> {
        self.open.iter().filter(|(_, (bank, _))| *bank == index).map(|(uetr, _)| *uetr).collect()
    }
}

/// The reason code of a refused order: the ISO code its detail ends with in
/// parentheses ("insufficient funds on LOADGEN-1 (AM04)"), or else its gRPC status.
pub(super) fn refusal_reason(code: i32, detail: &str) -> String {
    let iso = detail
        .trim_end()
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once('('))
        .map(|(_, code)| code)
        .filter(|code| code.len() == 4 && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    match iso {
        Some(code) => code.to_owned(),
        None => format!("{:?}", tonic::Code::from_i32(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused order is listed under the ISO code its bank gave, and under its gRPC
    /// status when it gave none, so that the report's reasons are codes a user can look up.
    #[test]
    fn a_refusal_is_listed_under_its_iso_code_or_its_status() {
        assert_eq!(refusal_reason(9, "insufficient funds on LOADGEN-1 (AM04)"), "AM04");
        assert_eq!(refusal_reason(9, "debtor_account: X is blocked (AC06) "), "AC06");
        assert_eq!(refusal_reason(3, "amount: an amount must be positive (got \"0\")"), "InvalidArgument");
        assert_eq!(refusal_reason(14, ""), "Unavailable");
    }

    /// Every order is answered once, in order: an answer with no order written before
    /// it is a broken stream, not a payment.
    #[test]
    fn an_answer_to_no_order_is_an_error() {
        let now = Instant::now();
        let mut book = Book::new(2, now, None);
        assert!(book.answered(0, pb::SubmitPaymentResult::default()).is_err());
        book.due[0].push_back((now, 1));
        book.written[0] = 1;
        assert_eq!(book.answered(0, pb::SubmitPaymentResult { code: 9, ..Default::default() }), Ok(true));
        assert_eq!((book.refused, book.measured_due), (1, 0));
        assert_eq!(book.rejections_by_reason.get("FailedPrecondition"), Some(&1));
    }

    /// Ends that match nothing are not kept for the whole run (the review of issue 19
    /// item 6): after each outage, the final events of duplicates made by orders sent
    /// again have no order answered for them, and payments found final by a query may
    /// never see their event. A run with an unmatched end every second for 1000 s keeps
    /// only those of the last [`UNMATCHED_RETENTION`] (and one forgetting interval),
    /// while an end that is matched within it still counts.
    #[test]
    fn ends_that_match_nothing_are_forgotten_after_their_retention() {
        let start = Instant::now();
        let mut book = Book::new(1, start, None);
        let settled = |at: Instant| Final { at, settled: true, reason: String::new() };
        let bound = (UNMATCHED_RETENTION + UNMATCHED_FORGET_EVERY).as_secs() as usize + 1;
        for second in 0..1000 {
            let at = start + Duration::from_secs(second);
            assert!(!book.reported(Uetr::generate(), settled(at)), "a duplicate's end");
            let found = Uetr::generate();
            book.open.insert(found, (0, at));
            assert!(book.found_final(found, settled(at)), "found by a query, its event never comes");
            assert!(book.early.len() <= bound && book.queried.len() <= bound, "second {second}");
        }
        assert_eq!(book.completed, 1000);
        // An end before its answer, within the retention, is still matched.
        let late = start + Duration::from_secs(1000);
        let uetr = Uetr::generate();
        assert!(!book.reported(uetr, settled(late)));
        book.due[0].push_back((late, 0));
        book.written[0] = 1;
        let payment = pb::Payment { uetr: uetr.to_string(), ..Default::default() };
        let answer = pb::SubmitPaymentResult { payment: Some(payment), ..Default::default() };
        assert_eq!(book.answered(0, answer), Ok(true));
        assert_eq!(book.completed, 1001);
    }

    /// A payment found final by a query after an outage is counted once, even when its
    /// event arrives as well.
    #[test]
    fn a_payment_found_final_after_an_outage_is_counted_once() {
        let now = Instant::now();
        let mut book = Book::new(1, now, None);
        let uetr = Uetr::generate();
        book.open.insert(uetr, (0, now));
        let settled = Final::of(pb::PaymentStatus::Acsc as i32, "");
        assert!(book.found_final(uetr, settled.clone()));
        assert!(!book.found_final(uetr, settled.clone()));
        assert!(!book.reported(uetr, settled));
        assert_eq!(book.completed, 1);
        assert!(book.early.is_empty() && book.queried.is_empty());
    }
}
