//! `corridor pki ...`: the demo PKI (network CA, TLS identities, signing keys, directory).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use corridor::model::wire;
use corridor::tls::{self, Role};

use super::parse_bic;

#[derive(Subcommand)]
pub enum PkiCommand {
    /// Create a network: CA, hub, operator, and a bank per BIC.
    Init {
        /// Directory to create the network in (must not hold one already).
        #[arg(long)]
        dir: PathBuf,
        /// Comma-separated BICs of the banks.
        #[arg(long, value_delimiter = ',', required = true)]
        participants: Vec<String>,
    },
    /// Give a bank (or the hub, by its id CRDRZZ00XXX) a new signing key. Its other keys
    /// still verify until the overlap ends; running nodes switch at once.
    Rotate {
        /// Network directory.
        #[arg(long)]
        dir: PathBuf,
        /// Whose key: a bank's BIC or the hub's id.
        #[arg(long)]
        bic: String,
        /// How long the old key still signs, in seconds.
        #[arg(long, default_value_t = 3600)]
        overlap_secs: u64,
    },
    /// Revoke a signing key (--key) or a TLS certificate (--certificate) for good.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["key", "certificate"])))]
    Revoke {
        /// Network directory.
        #[arg(long)]
        dir: PathBuf,
        /// Whose: a bank's BIC or the hub's id (CRDRZZ00XXX); with --certificate,
        /// "operator" for the operators' certificate.
        #[arg(long)]
        bic: String,
        /// The signing key id to revoke (k1, k2, ...).
        #[arg(long)]
        key: Option<String>,
        /// Revoke the TLS certificate instead: servers refuse it at the handshake.
        #[arg(long)]
        certificate: bool,
    },
}

/// Runs one `pki` command.
pub fn run(command: PkiCommand) -> Result<()> {
    match command {
        PkiCommand::Init { dir, participants } => {
            let bics = participants
                .iter()
                .map(|p| parse_bic(p.trim(), "--participants"))
                .collect::<Result<Vec<_>>>()?;
            tls::init(&dir, &bics)?;
            say!("created a network for {} banks in {}", bics.len(), dir.display());
        }
        PkiCommand::Rotate { dir, bic, overlap_secs } => {
            let bic = parse_bic(&bic, "--bic")?;
            let rotation = tls::rotate(&dir, bic, Duration::from_secs(overlap_secs))?;
            let retired: Vec<String> = rotation.retired.iter().map(|k| k.to_string()).collect();
            say!(
                "{bic} signs with key {} from {}; {} retire(s) at {}",
                rotation.new_key,
                wire::format_unix_ms(rotation.activates_unix_ms),
                if retired.is_empty() { "no other key".to_owned() } else { retired.join(", ") },
                wire::format_unix_ms(rotation.overlap_until_unix_ms)
            );
        }
        PkiCommand::Revoke { dir, bic, key, certificate } => {
            if certificate {
                let role = if bic == "operator" {
                    Role::Operator
                } else {
                    tls::role_of_bic(parse_bic(&bic, "--bic")?)
                };
                let serial = tls::revoke_certificate(&dir, role)?;
                say!(
                    "revoked the TLS certificate of {bic} (serial {})",
                    corridor::crypto::hex_encode(&serial)
                );
            } else {
                let bic = parse_bic(&bic, "--bic")?;
                let key = corridor::crypto::KeyId::parse(key.as_deref().unwrap_or_default())
                    .map_err(|e| anyhow!("--key: {}", e.rule))?;
                let at = tls::revoke_key(&dir, bic, &key)?;
                say!("revoked signing key {key} of {bic} at {}", wire::format_unix_ms(at));
            }
        }
    }
    Ok(())
}
