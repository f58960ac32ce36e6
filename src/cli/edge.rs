//! ISO 20022 and MT103 at a bank node's edge, on the command line: `pay --xml FILE` and
//! `pay --mt103 FILE` (through the node's `SubmitPaymentXml`), and `export UETR --format
//! xml|mt103` (through `ExportPaymentXml`).

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use corridor::iso20022::{self, mt103};
use corridor::model::{Body, Message};
use corridor::pb;

use super::operator::{BankArgs, PayArgs, connect, status};

/// Largest document `pay --xml` sends, in bytes: the node reads a request of at most one
/// gRPC frame ([`corridor::net::FRAME_SIZE_MAX_BYTES`]), and the request's own framing
/// takes a few bytes of it. A larger file is refused before it is read whole.
pub const DOCUMENT_BYTES_MAX: usize = corridor::net::FRAME_SIZE_MAX_BYTES - 64;

/// The arguments of `corridor export`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    bank: BankArgs,
    /// The payment's UETR.
    uetr: String,
    /// xml: each message as AppHdr + Document; mt103: the pacs.008 as an MT103.
    #[arg(long, value_enum, default_value_t = ExportFormat::Xml)]
    format: ExportFormat,
    /// Only the messages of this type (pacs.008, pacs.002, pacs.004, camt.056, camt.029).
    #[arg(long = "type", value_name = "TYPE")]
    message_type: Option<String>,
}

/// What `corridor export` prints.
#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// ISO 20022 XML.
    Xml,
    /// SWIFT MT103 (the pacs.008 only).
    Mt103,
}

/// `pay --xml FILE` or `pay --mt103 FILE`: prints the UETR.
pub async fn pay_document(args: PayArgs) -> Result<()> {
    let document = match (&args.xml, &args.mt103) {
        (Some(file), _) => read_limited(file)?,
        (None, Some(file)) => pacs008_of_mt103(&read_limited(file)?, file)?.into_bytes(),
        (None, None) => unreachable!("pay_document is called with a document"),
    };
    let mut client = connect(&args.bank).await?;
    let request = pb::SubmitPaymentXmlRequest { document: document.into() };
    let payment =
        client.submit_payment_xml(request).await.map_err(status)?.into_inner().payment.unwrap_or_default();
    say!("{}", payment.uetr);
    Ok(())
}

/// The file's bytes, refused unread when larger than [`DOCUMENT_BYTES_MAX`] (and never
/// read past it, should it grow meanwhile or not be a regular file).
fn read_limited(file: &Path) -> Result<Vec<u8>> {
    let opened = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let too_large = |bytes: u64| {
        anyhow!(
            "{} has {bytes} bytes or more; a bank node takes a document of at most {DOCUMENT_BYTES_MAX} bytes",
            file.display()
        )
    };
    let size = opened.metadata().with_context(|| format!("cannot read {}", file.display()))?.len();
    if size > DOCUMENT_BYTES_MAX as u64 {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    opened
        .take(DOCUMENT_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", file.display()))?;
    if bytes.len() > DOCUMENT_BYTES_MAX {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// An MT103 as the pacs.008 XML Corridor submits; what Corridor does not carry of it is
/// told on stderr, field by field.
fn pacs008_of_mt103(text: &[u8], file: &Path) -> Result<String> {
    let text = std::str::from_utf8(text).map_err(|e| anyhow!("{}: not UTF-8 text: {e}", file.display()))?;
    let imported = mt103::import(text, corridor::clock::unix_ms_now())
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    for note in &imported.not_modelled {
        eprintln!("not carried: {note}");
    }
    let message = Message::new(imported.header, Body::Pacs008(imported.transfer))
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    iso20022::write(&message).map_err(|e| anyhow!("{}: {e}", file.display()))
}

/// `corridor export`: each message of the payment, as the bank holds it.
pub async fn export(args: ExportArgs) -> Result<()> {
    let ExportArgs { bank, uetr, format, message_type } = args;
    let mut client = connect(&bank).await?;
    let request = pb::ExportPaymentXmlRequest { uetr };
    let exported = client.export_payment_xml(request).await.map_err(status)?.into_inner();
    let wanted = |m: &&pb::ExportedMessage| match (format, &message_type) {
        (ExportFormat::Mt103, _) => m.message_type == "pacs.008",
        (ExportFormat::Xml, Some(kind)) => m.message_type == *kind,
        (ExportFormat::Xml, None) => true,
    };
    let messages: Vec<&pb::ExportedMessage> = exported.messages.iter().filter(wanted).collect();
    if messages.is_empty() {
        bail!("this bank holds no such message of the payment (messages are kept from this version on)");
    }
    for message in messages {
        let way = if message.sent { "sent" } else { "received" };
        eprintln!("{} {way}, message id {}", message.message_type, message.message_id);
        if !message.not_writable.is_empty() {
            eprintln!("  not written: {}", message.not_writable);
            continue;
        }
        match format {
            ExportFormat::Xml => say!("{}", message.xml),
            ExportFormat::Mt103 => say!("{}", mt103_of_xml(&message.xml)?),
        }
    }
    Ok(())
}

/// A pacs.008 as the bank holds it, as an MT103; what the MT103 does not carry is told
/// on stderr.
fn mt103_of_xml(xml: &str) -> Result<String> {
    let message = iso20022::read_strict(xml.as_bytes()).map_err(|e| anyhow!("the bank's pacs.008: {e}"))?;
    let Body::Pacs008(transfer) = message.body() else {
        bail!("the bank's pacs.008 is a {}", message.message_type())
    };
    let exported = mt103::export(message.header(), transfer).map_err(|e| anyhow!("as an MT103: {e}"))?;
    for note in &exported.not_carried {
        eprintln!("  not carried by the MT103: {note}");
    }
    Ok(exported.text)
}
