//! The network directory: who the participants are, which signing keys speak for them,
//! and which relationships (RMA) let one send which message types to another.
//!
//! Written once by `corridor pki init` as `directory.json` in the network directory, read
//! by the hub and by every bank (each bank verifies its counterparties' signatures itself).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::{CryptoError, KeyDirectory, KeyId, KeyValidity, SigningIdentity};
use crate::model::{Bic, MessageType, ModelError, wire};

/// File name of the directory inside a network directory.
pub const DIRECTORY_FILE: &str = "directory.json";
/// Format version this build reads and writes (2: keys have validity periods and can
/// be revoked).
pub const DIRECTORY_VERSION: u32 = 2;

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

/// One signing key as the directory file holds it. Times are RFC 3339 text; a key
/// with neither bound is valid for ever.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyEntry {
    /// Key id.
    pub key_id: String,
    /// Ed25519 public key, 64 hexadecimal digits.
    pub public_key: String,
    /// First creation time the key may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// Last creation time the key may sign (set by `corridor pki rotate`: the end of the
    /// overlap with its successor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// When the key was revoked (`corridor pki revoke`): from then on it signs nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl KeyEntry {
    /// A key valid from `valid_from` (RFC 3339) with no end.
    pub fn new(key_id: &str, public_key: &[u8; 32], valid_from: Option<String>) -> Self {
        Self {
            key_id: key_id.to_owned(),
            public_key: crate::crypto::hex_encode(public_key),
            valid_from,
            valid_until: None,
            revoked_at: None,
        }
    }

    fn validity(&self) -> Result<KeyValidity, String> {
        let time = |text: &Option<String>, field: &str, default: i64| match text {
            None => Ok(default),
            Some(text) => wire::parse_unix_ms(text, field).map_err(|e| e.to_string()),
        };
        let validity = KeyValidity {
            from_unix_ms: time(&self.valid_from, "valid_from", i64::MIN)?,
            until_unix_ms: time(&self.valid_until, "valid_until", i64::MAX)?,
            revoked_unix_ms: match &self.revoked_at {
                None => None,
                Some(_) => Some(time(&self.revoked_at, "revoked_at", 0)?),
            },
        };
        if validity.until_unix_ms < validity.from_unix_ms {
            return Err("valid_until is before valid_from".into());
        }
        Ok(validity)
    }
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

impl DirectoryFile {
    /// Reads `directory.json` from a network directory as it is (not validated).
    pub fn read(network_dir: &Path) -> Result<Self, DirectoryError> {
        let path = network_dir.join(DIRECTORY_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DirectoryError::Io { path: shown.clone(), reason: e.to_string() })?;
        serde_json::from_str(&text)
            .map_err(|e| DirectoryError::Invalid { path: shown, reason: e.to_string() })
    }

    /// Validates this file and replaces `directory.json` in `network_dir` with it
    /// atomically (a side file, fsynced, renamed into place, the folder fsynced): running
    /// nodes that reload it see the old file or the new one, never half of one.
    pub fn save(&self, network_dir: &Path) -> Result<(), DirectoryError> {
        let path = network_dir.join(DIRECTORY_FILE);
        let shown = path.display().to_string();
        Directory::from_file(self)
            .map_err(|reason| DirectoryError::Invalid { path: shown.clone(), reason })?;
        let io = |e: std::io::Error| DirectoryError::Io { path: shown.clone(), reason: e.to_string() };
        let json = serde_json::to_string_pretty(self).expect("the directory serialises");
        let side = network_dir.join(format!("{DIRECTORY_FILE}.new"));
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&side).map_err(io)?;
            file.write_all(json.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&side, &path).map_err(io)?;
        std::fs::File::open(network_dir).and_then(|dir| dir.sync_all()).map_err(io)
    }

    /// The entry of the hub or of a bank.
    pub fn participant_mut(&mut self, bic: Bic) -> Option<&mut ParticipantEntry> {
        std::iter::once(&mut self.hub).chain(&mut self.participants).find(|p| p.bic == bic.as_str())
    }
}

/// The directory, validated: every BIC, key, time and message type parsed, every weak
/// key refused.
#[derive(Clone, Debug)]
pub struct Directory {
    hub: Bic,
    names: BTreeMap<Bic, String>,
    keys: KeyDirectory,
    /// Each participant's key ids (the hub's too), in the order the file lists them:
    /// the newest last.
    key_ids: BTreeMap<Bic, Vec<KeyId>>,
    relationships: BTreeSet<(Bic, Bic, MessageType)>,
    /// The networks this one is linked to, by their link identity.
    links: BTreeMap<Bic, Link>,
    /// The linked networks' banks, each with the link it is reached through.
    remote: BTreeMap<Bic, Bic>,
}

/// A linked network as this network's directory knows it.
#[derive(Clone, Debug, Default)]
struct Link {
    /// What this network's banks accept from the linked network's (this network decides).
    accepts_from: BTreeSet<MessageType>,
    /// What the linked network's banks accept from this network's (as it published).
    accepts_to: BTreeSet<MessageType>,
    /// Its banks' names, as it published them.
    names: BTreeMap<Bic, String>,
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
        let mut key_ids = BTreeMap::new();
        let hub = register(&mut keys, &mut key_ids, &file.hub)?;
        for participant in &file.participants {
            let bic = register(&mut keys, &mut key_ids, participant)?;
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
        Ok(Self { hub, names, keys, key_ids, relationships, links: BTreeMap::new(), remote: BTreeMap::new() })
    }

    /// Reads and validates `directory.json` from a network directory.
    pub fn load(network_dir: &Path) -> Result<Self, DirectoryError> {
        let file = DirectoryFile::read(network_dir)?;
        Self::from_file(&file).map_err(|reason| DirectoryError::Invalid {
            path: network_dir.join(DIRECTORY_FILE).display().to_string(),
            reason,
        })
    }

    /// `bic`'s key ids, oldest first.
    pub fn key_ids(&self, bic: Bic) -> &[KeyId] {
        self.key_ids.get(&bic).map_or(&[], Vec::as_slice)
    }

    /// The key `bic` signs with now: the newest of its keys usable at `now_unix_ms`.
    pub fn current_key(&self, bic: Bic, now_unix_ms: i64) -> Option<&KeyId> {
        self.key_ids.get(&bic)?.iter().rev().find(|key_id| {
            self.keys.validity(bic, key_id).is_some_and(|validity| validity.usable_at(now_unix_ms))
        })
    }

    /// True when `other` has the same hub and participants: only keys and
    /// relationships differ, so a running node can take it in place of this one.
    /// The linked networks count too (a link is configured before the hub starts); their
    /// banks do not, since the peer hub publishes them while this node runs.
    pub fn same_participants(&self, other: &Directory) -> bool {
        self.hub == other.hub
            && self.names.keys().eq(other.names.keys())
            && self.links.keys().eq(other.links.keys())
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

    /// True when RMA lets `sender` send `message_type` to `receiver`: between this
    /// network's banks, its relationships; across a link, the receiving network's
    /// decision (this network's for what comes in, the peer's as it published for what
    /// goes out). Nothing passes from one linked network to another through this one.
    pub fn allows(&self, sender: Bic, receiver: Bic, message_type: MessageType) -> bool {
        match (self.remote.get(&sender), self.remote.get(&receiver)) {
            (None, None) => self.relationships.contains(&(sender, receiver, message_type)),
            (Some(link), None) => {
                self.names.contains_key(&receiver) && self.links[link].accepts_from.contains(&message_type)
            }
            (None, Some(link)) => {
                self.names.contains_key(&sender) && self.links[link].accepts_to.contains(&message_type)
            }
            (Some(_), Some(_)) => false,
        }
    }

    /// Adds a linked network, known by its link identity `link`, whose banks may send
    /// this network's banks the messages of `accepts`, and whose hub signs with
    /// `hub_keys` (registered under `link`: its receipts on the link verify by them). Its
    /// banks come with its published directory ([`Directory::with_published`]).
    pub fn with_link(
        mut self,
        link: Bic,
        accepts: &[MessageType],
        hub_keys: &[KeyEntry],
    ) -> Result<Self, String> {
        if link == self.hub || self.names.contains_key(&link) || self.links.contains_key(&link) {
            return Err(format!("the link identity {link} is this network's hub or bank, or linked twice"));
        }
        let hub = ParticipantEntry { bic: link.to_string(), name: String::new(), keys: hub_keys.to_vec() };
        register(&mut self.keys, &mut self.key_ids, &hub)?;
        let accepts_from = accepts.iter().copied().collect();
        self.links.insert(link, Link { accepts_from, ..Link::default() });
        Ok(self)
    }

    /// Takes in what the linked network `published` says of itself: its banks, their
    /// keys and what they accept. A bank that is also this network's, or another linked
    /// network's, is refused.
    pub fn with_published(mut self, published: &PublishedDirectory) -> Result<Self, String> {
        let link = Bic::parse(&published.network).map_err(|e| format!("network {e}"))?;
        if !self.links.contains_key(&link) {
            return Err(format!("{link} is not a network this one is linked to"));
        }
        let accepts_to = published.message_types()?;
        let mut names = BTreeMap::new();
        for participant in &published.participants {
            let bic = Bic::parse(&participant.bic).map_err(|e| format!("participant {e}"))?;
            if bic == self.hub
                || self.names.contains_key(&bic)
                || self.links.contains_key(&bic)
                || self.remote.get(&bic).is_some_and(|other| *other != link)
            {
                return Err(format!("{link} publishes {bic}, which is already known here"));
            }
            names.insert(bic, participant.name.clone());
        }
        for participant in &published.participants {
            register(&mut self.keys, &mut self.key_ids, participant)?;
        }
        for bic in names.keys() {
            self.remote.insert(*bic, link);
        }
        let entry = self.links.get_mut(&link).expect("checked above");
        entry.accepts_to = accepts_to;
        entry.names = names;
        Ok(self)
    }

    /// The linked networks, by link identity.
    pub fn links(&self) -> impl Iterator<Item = Bic> + '_ {
        self.links.keys().copied()
    }

    /// True when `bic` is a linked network's link identity.
    pub fn is_link(&self, bic: Bic) -> bool {
        self.links.contains_key(&bic)
    }

    /// The link a linked network's bank is reached through; `None` for anyone else.
    pub fn link_of(&self, bic: Bic) -> Option<Bic> {
        self.remote.get(&bic).copied()
    }

    /// The linked networks' banks with their names and links, in BIC order.
    pub fn remote_participants(&self) -> impl Iterator<Item = (Bic, &str, Bic)> {
        self.links
            .iter()
            .flat_map(|(link, l)| l.names.iter().map(move |(bic, name)| (*bic, name.as_str(), *link)))
    }

    /// Whether messages for `bic` can be routed: a bank of this network or of a linked one.
    pub fn reaches(&self, bic: Bic) -> bool {
        self.names.contains_key(&bic) || self.remote.contains_key(&bic)
    }

    /// What this network publishes of itself across its links, as the link identity
    /// `network`: its banks and their keys, and what they accept from `link`.
    pub fn publish(
        &self,
        file: &DirectoryFile,
        network: Bic,
        link: Bic,
        issued_unix_ms: i64,
    ) -> PublishedDirectory {
        let accepts =
            self.links.get(&link).map(|l| l.accepts_from.iter().map(|t| t.code().to_owned()).collect());
        PublishedDirectory {
            version: PUBLISHED_DIRECTORY_VERSION,
            network: network.to_string(),
            issued_unix_ms,
            participants: file.participants.clone(),
            accepts: accepts.unwrap_or_default(),
        }
    }
}

/// Format version of a directory a hub publishes across a link.
pub const PUBLISHED_DIRECTORY_VERSION: u32 = 1;
/// What a hub's signature over a published directory covers, before the document: so
/// that no signature over anything else (a message, a receipt) can pass for one.
const PUBLISHED_DIRECTORY_DOMAIN: &[u8] = b"corridor.v1.published-directory\0";

/// A published directory as a file: the signed document as text and its signature.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedFile {
    document: String,
    signature: String,
    key_id: String,
}

/// A network's directory as its hub publishes it to a linked network's hub, which checks
/// its hub's signature against the keys its link configuration names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedDirectory {
    /// Format version.
    pub version: u32,
    /// The publishing network's link identity.
    pub network: String,
    /// When its hub published it (Unix ms): a newer one replaces an older.
    pub issued_unix_ms: i64,
    /// Its banks and their keys.
    pub participants: Vec<ParticipantEntry>,
    /// The message types its banks accept from the network it is published to.
    pub accepts: Vec<String>,
}

impl PublishedDirectory {
    /// Signs it with the hub's key.
    pub fn sign(&self, identity: &SigningIdentity) -> crate::pb::SignedDirectory {
        use ed25519_dalek::Signer;
        let document = serde_json::to_vec(self).expect("a published directory serialises");
        let signature = identity.signing_key().sign(&[PUBLISHED_DIRECTORY_DOMAIN, &document].concat());
        crate::pb::SignedDirectory {
            document: document.into(),
            signature: signature.to_bytes().to_vec().into(),
            key_id: identity.key_id().as_str().to_owned(),
        }
    }

    /// Checks `signed` against the publishing hub's keys (`hub_keys`, as the link
    /// configuration holds them, the key usable at `now_unix_ms`) and reads it; it must
    /// be `network`'s.
    pub fn verify(
        signed: &crate::pb::SignedDirectory,
        network: Bic,
        hub_keys: &[KeyEntry],
        now_unix_ms: i64,
    ) -> Result<Self, String> {
        let entry = hub_keys.iter().find(|key| key.key_id == signed.key_id).ok_or_else(|| {
            format!(
                "{network}'s directory is signed with key {:?}, which its hub does not have",
                signed.key_id
            )
        })?;
        let validity = entry.validity()?;
        if !validity.usable_at(now_unix_ms) {
            return Err(format!(
                "{network}'s directory is signed with key {}, which is not usable now",
                entry.key_id
            ));
        }
        let key = crate::crypto::hex_decode(&entry.public_key)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())
            .ok_or_else(|| format!("{network}'s hub key {} is not an Ed25519 public key", entry.key_id))?;
        let signature = <[u8; 64]>::try_from(&signed.signature[..])
            .map(|bytes| ed25519_dalek::Signature::from_bytes(&bytes))
            .map_err(|_| format!("{network}'s directory signature is not 64 bytes"))?;
        key.verify_strict(&[PUBLISHED_DIRECTORY_DOMAIN, &signed.document].concat(), &signature).map_err(
            |_| {
                format!("{network}'s directory signature does not verify with its hub's key {}", entry.key_id)
            },
        )?;
        let published: Self =
            serde_json::from_slice(&signed.document).map_err(|e| format!("{network}'s directory: {e}"))?;
        if published.version != PUBLISHED_DIRECTORY_VERSION {
            return Err(format!("{network}'s directory has format version {}", published.version));
        }
        if published.network != network.as_str() {
            return Err(format!("the directory {network} sent is {:?}'s", published.network));
        }
        published.message_types()?;
        Ok(published)
    }

    /// Keeps `signed` at `path` as it came (the document as text, the signature in hex),
    /// atomically: a side file, synced, renamed into place, the folder synced.
    pub fn save_signed(signed: &crate::pb::SignedDirectory, path: &Path) -> Result<(), String> {
        let file = SignedFile {
            document: String::from_utf8(signed.document.to_vec())
                .map_err(|_| "a directory document is not UTF-8")?,
            signature: crate::crypto::hex_encode(&signed.signature),
            key_id: signed.key_id.clone(),
        };
        let io = |e: std::io::Error| format!("{}: {e}", path.display());
        let folder = path.parent().ok_or("a published directory's path has a folder")?;
        std::fs::create_dir_all(folder).map_err(io)?;
        let side = path.with_extension("json.new");
        {
            use std::io::Write as _;
            let mut out = std::fs::File::create(&side).map_err(io)?;
            out.write_all(serde_json::to_string_pretty(&file).expect("serialises").as_bytes()).map_err(io)?;
            out.sync_all().map_err(io)?;
        }
        std::fs::rename(&side, path).map_err(io)?;
        std::fs::File::open(folder).and_then(|dir| dir.sync_all()).map_err(io)
    }

    /// Reads what [`PublishedDirectory::save_signed`] kept; `None` when there is none.
    pub fn load_signed(path: &Path) -> Result<Option<crate::pb::SignedDirectory>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let file: SignedFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let signature = crate::crypto::hex_decode(&file.signature)
            .ok_or_else(|| format!("{}: the signature is not hexadecimal", path.display()))?;
        Ok(Some(crate::pb::SignedDirectory {
            document: file.document.into_bytes().into(),
            signature: signature.into(),
            key_id: file.key_id,
        }))
    }

    fn message_types(&self) -> Result<BTreeSet<MessageType>, String> {
        self.accepts
            .iter()
            .map(|t| MessageType::parse(t).map_err(|e| format!("{}'s directory: accepts: {e}", self.network)))
            .collect()
    }
}

fn register(
    keys: &mut KeyDirectory,
    key_ids: &mut BTreeMap<Bic, Vec<KeyId>>,
    participant: &ParticipantEntry,
) -> Result<Bic, String> {
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
        let validity = key.validity().map_err(|e| format!("participant {bic} key {key_id}: {e}"))?;
        keys.register_with(bic, key_id.clone(), &bytes, validity)
            .map_err(|e: CryptoError| format!("participant {bic}: {e}"))?;
        let ids = key_ids.entry(bic).or_default();
        if ids.contains(&key_id) {
            return Err(format!("participant {bic} lists key {key_id} twice"));
        }
        ids.push(key_id);
    }
    Ok(bic)
}

/// What a running node verifies and signs with: the directory and its own signing
/// keys, replaced together when `directory.json` changes (a rotation, a revocation)
/// without stopping the node. It signs with the newest of its keys that is usable at
/// the time, so a rotated key takes over when its validity begins, not when this node
/// happens to read the new directory.
#[derive(Debug)]
pub struct Credentials {
    bic: Bic,
    current: RwLock<(Arc<Directory>, Vec<Arc<SigningIdentity>>)>,
}

impl Credentials {
    /// Checks that `identity` is a participant's (or the hub's) key as `directory` lists it.
    pub fn new(directory: Directory, identity: SigningIdentity) -> Result<Self, String> {
        check_identity(&directory, &identity)?;
        Ok(Self {
            bic: identity.bic(),
            current: RwLock::new((Arc::new(directory), vec![Arc::new(identity)])),
        })
    }

    /// The directory in force.
    pub fn directory(&self) -> Arc<Directory> {
        Arc::clone(&self.current.read().expect("credentials lock").0)
    }

    /// The key to sign with at `now_unix_ms` (by the node's [`crate::clock::Clock`], the
    /// time the message is stamped with, since that is what verifiers judge the key by):
    /// the newest usable then, or if none is (all retired or revoked; the hub will say
    /// so), the newest there is.
    pub fn identity(&self, now_unix_ms: i64) -> Arc<SigningIdentity> {
        let current = self.current.read().expect("credentials lock");
        let (directory, keys) = &*current;
        let usable = directory
            .current_key(self.bic, now_unix_ms)
            .and_then(|id| keys.iter().find(|k| k.key_id() == id));
        Arc::clone(usable.unwrap_or_else(|| keys.last().expect("at least one key")))
    }

    /// Puts a new directory and signing keys in force. Refused (the old ones stay) if
    /// the participants changed, which takes a restart, or a key does not match.
    pub fn replace(&self, directory: Directory, identities: Vec<SigningIdentity>) -> Result<(), String> {
        if identities.is_empty() {
            return Err(format!("{} has no signing key", self.bic));
        }
        for identity in &identities {
            check_identity(&directory, identity)?;
            if identity.bic() != self.bic {
                return Err(format!("a new signing key is {}'s, not {}'s", identity.bic(), self.bic));
            }
        }
        let mut current = self.current.write().expect("credentials lock");
        if !current.0.same_participants(&directory) {
            return Err("the participants changed: restart the node to take the new directory".into());
        }
        *current = (Arc::new(directory), identities.into_iter().map(Arc::new).collect());
        Ok(())
    }
}

fn check_identity(directory: &Directory, identity: &SigningIdentity) -> Result<(), String> {
    let bic = identity.bic();
    if bic != directory.hub() && !directory.is_participant(bic) {
        return Err(format!("{bic} is not a participant of this network's directory"));
    }
    let registered = directory.keys().key(bic, identity.key_id());
    if registered.map(|k| k.to_bytes()) != Some(identity.verifying_key_bytes()) {
        return Err(format!("the signing key {} of {bic} does not match the directory", identity.key_id()));
    }
    Ok(())
}
