//! The demo PKI and mutual TLS: a network CA, the hub's and every bank's TLS identity,
//! an operator identity, and the rustls configurations built from them.
//!
//! A bank's certificate carries its BIC as a SAN URI `urn:corridor:bic:<BIC>`; the hub
//! reads it from the verified peer certificate and never from what the bank says.
//!
//! Layout of a network directory written by [`init`]:
//!
//! ```text
//! DIR/ca.pem  DIR/ca.key                      network CA (key owner-only)
//! DIR/hub/tls.pem  tls.key  signing.key        the hub
//! DIR/operator/tls.pem  tls.key                the operators' client identity
//! DIR/banks/<BIC>/tls.pem  tls.key  signing.key
//! DIR/directory.json                           participants, signing keys, RMA
//! ```

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::crypto::{KeyId, SigningIdentity, hex_encode, load_signing_key, save_signing_key};
use crate::directory::{
    DIRECTORY_FILE, DIRECTORY_VERSION, DirectoryFile, KeyEntry, ParticipantEntry, RelationshipEntry,
};
use crate::model::{Bic, MessageType};

/// The hub's participant id: it signs receipts under it.
pub const HUB_BIC: &str = "CRDRZZ00XXX";
/// Id of every signing key `init` creates.
pub const INITIAL_KEY_ID: &str = "k1";
/// TLS server name every certificate carries and every client asks for.
pub const SERVER_NAME: &str = "localhost";
const URI_BIC_PREFIX: &str = "urn:corridor:bic:";
const URI_HUB: &str = "urn:corridor:hub";
const URI_OPERATOR: &str = "urn:corridor:operator";
/// Certificates are valid for ten years from creation.
const CERTIFICATE_VALIDITY_DAYS: i64 = 3650;
/// Most banks `init` creates in one network.
pub const PARTICIPANTS_MAX: usize = 256;

/// What can go wrong with the PKI.
#[derive(Debug, Error)]
pub enum PkiError {
    /// `init` on a directory that already holds a network.
    #[error("{0} already holds a Corridor network; refusing to overwrite its keys")]
    AlreadyInitialised(String),
    /// Bad arguments.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// Who a TLS identity belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The relay hub.
    Hub,
    /// A bank, by BIC.
    Bank(Bic),
    /// An operator (drives bank nodes and, later, the hub's admin API).
    Operator,
}

/// A network directory on disk.
#[derive(Clone, Debug)]
pub struct NetworkDir {
    root: PathBuf,
}

impl NetworkDir {
    /// The network directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a role's files.
    pub fn role_dir(&self, role: Role) -> PathBuf {
        match role {
            Role::Hub => self.root.join("hub"),
            Role::Operator => self.root.join("operator"),
            Role::Bank(bic) => self.root.join("banks").join(bic.as_str()),
        }
    }

    /// The hub's default data directory: `DIR/data/hub`.
    pub fn hub_data_dir(&self) -> PathBuf {
        self.root.join("data").join("hub")
    }

    /// A bank's default data directory: `DIR/data/banks/<BIC>`.
    pub fn bank_data_dir(&self, bic: Bic) -> PathBuf {
        self.root.join("data").join("banks").join(bic.as_str())
    }

    /// The network CA certificate.
    pub fn ca_certificate(&self) -> Result<Certificate, PkiError> {
        Ok(Certificate::from_pem(read(&self.root.join("ca.pem"))?))
    }

    /// A role's TLS certificate and key.
    pub fn tls_identity(&self, role: Role) -> Result<Identity, PkiError> {
        let dir = self.role_dir(role);
        Ok(Identity::from_pem(read(&dir.join("tls.pem"))?, read(&dir.join("tls.key"))?))
    }

    /// A role's Ed25519 signing identity (hub or bank).
    pub fn signing_identity(&self, role: Role) -> Result<SigningIdentity, PkiError> {
        let (bic, dir) = match role {
            Role::Hub => (Bic::parse(HUB_BIC).expect("HUB_BIC is a valid BIC"), self.role_dir(role)),
            Role::Bank(bic) => (bic, self.role_dir(role)),
            Role::Operator => return Err(PkiError::Invalid("operators do not sign messages".into())),
        };
        let key = load_signing_key(&dir.join("signing.key"))
            .map_err(|e| PkiError::Io { path: dir.display().to_string(), reason: e.to_string() })?;
        Ok(SigningIdentity::new(bic, KeyId::parse(INITIAL_KEY_ID).expect("valid key id"), key))
    }

    /// Server-side mTLS: this role's identity, and client certificates required from the
    /// network CA.
    pub fn server_tls(&self, role: Role) -> Result<ServerTlsConfig, PkiError> {
        Ok(ServerTlsConfig::new().identity(self.tls_identity(role)?).client_ca_root(self.ca_certificate()?))
    }

    /// Client-side mTLS: this role's identity, servers trusted only from the network CA.
    pub fn client_tls(&self, role: Role) -> Result<ClientTlsConfig, PkiError> {
        Ok(ClientTlsConfig::new()
            .domain_name(SERVER_NAME)
            .ca_certificate(self.ca_certificate()?)
            .identity(self.tls_identity(role)?))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::Io { path: path.display().to_string(), reason: e.to_string() })
}

/// Reads who a verified peer certificate (DER) belongs to, from its SAN URI.
pub fn role_of_certificate(der: &[u8]) -> Option<Role> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = certificate.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => {
            if *uri == URI_HUB {
                Some(Role::Hub)
            } else if *uri == URI_OPERATOR {
                Some(Role::Operator)
            } else {
                uri.strip_prefix(URI_BIC_PREFIX).and_then(|bic| Bic::parse(bic).ok()).map(Role::Bank)
            }
        }
        _ => None,
    })
}

/// Creates a new network in `dir`: CA, hub, operator, one bank per BIC, and the
/// directory with every bank allowed to send every message type to every other.
/// Refuses if `dir` already holds a network.
pub fn init(dir: &Path, participants: &[Bic]) -> Result<NetworkDir, PkiError> {
    if participants.len() < 2 || participants.len() > PARTICIPANTS_MAX {
        return Err(PkiError::Invalid(format!(
            "a network needs 2 to {PARTICIPANTS_MAX} participants (got {})",
            participants.len()
        )));
    }
    let hub_bic = Bic::parse(HUB_BIC).expect("HUB_BIC is a valid BIC");
    let mut seen = std::collections::BTreeSet::new();
    for bic in participants {
        if !seen.insert(*bic) || *bic == hub_bic {
            return Err(PkiError::Invalid(format!("participant {bic} is listed twice or is the hub's id")));
        }
    }
    for existing in ["ca.pem", "ca.key", DIRECTORY_FILE, "hub", "banks"] {
        if dir.join(existing).exists() {
            return Err(PkiError::AlreadyInitialised(dir.display().to_string()));
        }
    }
    let network = NetworkDir::new(dir);
    create_dir(dir)?;
    let (ca_params, ca_key) = ca_params()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write_new(&dir.join("ca.key"), ca_key.serialize_pem().as_bytes(), true)?;
    write_new(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    let issuer = Issuer::new(ca_params, ca_key);

    issue(&network, &issuer, Role::Hub)?;
    issue(&network, &issuer, Role::Operator)?;
    let hub = ParticipantEntry {
        bic: HUB_BIC.into(),
        name: "Corridor hub".into(),
        keys: vec![new_signing_key(&network, Role::Hub)?],
    };
    let mut entries = Vec::new();
    for bic in participants {
        issue(&network, &issuer, Role::Bank(*bic))?;
        let keys = vec![new_signing_key(&network, Role::Bank(*bic))?];
        entries.push(ParticipantEntry { bic: bic.to_string(), name: format!("Bank {bic}"), keys });
    }
    let all_types: Vec<String> = MessageType::ALL.iter().map(|t| t.code().to_owned()).collect();
    let mut relationships = Vec::new();
    for sender in participants {
        for receiver in participants.iter().filter(|r| *r != sender) {
            relationships.push(RelationshipEntry {
                sender: sender.to_string(),
                receiver: receiver.to_string(),
                message_types: all_types.clone(),
            });
        }
    }
    let file = DirectoryFile { version: DIRECTORY_VERSION, hub, participants: entries, relationships };
    let json = serde_json::to_string_pretty(&file).expect("the directory serialises");
    write_new(&dir.join(DIRECTORY_FILE), json.as_bytes(), false)?;
    Ok(network)
}

fn ca_params() -> Result<(CertificateParams, KeyPair), PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "Corridor network CA");
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params);
    Ok((params, KeyPair::generate()?))
}

fn set_validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CERTIFICATE_VALIDITY_DAYS);
}

/// Issues a role's TLS certificate and key into its folder.
fn issue(network: &NetworkDir, issuer: &Issuer<'_, KeyPair>, role: Role) -> Result<(), PkiError> {
    let (common_name, uri) = match role {
        Role::Hub => ("Corridor hub".to_owned(), URI_HUB.to_owned()),
        Role::Operator => ("Corridor operator".to_owned(), URI_OPERATOR.to_owned()),
        Role::Bank(bic) => (bic.to_string(), format!("{URI_BIC_PREFIX}{bic}")),
    };
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.subject_alt_names = vec![
        SanType::URI(uri.try_into()?),
        SanType::DnsName(SERVER_NAME.try_into()?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        Role::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Role::Hub | Role::Bank(_) => {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        }
    };
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    let key = KeyPair::generate()?;
    let certificate = params.signed_by(&key, issuer)?;
    let dir = network.role_dir(role);
    create_dir(&dir)?;
    write_new(&dir.join("tls.key"), key.serialize_pem().as_bytes(), true)?;
    write_new(&dir.join("tls.pem"), certificate.pem().as_bytes(), false)
}

fn new_signing_key(network: &NetworkDir, role: Role) -> Result<KeyEntry, PkiError> {
    let bic = match role {
        Role::Bank(bic) => bic,
        _ => Bic::parse(HUB_BIC).expect("valid"),
    };
    let identity = SigningIdentity::generate(bic, KeyId::parse(INITIAL_KEY_ID).expect("valid key id"));
    let path = network.role_dir(role).join("signing.key");
    save_signing_key(&path, identity.signing_key())
        .map_err(|e| PkiError::Io { path: path.display().to_string(), reason: e.to_string() })?;
    Ok(KeyEntry { key_id: INITIAL_KEY_ID.into(), public_key: hex_encode(&identity.verifying_key_bytes()) })
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir)
        .map_err(|e| PkiError::Io { path: dir.display().to_string(), reason: e.to_string() })
}

/// Writes a new file; never replaces one. Secrets are readable by their owner only.
fn write_new(path: &Path, contents: &[u8], secret: bool) -> Result<(), PkiError> {
    let error = |e: std::io::Error| PkiError::Io { path: path.display().to_string(), reason: e.to_string() };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(error)?;
    file.write_all(contents).map_err(error)?;
    file.sync_all().map_err(error)
}
