//! The network directory: who the participants are, which signing keys speak for them,
//! and which relationships (RMA) let one send which message types to another.
//!
//! Written once by `corridor pki init` as `directory.json` in the network directory, read
//! by the hub and by every bank (each bank verifies its counterparties' signatures itself).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::{CryptoError, KeyDirectory, KeyId};
use crate::model::{Bic, MessageType, ModelError};

/// File name of the directory inside a network directory.
pub const DIRECTORY_FILE: &str = "directory.json";
/// Format version this build reads and writes.
pub const DIRECTORY_VERSION: u32 = 1;

/// Why a directory could not be read.
#[derive(Debug, Error)]
pub enum DirectoryError {
    /// The file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The file is not a valid directory.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One signing key as the directory file holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyEntry {
    /// Key id.
    pub key_id: String,
    /// Ed25519 public key, 64 hexadecimal digits.
    pub public_key: String,
}

/// One participant as the directory file holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParticipantEntry {
    /// BIC.
    pub bic: String,
    /// Display name.
    pub name: String,
    /// Signing keys.
    pub keys: Vec<KeyEntry>,
}

/// One relationship authorisation: `sender` may send these message types to `receiver`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelationshipEntry {
    /// Sender BIC.
    pub sender: String,
    /// Receiver BIC.
    pub receiver: String,
    /// ISO names such as "pacs.008".
    pub message_types: Vec<String>,
}

/// The directory file, as JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirectoryFile {
    /// Format version.
    pub version: u32,
    /// The hub's own participant id (it signs receipts).
    pub hub: ParticipantEntry,
    /// The banks.
    pub participants: Vec<ParticipantEntry>,
    /// Relationship authorisations (RMA).
    pub relationships: Vec<RelationshipEntry>,
}

/// The directory, validated: every BIC, key and message type parsed, every weak key refused.
#[derive(Clone, Debug)]
pub struct Directory {
    hub: Bic,
    names: BTreeMap<Bic, String>,
    keys: KeyDirectory,
    relationships: BTreeSet<(Bic, Bic, MessageType)>,
}

impl Directory {
    /// Validates a directory file.
    pub fn from_file(file: &DirectoryFile) -> Result<Self, String> {
        if file.version != DIRECTORY_VERSION {
            return Err(format!(
                "directory format version {} is not supported (this build reads {DIRECTORY_VERSION})",
                file.version
            ));
        }
        let mut keys = KeyDirectory::new();
        let mut names = BTreeMap::new();
        let hub = register(&mut keys, &file.hub)?;
        for participant in &file.participants {
            let bic = register(&mut keys, participant)?;
            if bic == hub || names.insert(bic, participant.name.clone()).is_some() {
                return Err(format!("participant {bic} is listed twice"));
            }
        }
        let mut relationships = BTreeSet::new();
        for (index, entry) in file.relationships.iter().enumerate() {
            let field = |e: ModelError| format!("relationships[{index}].{e}");
            let sender = Bic::parse(&entry.sender).map_err(field)?;
            let receiver = Bic::parse(&entry.receiver).map_err(field)?;
            for bic in [sender, receiver] {
                if !names.contains_key(&bic) {
                    return Err(format!("relationships[{index}] names {bic}, which is not a participant"));
                }
            }
            for message_type in &entry.message_types {
                relationships.insert((sender, receiver, MessageType::parse(message_type).map_err(field)?));
            }
        }
        Ok(Self { hub, names, keys, relationships })
    }

    /// Reads and validates `directory.json` from a network directory.
    pub fn load(network_dir: &Path) -> Result<Self, DirectoryError> {
        let path = network_dir.join(DIRECTORY_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DirectoryError::Io { path: shown.clone(), reason: e.to_string() })?;
        let file: DirectoryFile = serde_json::from_str(&text)
            .map_err(|e| DirectoryError::Invalid { path: shown.clone(), reason: e.to_string() })?;
        Self::from_file(&file).map_err(|reason| DirectoryError::Invalid { path: shown, reason })
    }

    /// The hub's participant id.
    pub fn hub(&self) -> Bic {
        self.hub
    }

    /// True when `bic` is a bank of this network.
    pub fn is_participant(&self, bic: Bic) -> bool {
        self.names.contains_key(&bic)
    }

    /// The banks, in BIC order.
    pub fn participants(&self) -> impl Iterator<Item = (Bic, &str)> {
        self.names.iter().map(|(bic, name)| (*bic, name.as_str()))
    }

    /// The signing keys of the hub and every bank.
    pub fn keys(&self) -> &KeyDirectory {
        &self.keys
    }

    /// True when RMA lets `sender` send `message_type` to `receiver`.
    pub fn allows(&self, sender: Bic, receiver: Bic, message_type: MessageType) -> bool {
        self.relationships.contains(&(sender, receiver, message_type))
    }
}

fn register(keys: &mut KeyDirectory, participant: &ParticipantEntry) -> Result<Bic, String> {
    let bic = Bic::parse(&participant.bic).map_err(|e| format!("participant {}", e))?;
    if participant.keys.is_empty() {
        return Err(format!("participant {bic} has no signing key"));
    }
    for key in &participant.keys {
        let key_id = KeyId::parse(&key.key_id).map_err(|e| format!("participant {bic}: {e}"))?;
        let bytes = crate::crypto::hex_decode(&key.public_key)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                format!("participant {bic} key {key_id}: public_key is not 64 hexadecimal digits")
            })?;
        keys.register(bic, key_id, &bytes).map_err(|e: CryptoError| format!("participant {bic}: {e}"))?;
    }
    Ok(bic)
}
