//! `corridor demo --narrate`: one payment told step by step, then a rejection, a crash
//! and recovery, and a reconciliation, in plain words with the ISO 20022 names.
//!
//! Everything told is read from the running network as it happens: the balances from
//! the banks' ledgers, the messages from the hub's journal (the exact bytes that were
//! signed and checked), the positions from the hub, the times from its tracker. Nothing
//! is made up for the telling, so the story cannot drift from what the code does.

use std::path::Path;
use std::time::Duration;

use tonic::transport::Channel;

use super::LocalNetwork;
use super::demo::{DEMO_BANKS, money_text};
use crate::bank::Bank;
use crate::crypto::{SignedEnvelope, hex_encode};
use crate::directory::Directory;
use crate::hub::Hub;
use crate::model::{
    Balance, Bic, Body, CreditTransfer, Currency, CurrencyPair, Message, MessageType, PaymentStatus,
    PaymentStatusReport, ReasonCode, Uetr, format_minor_units, wire,
};
use crate::net::tracker_client;
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::reconcile::Report;
use crate::reconcile::sources::reconcile_live;
use crate::tls::NetworkDir;

/// What to narrate.
#[derive(Clone, Debug, Default)]
pub struct NarrateConfig {
    /// Wait for Enter between steps.
    pub pause: bool,
    /// Where to keep the network; a temporary directory when `None`.
    pub data: Option<std::path::PathBuf>,
}

/// The heading of each step, in the order told: every one starts a line of the output.
pub const STEP_HEADINGS: [&str; 8] = [
    "Step 1: the order, and the sender's bank books it",
    "Step 2: the pacs.008 (FI-to-FI customer credit transfer), signed by the sender's bank",
    "Step 3: the hub checks and acknowledges (ACK)",
    "Step 4: delivery to the receiving bank, which checks and books",
    "Step 5: the pacs.002 (payment status report) ACSC comes back, and the hub settles",
    "Step 6: a rejection: pacs.002 RJCT, and the customer gets the money back",
    "Step 7: a crash and recovery: nothing acknowledged is lost",
    "Step 8: the reconciliation: do the hub and every bank agree?",
];

/// What the narrated demo did, for tests and tools.
#[derive(Clone, Debug, Default)]
pub struct NarrateSummary {
    /// UETR of the payment told step by step (steps 1 to 5).
    pub payment_uetr: String,
    /// UETR of the rejected payment (step 6).
    pub rejected_uetr: String,
    /// The ISO reason code of that rejection.
    pub rejection_reason: String,
    /// UETR of the payment sent while the receiver was offline and the hub restarted (step 7).
    pub recovered_uetr: String,
    /// The reconciliation at the end (step 8).
    pub reconciliation: Report,
}

/// The sender: a bank in Russia paying in roubles.
const SENDER: usize = 0;
/// The receiver: a bank in Iran, paid in rials.
const RECEIVER: usize = 1;
/// The customers, their accounts and opening deposits (in their bank's currency).
const DEBTOR: (&str, &str, &str) = ("ANNA", "Anna Ivanova", "50000");
const CREDITOR: (&str, &str, &str) = ("DARIUS", "Darius Karimi", "0");
/// The rate agreement the hub operator sets (the example of docs/CROSS_BORDER.md).
const AGREED_RATE: &str = "512.25";
const AGREED_SPREAD_BPS: u32 = 25;
/// What the sender's bank prefunds at the hub, in roubles.
const LIQUIDITY: &str = "1000000";
/// The three payments, in roubles.
const PAYMENT: &str = "1000.00";
const REJECTED_PAYMENT: &str = "250.00";
const RECOVERED_PAYMENT: &str = "2000.00";
/// An account the receiving bank does not have: its pacs.002 says RJCT AC01.
const UNKNOWN_ACCOUNT: &str = "NOBODY";
/// How long the demo waits for a payment to move, at most.
pub(super) const MOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often it looks.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Says lines and pauses between steps.
struct Teller<'a> {
    out: &'a mut dyn FnMut(&str),
    pause: &'a mut dyn FnMut(),
    pausing: bool,
    steps_told: usize,
}

impl Teller<'_> {
    fn say(&mut self, line: &str) {
        (self.out)(line);
    }

    /// Starts step `number` (1-based): a pause after the previous step, then the heading.
    fn step(&mut self, number: usize) {
        assert_eq!(number, self.steps_told + 1, "steps are told in order");
        if self.steps_told > 0 && self.pausing {
            self.say("(press Enter to go on)");
            (self.pause)();
        }
        self.steps_told = number;
        let heading = STEP_HEADINGS[number - 1];
        self.say("");
        self.say(heading);
        self.say(&"-".repeat(heading.chars().count()));
    }
}

/// The running network and the handles the story uses.
struct Stage {
    network: LocalNetwork,
    directory: Directory,
    bics: [Bic; 2],
    currencies: [Currency; 2],
    sender_client: BankServiceClient<Channel>,
}

impl Stage {
    fn hub(&self) -> &Hub {
        self.network.hub()
    }

    fn bank(&self, index: usize) -> &Bank {
        &self.network.banks[self.network.index_of(self.bics[index])].bank
    }
}

/// Runs the narrated demo, telling each line to `out` and calling `pause` between steps
/// (only when `config.pause`).
pub async fn run_narrated(
    config: &NarrateConfig,
    out: &mut dyn FnMut(&str),
    pause: &mut dyn FnMut(),
) -> Result<NarrateSummary, String> {
    // The temporary directory (when no --data) lives until the narration ends.
    let (dir, _temporary) = super::demo::network_dir(config.data.as_deref())?;
    let mut teller = Teller { out, pause, pausing: config.pause, steps_told: 0 };
    let mut stage = set_up(&dir, &mut teller).await?;
    let mut summary = NarrateSummary::default();
    let uetr = one_payment(&mut stage, &mut teller).await?;
    summary.payment_uetr = uetr.to_string();
    let (rejected, reason) = rejection(&mut stage, &mut teller).await?;
    (summary.rejected_uetr, summary.rejection_reason) = (rejected.to_string(), reason);
    summary.recovered_uetr = crash_and_recovery(&mut stage, &mut teller).await?.to_string();
    summary.reconciliation = reconciliation(&stage, &mut teller).await?;
    teller.say("");
    teller.say("The end. One payment, one rejection, one outage survived, and everyone agrees.");
    stage.network.stop().await?;
    if config.data.is_some() {
        teller.say(&format!(
            "The network is kept in {}: `corridor reconcile --dir {}` checks it again offline",
            dir.display(),
            dir.display()
        ));
    }
    if !summary.reconciliation.is_clean() {
        return Err(format!("the reconciliation found {} breaks", summary.reconciliation.breaks.len()));
    }
    Ok(summary)
}

/// A hub and two banks, a rate agreement, the sender's liquidity and two customers.
async fn set_up(dir: &Path, teller: &mut Teller<'_>) -> Result<Stage, String> {
    let bic = |index: usize| Bic::parse(DEMO_BANKS[index].0).expect("demo BICs are valid");
    let currency = |index: usize| Currency::parse(DEMO_BANKS[index].2).expect("demo currencies are ISO 4217");
    let bics = [bic(SENDER), bic(RECEIVER)];
    let currencies = [currency(SENDER), currency(RECEIVER)];
    teller.say("Corridor, told step by step.");
    teller.say("");
    teller.say(&format!("Setting up a small network in {}:", dir.display()));
    let mut network = LocalNetwork::create(dir, &bics).await?;
    let directory = Directory::load(network.network.root()).map_err(|e| e.to_string())?;
    teller.say(&format!(
        "  a hub on {}, and a certificate and an Ed25519 signing key for each bank",
        network.hub_url
    ));
    let mut admin = network.admin().await?;
    let agreement = pb::RateAgreement {
        currency_pair: format!("{}/{}", currencies[SENDER], currencies[RECEIVER]),
        rate: AGREED_RATE.into(),
        spread_bps: AGREED_SPREAD_BPS,
        ..Default::default()
    };
    let set = admin
        .set_agreement(pb::SetAgreementRequest { agreement: Some(agreement) })
        .await
        .map_err(|e| format!("agreement: {}", e.message()))?
        .into_inner()
        .agreement
        .unwrap_or_default();
    teller.say(&format!(
        "  a rate agreement {}: {} less the network's {} bp spread = {} applied",
        set.currency_pair, set.rate, set.spread_bps, set.applied_rate
    ));
    let fund = pb::FundRequest {
        participant_bic: bics[SENDER].to_string(),
        currency: currencies[SENDER].to_string(),
        amount: LIQUIDITY.into(),
    };
    admin.fund(fund).await.map_err(|e| format!("funding: {}", e.message()))?;
    teller.say(&format!(
        "  {} prefunds its position at the hub with {} (its liquidity)",
        bics[SENDER],
        money_text(LIQUIDITY, currencies[SENDER])
    ));
    let mut clients = Vec::new();
    for (index, (account, name, deposit)) in [DEBTOR, CREDITOR].into_iter().enumerate() {
        network.start_bank(bics[index]).await?;
        let mut client = network.operator(index).await?;
        let request = pb::OpenAccountRequest {
            account_id: account.into(),
            currency: currencies[index].to_string(),
            name: name.into(),
            opening_deposit: deposit.into(),
        };
        client.open_account(request).await.map_err(|s| format!("opening {account}: {}", s.message()))?;
        teller.say(&format!(
            "  bank {} ({}, {}): {name} opens account {account} with {}",
            bics[index],
            DEMO_BANKS[index].1,
            currencies[index],
            money_text(deposit, currencies[index])
        ));
        clients.push(client);
    }
    let sender_client = clients.swap_remove(SENDER);
    Ok(Stage { network, directory, bics, currencies, sender_client })
}

/// Steps 1 to 5: one payment from the order to settlement.
async fn one_payment(stage: &mut Stage, teller: &mut Teller<'_>) -> Result<Uetr, String> {
    let (sender, receiver) = (stage.bics[SENDER], stage.bics[RECEIVER]);
    let (rub, irr) = (stage.currencies[SENDER], stage.currencies[RECEIVER]);
    let in_flight = format!("SYS-INFLIGHT-{rub}");
    let sender_settlement = format!("SYS-SETTLEMENT-{rub}");
    let receiver_settlement = format!("SYS-SETTLEMENT-{irr}");
    let before_sender = balances(stage.bank(SENDER), &[DEBTOR.0, &in_flight, &sender_settlement]);
    let before_receiver = balances(stage.bank(RECEIVER), &[CREDITOR.0, &receiver_settlement]);
    let position_before = stage.hub().positions().position(sender, rub);

    teller.step(1);
    teller.say(&format!(
        "{} (account {} at {sender}, in Russia) asks her bank to pay {PAYMENT} {rub}",
        DEBTOR.1, DEBTOR.0
    ));
    teller.say(&format!(
        "to {} (account {} at {receiver}, in Iran), who is to be paid in {irr}.",
        CREDITOR.1, CREDITOR.0
    ));
    let uetr = submit(stage, CREDITOR.0, PAYMENT).await?;
    wait_until_told(stage, uetr).await?;
    teller.say("Her bank checks the order (the account exists, is not blocked, holds enough), reads the");
    teller.say("hub's rate agreement for the conversion, and gives the payment its UETR (Unique End-to-end");
    teller.say("Transaction Reference), the one id that follows it everywhere:");
    teller.say(&format!("  UETR {uetr}"));
    teller.say("It books the payment in its ledger, double entry (each posting's debits equal its credits):");
    teller.say(&format!("  debit  {:<20} {PAYMENT} {rub}   the money leaves her account", DEBTOR.0));
    teller.say(&format!(
        "  credit {in_flight:<20} {PAYMENT} {rub}   held \"in flight\" until the network settles"
    ));
    let after_order = entries_for(stage.bank(SENDER), &[DEBTOR.0, &in_flight], uetr, 1)?;
    for ((account, before), change) in before_sender.iter().zip(&after_order) {
        teller.say(&balance_line(account, *before, &[*change]));
    }
    teller.say("The bank answers its operator with the UETR, and sends anything, only once this booking");
    teller.say("is on disk (fsynced): a crash now cannot lose the order, nor book it twice.");

    teller.step(2);
    let pacs008 = journal_message(&stage.network.network, uetr, MessageType::Pacs008)?;
    let Body::Pacs008(transfer) = pacs008.message.body() else {
        return Err(format!("the journal's pacs.008 of {uetr} is not a pacs.008"));
    };
    tell_pacs008(teller, &pacs008, transfer);
    tell_pacs008_xml(teller, &pacs008)?;
    tell_signature(teller, stage, &pacs008)?;

    teller.step(3);
    tell_hub_checks(teller, stage, &pacs008, transfer, position_before)?;
    tell_acknowledgement(teller, stage, &pacs008)?;

    teller.step(4);
    tell_delivery(teller, stage, &pacs008, transfer, &before_receiver)?;

    teller.step(5);
    tell_status_and_settlement(teller, stage, uetr, &before_sender).await?;
    Ok(uetr)
}

/// The pacs.008's fields with their ISO 20022 names.
fn tell_pacs008(teller: &mut Teller<'_>, pacs008: &Journalled, transfer: &CreditTransfer) {
    let header = pacs008.message.header();
    teller.say(&format!(
        "{} writes the payment as a pacs.008. This is the one the hub journalled, read back from its",
        header.sender
    ));
    teller.say("journal (the left column says what a field is, its ISO 20022 XML tag in brackets):");
    let conversion = transfer.conversion.as_ref();
    let lines = [
        ("Message id (MsgId)", header.message_id.to_string()),
        ("Created (CreDtTm)", wire::format_unix_ms(header.creation_time_unix_ms)),
        ("UETR (UETR)", transfer.uetr.to_string()),
        ("Instruction id (InstrId)", transfer.instruction_id.clone()),
        ("End-to-end id (EndToEndId)", transfer.end_to_end_id.clone()),
        ("Instructed amount (InstdAmt)", transfer.instructed_amount().to_string()),
        ("Exchange rate (XchgRate)", conversion.map_or_else(|| "none".into(), |c| c.rate.to_string())),
        ("Interbank settlement amount (IntrBkSttlmAmt)", transfer.amount.to_string()),
        ("Settlement date (IntrBkSttlmDt)", transfer.settlement_date.to_string()),
        ("Charge bearer (ChrgBr)", transfer.charge_bearer.to_string()),
        ("Debtor (Dbtr)", transfer.debtor.name.clone()),
        ("Debtor account (DbtrAcct)", transfer.debtor.account.clone()),
        ("Debtor agent (DbtrAgt)", transfer.debtor_agent.to_string()),
        ("Creditor agent (CdtrAgt)", transfer.creditor_agent.to_string()),
        ("Creditor (Cdtr)", transfer.creditor.name.clone()),
        ("Creditor account (CdtrAcct)", transfer.creditor.account.clone()),
        ("Remittance information (RmtInf)", transfer.remittance_information.clone()),
    ];
    for (name, value) in lines {
        teller.say(&format!("  {name:<46} {value}"));
    }
    teller
        .say("The instructed amount is what Anna pays, in roubles; the interbank settlement amount is what");
    teller.say("her bank's partner receives, in rials: the instructed amount times the rate, rounded to the");
    teller.say("nearest minor unit.");
}

/// Where each field [`tell_pacs008`] explains sits in the XML: its label there and its
/// path below `Document/FIToFICstmrCdtTrf`.
const PACS008_FIELD_PATHS: [(&str, &str); 17] = [
    ("Message id", "GrpHdr/MsgId"),
    ("Created", "GrpHdr/CreDtTm"),
    ("UETR", "CdtTrfTxInf/PmtId/UETR"),
    ("Instruction id", "CdtTrfTxInf/PmtId/InstrId"),
    ("End-to-end id", "CdtTrfTxInf/PmtId/EndToEndId"),
    ("Instructed amount", "CdtTrfTxInf/InstdAmt"),
    ("Exchange rate", "CdtTrfTxInf/XchgRate"),
    ("Interbank settlement amount", "CdtTrfTxInf/IntrBkSttlmAmt"),
    ("Settlement date", "CdtTrfTxInf/IntrBkSttlmDt"),
    ("Charge bearer", "CdtTrfTxInf/ChrgBr"),
    ("Debtor", "CdtTrfTxInf/Dbtr"),
    ("Debtor account", "CdtTrfTxInf/DbtrAcct"),
    ("Debtor agent", "CdtTrfTxInf/DbtrAgt"),
    ("Creditor agent", "CdtTrfTxInf/CdtrAgt"),
    ("Creditor", "CdtTrfTxInf/Cdtr"),
    ("Creditor account", "CdtTrfTxInf/CdtrAcct"),
    ("Remittance information", "CdtTrfTxInf/RmtInf"),
];

/// The pacs.008 as ISO 20022 XML, written from the very message the bank signed (decoded
/// from the journalled payload): the AppHdr summarised, the Document whole, and where
/// each field told above sits in it.
fn tell_pacs008_xml(teller: &mut Teller<'_>, pacs008: &Journalled) -> Result<(), String> {
    use super::xml_view::{document_part, leaf_at, leaves};
    let xml = crate::iso20022::write(&pacs008.message).map_err(|e| format!("the pacs.008 as XML: {e}"))?;
    let found = leaves(&xml);
    let value = |path: &str| leaf_at(&found, &format!("Envelope/AppHdr/{path}")).map_or("", |l| &l.text);
    let document = document_part(&xml).ok_or("the written XML has no Document")?;
    teller.say("");
    teller.say("Inside the network Corridor signs and carries this message as protobuf (see below). Between");
    teller.say(
        "banks on ISO 20022 networks (CIPS, SEPAM, SWIFT's CBPR+) the same message travels as XML; here",
    );
    teller.say("it is, written by Corridor's iso20022 module from those very signed bytes. Its Business");
    teller.say(&format!(
        "Application Header (AppHdr, {}) goes first and says:",
        crate::iso20022::HEAD_NAMESPACE.rsplit(':').next().unwrap_or_default()
    ));
    for (label, path) in [
        ("from (Fr)", "Fr/FIId/FinInstnId/BICFI"),
        ("to (To)", "To/FIId/FinInstnId/BICFI"),
        ("business message id (BizMsgIdr)", "BizMsgIdr"),
        ("message definition (MsgDefIdr)", "MsgDefIdr"),
        ("created (CreDt)", "CreDt"),
    ] {
        teller.say(&format!("  {label:<34} {}", value(path)));
    }
    teller.say("Then the Document, the payment itself:");
    for line in &document {
        teller.say(&format!("    {line}"));
    }
    teller.say("Where each field above sits (paths below Document/FIToFICstmrCdtTrf; text as written):");
    for (label, path) in PACS008_FIELD_PATHS {
        let Some(leaf) = leaf_at(&found, &format!("Envelope/Document/FIToFICstmrCdtTrf/{path}")) else {
            teller.say(&format!("  {label:<28} not in this message (it has none)"));
            continue;
        };
        let at = leaf.path.trim_start_matches("Envelope/Document/FIToFICstmrCdtTrf/");
        let written = match leaf.attributes.as_str() {
            "" => leaf.text.clone(),
            attributes => format!("{}, its currency in {attributes}", leaf.text),
        };
        teller.say(&format!("  {label:<28} {at:<37} {written}"));
    }
    teller
        .say("Amounts are written in the currency's units with exactly its decimals; times in UTC. What no");
    teller.say(
        "ISO element holds (the sender's sequence number) rides in SplmtryData, under Corridor's namespace.",
    );
    teller.say("");
    Ok(())
}

/// Who signed the pacs.008 and how anyone can check it.
fn tell_signature(teller: &mut Teller<'_>, stage: &Stage, pacs008: &Journalled) -> Result<(), String> {
    let envelope = &pacs008.envelope;
    teller.say(&format!(
        "{} encodes the message once ({} bytes of protobuf) and signs those exact bytes with its",
        envelope.signer,
        envelope.payload.len()
    ));
    teller.say(&format!(
        "Ed25519 private key {}. The 64-byte signature begins {}...",
        envelope.key_id,
        hex_encode(&envelope.signature.to_bytes()[..8])
    ));
    teller.say("Bytes and signature travel together in a signed envelope. Nobody re-encodes the message to");
    teller.say("check it: the same message can be encoded in more than one way, so only the bytes count.");
    let keys = stage.directory.keys();
    let verdict = |result: Result<(), crate::crypto::CryptoError>| match result {
        Ok(()) => "valid".to_owned(),
        Err(e) => format!("refused ({e})"),
    };
    teller.say(&format!(
        "Checked here with {}'s public key from the network directory: {}.",
        envelope.signer,
        verdict(keys.verify(envelope))
    ));
    let mut tampered = envelope.clone();
    let mut bytes = tampered.payload.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    tampered.payload = bytes.into();
    teller.say(&format!(
        "Change one bit of the last byte and check again: {}.",
        verdict(keys.verify(&tampered))
    ));
    Ok(())
}

/// The hub's checks, in the order it runs them, with what each saw.
fn tell_hub_checks(
    teller: &mut Teller<'_>,
    stage: &Stage,
    pacs008: &Journalled,
    transfer: &CreditTransfer,
    position_before: crate::hub::Position,
) -> Result<(), String> {
    let header = pacs008.message.header();
    let config = stage.hub().config();
    let instructed = transfer.instructed_amount();
    let age_ms = pacs008.accepted_unix_ms - header.creation_time_unix_ms;
    teller.say(&format!(
        "The pacs.008 reaches the hub on {}'s session as input sequence number (ISN) {}. The hub",
        header.sender, pacs008.isn
    ));
    teller.say("runs its checks in this order; the first that fails refuses it with a NAK and a reason:");
    teller.say(&format!(
        "  1. mTLS: the session's client certificate is {}'s, and so are the signer and the sender.",
        header.sender
    ));
    teller.say(&format!(
        "  2. Size and schema: {} bytes (at most {}), a well-formed pacs.008, created {age_ms} ms",
        pacs008.envelope.payload.len(),
        config.payload_size_max_bytes
    ));
    teller.say(&format!(
        "     before it arrived (the replay window is {} s).",
        config.message_age_max.as_secs()
    ));
    teller.say(&format!(
        "  3. Signature: verified with key {} from the network directory.",
        pacs008.envelope.key_id
    ));
    let allowed = stage.directory.allows(header.sender, header.receiver, MessageType::Pacs008);
    teller.say(&format!(
        "  4. Relationship (RMA): may {} send a pacs.008 to {}? {}.",
        header.sender,
        header.receiver,
        if allowed { "yes" } else { "no" }
    ));
    teller.say(&format!("  5. Duplicates: message id {} and the UETR are new", header.message_id));
    teller.say("     (a resend of the same bytes would get the first ACK again, other bytes a NAK DUPL).");
    tell_conversion_check(teller, stage, transfer)?;
    let available = position_before.available();
    let currency = instructed.currency();
    teller.say(&format!(
        "  7. Position: {} can cover {instructed}: it had {} {currency} available (liquidity plus net",
        header.sender,
        format_minor_units(i64::try_from(available).unwrap_or(i64::MAX), currency)
    ));
    teller.say("     debit cap, less what is reserved). The amount is reserved until the receiver answers.");
    Ok(())
}

/// Check 6: the conversion against the agreement in force, recomputed here.
fn tell_conversion_check(
    teller: &mut Teller<'_>,
    stage: &Stage,
    transfer: &CreditTransfer,
) -> Result<(), String> {
    let Some(conversion) = &transfer.conversion else {
        teller.say("  6. Conversion: none, both banks use one currency.");
        return Ok(());
    };
    let pair = CurrencyPair::new(conversion.instructed.currency(), transfer.amount.currency())
        .map_err(|e| e.to_string())?;
    let agreement = stage
        .hub()
        .agreements()
        .into_iter()
        .find(|a| a.pair == pair)
        .ok_or_else(|| format!("the hub has no agreement for {pair}"))?;
    let expected = agreement.applied.convert(conversion.instructed, pair.to).map_err(|e| e.to_string())?;
    teller.say(&format!(
        "  6. Conversion: the agreement {pair} applies {} ({} less {} bp), and {} x {}",
        agreement.applied, agreement.rate, agreement.spread_bps, conversion.instructed, conversion.rate
    ));
    teller.say(&format!(
        "     = {expected}: {} the interbank settlement amount {}.",
        if expected == transfer.amount && conversion.rate == agreement.applied {
            "matches"
        } else {
            "DOES NOT match"
        },
        transfer.amount
    ));
    Ok(())
}

/// Why the ACK waits for the journal, with the real times and the receipt.
fn tell_acknowledgement(teller: &mut Teller<'_>, stage: &Stage, pacs008: &Journalled) -> Result<(), String> {
    let uetr = pacs008.uetr()?;
    let payment = stage.hub().payment(&uetr).ok_or_else(|| format!("the hub has no payment {uetr}"))?;
    let acknowledged = payment.acknowledged_unix_ms.ok_or("the hub has not acknowledged it")?;
    teller.say("All checks passed. Before answering, the hub writes the message to its journal (SQLite,");
    teller.say(
        "write-ahead log, synchronous=FULL) and waits for the fsync: one writer thread puts every change",
    );
    teller.say("pending at that moment into one transaction and one fsync (group commit), so durability is");
    teller.say("paid once for many messages. Only then does the ACK leave:");
    teller.say(&format!("  accepted and journalled  {}", clock(payment.submitted_unix_ms)));
    teller.say(&format!(
        "  ACK sent                 {}  ({} ms later)",
        clock(acknowledged),
        acknowledged - payment.submitted_unix_ms
    ));
    let receipt = crate::crypto::ReceiptProof::decode(&pacs008.receipt).map_err(|e| e.to_string())?;
    let checked = stage.directory.keys().verify_receipt(stage.directory.hub(), &pacs008.envelope, &receipt);
    teller.say(&format!(
        "The ACK carries the hub's receipt: one Ed25519 signature ({}...) over the root of a hash tree of the {}",
        hex_encode(&receipt.root_signature.to_bytes()[..8]),
        receipt.leaf_count
    ));
    teller.say(&format!(
        "message(s) the hub ACKed together, and this one's path to that root ({} hash(es)), so that",
        receipt.path.len()
    ));
    teller.say(&format!(
        "the bank can prove the hub took exactly these bytes. Checked here: {}.",
        if checked.is_ok() { "valid" } else { "INVALID" }
    ));
    teller.say("Why wait? Had the hub answered first and crashed before writing, the bank would believe the");
    teller
        .say("payment safe and stop resending it, and the payment would vanish. Written first, whatever the");
    teller.say("hub has acknowledged survives any crash.");
    Ok(())
}

/// Step 4: the hub delivers by output sequence number; the receiver checks and books.
fn tell_delivery(
    teller: &mut Teller<'_>,
    stage: &Stage,
    pacs008: &Journalled,
    transfer: &CreditTransfer,
    before: &[(String, Balance)],
) -> Result<(), String> {
    let uetr = transfer.uetr;
    let receiver = transfer.creditor_agent;
    let payment = stage.hub().payment(&uetr).ok_or_else(|| format!("the hub has no payment {uetr}"))?;
    teller.say(&format!(
        "The hub queues the pacs.008 for {receiver} as its output sequence number (OSN) {} and sends it on",
        pacs008.osn
    ));
    teller.say(&format!(
        "{receiver}'s session (only once durable). {receiver} confirmed it processed it at {}.",
        payment.delivered_unix_ms.map_or_else(|| "(not yet)".into(), clock)
    ));
    teller.say(&format!("{receiver} does not take the hub's word for anything. It checks again itself:"));
    teller.say(&format!(
        "  - {}'s signature over the exact bytes, against the same network directory;",
        transfer.debtor_agent
    ));
    if let Some(conversion) = &transfer.conversion {
        teller.say(&format!(
            "  - the conversion: {} x {} = {} (end to end);",
            conversion.instructed, conversion.rate, transfer.amount
        ));
    }
    teller.say(&format!(
        "  - the creditor account {}: it exists, is not blocked, and holds {}.",
        transfer.creditor.account,
        transfer.amount.currency()
    ));
    let accounts: Vec<&str> = before.iter().map(|(account, _)| account.as_str()).collect();
    let changes = entries_for(stage.bank(RECEIVER), &accounts, uetr, 1)?;
    teller.say("Then it books, in rials:");
    teller.say(&format!("  debit  {:<20} {}   what the hub now owes it", accounts[1], transfer.amount));
    teller.say(&format!("  credit {:<20} {}   Darius is paid", accounts[0], transfer.amount));
    for ((account, was), change) in before.iter().zip(&changes) {
        teller.say(&balance_line(account, *was, &[*change]));
    }
    let incoming = stage.bank(RECEIVER).payment(&uetr.to_string()).map_err(|e| e.to_string())?;
    teller.say(&format!(
        "Its record of the payment: incoming from {}, {} {}.",
        incoming.counterparty, incoming.amount, incoming.status
    ));
    Ok(())
}

/// Step 5: the pacs.002 ACSC, the hub's settlement per currency, the sender's booking, the track.
async fn tell_status_and_settlement(
    teller: &mut Teller<'_>,
    stage: &Stage,
    uetr: Uetr,
    before_sender: &[(String, Balance)],
) -> Result<(), String> {
    let pacs002 = journal_message(&stage.network.network, uetr, MessageType::Pacs002)?;
    let report = status_report(&pacs002)?;
    let header = pacs002.message.header();
    teller.say(&format!(
        "{} answers with a pacs.002 (payment status report), signed with its key {} ({}...):",
        header.sender,
        pacs002.envelope.key_id,
        hex_encode(&pacs002.envelope.signature.to_bytes()[..8])
    ));
    tell_status_fields(teller, &pacs002, report);
    teller.say(
        "The hub checks it comes from the payment's receiver about the pacs.008 it relayed, and settles",
    );
    teller
        .say("at once (gross): the reservation becomes a move between positions, each in its own currency,");
    teller.say("through the agreement's FX accounts. The hub's positions now:");
    tell_positions(teller, stage.hub());
    let sender = stage.bank(SENDER);
    // The in-flight and settlement accounts: after the order's booking, then the settlement's.
    let before = &before_sender[1..];
    let accounts: Vec<&str> = before.iter().map(|(account, _)| account.as_str()).collect();
    let ordered = entries_for(sender, &accounts, uetr, 1)?;
    let settled = entries_for(sender, &accounts, uetr, 2)?;
    teller.say(&format!(
        "The pacs.002 goes back to {} (by its OSN), which books debit {},",
        header.receiver, accounts[0]
    ));
    teller.say(&format!(
        "credit {} (the settlement account mirrors the bank's position at the hub):",
        accounts[1]
    ));
    for (index, (account, was)) in before.iter().enumerate() {
        teller.say(&balance_line(account, *was, &[ordered[index], settled[index]]));
    }
    tell_track(teller, stage, uetr).await
}

fn tell_status_fields(teller: &mut Teller<'_>, pacs002: &Journalled, report: &PaymentStatusReport) {
    let header = pacs002.message.header();
    let reason = report.reason.map_or_else(|| "none".into(), |r| r.to_string());
    let lines = [
        ("Message id (MsgId)", header.message_id.to_string()),
        ("Original message id (OrgnlMsgId)", report.original_message_id.to_string()),
        ("UETR (UETR)", report.uetr.to_string()),
        ("Transaction status (TxSts)", report.status.to_string()),
        ("Status reason (StsRsnInf/Rsn)", reason),
        ("Additional information (AddtlInf)", report.additional_information.clone()),
    ];
    for (name, value) in lines {
        teller.say(&format!("  {name:<46} {value}"));
    }
}

/// Every position and FX account at the hub, and the per-currency sums.
fn tell_positions(teller: &mut Teller<'_>, hub: &Hub) {
    let positions = hub.positions();
    let mut sums: std::collections::BTreeMap<String, (Currency, i64)> = std::collections::BTreeMap::new();
    for (bic, currency, position) in positions.positions() {
        teller.say(&format!(
            "  {bic} in {currency}: liquidity {:>14}, settled net {:>14}",
            format_minor_units(position.liquidity, currency),
            format_minor_units(position.settled_net, currency)
        ));
        sums.entry(currency.to_string()).or_insert((currency, 0)).1 += position.settled_net;
    }
    for line in positions.fx_positions() {
        teller.say(&format!(
            "  FX account {} in {}: {:>31}",
            line.pair,
            line.currency,
            format_minor_units(line.net, line.currency)
        ));
        sums.entry(line.currency.to_string()).or_insert((line.currency, 0)).1 += line.net;
    }
    let sums: Vec<String> = sums
        .values()
        .map(|(currency, net)| format!("{} {currency}", format_minor_units(*net, *currency)))
        .collect();
    teller.say(&format!(
        "  In each currency the settled nets add up to: {} (value is neither made nor lost).",
        sums.join(", ")
    ));
}

/// The hub tracker's story of a payment, as `corridor track UETR` shows it.
async fn tell_track(teller: &mut Teller<'_>, stage: &Stage, uetr: Uetr) -> Result<(), String> {
    let mut tracker = tracker_client(&stage.network.network, &stage.network.hub_url).await?;
    let tracked = tracker
        .track(pb::TrackRequest { uetr: uetr.to_string(), this_hub_only: false })
        .await
        .map_err(|s| format!("track {uetr}: {}", s.message()))?
        .into_inner();
    teller.say(&format!("The hub's tracker (`corridor track {uetr}`):"));
    let start = tracked.steps.first().map_or(0, |s| s.time_unix_ms);
    for step in &tracked.steps {
        teller.say(&format!(
            "  {} +{:>4} ms  {:<17} by {}",
            clock(step.time_unix_ms),
            step.time_unix_ms - start,
            step.step,
            step.by_bic
        ));
        teller.say(&format!("      {}", step.detail));
    }
    Ok(())
}

/// Step 6: a payment to an account the receiver does not have.
async fn rejection(stage: &mut Stage, teller: &mut Teller<'_>) -> Result<(Uetr, String), String> {
    let rub = stage.currencies[SENDER];
    let in_flight = format!("SYS-INFLIGHT-{rub}");
    let before = balances(stage.bank(SENDER), &[DEBTOR.0, &in_flight]);
    let settled_before = stage.hub().positions().position(stage.bics[SENDER], rub).settled_net;
    teller.step(6);
    teller.say(&format!(
        "{} now pays {REJECTED_PAYMENT} {rub} to account {UNKNOWN_ACCOUNT} at {}, which does not exist.",
        DEBTOR.1, stage.bics[RECEIVER]
    ));
    let uetr = submit(stage, UNKNOWN_ACCOUNT, REJECTED_PAYMENT).await?;
    wait_until_told(stage, uetr).await?;
    teller.say(&format!("  UETR {uetr}"));
    teller.say("The hub checks and ACKs it as before: it cannot know another bank's accounts. Only the");
    teller.say("receiving bank can, and it refuses:");
    let pacs002 = journal_message(&stage.network.network, uetr, MessageType::Pacs002)?;
    let report = status_report(&pacs002)?;
    tell_status_fields(teller, &pacs002, report);
    let reason = report.reason.map(|r| r.to_string()).unwrap_or_default();
    let meaning = match report.reason {
        Some(ReasonCode::Ac01) => "the account number is invalid or missing",
        Some(ReasonCode::Ac06) => "the account is blocked",
        _ => "see the additional information",
    };
    teller.say(&format!("{reason} is the ISO 20022 reason code for: {meaning}."));
    let settled_after = stage.hub().positions().position(stage.bics[SENDER], rub).settled_net;
    teller.say(&format!(
        "The hub releases the reservation and nothing settles: {}'s settled net was {} {rub}",
        stage.bics[SENDER],
        format_minor_units(settled_before, rub),
    ));
    teller.say(&format!("and is still {} {rub}.", format_minor_units(settled_after, rub)));
    let accounts: Vec<&str> = before.iter().map(|(account, _)| account.as_str()).collect();
    let booked = entries_for(stage.bank(SENDER), &accounts, uetr, 1)?;
    let reversed = entries_for(stage.bank(SENDER), &accounts, uetr, 2)?;
    let payment = stage.bank(SENDER).payment(&uetr.to_string()).map_err(|e| e.to_string())?;
    teller.say(&format!(
        "{} books the order (debit {}, credit {in_flight}), then on RJCT the reversal (debit {in_flight},",
        stage.bics[SENDER], DEBTOR.0
    ));
    teller.say(&format!(
        "credit {}): {} gets her money back. Its record says {} {reason}:",
        DEBTOR.0, DEBTOR.1, payment.status
    ));
    teller.say(&format!("  \"{}\"", payment.detail));
    for (index, (account, was)) in before.iter().enumerate() {
        teller.say(&balance_line(account, *was, &[booked[index], reversed[index]]));
    }
    tell_track(teller, stage, uetr).await?;
    Ok((uetr, reason))
}

/// Step 7: the receiver goes offline, a payment is ACKed, the hub restarts, the receiver
/// comes back: the payment is delivered and settles exactly once.
async fn crash_and_recovery(stage: &mut Stage, teller: &mut Teller<'_>) -> Result<Uetr, String> {
    let receiver = stage.bics[RECEIVER];
    let creditor_before = balances(stage.bank(RECEIVER), &[CREDITOR.0]);
    teller.step(7);
    teller.say(&format!("{receiver}'s node stops: the bank is offline."));
    stage.network.stop_bank(receiver).await?;
    teller.say(&format!(
        "{} pays {RECOVERED_PAYMENT} {} to {} all the same.",
        DEBTOR.1, stage.currencies[SENDER], CREDITOR.1
    ));
    let uetr = submit(stage, CREDITOR.0, RECOVERED_PAYMENT).await?;
    // The hub's ACK, and the sender's bank having taken it (PDNG becomes ACTC).
    let text = uetr.to_string();
    let (acknowledged, sender_status) = wait_for(|| {
        let acknowledged = stage.hub().payment(&uetr)?.acknowledged_unix_ms?;
        let status = stage.bank(SENDER).payment(&text).ok()?.status;
        (status != PaymentStatus::Pdng).then_some((acknowledged, status))
    })
    .await?;
    teller.say(&format!("  UETR {uetr}"));
    teller.say(&format!(
        "The hub checks it and ACKs it at {}: it is in the hub's journal, so the sender's bank is",
        clock(acknowledged)
    ));
    teller.say(&format!(
        "done with it (status {sender_status}{}).",
        if sender_status == PaymentStatus::Actc { ": accepted by the hub, not settled yet" } else { "" }
    ));
    teller.say(&format!(
        "The hub holds it for {receiver} (store and forward): {} message(s) queued.",
        stage.hub().queued_for(receiver)
    ));
    teller.say(
        "Now the hub itself goes down and comes back. Everything it held in memory is gone; it rebuilds",
    );
    teller.say("its state from its journal on disk.");
    stage.network.restart_hub().await?;
    let recovered = stage.hub().payment(&uetr).ok_or("the restarted hub lost the payment")?;
    teller.say(&format!(
        "After the restart the hub still has the payment (ACKed at {}) and still holds {} message(s)",
        recovered.acknowledged_unix_ms.map_or_else(|| "never".into(), clock),
        stage.hub().queued_for(receiver)
    ));
    teller.say(&format!("for {receiver}. The sender's bank reconnects by itself."));
    stage.network.start_bank(receiver).await?;
    let pacs008 = journal_message(&stage.network.network, uetr, MessageType::Pacs008)?;
    teller.say(&format!(
        "{receiver} comes back. On connecting it says (Hello) the last output sequence number it processed"
    ));
    teller.say(&format!(
        "({}); the hub sends everything after it, OSN {} first. Anything the hub may have sent before",
        pacs008.osn - 1,
        pacs008.osn
    ));
    teller
        .say("goes out flagged as a possible duplicate (PDM), and the bank skips what it already processed.");
    wait_until_told(stage, uetr).await?;
    tell_exactly_once(teller, stage, uetr, &creditor_before)?;
    Ok(uetr)
}

/// After the recovery: one record and one booking everywhere.
fn tell_exactly_once(
    teller: &mut Teller<'_>,
    stage: &Stage,
    uetr: Uetr,
    creditor_before: &[(String, Balance)],
) -> Result<(), String> {
    let hub_payment = stage.hub().payment(&uetr).ok_or("the hub lost the payment")?;
    let sender_payment = stage.bank(SENDER).payment(&uetr.to_string()).map_err(|e| e.to_string())?;
    let count = |bank: &Bank| -> Result<usize, String> {
        Ok(bank.payments().map_err(|e| e.to_string())?.iter().filter(|p| p.uetr == uetr).count())
    };
    let credited = entries(stage.bank(RECEIVER), CREDITOR.0, uetr)?;
    teller.say(&format!(
        "{} confirmed the pacs.008 at {}, its pacs.002 said {}, and the sender's bank has it {}.",
        stage.bics[RECEIVER],
        hub_payment.delivered_unix_ms.map_or_else(|| "(not yet)".into(), clock),
        hub_payment.status.as_ref().map_or_else(|| "nothing yet".into(), |s| s.status.to_string()),
        sender_payment.status
    ));
    teller.say(&format!(
        "Exactly once: the hub has {} record of it, {} has {}, {} has {};",
        hub_payment_count(stage.hub(), uetr),
        stage.bics[SENDER],
        count(stage.bank(SENDER))?,
        stage.bics[RECEIVER],
        count(stage.bank(RECEIVER))?,
    ));
    teller.say(&format!("{} was credited {} time(s):", CREDITOR.0, credited.len()));
    let (account, was) = &creditor_before[0];
    let change: i64 = credited.iter().map(|e| e.signed_minor_units()).sum();
    teller.say(&balance_line(account, *was, &[change]));
    teller.say("tests/crash.rs does this harder: it kills the hub and banks with SIGKILL at random moments.");
    Ok(())
}

fn hub_payment_count(hub: &Hub, uetr: Uetr) -> usize {
    hub.payments().iter().filter(|p| p.uetr == uetr).count()
}

/// Step 8: the reconciler reads the hub and every bank and compares.
async fn reconciliation(stage: &Stage, teller: &mut Teller<'_>) -> Result<Report, String> {
    teller.step(8);
    teller.say("The reconciler reads the hub's records (every payment, every position) and each bank's");
    teller.say("(its payments, its settlement account statements, camt.053), and compares them by UETR");
    teller.say("and message id:");
    teller.say("  - every payment the hub relayed is at both banks, and none the hub never saw;");
    teller.say("  - the same amounts, currencies, references and final status on every side;");
    teller.say("  - nothing booked twice on a settlement account;");
    teller.say("  - each bank's settlement account equals its position at the hub, per currency;");
    teller.say("  - each bank's ledger balances (debits = credits);");
    teller.say("  - at the hub, positions and FX accounts add up to zero in every currency.");
    let network = &stage.network;
    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let report = reconcile_live(&network.network, &network.hub_url, &banks, MOVE_TIMEOUT).await?;
    teller.say(&format!(
        "Result: {} payments checked across {} participants, {} in transit, {} breaks.",
        report.payments_checked,
        report.participants_checked,
        report.payments_in_transit,
        report.breaks.len()
    ));
    if report.is_clean() {
        teller.say("0 breaks: the hub and every bank tell the same story, to the minor unit.");
    } else {
        for line in report.render().lines() {
            teller.say(&format!("  {line}"));
        }
    }
    Ok(report)
}

/// Asks the sender's bank (as its operator would) to pay `amount` roubles to `creditor`
/// at the receiving bank, in rials; returns the UETR.
async fn submit(stage: &mut Stage, creditor: &str, amount: &str) -> Result<Uetr, String> {
    let request = pb::SubmitPaymentRequest {
        debtor_account: DEBTOR.0.into(),
        creditor_agent_bic: stage.bics[RECEIVER].to_string(),
        creditor_account: creditor.into(),
        creditor_name: CREDITOR.1.into(),
        amount: amount.into(),
        currency: stage.currencies[SENDER].to_string(),
        settlement_currency: stage.currencies[RECEIVER].to_string(),
        quote_id: String::new(),
        remittance_information: "Invoice 42: two carpets".into(),
        end_to_end_id: String::new(),
    };
    let response = stage
        .sender_client
        .submit_payment(request)
        .await
        .map_err(|s| format!("the payment order was refused: {}", s.message()))?;
    let uetr = response.into_inner().payment.unwrap_or_default().uetr;
    Uetr::parse(&uetr).map_err(|e| e.to_string())
}

/// Waits until payment `uetr` is final at its sender and the hub knows the sender
/// processed the status report: the whole story is then in the records.
async fn wait_until_told(stage: &Stage, uetr: Uetr) -> Result<(), String> {
    let text = uetr.to_string();
    wait_for(|| {
        let final_at_sender = stage.bank(SENDER).payment(&text).is_ok_and(|p| p.status.is_final());
        let told = stage.hub().payment(&uetr).and_then(|p| p.status).and_then(|s| s.delivered_unix_ms);
        told.filter(|_| final_at_sender)
    })
    .await
    .map(|_| ())
}

/// Polls `done` until it gives a value, for at most [`MOVE_TIMEOUT`] (the narrated demos'
/// waits: each step takes milliseconds).
pub(super) async fn wait_for<T>(mut done: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + MOVE_TIMEOUT;
    loop {
        if let Some(value) = done() {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("nothing moved within {} s", MOVE_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The balances of `accounts` at `bank` (on each account's normal side).
fn balances(bank: &Bank, accounts: &[&str]) -> Vec<(String, Balance)> {
    accounts.iter().map(|account| ((*account).to_owned(), balance(bank, account))).collect()
}

fn balance(bank: &Bank, account: &str) -> Balance {
    let (accounts, _) = bank.accounts();
    let found = accounts.iter().find(|a| a.id.as_str() == account).expect("the demo's accounts are open");
    found.balance()
}

/// The entries of payment `uetr` on `account`, as the bank's statement (camt.053) has them.
fn entries(bank: &Bank, account: &str, uetr: Uetr) -> Result<Vec<crate::model::StatementEntry>, String> {
    let statement = bank.statement(account, "", 0, i64::MAX).map_err(|e| e.to_string())?;
    Ok(statement.entries.into_iter().filter(|e| e.uetr == Some(uetr)).collect())
}

/// The change that the `number`th (1-based) booking of payment `uetr` made on each of
/// `accounts`, on its normal side.
fn entries_for(bank: &Bank, accounts: &[&str], uetr: Uetr, number: usize) -> Result<Vec<i64>, String> {
    accounts
        .iter()
        .map(|account| {
            let found = entries(bank, account, uetr)?;
            Ok(found.get(number - 1).map_or(0, |e| e.signed_minor_units()))
        })
        .collect()
}

/// `account` at `start`, then after each of `changes` (on its normal side).
fn balance_line(account: &str, start: Balance, changes: &[i64]) -> String {
    let mut line = format!("  {account:<22} {:>18}", start.to_string());
    let mut balance = start;
    for change in changes {
        balance.minor_units += change;
        line += &format!(" -> {:>18}", balance.to_string());
    }
    line
}

/// A Unix millisecond time as the time of day, UTC, to the millisecond.
fn clock(unix_ms: i64) -> String {
    let ms = unix_ms.rem_euclid(86_400_000);
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// A message as the hub's journal holds it.
struct Journalled {
    isn: u64,
    osn: u64,
    envelope: SignedEnvelope,
    message: Message,
    receipt: Vec<u8>,
    accepted_unix_ms: i64,
}

impl Journalled {
    fn uetr(&self) -> Result<Uetr, String> {
        self.message.header().uetr.ok_or_else(|| "the message has no UETR".into())
    }
}

fn status_report(journalled: &Journalled) -> Result<&PaymentStatusReport, String> {
    match journalled.message.body() {
        Body::Pacs002(report) => Ok(report),
        _ => Err("the journal's pacs.002 is not a pacs.002".into()),
    }
}

/// The first `message_type` of payment `uetr` in the running hub's journal: what was
/// fsynced, exactly as it was signed (see [`crate::hub::journal::read_message`]).
fn journal_message(
    network: &NetworkDir,
    uetr: Uetr,
    message_type: MessageType,
) -> Result<Journalled, String> {
    let record = crate::hub::journal::read_message(&network.hub_data_dir(), uetr, message_type)
        .map_err(|e| format!("cannot read the hub's journal: {e}"))?
        .ok_or_else(|| format!("no {message_type} of {uetr} in the hub's journal"))?;
    let message = wire::decode_message(&record.envelope.payload).map_err(|e| e.to_string())?;
    Ok(Journalled {
        isn: record.isn,
        osn: record.osn,
        envelope: record.envelope,
        message,
        receipt: record.receipt.to_vec(),
        accepted_unix_ms: record.accepted_unix_ms,
    })
}
