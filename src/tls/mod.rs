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
//! DIR/crl.pem                                  revoked certificates (once one is revoked)
//! DIR/hub/tls.pem  tls.key  signing-k1.key     the hub
//! DIR/operator/tls.pem  tls.key                the operators' client identity
//! DIR/banks/<BIC>/tls.pem  tls.key  signing-k1.key  (signing-k2.key, ... after rotations)
//! DIR/directory.json                           participants, signing keys, RMA
//! DIR/link/  DIR/links/                        the link identity and links ([`link`])
//! ```
//!
//! Keys and certificates have a lifecycle: [`rotate`] gives a participant a new signing
//! key and retires the old one after an overlap, [`revoke_key`] stops a signing key for
//! good, and [`revoke_certificate`] puts a TLS certificate on the CA's revocation list,
//! which every server checks at the handshake ([`NetworkDir::server_config`]).

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::crypto::{KeyId, SigningIdentity, load_signing_key, save_signing_key};
use crate::directory::{
    DIRECTORY_FILE, DIRECTORY_VERSION, Directory, DirectoryFile, KeyEntry, ParticipantEntry,
    RelationshipEntry,
};
use crate::model::{Bic, MessageType, wire};

pub mod link;

/// The hub's participant id: it signs receipts under it.
pub const HUB_BIC: &str = "CRDRZZ00XXX";
/// Id of every signing key `init` creates; [`rotate`] makes k2, k3, ...
pub const INITIAL_KEY_ID: &str = "k1";
/// File name of the network CA's certificate revocation list.
pub const CRL_FILE: &str = "crl.pem";
/// How long a revocation list says it is good for (it is reissued at every revocation).
const CRL_VALIDITY_DAYS: i64 = 3650;
/// TLS server name every certificate carries and every client asks for.
pub const SERVER_NAME: &str = "localhost";
const URI_BIC_PREFIX: &str = "urn:corridor:bic:";
const URI_HUB: &str = "urn:corridor:hub";
const URI_OPERATOR: &str = "urn:corridor:operator";
/// SAN URI prefix of a link certificate, `corridor:link:<BIC>` ([`link`]): deliberately
/// outside `urn:corridor:`, so that no reader of participant roles takes it for one.
pub const URI_LINK_PREFIX: &str = "corridor:link:";
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

    /// The file of a role's signing key `key_id`.
    pub fn signing_key_path(&self, role: Role, key_id: &KeyId) -> PathBuf {
        self.role_dir(role).join(format!("signing-{key_id}.key"))
    }

    /// A role's Ed25519 signing identity (hub or bank) as `directory.json` says now: its
    /// newest key usable now by the system's clock. For what runs on the system's clock
    /// (tools, tests); a node on another clock asks [`NetworkDir::signing_identity_at`].
    pub fn signing_identity(&self, role: Role) -> Result<SigningIdentity, PkiError> {
        self.signing_identity_at(role, crate::clock::unix_ms_now())
    }

    /// A role's Ed25519 signing identity as `directory.json` says now: its newest key
    /// usable at `now_unix_ms` (by the clock of the node that will sign with it).
    pub fn signing_identity_at(&self, role: Role, now_unix_ms: i64) -> Result<SigningIdentity, PkiError> {
        let directory = Directory::load(&self.root).map_err(|e| PkiError::Invalid(e.to_string()))?;
        let bic = signer_of(role)?;
        let key_id = directory.current_key(bic, now_unix_ms).ok_or_else(|| {
            PkiError::Invalid(format!(
                "{bic} has no signing key usable now (every key is retired or revoked): \
                 give it a new one with `corridor pki rotate`"
            ))
        })?;
        self.load_signing_key(role, key_id)
    }

    /// The directory as `directory.json` says now, and every signing key of the role's
    /// that it lists and this directory holds, oldest first.
    pub fn credentials(&self, role: Role) -> Result<(Directory, Vec<SigningIdentity>), PkiError> {
        let directory = self.directory()?;
        let bic = signer_of(role)?;
        let keys = directory
            .key_ids(bic)
            .iter()
            .filter(|key_id| self.signing_key_path(role, key_id).exists())
            .map(|key_id| self.load_signing_key(role, key_id))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(PkiError::Invalid(format!(
                "no signing key of {bic} is in {}",
                self.role_dir(role).display()
            )));
        }
        Ok((directory, keys))
    }

    /// The network's directory with its links: each linked network, and its banks as its
    /// hub last published them across the link (this network's hub keeps what it was
    /// sent, signed, in `link/published/`; each node checks the signature again).
    pub fn directory(&self) -> Result<Directory, PkiError> {
        let mut directory = Directory::load(&self.root).map_err(|e| PkiError::Invalid(e.to_string()))?;
        let now = crate::clock::unix_ms_now();
        for link in self.links()? {
            let peer = link.peer.bic;
            let invalid = |e: String| PkiError::Invalid(format!("the link to {peer}: {e}"));
            directory = directory.with_link(peer, &link.accepts, &link.peer.hub_keys).map_err(invalid)?;
            let path = self.published_directory_path(peer);
            if let Some(signed) = crate::directory::PublishedDirectory::load_signed(&path).map_err(invalid)? {
                let published =
                    crate::directory::PublishedDirectory::verify(&signed, peer, &link.peer.hub_keys, now)
                        .map_err(invalid)?;
                directory = directory.with_published(&published).map_err(invalid)?;
            }
        }
        Ok(directory)
    }

    /// Where this network's hub keeps `peer`'s published directory, signed as it came.
    pub fn published_directory_path(&self, peer: Bic) -> PathBuf {
        self.root.join("link").join("published").join(format!("{peer}.json"))
    }

    fn load_signing_key(&self, role: Role, key_id: &KeyId) -> Result<SigningIdentity, PkiError> {
        let path = self.signing_key_path(role, key_id);
        let key = load_signing_key(&path)
            .map_err(|e| PkiError::Io { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(SigningIdentity::new(signer_of(role)?, key_id.clone(), key))
    }

    /// Server-side mTLS for this role: its certificate, client certificates required from
    /// the network CA and checked against its revocation list (if one was issued), and
    /// HTTP/2 by ALPN.
    pub fn server_config(&self, role: Role) -> Result<rustls::ServerConfig, PkiError> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| PkiError::Invalid(format!("{what}: {e}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for certificate in pem_certificates(&self.root.join("ca.pem"))? {
            roots.add(certificate).map_err(|e| invalid("the network CA certificate", &e))?;
        }
        let crls = self.revocation_list()?.into_iter().collect::<Vec<_>>();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .with_crls(crls)
        .build()
        .map_err(|e| invalid("the client certificate verifier", &e))?;
        let dir = self.role_dir(role);
        let chain = pem_certificates(&dir.join("tls.pem"))?;
        let key_path = dir.join("tls.key");
        let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
            .map_err(|e| invalid(&key_path.display().to_string(), &e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("TLS versions", &e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| invalid("the server certificate", &e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    /// The network CA's revocation list, if one has been issued.
    pub fn revocation_list(&self) -> Result<Option<CertificateRevocationListDer<'static>>, PkiError> {
        let path = self.root.join(CRL_FILE);
        if !path.exists() {
            return Ok(None);
        }
        CertificateRevocationListDer::from_pem_slice(&read(&path)?)
            .map(Some)
            .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))
    }

    /// Serial numbers of the certificates on the revocation list.
    pub fn revoked_serials(&self) -> Result<Vec<Vec<u8>>, PkiError> {
        Ok(self.revoked()?.into_iter().map(|(serial, _)| serial).collect())
    }

    /// The revoked certificates' serial numbers and revocation times (Unix seconds).
    fn revoked(&self) -> Result<Vec<(Vec<u8>, i64)>, PkiError> {
        let Some(der) = self.revocation_list()? else { return Ok(Vec::new()) };
        let (_, crl) =
            x509_parser::parse_x509_crl(&der).map_err(|e| PkiError::Invalid(format!("{CRL_FILE}: {e}")))?;
        Ok(crl
            .iter_revoked_certificates()
            .map(|revoked| (revoked.raw_serial().to_vec(), revoked.revocation_date.timestamp()))
            .collect())
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

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certificates = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(PkiError::Invalid(format!("{}: no certificate", path.display())));
    }
    Ok(certificates)
}

/// The participant a role signs as.
fn signer_of(role: Role) -> Result<Bic, PkiError> {
    match role {
        Role::Hub => Ok(Bic::parse(HUB_BIC).expect("HUB_BIC is a valid BIC")),
        Role::Bank(bic) => Ok(bic),
        Role::Operator => Err(PkiError::Invalid("operators do not sign messages".into())),
    }
}

/// The role whose signing keys and certificate are `bic`'s: the hub's id or a bank.
pub fn role_of_bic(bic: Bic) -> Role {
    if bic.as_str() == HUB_BIC { Role::Hub } else { Role::Bank(bic) }
}

/// The serial number of a certificate (DER), as its bytes.
pub fn certificate_serial(der: &[u8]) -> Option<Vec<u8>> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(certificate.raw_serial().to_vec())
}

/// Reads who a verified peer certificate (DER) belongs to, from its SAN URI. A link
/// certificate (one with a `corridor:link:` URI, whatever else it carries) is no
/// participant's: `None`, so it never opens a bank's or the operator's session.
pub fn role_of_certificate(der: &[u8]) -> Option<Role> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = certificate.subject_alternative_name().ok()??;
    let uris = || {
        san.value.general_names.iter().filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
    };
    if uris().any(|uri| uri.starts_with(URI_LINK_PREFIX)) {
        return None;
    }
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
    let initial = KeyId::parse(INITIAL_KEY_ID).expect("valid key id");
    let hub = ParticipantEntry {
        bic: HUB_BIC.into(),
        name: "Corridor hub".into(),
        keys: vec![new_signing_key(&network, Role::Hub, &initial, None)?],
    };
    let mut entries = Vec::new();
    for bic in participants {
        issue(&network, &issuer, Role::Bank(*bic))?;
        let keys = vec![new_signing_key(&network, Role::Bank(*bic), &initial, None)?];
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

/// Generates a signing key `key_id` for `role`, saves its secret half beside the role's
/// certificate and returns its directory entry, valid from `valid_from`.
fn new_signing_key(
    network: &NetworkDir,
    role: Role,
    key_id: &KeyId,
    valid_from: Option<String>,
) -> Result<KeyEntry, PkiError> {
    let identity = SigningIdentity::generate(signer_of(role)?, key_id.clone());
    let path = network.signing_key_path(role, key_id);
    save_signing_key(&path, identity.signing_key())
        .map_err(|e| PkiError::Io { path: path.display().to_string(), reason: e.to_string() })?;
    Ok(KeyEntry::new(key_id.as_str(), &identity.verifying_key_bytes(), valid_from))
}

/// What [`rotate`] did.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The new key.
    pub new_key: KeyId,
    /// When it begins to sign.
    pub activates_unix_ms: i64,
    /// The keys it replaces, which sign nothing created after `overlap_until_unix_ms`.
    pub retired: Vec<KeyId>,
    /// End of the overlap.
    pub overlap_until_unix_ms: i64,
}

/// How long after a rotation the new key begins to sign: long enough for every running
/// node to have read the new directory (they look every [`crate::net::RELOAD_INTERVAL`]),
/// so that no node meets a key it does not know yet.
pub const ROTATION_ACTIVATION: std::time::Duration = std::time::Duration::from_secs(5);

/// Gives `bic` (a bank or the hub) a new signing key, valid from
/// [`ROTATION_ACTIVATION`] from now, and retires its other keys `overlap` after that:
/// until then messages signed with either verify. Running nodes pick the new directory
/// up by themselves (they watch the file) and sign with the new key from its activation.
pub fn rotate(dir: &Path, bic: Bic, overlap: std::time::Duration) -> Result<Rotation, PkiError> {
    let mut file = DirectoryFile::read(dir).map_err(|e| PkiError::Invalid(e.to_string()))?;
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let activates = crate::clock::unix_ms_now().saturating_add(ms(ROTATION_ACTIVATION));
    let until = activates.saturating_add(ms(overlap));
    let entry = entry_of(&mut file, bic)?;
    let number = entry
        .keys
        .iter()
        .filter_map(|key| key.key_id.strip_prefix('k').and_then(|n| n.parse::<u32>().ok()))
        .max()
        .unwrap_or(0)
        + 1;
    let new_key = KeyId::parse(&format!("k{number}")).expect("k<number> is a valid key id");
    let mut retired = Vec::new();
    for key in entry.keys.iter_mut().filter(|key| key.revoked_at.is_none()) {
        let ends_later = match &key.valid_until {
            None => true,
            Some(text) => wire::parse_unix_ms(text, "valid_until").map_or(true, |t| t > until),
        };
        if ends_later {
            key.valid_until = Some(wire::format_unix_ms(until));
            retired.push(KeyId::parse(&key.key_id).map_err(|e| PkiError::Invalid(e.to_string()))?);
        }
    }
    let (network, role) = (NetworkDir::new(dir), role_of_bic(bic));
    entry.keys.push(new_signing_key(&network, role, &new_key, Some(wire::format_unix_ms(activates)))?);
    if let Err(error) = file.save(dir) {
        // The directory never listed the key: its secret half goes too.
        let _ = fs::remove_file(network.signing_key_path(role, &new_key));
        return Err(PkiError::Invalid(error.to_string()));
    }
    Ok(Rotation { new_key, activates_unix_ms: activates, retired, overlap_until_unix_ms: until })
}

/// `bic`'s entry in the directory file.
fn entry_of(file: &mut DirectoryFile, bic: Bic) -> Result<&mut ParticipantEntry, PkiError> {
    file.participant_mut(bic).ok_or_else(|| PkiError::Invalid(format!("{bic} is not in the directory")))
}

/// Revokes `bic`'s signing key `key_id` now: from then on nothing it signs is accepted.
/// Messages it signed before the revocation still verify in the archive.
pub fn revoke_key(dir: &Path, bic: Bic, key_id: &KeyId) -> Result<i64, PkiError> {
    let mut file = DirectoryFile::read(dir).map_err(|e| PkiError::Invalid(e.to_string()))?;
    let key = entry_of(&mut file, bic)?
        .keys
        .iter_mut()
        .find(|key| key.key_id == key_id.as_str())
        .ok_or_else(|| PkiError::Invalid(format!("{bic} has no key {key_id}")))?;
    if let Some(at) = &key.revoked_at {
        return Err(PkiError::Invalid(format!("{bic} key {key_id} was already revoked at {at}")));
    }
    let now = crate::clock::unix_ms_now();
    key.revoked_at = Some(wire::format_unix_ms(now));
    file.save(dir).map_err(|e| PkiError::Invalid(e.to_string()))?;
    Ok(now)
}

/// Puts `role`'s TLS certificate on the network CA's revocation list (`crl.pem`,
/// reissued with every revocation): servers refuse it at the handshake from then on
/// and close the connections it already has.
pub fn revoke_certificate(dir: &Path, role: Role) -> Result<Vec<u8>, PkiError> {
    match role {
        Role::Hub => {
            return Err(PkiError::Invalid(
                "the hub's certificate is checked by its clients, which do not read the revocation list: \
                 to replace it, create a new network"
                    .into(),
            ));
        }
        Role::Bank(bic) => {
            let directory = Directory::load(dir).map_err(|e| PkiError::Invalid(e.to_string()))?;
            if !directory.is_participant(bic) {
                return Err(PkiError::Invalid(format!("{bic} is not in the directory")));
            }
        }
        Role::Operator => {}
    }
    let network = NetworkDir::new(dir);
    let der = pem_certificates(&network.role_dir(role).join("tls.pem"))?.remove(0);
    let serial = certificate_serial(&der)
        .ok_or_else(|| PkiError::Invalid(format!("the certificate of {role:?} cannot be read")))?;
    let mut revoked = network.revoked()?;
    if revoked.iter().any(|(known, _)| *known == serial) {
        return Err(PkiError::Invalid(format!("the certificate of {role:?} is already revoked")));
    }
    let now = time::OffsetDateTime::now_utc();
    revoked.push((serial.clone(), now.unix_timestamp()));
    let ca_key_pem = String::from_utf8(read(&dir.join("ca.key"))?)
        .map_err(|_| PkiError::Invalid("ca.key is not PEM text".into()))?;
    let ca_pem = String::from_utf8(read(&dir.join("ca.pem"))?)
        .map_err(|_| PkiError::Invalid("ca.pem is not PEM text".into()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)?;
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + time::Duration::days(CRL_VALIDITY_DAYS),
        crl_number: SerialNumber::from(u64::try_from(revoked.len()).expect("a count fits")),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|(serial, at)| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: time::OffsetDateTime::from_unix_timestamp(*at).unwrap_or(now),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&issuer)?;
    let side = dir.join(format!("{CRL_FILE}.new"));
    let _ = fs::remove_file(&side);
    write_new(&side, crl.pem()?.as_bytes(), false)?;
    let io = |e: std::io::Error| PkiError::Io {
        path: dir.join(CRL_FILE).display().to_string(),
        reason: e.to_string(),
    };
    fs::rename(&side, dir.join(CRL_FILE)).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(serial)
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
