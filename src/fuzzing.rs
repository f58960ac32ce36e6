//! Fuzz targets: one function per target, each taking arbitrary bytes.
//!
//! No input may make them panic, except by breaking one of the invariants they assert
//! (a round trip that changes a value, a verdict that depends on how it was reached, a
//! hub that disagrees with its own bookkeeping): that is a bug, and the fuzzer reports it
//! as a crash. `fuzz/fuzz_targets/NAME.rs` runs [`envelope`], [`message`], [`amount`],
//! [`iso20022_xml`] and [`hub_ingest`] under libFuzzer (`cargo +nightly fuzz run NAME`), and
//! `tests/fuzz_corpus.rs` runs the seed corpus `fuzz/corpus/NAME/` through the same
//! functions as an ordinary test. They live in the library so that the hub target can
//! drive the crate-private session steps the gRPC service drives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use prost::Message as _;
use tonic::Code;

use crate::crypto::{KeyDirectory, KeyId, ReceiptProof, SignedEnvelope, SigningIdentity};
use crate::directory::{Directory, DirectoryFile};
use crate::hub::{Agreement, Hub, HubConfig, OperatorAction};
use crate::iso20022::{self, mt103};
use crate::model::{Amount, Balance, Bic, Currency, CurrencyPair, Rate, wire};
use crate::pb;
use crate::pb::session_response::Frame;
use crate::store::Ticket;
use crate::tls::{self, Role};

/// The participants, key ids and secret-key seeds of the envelope target's key
/// directory. Fixed, so that seed envelopes signed with them verify in every run.
pub const ENVELOPE_SIGNERS: [(&str, &str, [u8; 32]); 2] =
    [("BANKRUMMXXX", "k1", [1; 32]), ("BANKIRTHXXX", "ir-2026.a", [2; 32])];

/// Currency of an amount target input that names none (no space in it).
pub const AMOUNT_DEFAULT_CURRENCY: &str = "EUR";

/// The hub target's banks. The first is the signer of raw payloads; it has no
/// relationship to the third, and the third is suspended, so that the RMA and
/// suspension checks have something to refuse.
pub const HUB_BANKS: [&str; 3] = ["BANKRUMMXXX", "BANKIRTHXXX", "BANKCNBJXXX"];
/// What every bank of the hub target is funded with at the hub (`CODE amount`).
const HUB_FUNDING: [&str; 4] = ["RUB 1000000.00", "CNY 1000000.00", "JPY 100000000", "IRR 1000000000.00"];
/// The hub target's rate agreements (`PAIR rate spread-bps`), so that conversions,
/// returns and recalls get past the agreement check.
pub const HUB_AGREEMENTS: [&str; 2] = ["RUB/IRR 512.25 25", "CNY/RUB 12.5 0"];
/// First byte of a hub target input that is a raw `pb::SessionRequest` from the bank
/// whose index (modulo three) is the second byte.
pub const HUB_RAW_SESSION_REQUEST: u8 = 0xFF;
/// First byte of a hub target input that is a raw `pb::Submit` from the bank whose
/// index (modulo three) is the second byte.
pub const HUB_RAW_SUBMIT: u8 = 0xFE;
/// Inputs between waits for the hub's journal: unlike a session, the target does not
/// await each answer's ticket, so this bounds the journal writer's queue.
const HUB_INPUTS_PER_DURABILITY_WAIT: u64 = 64;
/// Inputs one hub takes before it is reopened from its journal (recovery must replay
/// it) and replaced by a new, empty one: keeps memory and the journal bounded in a run
/// of millions of inputs.
const HUB_INPUTS_PER_GENERATION: u64 = 20_000;

/// Decodes bytes as a signed envelope and verifies it against a fixed key directory
/// ([`ENVELOPE_SIGNERS`]), alone and in a batch with a valid envelope. Asserts that the
/// envelope survives a wire round trip, that only registered signers verify, and that
/// batch and single verification agree.
pub fn envelope(data: &[u8]) {
    let Ok(wire_envelope) = pb::SignedEnvelope::decode(data) else { return };
    let _ = wire::decode_message(&wire_envelope.payload);
    let Ok(envelope) = SignedEnvelope::try_from(wire_envelope) else { return };
    let again = SignedEnvelope::try_from(pb::SignedEnvelope::from(&envelope));
    assert_eq!(again.ok().as_ref(), Some(&envelope), "an envelope converts to the wire and back unchanged");

    let fixture = envelope_fixture();
    let verified = fixture.keys.verify(&envelope).is_ok();
    if verified {
        assert!(
            fixture.keys.key(envelope.signer, &envelope.key_id).is_some(),
            "only a registered key verifies ({} key {})",
            envelope.signer,
            envelope.key_id
        );
    }
    let alone = fixture.keys.verify_batch(&[&envelope]);
    let batch = fixture.keys.verify_batch(&[&envelope, &fixture.valid]);
    assert_eq!((alone.len(), batch.len()), (1, 2), "one verdict per envelope");
    assert!(batch[1].is_ok(), "a valid envelope verifies in any batch");
    assert_eq!(alone[0].is_ok(), verified, "a batch of one agrees with strict verification");
    assert_eq!(batch[0].is_ok(), verified, "a batch agrees with strict verification");
}

/// The signing identities of [`ENVELOPE_SIGNERS`] (to sign seed envelopes with).
pub fn envelope_signers() -> Vec<SigningIdentity> {
    ENVELOPE_SIGNERS
        .iter()
        .map(|(bic, key_id, seed)| {
            let bic = Bic::parse(bic).expect("ENVELOPE_SIGNERS holds valid BICs");
            let key_id = KeyId::parse(key_id).expect("ENVELOPE_SIGNERS holds valid key ids");
            SigningIdentity::new(bic, key_id, SigningKey::from_bytes(seed))
        })
        .collect()
}

struct EnvelopeFixture {
    keys: KeyDirectory,
    /// Signed by the first signer: verifies.
    valid: SignedEnvelope,
}

fn envelope_fixture() -> &'static EnvelopeFixture {
    static FIXTURE: OnceLock<EnvelopeFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let signers = envelope_signers();
        let mut keys = KeyDirectory::new();
        for signer in &signers {
            keys.register(signer.bic(), signer.key_id().clone(), &signer.verifying_key_bytes())
                .expect("the fixed keys are valid");
        }
        let valid = signers[0].sign_payload(Bytes::from_static(b"a valid envelope beside the fuzzed one"));
        EnvelopeFixture { keys, valid }
    })
}

/// Decodes bytes as a message (protobuf, conversion, validation); a message that
/// decodes must encode to bytes that decode to the same message.
pub fn message(data: &[u8]) {
    let Ok(message) = wire::decode_message(data) else { return };
    let encoded = wire::encode_message(&message);
    let decoded = wire::decode_message(&encoded)
        .unwrap_or_else(|error| panic!("a decoded message encodes to bytes that do not decode: {error}"));
    assert_eq!(decoded, message, "a message survives encoding and decoding unchanged");
    assert_eq!(wire::encode_message(&decoded), encoded, "equal messages encode to equal bytes");
}

/// Parses `CODE amount` text (or an amount alone, in [`AMOUNT_DEFAULT_CURRENCY`]); an
/// amount that parses must display as text that parses back to it.
pub fn amount(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (code, number) = text.split_once(' ').unwrap_or((AMOUNT_DEFAULT_CURRENCY, text));
    let Ok(currency) = Currency::parse(code) else { return };
    assert_eq!(currency.code(), code, "a currency keeps its code");
    assert_eq!(
        Currency::parse(&currency.to_string()).ok(),
        Some(currency),
        "a currency displays as its code"
    );
    let Ok(amount) = Amount::parse(number, currency) else { return };
    assert_eq!(amount.currency(), currency);
    assert_eq!(
        Amount::from_minor_units(amount.minor_units(), currency).ok(),
        Some(amount),
        "a parsed amount is a valid count of minor units"
    );
    let shown = amount.to_string();
    let (shown_number, shown_code) = shown.split_once(' ').expect("an amount displays as `NUMBER CODE`");
    assert_eq!(shown_code, code, "an amount displays its currency");
    assert_eq!(Amount::parse(shown_number, currency).ok(), Some(amount), "{shown:?} parses back");
    let debit = Balance { minor_units: -amount.minor_units(), currency };
    assert_eq!(debit.to_string(), format!("-{shown}"), "a negative balance displays with a minus sign");
}

/// The creation time the mt103 target gives an MT103 in input form, which carries none:
/// a whole minute, as an MT103 writes it, so that the header comes back unchanged.
pub const MT103_NOW_UNIX_MS: i64 = 1_700_000_040_000;

/// Reads bytes as an MT103. One that reads, and writes back as an MT103, must read back
/// as the same header and payment with nothing left unmodelled; except that an
/// end-to-end id without remittance information comes back with `/ROC/<id>` as its
/// remittance information (see [`crate::iso20022::mt103`]).
pub fn mt103(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(imported) = mt103::import(text, MT103_NOW_UNIX_MS) else { return };
    let Ok(exported) = mt103::export(&imported.header, &imported.transfer) else { return };
    let again = mt103::import(&exported.text, MT103_NOW_UNIX_MS)
        .unwrap_or_else(|error| panic!("an exported MT103 does not read back: {error}\n{}", exported.text));
    let mut expected = imported.transfer;
    if expected.remittance_information.is_empty() && expected.end_to_end_id != mt103::NOT_PROVIDED {
        expected.remittance_information = format!("/ROC/{}", expected.end_to_end_id);
    }
    assert_eq!(again.header, imported.header, "the header survives MT103 and back");
    assert_eq!(again.transfer, expected, "the payment survives MT103 and back");
    assert_eq!(again.not_modelled, Vec::new(), "an exported MT103 holds only what the model holds");
}

/// ISO 20022 XML: read (safely: no panic, whatever the bytes), and what reads writes back
/// and reads again as the same message with nothing left over (see [`crate::iso20022`]).
/// A message whose rate the schema's `BaseOneRate` cannot hold is not written, by design.
pub fn iso20022_xml(data: &[u8]) {
    let Ok(imported) = iso20022::read(data) else { return };
    let xml = match iso20022::write(&imported.message) {
        Ok(xml) => xml,
        Err(iso20022::XmlError::Unwritable { .. }) => return,
        Err(error) => panic!("a message read from XML does not write back: {error}"),
    };
    let again = iso20022::read(xml.as_bytes())
        .unwrap_or_else(|error| panic!("written XML does not read back: {error}\n{xml}"));
    assert_eq!(again.message, imported.message, "the message survives XML and back");
    assert_eq!(again.not_carried, Vec::<String>::new(), "written XML holds only what the model holds");
}

/// Runs bytes through the hub's whole ingest path in process, without a network.
///
/// One hub per process (renewed every few thousand inputs, after checking that its
/// journal recovers), its network made by [`tls::init`] for [`HUB_BANKS`]. An input is
/// a payload: it is submitted as it is, signed by the first bank, and, if it decodes as
/// a message, again with its creation time set to now and its sender set to a bank
/// (kept if it names one), signed by that bank, so that it reaches the checks after the
/// signature. An input that starts with [`HUB_RAW_SESSION_REQUEST`] or [`HUB_RAW_SUBMIT`]
/// is instead a session frame from a bank, taken as the session service would.
pub fn hub_ingest(data: &[u8]) {
    let mut slot = HUB_HARNESS.lock().unwrap_or_else(PoisonError::into_inner);
    slot.get_or_insert_with(HubHarness::start).ingest(data);
}

/// Drops the hub target's hub and deletes its files; the next input starts a new one.
pub fn hub_ingest_reset() {
    let harness = HUB_HARNESS.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(harness) = harness {
        harness.finish();
    }
}

/// Locked for one input at a time: the hub keeps state from input to input.
static HUB_HARNESS: Mutex<Option<HubHarness>> = Mutex::new(None);

/// A hub, its banks' signing keys, and what the banks know: their next ISNs.
struct HubHarness {
    runtime: tokio::runtime::Runtime,
    directory: Directory,
    hub_key: SigningKey,
    banks: Vec<SigningIdentity>,
    /// Where every generation's journal lives (a tmpfs where there is one).
    data_root: tempfile::TempDir,
    /// `None` only while a generation is being replaced.
    hub: Option<Hub>,
    generation: u64,
    next_isn: HashMap<Bic, u64>,
    inputs: u64,
    /// Highest journal ticket of an answer so far.
    last_ticket: Ticket,
}

impl HubHarness {
    fn start() -> Self {
        let pki = tempfile::tempdir().expect("a temporary directory for the PKI");
        let bics: Vec<Bic> = HUB_BANKS.iter().map(|b| Bic::parse(b).expect("HUB_BANKS are valid")).collect();
        let network = tls::init(pki.path(), &bics).expect("the demo PKI initialises");
        let directory = restricted_directory(pki.path(), bics[0], bics[2]);
        let hub_key = network.signing_identity(Role::Hub).expect("the hub's key").signing_key().clone();
        let banks = bics
            .iter()
            .map(|bic| network.signing_identity(Role::Bank(*bic)).expect("a bank's key"))
            .collect();
        let shm = Path::new("/dev/shm");
        let scratch = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let data_root = tempfile::Builder::new()
            .prefix("corridor-fuzz-hub")
            .tempdir_in(scratch)
            .expect("a temporary directory for the journal");
        let runtime =
            tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime starts");
        let mut harness = Self {
            runtime,
            directory,
            hub_key,
            banks,
            data_root,
            hub: None,
            generation: 0,
            next_isn: HashMap::new(),
            inputs: 0,
            last_ticket: Ticket::DURABLE,
        };
        harness.open_generation();
        harness
    }

    fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("a hub is open between inputs")
    }

    fn generation_dir(&self) -> PathBuf {
        self.data_root.path().join(format!("generation-{}", self.generation))
    }

    fn open_hub(&self) -> Result<Hub, String> {
        let identity = SigningIdentity::new(
            self.directory.hub(),
            KeyId::parse(tls::INITIAL_KEY_ID).expect("a valid key id"),
            self.hub_key.clone(),
        );
        Hub::open(HubConfig::default(), self.directory.clone(), identity, &self.generation_dir())
    }

    /// Opens a new, empty hub and funds every bank; suspends the third.
    fn open_generation(&mut self) {
        let hub = self.open_hub().expect("a new hub opens");
        let mut actions: Vec<OperatorAction> = Vec::new();
        for bank in &self.banks {
            for funding in HUB_FUNDING {
                let (code, number) = funding.split_once(' ').expect("HUB_FUNDING is `CODE amount`");
                let currency = Currency::parse(code).expect("HUB_FUNDING names currencies");
                let amount = Amount::parse(number, currency).expect("HUB_FUNDING holds amounts");
                actions.push(OperatorAction::Fund(bank.bic(), amount));
            }
        }
        actions.push(OperatorAction::Suspend(self.banks[2].bic()));
        for agreement in HUB_AGREEMENTS {
            let [pair, rate, spread] = agreement.split(' ').collect::<Vec<_>>()[..] else {
                unreachable!("HUB_AGREEMENTS is `PAIR rate spread`")
            };
            let pair = CurrencyPair::parse(pair).expect("HUB_AGREEMENTS names pairs");
            let rate = Rate::parse(rate).expect("HUB_AGREEMENTS holds rates");
            let spread = spread.parse().expect("HUB_AGREEMENTS holds spreads");
            let agreement = Agreement::new(pair, rate, spread, 0, None).expect("HUB_AGREEMENTS are valid");
            actions.push(OperatorAction::SetAgreement(agreement));
        }
        for action in actions {
            self.runtime.block_on(hub.operate(action)).expect("the operator's setup applies");
        }
        self.next_isn = self.banks.iter().map(|bank| (bank.bic(), 1)).collect();
        self.last_ticket = Ticket::DURABLE;
        self.hub = Some(hub);
    }

    /// Closes the hub, checks that its journal recovers into the state the banks know,
    /// deletes it, and opens a new one.
    fn renew(&mut self) {
        self.wait_durable();
        drop(self.hub.take());
        let inputs = self.inputs;
        let recovered = self.open_hub().unwrap_or_else(|error| {
            panic!("the hub's journal after {inputs} inputs does not recover: {error}")
        });
        for bank in &self.banks {
            let open = recovered.open_session(bank.bic(), 0).expect("a session from the start opens");
            assert_eq!(
                open.welcome.next_isn_expected,
                self.next_isn[&bank.bic()],
                "the recovered hub expects the ISN the bank would send next"
            );
        }
        drop(recovered);
        let _ = std::fs::remove_dir_all(self.generation_dir());
        self.generation += 1;
        self.open_generation();
    }

    fn finish(mut self) {
        self.wait_durable();
        drop(self.hub.take());
    }

    fn wait_durable(&self) {
        self.runtime.block_on(self.hub().durable(self.last_ticket)).expect("the hub's journal is writable");
    }

    fn ingest(&mut self, data: &[u8]) {
        match data {
            [HUB_RAW_SESSION_REQUEST, bank, frame @ ..] => {
                if let Ok(request) = pb::SessionRequest::decode(frame) {
                    self.session_request(usize::from(*bank) % HUB_BANKS.len(), request);
                }
            }
            [HUB_RAW_SUBMIT, bank, submit @ ..] => {
                if let Ok(submit) = pb::Submit::decode(submit) {
                    self.submit_raw(usize::from(*bank) % HUB_BANKS.len(), submit);
                }
            }
            payload => self.payload(payload),
        }
        self.inputs += 1;
        if self.inputs.is_multiple_of(HUB_INPUTS_PER_DURABILITY_WAIT) {
            self.wait_durable();
        }
        if self.inputs.is_multiple_of(HUB_INPUTS_PER_GENERATION) {
            self.renew();
        }
    }

    /// The payload as it is, from the first bank; then, if it is a message, made
    /// current and the bank's own.
    fn payload(&mut self, payload: &[u8]) {
        let envelope = self.banks[0].sign_payload(Bytes::copy_from_slice(payload));
        self.submit_signed(0, &envelope);
        let Ok(mut message) = pb::Message::decode(payload) else { return };
        let Some(header) = message.header.as_mut() else { return };
        let bank = self.banks.iter().position(|b| b.bic().as_str() == header.sender_bic).unwrap_or(0);
        header.sender_bic = self.banks[bank].bic().to_string();
        header.creation_time_unix_ms = crate::clock::unix_ms_now();
        if let Some(pb::message::Body::Pacs008(transfer)) = message.body.as_mut() {
            transfer.debtor_agent_bic = header.sender_bic.clone();
        }
        let envelope = self.banks[bank].sign_payload(message.encode_to_vec().into());
        self.submit_signed(bank, &envelope);
    }

    /// Submits a signed envelope under the bank's next ISN, as a bank would; an ACK
    /// carries a receipt that verifies.
    fn submit_signed(&mut self, bank: usize, envelope: &SignedEnvelope) {
        let bic = self.banks[bank].bic();
        let isn = self.next_isn[&bic];
        let submit = pb::Submit { isn, envelope: Some(envelope.into()), possible_duplicate: false };
        let answer = self.submit(bank, submit);
        self.next_isn.insert(bic, isn + 1);
        match answer {
            Frame::Ack(ack) => {
                let receipt = ack.receipt.expect("an ACK carries a receipt");
                let receipt = ReceiptProof::try_from(receipt).expect("a receipt is well formed");
                let hub = self.directory.hub();
                self.directory
                    .keys()
                    .verify_receipt(hub, envelope, &receipt)
                    .expect("the hub's receipt verifies for the exact envelope it ACKs");
            }
            Frame::Nak(nak) => assert!(
                !is_sequence_gap(&nak),
                "ISN {isn} is the one the hub expects from {bic}, yet it answers a gap: {}",
                nak.detail
            ),
            _ => unreachable!("submit answers an ACK or a NAK"),
        }
    }

    /// Submits a frame as the bank sent it (any ISN, maybe no envelope). Only an ISN
    /// that is neither the next one nor a resend below it is a gap.
    fn submit_raw(&mut self, bank: usize, submit: pb::Submit) {
        let bic = self.banks[bank].bic();
        let expected = self.next_isn[&bic];
        let has_envelope = submit.envelope.is_some();
        let isn = submit.isn;
        let answer = self.submit(bank, submit);
        if has_envelope {
            if isn == expected {
                self.next_isn.insert(bic, isn + 1);
            }
            let gap = matches!(&answer, Frame::Nak(nak) if is_sequence_gap(nak));
            assert_eq!(
                gap,
                isn == 0 || isn > expected,
                "ISN {isn} from {bic}, expected {expected}: {answer:?}"
            );
        }
    }

    /// One submission through [`Hub::submit`]; after an ACK the hub learns, as from a
    /// session, that the ACK left.
    fn submit(&mut self, bank: usize, submit: pb::Submit) -> Frame {
        let bic = self.banks[bank].bic();
        let isn = submit.isn;
        let (answer, ticket) = self.hub().submit(bic, submit);
        self.last_ticket = self.last_ticket.max(ticket);
        match &answer {
            Frame::Ack(ack) => {
                assert_eq!(ack.isn, isn, "an ACK names the ISN it answers");
                self.hub().acknowledged(bic, isn);
            }
            Frame::Nak(nak) => assert_eq!(nak.isn, isn, "a NAK names the ISN it answers"),
            other => panic!("the hub answers a Submit with an ACK or a NAK, not {other:?}"),
        }
        answer
    }

    /// A session frame, taken as `hub::service` takes it.
    fn session_request(&mut self, bank: usize, request: pb::SessionRequest) {
        let bic = self.banks[bank].bic();
        match request.frame {
            Some(pb::session_request::Frame::Hello(hello)) => self.hello(bic, hello.last_osn_processed),
            Some(pb::session_request::Frame::Submit(submit)) => self.submit_raw(bank, submit),
            Some(pb::session_request::Frame::Delivered(delivered)) => {
                // The delivery task has put what is queued on the session by now.
                self.deliver(bic, 1);
                let queued = self.hub().queued_for(bic);
                self.hub().confirm_delivered(bic, delivered.osn);
                assert!(self.hub().queued_for(bic) <= queued, "a confirmation only takes from the outbox");
            }
            // A bank's session refuses a link session's frames (hub::service) before they
            // reach the hub.
            Some(pb::session_request::Frame::TrackQuery(_) | pb::session_request::Frame::TrackAnswer(_))
            | None => {}
        }
    }

    /// Opens a session (refused when the bank claims more than it was sent) and puts
    /// the first deliveries on it.
    fn hello(&mut self, bic: Bic, last_osn_processed: u64) {
        let Ok(open) = self.hub().open_session(bic, last_osn_processed) else { return };
        assert_eq!(
            open.welcome.next_isn_expected, self.next_isn[&bic],
            "the hub expects the bank's next ISN"
        );
        assert_eq!(
            open.next_osn_to_send,
            last_osn_processed + 1,
            "delivery resumes after what was processed"
        );
        self.deliver(bic, open.next_osn_to_send);
    }

    /// Takes the durable deliveries for `bic` from `from` on, as the delivery task does.
    fn deliver(&mut self, bic: Bic, from: u64) {
        self.wait_durable();
        let batch_max = self.hub().config().delivery_batch_max;
        let deliveries = self.hub().deliveries_from(bic, from, batch_max);
        assert!(deliveries.len() <= batch_max, "a delivery round is bounded");
        let mut previous = from.saturating_sub(1);
        for delivery in &deliveries {
            assert!(delivery.osn > previous, "deliveries go out in output sequence order");
            assert!(delivery.envelope.is_some(), "a delivery carries its envelope");
            previous = delivery.osn;
        }
    }
}

/// A NAK for an input sequence gap: the only refusal that consumes no ISN although the
/// submission carries an envelope.
fn is_sequence_gap(nak: &pb::Nak) -> bool {
    nak.code == Code::FailedPrecondition as i32 && nak.reason_code.is_empty()
}

/// The directory `tls::init` wrote in `network_dir`, less every relationship from
/// `sender` to `receiver`.
fn restricted_directory(network_dir: &Path, sender: Bic, receiver: Bic) -> Directory {
    let path = network_dir.join(crate::directory::DIRECTORY_FILE);
    let text = std::fs::read_to_string(path).expect("tls::init writes the directory");
    let mut file: DirectoryFile = serde_json::from_str(&text).expect("the directory parses");
    file.relationships.retain(|r| !(r.sender == sender.as_str() && r.receiver == receiver.as_str()));
    Directory::from_file(&file).expect("the restricted directory is valid")
}
