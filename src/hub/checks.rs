//! The ordered checks on a submission (DESIGN.md "One payment, end to end"; SECURITY.md is
//! the authority): the participant's rate and input sequence number, the peer is the
//! signer and the sender, size and schema, freshness and key validity, the signature (in
//! batches), RMA, duplicates, then step 6 (in `state`) and the durable append; and
//! the ACK or NAK that answers each submission.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tonic::Code;

use super::duplicates::Seen;
use super::state::{Hop, HubState};
use super::{AcceptedRecord, Hub, HubEvent, HubRecord, NAK_DETAIL_MAX, duration_ms};
use crate::crypto::{
    KeyDirectory, ReceiptProof, ReceiptTree, SignatureCheck, SignedEnvelope, SigningIdentity, receipt_leaf,
};
use crate::directory::Directory;
use crate::model::{Bic, Message, MessageId, MessageKey, MessageKeyHasher, MessageType, ReasonCode, wire};
use crate::pb;
use crate::store::Ticket;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub(super) struct RateLimiter {
    tokens: f64,
    last: std::time::Instant,
}

impl Default for RateLimiter {
    /// Full: the first take clamps the tokens to the burst.
    fn default() -> Self {
        Self { tokens: f64::MAX, last: std::time::Instant::now() }
    }
}

impl RateLimiter {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: u32, burst: u32) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * f64::from(rate);
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / f64::from(rate)))
        }
    }
}

impl Hub {
    /// Runs every check on a submission from the authenticated `peer`, in order, and
    /// answers with an ACK (the message is journalled and queued for its receiver) or a
    /// NAK (nothing changed but the input sequence number). The answer may be sent only
    /// once the returned ticket is durable.
    pub fn submit(&self, peer: Bic, submit: pb::Submit) -> (pb::session_response::Frame, Ticket) {
        self.submit_batch(peer, vec![submit]).pop().expect("one answer per submission")
    }

    /// [`Hub::submit`] for the submissions of one session that arrived together: each is
    /// checked in order as on its own, except that their signatures are verified in one
    /// batch (about twice as fast per signature; a failed batch is verified one by one),
    /// and their ACKs share one receipt signature (see [`crate::crypto::ReceiptTree`]).
    /// One answer per submission, in order.
    pub fn submit_batch(
        &self,
        peer: Bic,
        submits: Vec<pb::Submit>,
    ) -> Vec<(pb::session_response::Frame, Ticket)> {
        let directory = self.directory();
        let now = self.now_unix_ms();
        // The receipt key, once per batch: by the same time the freshness and key checks use.
        let identity = self.inner.credentials.identity(now);
        // A linked hub's session, once per batch: its messages are other banks'.
        let via = directory.is_link(peer).then_some(peer);
        let (steps, checks): (Vec<Step>, Vec<Option<SignatureCheck>>) = submits
            .into_iter()
            .map(|submit| self.check_before_signature(peer, via, submit, &directory, now))
            .unzip();
        let checks: Vec<_> = checks.into_iter().flatten().map(Ok).collect();
        metrics::histogram!(crate::metrics::HUB_VERIFY_BATCH).record(checks.len() as f64);
        let mut verified = KeyDirectory::verify_all(checks).into_iter();
        // 3. The signature, against the directory; then 4, the receiver and RMA. What passes
        //    is decided under one lock, and its ACKs share one receipt signature.
        let mut candidates = Vec::with_capacity(steps.len());
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|step| {
                let Step::Checked { isn, sequenced, checked } = step else { return step };
                let verified = verified.next().expect("one result per checked submission");
                let payload = checked.envelope.payload.clone();
                let message_type = checked.message.message_type();
                let outcome = verified
                    .map_err(|e| Refusal::new(Code::Unauthenticated, None, e.to_string()))
                    .and_then(|()| check_relationship(&checked, &directory));
                match outcome {
                    Ok(()) => {
                        candidates.push((isn, *checked));
                        Step::Candidate { isn, sequenced, payload, message_type }
                    }
                    Err(refusal) => {
                        let answer =
                            self.answer(peer, isn, sequenced, &payload, Some(message_type), Err(refusal));
                        Step::Answered(answer.0, answer.1)
                    }
                }
            })
            .collect();
        let mut outcomes = self.accept_batch(peer, candidates, &identity).into_iter();
        steps
            .into_iter()
            .map(|step| match step {
                Step::Answered(frame, ticket) => (frame, ticket),
                Step::Candidate { isn, sequenced, payload, message_type } => {
                    let outcome = outcomes.next().expect("one outcome per candidate");
                    self.answer(peer, isn, sequenced, &payload, Some(message_type), outcome)
                }
                Step::Checked { .. } => unreachable!("every checked submission was decided"),
            })
            .collect()
    }

    /// The participant's rate and the input sequence number, then checks 1 and 2 of
    /// DESIGN.md, with the message's freshness and its key's validity. A submission that
    /// passes comes with what verifying its signature takes.
    fn check_before_signature(
        &self,
        peer: Bic,
        via: Option<Bic>,
        submit: pb::Submit,
        directory: &Directory,
        now: i64,
    ) -> (Step, Option<SignatureCheck>) {
        let isn = submit.isn;
        let Some(envelope) = submit.envelope else {
            let detail = "a Submit carries an envelope";
            let frame = nak(isn, "", Code::InvalidArgument, Some(ReasonCode::Ff01), detail);
            return (Step::Answered(frame, Ticket::DURABLE), None);
        };
        let sequenced = match self.check_rate_and_sequence(peer, isn, via.is_some()) {
            Ok(sequenced) => sequenced,
            // Shed: nothing is read, not even the message id.
            Err(Admission::Shed(retry_after)) => {
                return (Step::Answered(shed(isn, retry_after), Ticket::DURABLE), None);
            }
            Err(Admission::Refused(refusal)) => {
                self.refused(peer, None, refusal.reason);
                let frame = refusal.into_nak(isn, &peek_message_id(&envelope.payload));
                return (Step::Answered(frame, Ticket::DURABLE), None);
            }
        };
        // Kept (a reference count, not a copy) to name the message in a NAK when the
        // checks stop before the payload is decoded.
        let payload = envelope.payload.clone();
        match self.check_envelope(peer, via, envelope, directory, now) {
            Ok((checked, check)) => {
                (Step::Checked { isn, sequenced, checked: Box::new(checked) }, Some(check))
            }
            Err(refusal) => {
                let (frame, ticket) = self.answer(peer, isn, sequenced, &payload, None, Err(refusal));
                (Step::Answered(frame, ticket), None)
            }
        }
    }

    /// The ACK or NAK for a checked submission, with the ticket it waits for.
    fn answer(
        &self,
        peer: Bic,
        isn: u64,
        sequenced: Ticket,
        payload: &[u8],
        message_type: Option<MessageType>,
        outcome: Result<Accept, Refusal>,
    ) -> (pb::session_response::Frame, Ticket) {
        match outcome {
            Ok(Accept { message_id, receipt, ticket }) => {
                let ack = pb::Ack { isn, message_id: message_id.to_string(), receipt: Some(receipt) };
                (pb::session_response::Frame::Ack(ack), ticket.max(sequenced))
            }
            Err(refusal) => {
                metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => "any", "result" => "refused")
                    .increment(1);
                self.refused(peer, message_type, refusal.reason);
                let message_id = peek_message_id(payload);
                tracing::info!(sender = %peer, isn, %message_id, code = ?refusal.code, reason = refusal.reason.map(|r| r.code()), detail = %refusal.detail, "NAK");
                // The NAK goes out once the sequence number it consumed is durable.
                (refusal.into_nak(isn, &message_id), sequenced)
            }
        }
    }

    /// Counts a refusal and tells listeners.
    fn refused(&self, sender: Bic, message_type: Option<MessageType>, reason: Option<ReasonCode>) {
        self.inner.refused.count(message_type);
        self.tell(HubEvent::Refused { message_type, sender, reason, unix_ms: self.now_unix_ms() });
    }

    /// The participant's rate, then its input sequence number, under one lock.
    ///
    /// A submission past the rate is shed, not refused: its sequence number is not
    /// consumed, and neither is anything after it on the session until the bank resends
    /// from it (it would be a gap); the bank is told how long to wait.
    ///
    /// Input sequence numbers run 1, 2, ... per participant; a resend may repeat an old
    /// one (duplicates are caught by message id), but a gap is refused, never skipped:
    /// the bank resends from the number the hub expects.
    ///
    /// A new number is journalled as consumed at once, and the returned ticket covers it
    /// (or, for a resend, every number consumed so far): no answer about a number can
    /// leave before the number's consumption is durable, whichever session consumed it.
    ///
    /// A link carries a whole network's traffic: it has no rate of its own (the linked
    /// hub's banks each had theirs).
    fn check_rate_and_sequence(&self, peer: Bic, isn: u64, link: bool) -> Result<Ticket, Admission> {
        let config = &self.inner.config;
        let mut state = self.inner.state.lock().expect("hub state lock");
        let participant = state.participants.get_mut(&peer).expect("sessions open only for participants");
        let shed_behind = participant.shed_from.is_some_and(|from| isn > from);
        let rate = if link {
            Ok(())
        } else if shed_behind {
            // Sent before the bank heard of the shedding: shed too, with no token taken.
            Err(Duration::from_secs_f64(1.0 / f64::from(config.participant_rate_max)))
        } else {
            participant.rate.take(config.participant_rate_max, config.participant_burst_max)
        };
        if let Err(retry_after) = rate {
            participant.shed_total += 1;
            participant.shed_from = Some(participant.shed_from.map_or(isn, |from| from.min(isn)));
            drop(state);
            metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => "any", "result" => "shed").increment(1);
            return Err(Admission::Shed(retry_after));
        }
        participant.shed_from = None;
        if isn == participant.next_isn {
            participant.next_isn += 1;
            Ok(self.journal().append(vec![HubRecord::IsnConsumed { participant: peer, isn }]))
        } else if isn == 0 || isn > participant.next_isn {
            Err(Admission::Refused(Refusal::new(
                Code::FailedPrecondition,
                None,
                format!(
                    "input sequence gap: expected ISN {} or a resend below it, got {isn}",
                    participant.next_isn
                ),
            )))
        } else {
            Ok(self.journal().appended())
        }
    }

    /// Checks 1 and 2 of DESIGN.md: the authenticated peer is the signer and the sender
    /// (`via`: the peer is a link, and the signer a bank it reaches), the envelope and
    /// message are well formed and within size, the message is fresh (created within the
    /// replay window) and its key may sign it now.
    fn check_envelope(
        &self,
        peer: Bic,
        via: Option<Bic>,
        envelope_pb: pb::SignedEnvelope,
        directory: &Directory,
        now: i64,
    ) -> Result<(Checked, SignatureCheck), Refusal> {
        // 1. The authenticated peer is the signer; or, on a link, the signer is a bank of
        //    the network at its other end, reached through it.
        let signer = Bic::parse(&envelope_pb.signer_bic).ok();
        let signer_ok = match via {
            None => signer == Some(peer),
            Some(link) => signer.is_some_and(|signer| directory.link_of(signer) == Some(link)),
        };
        if !signer_ok {
            return Err(Refusal::new(
                Code::PermissionDenied,
                None,
                match via {
                    None => format!(
                        "your certificate is {peer}'s but the envelope is signed as {:?}",
                        envelope_pb.signer_bic
                    ),
                    Some(link) => format!(
                        "the envelope is signed as {:?}, which is not a bank {link} published",
                        envelope_pb.signer_bic
                    ),
                },
            ));
        }
        // 2. Size and schema.
        let size = envelope_pb.payload.len();
        if size > self.inner.config.payload_size_max_bytes {
            return Err(Refusal::new(
                Code::ResourceExhausted,
                None,
                format!(
                    "payload of {size} bytes exceeds the limit of {} bytes",
                    self.inner.config.payload_size_max_bytes
                ),
            ));
        }
        // The outbox keeps the envelope as it came (a reference-counted payload), not a
        // conversion back from the parsed one.
        let queued_envelope = envelope_pb.clone();
        let envelope = SignedEnvelope::try_from(envelope_pb)
            .map_err(|e| Refusal::new(Code::InvalidArgument, Some(ReasonCode::Ff01), e.to_string()))?;
        let message = wire::decode_message(&envelope.payload)
            .map_err(|e| Refusal::new(Code::InvalidArgument, Some(ReasonCode::Ff01), e.to_string()))?;
        if Some(message.header().sender) != signer {
            return Err(Refusal::new(
                Code::PermissionDenied,
                None,
                format!(
                    "the envelope is signed as {} but the message says it is from {}",
                    envelope.signer,
                    message.header().sender
                ),
            ));
        }
        // The replay window: with sequence numbers and message-id deduplication, a
        // captured message cannot be played again later.
        let config = &self.inner.config;
        // A message relayed by a linked hub was checked when that hub took it in; it may
        // have waited there while the link was down, and the link's sequence numbers and
        // the duplicate check keep it from being played again.
        let created = message.header().creation_time_unix_ms;
        let oldest = now.saturating_sub(duration_ms(config.message_age_max));
        let newest = now.saturating_add(duration_ms(config.clock_skew_max));
        if via.is_none() && !(oldest..=newest).contains(&created) {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                Some(ReasonCode::Tm01),
                format!(
                    "message {} was created at {}, outside the hub's window of {} s back and {} s ahead of {}",
                    message.header().message_id,
                    wire::format_unix_ms(created),
                    config.message_age_max.as_secs(),
                    config.clock_skew_max.as_secs(),
                    wire::format_unix_ms(now)
                ),
            ));
        }
        // The key may sign what was created then, and is not revoked now.
        let check = directory
            .keys()
            .envelope_check_at(&envelope, created, now)
            .map_err(|e| Refusal::new(Code::Unauthenticated, None, e.to_string()))?;
        let next_hop = directory.link_of(message.header().receiver);
        Ok((Checked { queued_envelope, envelope, message, via, next_hop }, check))
    }

    /// Checks 5 and 6 of DESIGN.md for the candidates of one batch (signature and RMA
    /// passed), in order, under one lock: duplicates, then suspensions, the payment's story
    /// and the sender's position. What is ACKed (accepted now, or a duplicate answered
    /// again) gets a leaf in one receipt tree, whose root the hub signs once; the accepted
    /// are then journalled in one append, each record with its receipt, and queued. One
    /// outcome per candidate, in order.
    ///
    /// The root is signed under the lock: the tree may hold only what the hub ACKs (a
    /// bank knows every leaf of its own batch, so a leaf for a refused message would let it
    /// prove an acceptance that never was), and a record goes to the journal with its
    /// receipt, before anything else can see the message as accepted. One signature per
    /// batch there costs less than one per message outside did.
    fn accept_batch(
        &self,
        peer: Bic,
        candidates: Vec<(u64, Checked)>,
        identity: &SigningIdentity,
    ) -> Vec<Result<Accept, Refusal>> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut state = self.inner.state.lock().expect("hub state lock");
        let accepted_unix_ms = self.now_unix_ms();
        let mut batch = HashMap::default();
        let decided: Vec<Result<Decided, Refusal>> = candidates
            .into_iter()
            .map(|(isn, checked)| self.decide(&mut state, isn, checked, accepted_unix_ms, &mut batch))
            .collect();
        let leaves: Vec<_> = decided.iter().flatten().map(|d| receipt_leaf(d.envelope())).collect();
        if leaves.is_empty() {
            return decided.into_iter().map(|d| d.map(|_| unreachable!("nothing was ACKed"))).collect();
        }
        let mut receipts = identity.sign_receipts(&ReceiptTree::new(leaves)).into_iter();
        let mut decided: Vec<Result<(Decided, ReceiptProof), Refusal>> = decided
            .into_iter()
            .map(|d| d.map(|d| (d, receipts.next().expect("one receipt per leaf"))))
            .collect();
        let mut records = Vec::new();
        for (decision, receipt) in decided.iter_mut().flatten() {
            if let Decided::New { record, .. } = decision {
                record.receipt = receipt.encode();
                records.push(HubRecord::Accepted(Box::new(record.clone())));
            }
        }
        // One append for the batch: its records are durable together.
        let appended = (!records.is_empty()).then(|| self.journal().append(records));
        for (decision, _) in decided.iter_mut().flatten() {
            if let Decided::New { record, key, queued, .. } = decision {
                let ticket = appended.expect("a new message was appended");
                state.admit(record, *key, queued.take(), ticket);
            }
        }
        metrics::gauge!(crate::metrics::HUB_OUTBOX).set(state.outbox_total as f64);
        drop(state);
        decided
            .into_iter()
            .map(|d| d.map(|(decision, receipt)| self.accepted(peer, decision, receipt, appended)))
            .collect()
    }

    /// Checks 5 and 6 of DESIGN.md for one candidate, under the hub's lock: a duplicate
    /// of what the hub accepted before or earlier in this `batch` is ACKed again; a new
    /// message is settled and numbered for its receiver, its record made (without its
    /// receipt yet).
    fn decide(
        &self,
        state: &mut HubState,
        isn: u64,
        checked: Checked,
        accepted_unix_ms: i64,
        batch: &mut HashMap<MessageKey, [u8; 64], MessageKeyHasher>,
    ) -> Result<Decided, Refusal> {
        let Checked { queued_envelope, envelope, message, via, next_hop } = checked;
        let header = message.header();
        let message_id = header.message_id.clone();
        let sender = header.sender;
        let key = MessageKey::new(sender, &message_id);
        let signature = envelope.signature.to_bytes();
        // 5. Duplicates: in this batch, in memory, or older than memory, in the journal
        //    (one probe of its creation-time index). Under the lock, so that two copies of
        //    one message racing on two sessions have one effect.
        let conflict = || {
            Refusal::new(
                Code::AlreadyExists,
                Some(ReasonCode::Dupl),
                format!("message id {message_id} was already used for a different message"),
            )
        };
        // `Some(ticket)`: a duplicate, whose ACK waits for `ticket` (none: this batch's).
        let duplicate_of = match batch.get(&key) {
            Some(first) if *first == signature => Some(None),
            Some(_) => return Err(conflict()),
            None => {
                let archive = state.archive.as_ref().expect("the journal's reader opens after recovery");
                let journal = || archive.signatures(sender, &message_id, header.creation_time_unix_ms);
                let seen = state
                    .recent
                    .check(&key, &signature, header.creation_time_unix_ms, journal)
                    .map_err(|e| {
                        Refusal::new(
                            Code::Unavailable,
                            None,
                            format!("the hub's journal cannot be read: {e}"),
                        )
                    })?;
                match seen {
                    Seen::New => None,
                    Seen::Duplicate(ticket) => Some(Some(ticket)),
                    Seen::Conflict => return Err(conflict()),
                }
            }
        };
        if let Some(ticket) = duplicate_of {
            let (message_type, uetr) = (message.message_type(), header.uetr);
            return Ok(Decided::Duplicate { message_id, message_type, uetr, envelope, ticket });
        }
        // 6. Suspensions, the payment's story so far and the sender's position.
        let receiver = header.receiver;
        let outbox = next_hop.unwrap_or(receiver);
        let osn = state.participants.get(&outbox).expect("checked: receiver is reached").next_osn;
        state.settle(Hop { sender, via, next_hop }, &message, osn, accepted_unix_ms)?;
        // Numbered now: the next message of the batch to this receiver takes the next.
        state.participants.get_mut(&outbox).expect("checked: receiver is reached").next_osn = osn + 1;
        batch.insert(key, signature);
        let record = AcceptedRecord {
            sender,
            via,
            next_hop,
            message_id,
            isn,
            receiver,
            osn,
            uetr: header.uetr,
            message_type: message.message_type(),
            envelope,
            receipt: Bytes::new(),
            accepted_unix_ms,
            created_unix_ms: header.creation_time_unix_ms,
        };
        Ok(Decided::New { record, key, queued: Some(queued_envelope) })
    }

    /// Counts, tells and logs an ACKed message; its ACK's id, receipt and ticket (a new
    /// message's is the batch's append).
    fn accepted(
        &self,
        peer: Bic,
        decision: Decided,
        receipt: ReceiptProof,
        appended: Option<Ticket>,
    ) -> Accept {
        let receipt = pb::Receipt::from(&receipt);
        match decision {
            Decided::Duplicate { message_id, message_type, uetr, ticket, .. } => {
                metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => message_type.code(), "result" => "duplicate")
                    .increment(1);
                tracing::info!(uetr = uetr.map(tracing::field::display), sender = %peer, %message_id, "duplicate of an accepted message: ACK again");
                // The ACK waits for the original to be durable (and the caller adds this ISN's).
                let ticket = ticket.or(appended).expect("a duplicate within the batch follows its original");
                Accept { message_id, receipt, ticket }
            }
            Decided::New { record, .. } => {
                let AcceptedRecord {
                    message_type, sender, receiver, uetr, isn, osn, accepted_unix_ms, ..
                } = record;
                metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => message_type.code(), "result" => "accepted")
                    .increment(1);
                self.tell(HubEvent::Accepted {
                    message_type,
                    sender,
                    receiver,
                    uetr,
                    isn,
                    osn,
                    unix_ms: accepted_unix_ms,
                });
                let message_id = record.message_id;
                tracing::info!(uetr = uetr.map(tracing::field::display), sender = %peer, %receiver, %message_type, %message_id, osn, "accepted and queued");
                Accept { message_id, receipt, ticket: appended.expect("a new message was appended") }
            }
        }
    }
}

/// Check 4 of DESIGN.md: the receiver is a participant and a relationship (RMA) lets the
/// sender send it this type of message.
fn check_relationship(checked: &Checked, directory: &Directory) -> Result<(), Refusal> {
    let message = &checked.message;
    let header = message.header();
    if !directory.reaches(header.receiver) {
        return Err(Refusal::new(
            Code::NotFound,
            Some(ReasonCode::Rc01),
            format!("{} is not a participant of this network or of a network linked to it", header.receiver),
        ));
    }
    if checked.via.is_some() && checked.next_hop.is_some() {
        return Err(Refusal::new(
            Code::PermissionDenied,
            Some(ReasonCode::Ag01),
            format!(
                "{} is not this network's: a link carries messages to its own network only",
                header.receiver
            ),
        ));
    }
    // A status report, a return and a recall's answer answer a payment the hub
    // relayed: the tracker checks (step 6) that each comes from that payment's
    // receiver to its sender, which is stricter than RMA, and refusing a status report
    // on RMA would leave the payment unsettled at the hub forever.
    let answers_a_payment =
        matches!(message.message_type(), MessageType::Pacs002 | MessageType::Pacs004 | MessageType::Camt029);
    if !answers_a_payment && !directory.allows(header.sender, header.receiver, message.message_type()) {
        return Err(Refusal::new(
            Code::PermissionDenied,
            Some(ReasonCode::Ag01),
            format!(
                "no relationship lets {} send {} to {}",
                header.sender,
                message.message_type(),
                header.receiver
            ),
        ));
    }
    Ok(())
}

/// The message id of a payload if it can be read at all (for a NAK).
fn peek_message_id(payload: &[u8]) -> String {
    use prost::Message as _;
    pb::Message::decode(payload)
        .ok()
        .and_then(|m| m.header)
        .map(|h| h.message_id.chars().take(crate::model::MESSAGE_ID_LENGTH_MAX).collect())
        .unwrap_or_default()
}

/// An accepted (or duplicate) message's ACK: its id, the hub's receipt, and the journal
/// ticket the ACK waits for.
struct Accept {
    message_id: MessageId,
    receipt: pb::Receipt,
    ticket: Ticket,
}

/// What the hub decided for a candidate it ACKs, before the batch's receipt is signed.
// The record stays inline: boxing it cost one more allocation per accepted message (the
// journal's copy is boxed anyway), and a batch's decisions live only until it is answered.
#[allow(clippy::large_enum_variant)]
enum Decided {
    /// New: its record (receipt to come), duplicate-check key and envelope to queue.
    New { record: AcceptedRecord, key: MessageKey, queued: Option<pb::SignedEnvelope> },
    /// A duplicate of a message accepted before (its ACK waits for `ticket`) or earlier in
    /// this batch (`None`: the batch's append).
    Duplicate {
        message_id: MessageId,
        message_type: MessageType,
        uetr: Option<crate::model::Uetr>,
        envelope: SignedEnvelope,
        ticket: Option<Ticket>,
    },
}

impl Decided {
    /// The envelope whose leaf the receipt tree gets.
    fn envelope(&self) -> &SignedEnvelope {
        match self {
            Decided::New { record, .. } => &record.envelope,
            Decided::Duplicate { envelope, .. } => envelope,
        }
    }
}

/// Why a submission goes no further than its sequence number.
enum Admission {
    /// Over the participant's rate: resend after this long.
    Shed(Duration),
    /// A sequence gap.
    Refused(Refusal),
}

/// The answer to a shed submission: RESOURCE_EXHAUSTED with when to resend it. Its
/// message id is left empty: a shed payload is not even read.
fn shed(isn: u64, retry_after: Duration) -> pb::session_response::Frame {
    let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX).max(1);
    pb::session_response::Frame::Nak(pb::Nak {
        isn,
        message_id: String::new(),
        code: Code::ResourceExhausted as i32,
        reason_code: String::new(),
        detail: format!(
            "over your rate limit: shed, not refused; nothing was consumed: resend from ISN {isn} after {retry_after_ms} ms"
        ),
        retry_after_ms,
    })
}

/// A submission well formed and from its signer, its signature not yet verified.
struct Checked {
    queued_envelope: pb::SignedEnvelope,
    envelope: SignedEnvelope,
    message: Message,
    /// The link it came through (its session's participant), if any.
    via: Option<Bic>,
    /// The link its receiver is reached through, if any.
    next_hop: Option<Bic>,
}

/// Where a submission of a batch stands.
enum Step {
    /// Already answered (a NAK).
    Answered(pb::session_response::Frame, Ticket),
    /// Checked up to the signature; its sequence number's consumption has `sequenced`.
    Checked { isn: u64, sequenced: Ticket, checked: Box<Checked> },
    /// Its signature and relationship passed: the batch's lock decides it (what the NAK
    /// of a refusal names is kept).
    Candidate { isn: u64, sequenced: Ticket, payload: Bytes, message_type: MessageType },
}

/// Why the hub refused a submission.
pub(super) struct Refusal {
    pub(super) code: Code,
    pub(super) reason: Option<ReasonCode>,
    pub(super) detail: String,
}

impl Refusal {
    /// A refusal whose detail is cut to [`NAK_DETAIL_MAX`] characters: it may quote
    /// what the bank sent, which can be as large as a frame.
    pub(super) fn new(code: Code, reason: Option<ReasonCode>, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(NAK_DETAIL_MAX) {
            detail.truncate(cut);
            detail.push_str("...");
        }
        Self { code, reason, detail }
    }

    fn into_nak(self, isn: u64, message_id: &str) -> pb::session_response::Frame {
        nak(isn, message_id, self.code, self.reason, &self.detail)
    }
}

fn nak(
    isn: u64,
    message_id: &str,
    code: Code,
    reason: Option<ReasonCode>,
    detail: &str,
) -> pb::session_response::Frame {
    pb::session_response::Frame::Nak(pb::Nak {
        isn,
        message_id: message_id.to_owned(),
        code: code as i32,
        reason_code: reason.map(|r| r.code().to_owned()).unwrap_or_default(),
        detail: detail.to_owned(),
        retry_after_ms: 0,
    })
}
