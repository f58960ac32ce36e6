//! The ordered checks on a submission (DESIGN.md "One payment, end to end"; SECURITY.md is
//! the authority): the participant's rate and input sequence number, the peer is the
//! signer and the sender, size and schema, freshness and key validity, the signature (in
//! batches), RMA, duplicates, then step 6 (in `state`) and the durable append; and
//! the ACK or NAK that answers each submission.

use std::time::Duration;

use bytes::Bytes;
use tonic::Code;

use super::duplicates::Seen;
use super::{AcceptedRecord, Hub, HubEvent, HubRecord, NAK_DETAIL_MAX, duration_ms};
use crate::crypto::{KeyDirectory, SignatureCheck, SignedEnvelope, SigningIdentity};
use crate::directory::Directory;
use crate::model::{Bic, Message, MessageId, MessageKey, MessageType, ReasonCode, wire};
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
    /// batch (about twice as fast per signature; a failed batch is verified one by one).
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
        let (steps, checks): (Vec<Step>, Vec<Option<SignatureCheck>>) = submits
            .into_iter()
            .map(|submit| self.check_before_signature(peer, submit, &directory, now))
            .unzip();
        let checks: Vec<_> = checks.into_iter().flatten().map(Ok).collect();
        metrics::histogram!(crate::metrics::HUB_VERIFY_BATCH).record(checks.len() as f64);
        let mut verified = KeyDirectory::verify_all(checks).into_iter();
        steps
            .into_iter()
            .map(|step| match step {
                Step::Answered(frame, ticket) => (frame, ticket),
                Step::Checked { isn, sequenced, checked } => {
                    let payload = checked.envelope.payload.clone();
                    let message_type = checked.message.message_type();
                    let verified = verified.next().expect("one result per checked submission");
                    // 3. The signature, against the directory.
                    let outcome = verified
                        .map_err(|e| Refusal::new(Code::Unauthenticated, None, e.to_string()))
                        .and_then(|()| {
                            self.check_after_signature(peer, isn, *checked, &directory, &identity)
                        });
                    self.answer(peer, isn, sequenced, &payload, Some(message_type), outcome)
                }
            })
            .collect()
    }

    /// The participant's rate and the input sequence number, then checks 1 and 2 of
    /// DESIGN.md, with the message's freshness and its key's validity. A submission that
    /// passes comes with what verifying its signature takes.
    fn check_before_signature(
        &self,
        peer: Bic,
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
        let sequenced = match self.check_rate_and_sequence(peer, isn) {
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
        match self.check_envelope(peer, envelope, directory, now) {
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
            Ok(Accept { message_id, receipt, receipt_key_id, ticket }) => {
                let ack = pb::Ack { isn, message_id: message_id.to_string(), receipt, receipt_key_id };
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
    fn check_rate_and_sequence(&self, peer: Bic, isn: u64) -> Result<Ticket, Admission> {
        let config = &self.inner.config;
        let mut state = self.inner.state.lock().expect("hub state lock");
        let participant = state.participants.get_mut(&peer).expect("sessions open only for participants");
        let shed_behind = participant.shed_from.is_some_and(|from| isn > from);
        let rate = if shed_behind {
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
            Ok(self.inner.journal.append(vec![HubRecord::IsnConsumed { participant: peer, isn }]))
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
            Ok(self.inner.journal.appended())
        }
    }

    /// Checks 1 and 2 of DESIGN.md: the authenticated peer is the signer and the sender,
    /// the envelope and message are well formed and within size, the message is fresh
    /// (created within the replay window) and its key may sign it now.
    fn check_envelope(
        &self,
        peer: Bic,
        envelope_pb: pb::SignedEnvelope,
        directory: &Directory,
        now: i64,
    ) -> Result<(Checked, SignatureCheck), Refusal> {
        // 1. The authenticated peer is the signer.
        if Bic::parse(&envelope_pb.signer_bic).ok() != Some(peer) {
            return Err(Refusal::new(
                Code::PermissionDenied,
                None,
                format!(
                    "your certificate is {peer}'s but the envelope is signed as {:?}",
                    envelope_pb.signer_bic
                ),
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
        if message.header().sender != peer {
            return Err(Refusal::new(
                Code::PermissionDenied,
                None,
                format!(
                    "your certificate is {peer}'s but the message says it is from {}",
                    message.header().sender
                ),
            ));
        }
        // The replay window: with sequence numbers and message-id deduplication, a
        // captured message cannot be played again later.
        let config = &self.inner.config;
        let created = message.header().creation_time_unix_ms;
        let oldest = now.saturating_sub(duration_ms(config.message_age_max));
        let newest = now.saturating_add(duration_ms(config.clock_skew_max));
        if !(oldest..=newest).contains(&created) {
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
        Ok((Checked { queued_envelope, envelope, message }, check))
    }

    /// Checks 4-6 of DESIGN.md, after the signature; on success the message is journalled
    /// and queued, and its id, the hub's receipt and the journal ticket are returned.
    fn check_after_signature(
        &self,
        peer: Bic,
        isn: u64,
        checked: Checked,
        directory: &Directory,
        identity: &SigningIdentity,
    ) -> Result<Accept, Refusal> {
        let Checked { queued_envelope, envelope, message } = checked;
        let header = message.header();
        // 4. The receiver and the relationship (RMA).
        if !directory.is_participant(header.receiver) {
            return Err(Refusal::new(
                Code::NotFound,
                Some(ReasonCode::Rc01),
                format!("{} is not a participant of this network", header.receiver),
            ));
        }
        // A status report, a return and a recall's answer answer a payment the hub
        // relayed: the tracker checks (step 6) that each comes from that payment's
        // receiver to its sender, which is stricter than RMA, and refusing a status report
        // on RMA would leave the payment unsettled at the hub forever.
        let answers_a_payment = matches!(
            message.message_type(),
            MessageType::Pacs002 | MessageType::Pacs004 | MessageType::Camt029
        );
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
        // 5. Duplicates, then journal and queue: under one lock, so that two copies of
        //    one message racing on two sessions have one effect.
        let uetr = header.uetr;
        let receiver = header.receiver;
        let message_type = message.message_type();
        let message_id = header.message_id.clone();
        let key = MessageKey::new(peer, &message_id);
        // Signed before taking the lock: the lock guards bookkeeping only. A duplicate
        // gets a receipt signed now too: the same bytes unless the hub's key rotated.
        let receipt = Bytes::from(identity.sign_receipt(&envelope).to_bytes().to_vec());
        let receipt_key_id = identity.key_id().to_string();
        let signature = envelope.signature.to_bytes();
        let mut state = self.inner.state.lock().expect("hub state lock");
        let accepted_unix_ms = self.now_unix_ms();
        // Older than memory, the journal answers: one probe of its creation-time index.
        let journal = || {
            let archive = state.archive.as_ref().expect("the journal's reader opens after recovery");
            archive.signatures(peer, &message_id, header.creation_time_unix_ms)
        };
        let seen =
            state.recent.check(&key, &signature, header.creation_time_unix_ms, journal).map_err(|e| {
                Refusal::new(Code::Unavailable, None, format!("the hub's journal cannot be read: {e}"))
            })?;
        match seen {
            Seen::New => {}
            Seen::Conflict => {
                return Err(Refusal::new(
                    Code::AlreadyExists,
                    Some(ReasonCode::Dupl),
                    format!("message id {message_id} was already used for a different message"),
                ));
            }
            Seen::Duplicate(ticket) => {
                // The ACK waits for the original to be durable (and the caller adds this ISN's).
                drop(state);
                metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => message_type.code(), "result" => "duplicate")
                    .increment(1);
                tracing::info!(uetr = uetr.map(tracing::field::display), sender = %peer, %message_id, "duplicate of an accepted message: ACK again");
                return Ok(Accept { message_id, receipt, receipt_key_id, ticket });
            }
        }
        // 6. Suspensions, the payment's story so far and the sender's position.
        let osn = state.participants.get(&receiver).expect("checked: receiver is a participant").next_osn;
        state.settle(peer, &message, osn, accepted_unix_ms)?;
        let record = AcceptedRecord {
            sender: peer,
            message_id,
            isn,
            receiver,
            osn,
            uetr,
            message_type,
            envelope,
            receipt: receipt.clone(),
            accepted_unix_ms,
            created_unix_ms: header.creation_time_unix_ms,
        };
        let ticket = self.inner.journal.append(vec![HubRecord::Accepted(Box::new(record.clone()))]);
        state.admit(&record, key, Some(queued_envelope), ticket);
        metrics::gauge!(crate::metrics::HUB_OUTBOX).set(state.outbox_total as f64);
        drop(state);
        metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => message_type.code(), "result" => "accepted").increment(1);
        self.tell(HubEvent::Accepted {
            message_type,
            sender: peer,
            receiver,
            uetr,
            isn,
            osn,
            unix_ms: accepted_unix_ms,
        });
        let message_id = record.message_id;
        tracing::info!(uetr = uetr.map(tracing::field::display), sender = %peer, %receiver, %message_type, %message_id, osn, "accepted and queued");
        Ok(Accept { message_id, receipt, receipt_key_id, ticket })
    }
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

/// An accepted (or duplicate) message's ACK: its id, the hub's receipt and the key that
/// signed it, and the journal ticket the ACK waits for.
struct Accept {
    message_id: MessageId,
    receipt: Bytes,
    receipt_key_id: String,
    ticket: Ticket,
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
}

/// Where a submission of a batch stands before the signatures are verified.
enum Step {
    /// Already answered (a NAK before the signature check).
    Answered(pb::session_response::Frame, Ticket),
    /// Checked up to the signature; its sequence number's consumption has `sequenced`.
    Checked { isn: u64, sequenced: Ticket, checked: Box<Checked> },
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
