//! `corridor iso20022 ...`: ISO 20022 XML and MT103 files checked and translated offline,
//! without a network.
//!
//! Exit codes: 0 when the file is valid (and, for `translate`, written); 1 when Corridor
//! refuses it (invalid, or holding what Corridor does not carry); 2 when the file cannot
//! be read at all.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use corridor::iso20022::{self, XML_BYTES_MAX, mt103};
use corridor::model::{Body, Message};
use serde::Serialize;

use super::JsonArgs;

#[derive(Subcommand)]
pub enum Iso20022Command {
    /// Check an ISO 20022 XML message (AppHdr + Document under an Envelope, or a bare
    /// Document) as a Corridor node reads it: the schema's rules and the model's, each
    /// error with the element's path, and every element Corridor does not carry.
    ///
    /// Exits 0 when Corridor reads the whole message, 1 when it refuses it.
    Validate {
        /// The XML file.
        file: PathBuf,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Translate a message to Corridor's ISO 20022 XML (AppHdr + Document) or to an MT103.
    /// The input is ISO 20022 XML or an MT103, recognised by its first characters.
    ///
    /// Nothing is dropped silently: what the output would not carry refuses the
    /// translation, listed, unless --lossy, which translates anyway and lists it on stderr.
    Translate {
        /// The input file: XML (a pacs.008 for --to mt103) or an MT103.
        file: PathBuf,
        /// The output format.
        #[arg(long, value_enum)]
        to: Format,
        /// Translate even when the output cannot carry everything; what is lost is listed
        /// on stderr.
        #[arg(long)]
        lossy: bool,
    },
}

/// An output format of `translate`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// ISO 20022 XML: AppHdr + Document under an Envelope.
    Xml,
    /// SWIFT MT103 (from a pacs.008).
    Mt103,
}

/// Runs one `iso20022` command.
pub fn run(command: Iso20022Command) -> Result<ExitCode> {
    let file = match &command {
        Iso20022Command::Validate { file, .. } | Iso20022Command::Translate { file, .. } => file.clone(),
    };
    let bytes = match read_bounded(&file) {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("error: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    match command {
        Iso20022Command::Validate { json, .. } => validate(&file, &bytes, json.json),
        Iso20022Command::Translate { to, lossy, .. } => translate(&file, &bytes, to, lossy),
    }
}

/// The file's bytes; a file over [`XML_BYTES_MAX`] is refused before it is read.
fn read_bounded(file: &Path) -> Result<Vec<u8>> {
    let opened = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let length = opened.metadata().map(|m| m.len()).unwrap_or(0);
    if length > XML_BYTES_MAX as u64 {
        bail!("{}: {length} bytes; a message has at most {XML_BYTES_MAX} bytes", file.display());
    }
    let mut bytes = Vec::new();
    // The bound holds even for a file that grows while it is read, or a pipe.
    opened
        .take(XML_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", file.display()))?;
    Ok(bytes)
}

/// What `validate --json` prints: one document, every field present (`null` when it does
/// not apply).
#[derive(Serialize)]
struct Validation {
    file: String,
    /// `true` when Corridor reads the whole message.
    valid: bool,
    /// The message definition (`pacs.008.001.08`), when the namespace names one Corridor reads.
    definition: Option<String>,
    /// The error that refused the message, and the path it names.
    error: Option<String>,
    path: Option<String>,
    /// Paths of the elements Corridor does not carry.
    not_carried: Vec<String>,
    message_id: Option<String>,
    sender: Option<String>,
    receiver: Option<String>,
    uetr: Option<String>,
}

fn validate(file: &Path, bytes: &[u8], json: bool) -> Result<ExitCode> {
    let mut report = Validation {
        file: file.display().to_string(),
        valid: false,
        definition: iso20022::detect(bytes).ok().map(|(_, d)| d.to_owned()),
        error: None,
        path: None,
        not_carried: Vec::new(),
        message_id: None,
        sender: None,
        receiver: None,
        uetr: None,
    };
    match iso20022::read(bytes) {
        Ok(imported) => {
            let header = imported.message.header();
            report.message_id = Some(header.message_id.to_string());
            report.sender = Some(header.sender.to_string());
            report.receiver = Some(header.receiver.to_string());
            report.uetr = header.uetr.map(|u| u.to_string());
            report.valid = imported.not_carried.is_empty();
            report.not_carried = imported.not_carried;
        }
        Err(error) => {
            report.path = error.path().map(str::to_owned);
            report.error = Some(error.to_string());
        }
    }
    if json {
        super::json::print(&report)?;
    } else {
        print_validation(&report);
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_validation(report: &Validation) {
    let definition = report.definition.as_deref().unwrap_or("a message");
    if let Some(error) = &report.error {
        eprintln!("error: {}: refused: {error}", report.file);
        return;
    }
    if !report.valid {
        eprintln!(
            "error: {}: {definition} reads, but Corridor does not carry {} of its elements, so a node refuses it:",
            report.file,
            report.not_carried.len()
        );
        for path in &report.not_carried {
            eprintln!("  {path}");
        }
        return;
    }
    say!("{}: {definition}, valid: Corridor reads every element", report.file);
    say!(
        "  message {} from {} to {}{}",
        report.message_id.as_deref().unwrap_or("-"),
        report.sender.as_deref().unwrap_or("-"),
        report.receiver.as_deref().unwrap_or("-"),
        report.uetr.as_ref().map_or_else(String::new, |u| format!(", UETR {u}"))
    );
}

/// Whether the input is an MT message (`{1:...`) rather than XML.
fn is_mt(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn translate(file: &Path, bytes: &[u8], to: Format, lossy: bool) -> Result<ExitCode> {
    let (message, mut lost) = match read_any(bytes) {
        Ok(read) => read,
        Err(error) => {
            eprintln!("error: {}: refused: {error}", file.display());
            return Ok(ExitCode::from(1));
        }
    };
    let output = match to {
        Format::Xml => iso20022::write(&message).map_err(|e| e.to_string()),
        Format::Mt103 => to_mt103(&message).map(|(text, notes)| {
            lost.extend(notes);
            text
        }),
    };
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            eprintln!("error: {}: cannot translate: {error}", file.display());
            return Ok(ExitCode::from(1));
        }
    };
    if !lost.is_empty() && !lossy {
        eprintln!(
            "error: {}: the translation would lose {} item(s) (--lossy translates anyway):",
            file.display(),
            lost.len()
        );
        for item in &lost {
            eprintln!("  {item}");
        }
        return Ok(ExitCode::from(1));
    }
    for item in &lost {
        eprintln!("not carried: {item}");
    }
    say!("{}", output.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// The message of an XML or MT103 input, with what the model does not carry of it.
fn read_any(bytes: &[u8]) -> Result<(Message, Vec<String>)> {
    if is_mt(bytes) {
        let text = std::str::from_utf8(bytes).context("an MT103 is ASCII text")?;
        let imported = mt103::import(text, corridor::clock::unix_ms_now())?;
        let mut lost: Vec<String> = imported.not_modelled.iter().map(ToString::to_string).collect();
        // Corridor pays from the debtor agent straight to the creditor agent: an MT103 that
        // travelled through others is re-addressed, and the hop it named is listed as lost.
        let (mut header, transfer) = (imported.header, imported.transfer);
        if header.sender != transfer.debtor_agent {
            lost.push(format!(
                "block 2 sender {}: Corridor sends from the debtor agent {}",
                header.sender, transfer.debtor_agent
            ));
            header.sender = transfer.debtor_agent;
        }
        if header.receiver != transfer.creditor_agent {
            lost.push(format!(
                "block 1 receiver {}: Corridor delivers to the creditor agent {}",
                header.receiver, transfer.creditor_agent
            ));
            header.receiver = transfer.creditor_agent;
        }
        let message = Message::new(header, Body::Pacs008(transfer))?;
        return Ok((message, lost));
    }
    let imported = iso20022::read(bytes)?;
    Ok((imported.message, imported.not_carried))
}

/// The MT103 of a pacs.008, with what of the message it does not carry.
fn to_mt103(message: &Message) -> Result<(String, Vec<String>), String> {
    let Body::Pacs008(transfer) = message.body() else {
        return Err(format!("an MT103 carries a pacs.008, not a {}", message.message_type()));
    };
    let exported = mt103::export(message.header(), transfer).map_err(|e| e.to_string())?;
    Ok((exported.text, exported.not_carried.iter().map(ToString::to_string).collect()))
}
