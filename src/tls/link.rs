//! Links between national networks: a network's link identity (its central bank as the
//! link sees it), the bundle it gives a peer network, the links it has configured, and the
//! mutual TLS of a link session.
//!
//! Each network keeps its own PKI. Its CA issues one more certificate, the link
//! certificate, which carries the SAN URI `corridor:link:<BIC>` (so it is never taken for
//! a bank's or the hub's: [`super::role_of_certificate`] returns `None` for it). A link
//! trusts the peer network's CA for the peer's link certificate alone: a bank or hub
//! certificate of the peer, or a link certificate from any other CA, is refused at the
//! handshake ([`NetworkDir::link_server_config`], [`NetworkDir::link_client_tls`]).
//!
//! Files under the network directory:
//!
//! ```text
//! DIR/link/identity.json  link.crt  link.key    this network's link identity (`init`)
//! DIR/links/<PEERBIC>.json                      one per configured link (`add_link`)
//! ```
//!
//! Every file is validated whole when read, and written whole or not at all.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::{
    HUB_BIC, NetworkDir, PkiError, SERVER_NAME, URI_LINK_PREFIX, create_dir, pem_certificates, read,
    set_validity, write_new,
};
use crate::directory::{DIRECTORY_VERSION, Directory, DirectoryFile, KeyEntry, ParticipantEntry};
use crate::model::message::check_text;
use crate::model::{Amount, Bic, Currency, CurrencyPair, MessageType, Rate};

/// Format version of `identity.json`, of a bundle and of a link file.
pub const LINK_FORMAT_VERSION: u32 = 1;
/// The folder of a network's link identity.
pub const LINK_DIR: &str = "link";
/// The folder of a network's configured links.
pub const LINKS_DIR: &str = "links";
/// Most characters of a link identity's name (ISO Max140Text).
pub const LINK_NAME_LENGTH_MAX: usize = 140;
/// Largest bundle or link file read (a CA certificate and a few keys fit many times over).
pub const LINK_FILE_SIZE_MAX_BYTES: u64 = 256 * 1024;
/// Most links one network configures.
pub const LINKS_MAX: usize = 64;
/// The message types that may cross a link: a statement (camt.053) stays between a bank
/// and its own hub.
pub const LINK_MESSAGE_TYPES: [MessageType; 5] = [
    MessageType::Pacs008,
    MessageType::Pacs002,
    MessageType::Pacs004,
    MessageType::Camt056,
    MessageType::Camt029,
];

/// A network's link identity: its central bank as the link sees it. At a peer hub this
/// network appears as a participant with this BIC, settling in this currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkIdentity {
    /// The BIC the link speaks under (never a participant's or the hub's).
    pub bic: Bic,
    /// Display name ("Bank of Russia").
    pub name: String,
    /// The currency this network settles in.
    pub currency: Currency,
}

/// What a network gives a peer so that the peer can link to it (`corridor link export`):
/// its link identity, its CA (trusted by the peer for this network's link certificate
/// alone) and its hub's signing keys (which sign the directory it sends over the link).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkBundle {
    /// The peer's link BIC.
    pub bic: Bic,
    /// The peer's link name.
    pub name: String,
    /// The currency the peer network settles in.
    pub currency: Currency,
    /// The peer network's CA certificate, PEM.
    pub ca_pem: String,
    /// The peer hub's signing keys, as its `directory.json` lists them.
    pub hub_keys: Vec<KeyEntry>,
}

/// One configured link (`DIR/links/<PEERBIC>.json`): the peer, where to dial it, and the
/// bilateral agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// The peer network.
    pub peer: LinkBundle,
    /// `https://HOST:PORT` of the peer's link listener; `None` when the peer dials us.
    pub peer_url: Option<String>,
    /// The agreement's rate from this network's currency to the peer's.
    pub rate_out: (CurrencyPair, Rate),
    /// The agreement's rate from the peer's currency to this network's.
    pub rate_in: (CurrencyPair, Rate),
    /// The swap line's cap, in this network's currency: the most either central bank may
    /// owe the other.
    pub cap: Amount,
    /// The message types this network's banks accept from the peer network.
    pub accepts: Vec<MessageType>,
}

// ---------------------------------------------------------------------------------------
// The files, as JSON (private: the public types above are validated).

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    version: u32,
    bic: String,
    name: String,
    currency: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    version: u32,
    bic: String,
    name: String,
    currency: String,
    ca_certificate: String,
    hub_keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFile {
    pair: String,
    rate: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    version: u32,
    peer: BundleFile,
    peer_url: Option<String>,
    rates: Vec<RateFile>,
    cap: String,
    accepts: Vec<String>,
}

fn invalid(text: impl Into<String>) -> PkiError {
    PkiError::Invalid(text.into())
}

fn check_version(version: u32, what: &str) -> Result<(), PkiError> {
    if version != LINK_FORMAT_VERSION {
        return Err(invalid(format!(
            "{what}: format version {version} is not supported (this build reads {LINK_FORMAT_VERSION})"
        )));
    }
    Ok(())
}

fn parse_name(name: &str, what: &str) -> Result<String, PkiError> {
    check_text(name, "name", LINK_NAME_LENGTH_MAX, true).map_err(|e| invalid(format!("{what}: {e}")))
}

impl IdentityFile {
    fn parse(self, what: &str) -> Result<LinkIdentity, PkiError> {
        check_version(self.version, what)?;
        let field = |e: crate::model::ModelError| invalid(format!("{what}: {e}"));
        Ok(LinkIdentity {
            bic: Bic::parse(&self.bic).map_err(|e| field(e.at("bic")))?,
            name: parse_name(&self.name, what)?,
            currency: Currency::parse(&self.currency).map_err(field)?,
        })
    }
}

impl LinkBundle {
    /// The bundle as JSON, as `corridor link export` writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&BundleFile::from(self)).expect("a bundle serialises")
    }

    /// Reads and validates a bundle: its version, BIC, name, currency, that its CA
    /// certificate is one CA certificate, in force, and that its hub keys are keys as
    /// `directory.json` takes them. `what` names the source in errors.
    pub fn from_json(text: &str, what: &str) -> Result<Self, PkiError> {
        let file: BundleFile =
            serde_json::from_str(text).map_err(|e| invalid(format!("{what}: not a link bundle: {e}")))?;
        file.parse(what)
    }

    /// Checks what [`LinkBundle::from_json`] checks, on a bundle built in code.
    pub fn validate(&self) -> Result<(), PkiError> {
        BundleFile::from(self).parse("the peer bundle").map(|_| ())
    }
}

impl From<&LinkBundle> for BundleFile {
    fn from(bundle: &LinkBundle) -> Self {
        Self {
            version: LINK_FORMAT_VERSION,
            bic: bundle.bic.to_string(),
            name: bundle.name.clone(),
            currency: bundle.currency.to_string(),
            ca_certificate: bundle.ca_pem.clone(),
            hub_keys: bundle.hub_keys.clone(),
        }
    }
}

impl BundleFile {
    fn parse(self, what: &str) -> Result<LinkBundle, PkiError> {
        let identity =
            IdentityFile { version: self.version, bic: self.bic, name: self.name, currency: self.currency }
                .parse(what)?;
        ca_certificate_der(&self.ca_certificate)
            .map_err(|e| invalid(format!("{what}: ca_certificate: {e}")))?;
        check_hub_keys(&self.hub_keys).map_err(|e| invalid(format!("{what}: hub_keys: {e}")))?;
        Ok(LinkBundle {
            bic: identity.bic,
            name: identity.name,
            currency: identity.currency,
            ca_pem: self.ca_certificate,
            hub_keys: self.hub_keys,
        })
    }
}

/// The one certificate of `pem`, checked to be a CA certificate in force that rustls
/// takes as a trust anchor.
fn ca_certificate_der(pem: &str) -> Result<CertificateDer<'static>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    let [certificate] = <[_; 1]>::try_from(certificates).map_err(|found| {
        format!("holds {} certificates; a bundle carries exactly one, its CA", found.len())
    })?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&certificate).map_err(|e| format!("not a certificate: {e}"))?;
    if !parsed.is_ca() {
        return Err("is not a CA certificate (no basic constraints with CA true)".into());
    }
    if !parsed.validity().is_valid() {
        return Err("the CA certificate is not in force now (expired or not yet valid)".into());
    }
    rustls::RootCertStore::empty().add(certificate.clone()).map_err(|e| format!("not a usable CA: {e}"))?;
    Ok(certificate)
}

/// Checks the hub's keys exactly as `directory.json` is checked: as the hub entry of an
/// otherwise empty directory.
fn check_hub_keys(keys: &[KeyEntry]) -> Result<(), String> {
    let file = DirectoryFile {
        version: DIRECTORY_VERSION,
        hub: ParticipantEntry { bic: HUB_BIC.into(), name: "peer hub".into(), keys: keys.to_vec() },
        participants: Vec::new(),
        relationships: Vec::new(),
    };
    Directory::from_file(&file).map(|_| ())
}

/// Checks a peer's bundle against this network: the peer is not this network (by link
/// BIC or CA), its BIC is no participant here, and it settles in another currency.
fn check_peer(
    own: &LinkIdentity,
    own_ca: &[u8],
    directory: &Directory,
    peer: &LinkBundle,
) -> Result<(), PkiError> {
    peer.validate()?;
    if peer.bic == own.bic {
        return Err(invalid(format!("the peer's link BIC {} is this network's own link BIC", peer.bic)));
    }
    let peer_ca = ca_certificate_der(&peer.ca_pem).map_err(invalid)?;
    if peer_ca.as_ref() == own_ca {
        return Err(invalid("the peer's CA is this network's own CA: a network cannot link to itself"));
    }
    if peer.bic == directory.hub() || directory.is_participant(peer.bic) {
        return Err(invalid(format!(
            "the peer's link BIC {} is a participant (or the hub) of this network: it would stand for two parties",
            peer.bic
        )));
    }
    if peer.currency == own.currency {
        return Err(invalid(format!(
            "the peer settles in {}, as this network does: a link joins two currencies",
            peer.currency
        )));
    }
    Ok(())
}

/// Every check of one [`LinkConfig`] against this network: the peer ([`check_peer`]),
/// the two rates' directions, the cap's currency, the URL's shape, the message types.
fn check_link(
    own: &LinkIdentity,
    own_ca: &[u8],
    directory: &Directory,
    link: &LinkConfig,
) -> Result<(), PkiError> {
    let peer = &link.peer;
    check_peer(own, own_ca, directory, peer)?;
    let (out_pair, in_pair) = (
        CurrencyPair::new(own.currency, peer.currency).map_err(|e| invalid(e.to_string()))?,
        CurrencyPair::new(peer.currency, own.currency).map_err(|e| invalid(e.to_string()))?,
    );
    if link.rate_out.0 != out_pair || link.rate_in.0 != in_pair {
        return Err(invalid(format!(
            "the rates must be {out_pair} and {in_pair} (got {} and {})",
            link.rate_out.0, link.rate_in.0
        )));
    }
    if link.cap.currency() != own.currency {
        return Err(invalid(format!(
            "the cap is in this network's currency, {} (got {})",
            own.currency,
            link.cap.currency()
        )));
    }
    if let Some(url) = &link.peer_url {
        check_peer_url(url)?;
    }
    check_accepts(&link.accepts)
}

/// `https://HOST:PORT` and nothing more: the peer's link listener.
pub fn check_peer_url(url: &str) -> Result<(), PkiError> {
    let endpoint = crate::net::endpoint(url).map_err(|e| invalid(format!("peer URL: {e}")))?;
    let uri = endpoint.uri();
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    if uri.port_u16().is_none() || !bare {
        return Err(invalid(format!("peer URL {url:?}: use https://HOST:PORT, with a port and no path")));
    }
    Ok(())
}

fn check_accepts(accepts: &[MessageType]) -> Result<(), PkiError> {
    let allowed: Vec<&str> = LINK_MESSAGE_TYPES.iter().map(|t| t.code()).collect();
    if accepts.is_empty() {
        return Err(invalid(format!(
            "a link must accept at least one message type of {}",
            allowed.join(", ")
        )));
    }
    let mut seen = BTreeSet::new();
    for message_type in accepts {
        if !LINK_MESSAGE_TYPES.contains(message_type) {
            return Err(invalid(format!(
                "{message_type} cannot cross a link (only {} can)",
                allowed.join(", ")
            )));
        }
        if !seen.insert(message_type) {
            return Err(invalid(format!("accepts lists {message_type} twice")));
        }
    }
    Ok(())
}

impl LinkConfig {
    fn to_file(&self) -> LinkFile {
        let rate =
            |(pair, rate): &(CurrencyPair, Rate)| RateFile { pair: pair.to_string(), rate: rate.to_string() };
        LinkFile {
            version: LINK_FORMAT_VERSION,
            peer: BundleFile::from(&self.peer),
            peer_url: self.peer_url.clone(),
            rates: vec![rate(&self.rate_out), rate(&self.rate_in)],
            cap: crate::model::format_minor_units(self.cap.minor_units(), self.cap.currency()),
            accepts: self.accepts.iter().map(|t| t.code().to_owned()).collect(),
        }
    }

    /// Reads a link file's fields into a config; the rates are told apart by `own`'s
    /// currency. Checked against the network by [`check_link`] afterwards.
    fn from_file(file: LinkFile, own: &LinkIdentity, what: &str) -> Result<Self, PkiError> {
        check_version(file.version, what)?;
        let peer = file.peer.parse(&format!("{what}: peer"))?;
        let field = |e: crate::model::ModelError| invalid(format!("{what}: {e}"));
        let mut rates = Vec::new();
        for entry in &file.rates {
            let pair = CurrencyPair::parse(&entry.pair).map_err(field)?;
            rates.push((pair, Rate::parse(&entry.rate).map_err(field)?));
        }
        let find = |from: Currency, to: Currency| {
            let mut matching = rates.iter().filter(|(pair, _)| pair.from == from && pair.to == to);
            match (matching.next(), matching.next()) {
                (Some(rate), None) => Ok(*rate),
                _ => Err(invalid(format!("{what}: rates must list {from}/{to} exactly once"))),
            }
        };
        let (rate_out, rate_in) = (find(own.currency, peer.currency)?, find(peer.currency, own.currency)?);
        if rates.len() != 2 {
            return Err(invalid(format!("{what}: rates must list exactly the two directions")));
        }
        let accepts = file
            .accepts
            .iter()
            .map(|code| MessageType::parse(code).map_err(field))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            peer,
            peer_url: file.peer_url,
            rate_out,
            rate_in,
            cap: Amount::parse(&file.cap, own.currency).map_err(|e| field(e.at("cap")))?,
            accepts,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Creating a link identity.

/// Creates `dir`'s link identity: `DIR/link/identity.json`, and a link certificate and
/// key issued by the network's CA. Refused, changing nothing, when the network has one
/// already, the BIC is a participant's or the hub's, or the name is empty or too long.
pub fn init(dir: &Path, bic: Bic, name: &str, currency: Currency) -> Result<LinkIdentity, PkiError> {
    let network = NetworkDir::new(dir);
    let directory = Directory::load(dir).map_err(|e| invalid(e.to_string()))?;
    if bic == directory.hub() || directory.is_participant(bic) {
        return Err(invalid(format!(
            "{bic} is a participant (or the hub) of this network; the link identity needs a BIC of its own"
        )));
    }
    let identity = LinkIdentity { bic, name: parse_name(name, "--name")?, currency };
    let final_dir = network.link_dir();
    if final_dir.exists() {
        return Err(invalid(format!(
            "{} already has a link identity ({}); a network has one",
            dir.display(),
            final_dir.display()
        )));
    }
    // Written whole in a side folder, then renamed into place: a failure half way leaves
    // no link identity, and the next init starts afresh.
    let side = dir.join(format!("{LINK_DIR}.new"));
    if side.exists() {
        fs::remove_dir_all(&side).map_err(|e| io_error(&side, e))?;
    }
    create_dir(&side)?;
    issue_link_certificate(dir, &side, &identity)?;
    let file = IdentityFile {
        version: LINK_FORMAT_VERSION,
        bic: bic.to_string(),
        name: identity.name.clone(),
        currency: currency.to_string(),
    };
    let json = serde_json::to_string_pretty(&file).expect("an identity serialises");
    write_new(&side.join("identity.json"), json.as_bytes(), false)?;
    fs::rename(&side, &final_dir).map_err(|e| io_error(&final_dir, e))?;
    sync_dir(dir)?;
    Ok(identity)
}

fn io_error(path: &Path, e: std::io::Error) -> PkiError {
    PkiError::Io { path: path.display().to_string(), reason: e.to_string() }
}

fn sync_dir(dir: &Path) -> Result<(), PkiError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))
}

/// The DNS name a link certificate carries besides [`SERVER_NAME`], and the name a link
/// client asks for: a bank or hub certificate of the peer's CA does not carry it, so the
/// dialer accepts only the peer's link certificate. Under `.invalid` (RFC 2606): it never
/// resolves to anything.
pub fn link_server_name(bic: Bic) -> String {
    format!("{}.link.corridor.invalid", bic.as_str().to_ascii_lowercase())
}

fn issue_link_certificate(dir: &Path, into: &Path, identity: &LinkIdentity) -> Result<(), PkiError> {
    let ca_key_pem =
        String::from_utf8(read(&dir.join("ca.key"))?).map_err(|_| invalid("ca.key is not PEM text"))?;
    let ca_pem =
        String::from_utf8(read(&dir.join("ca.pem"))?).map_err(|_| invalid("ca.pem is not PEM text"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, format!("{} link {}", identity.name, identity.bic));
    params.subject_alt_names = vec![
        SanType::URI(format!("{URI_LINK_PREFIX}{}", identity.bic).try_into()?),
        SanType::DnsName(SERVER_NAME.try_into()?),
        SanType::DnsName(link_server_name(identity.bic).try_into()?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // A link listens (server) and dials (client) with the same certificate.
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    let key = KeyPair::generate()?;
    let certificate = params.signed_by(&key, &issuer)?;
    write_new(&into.join("link.key"), key.serialize_pem().as_bytes(), true)?;
    write_new(&into.join("link.crt"), certificate.pem().as_bytes(), false)
}

/// The BIC a link certificate (DER) names in its `corridor:link:` SAN URI. `None` for any
/// other certificate, and for one that names several link BICs or also names a
/// participant role (`urn:corridor:...`): a certificate stands for one party.
pub fn link_bic_of_certificate(der: &[u8]) -> Option<Bic> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = certificate.subject_alternative_name().ok()??;
    let mut link = None;
    for name in &san.value.general_names {
        let x509_parser::extensions::GeneralName::URI(uri) = name else { continue };
        if uri.starts_with("urn:corridor:") {
            return None;
        }
        if let Some(text) = uri.strip_prefix(URI_LINK_PREFIX) {
            let bic = Bic::parse(text).ok()?;
            if link.is_some_and(|seen| seen != bic) {
                return None;
            }
            link = Some(bic);
        }
    }
    link
}

// ---------------------------------------------------------------------------------------
// Reading and adding links.

impl NetworkDir {
    /// `DIR/link`: the link identity's folder.
    pub fn link_dir(&self) -> PathBuf {
        self.root().join(LINK_DIR)
    }

    /// `DIR/links`: the configured links' folder.
    pub fn links_dir(&self) -> PathBuf {
        self.root().join(LINKS_DIR)
    }

    /// This network's link identity, validated; `None` before `corridor link init`.
    pub fn link_identity(&self) -> Result<Option<LinkIdentity>, PkiError> {
        let path = self.link_dir().join("identity.json");
        if !path.exists() {
            return Ok(None);
        }
        let what = path.display().to_string();
        let file: IdentityFile = serde_json::from_slice(&read_bounded(&path)?)
            .map_err(|e| invalid(format!("{what}: not a link identity: {e}")))?;
        file.parse(&what).map(Some)
    }

    fn require_link_identity(&self) -> Result<LinkIdentity, PkiError> {
        self.link_identity()?.ok_or_else(|| {
            invalid(format!(
                "{} has no link identity: create one with `corridor link init`",
                self.root().display()
            ))
        })
    }

    /// The bundle a peer needs to link to this network (`corridor link export`): the link
    /// identity, the network CA and the hub's signing keys as `directory.json` lists them.
    pub fn link_bundle(&self) -> Result<LinkBundle, PkiError> {
        let identity = self.require_link_identity()?;
        let file = DirectoryFile::read(self.root()).map_err(|e| invalid(e.to_string()))?;
        let ca_pem = String::from_utf8(read(&self.root().join("ca.pem"))?)
            .map_err(|_| invalid("ca.pem is not PEM text"))?;
        let bundle = LinkBundle {
            bic: identity.bic,
            name: identity.name,
            currency: identity.currency,
            ca_pem,
            hub_keys: file.hub.keys,
        };
        bundle.validate()?;
        Ok(bundle)
    }

    /// Every configured link, in peer BIC order, each file validated whole and against
    /// this network; none is one that [`NetworkDir::add_link`] would have refused.
    pub fn links(&self) -> Result<Vec<LinkConfig>, PkiError> {
        let paths = self.link_files()?;
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let own = self.require_link_identity()?;
        let (own_ca, directory) = self.own_ca_and_directory()?;
        let mut links: Vec<LinkConfig> = Vec::new();
        for path in paths {
            let what = path.display().to_string();
            let file: LinkFile = serde_json::from_slice(&read_bounded(&path)?)
                .map_err(|e| invalid(format!("{what}: not a link file: {e}")))?;
            let link = LinkConfig::from_file(file, &own, &what)?;
            check_link(&own, &own_ca, &directory, &link).map_err(|e| invalid(format!("{what}: {e}")))?;
            if path.file_stem().and_then(|s| s.to_str()) != Some(link.peer.bic.as_str()) {
                return Err(invalid(format!(
                    "{what}: holds the link to {}, so must be named after it",
                    link.peer.bic
                )));
            }
            if let Some(other) = links.iter().find(|l| l.peer.ca_pem == link.peer.ca_pem) {
                return Err(invalid(format!("{what}: the same CA is linked as {}", other.peer.bic)));
            }
            links.push(link);
        }
        Ok(links)
    }

    /// The `*.json` files of `DIR/links`, sorted; none when the folder does not exist.
    fn link_files(&self) -> Result<Vec<PathBuf>, PkiError> {
        let dir = self.links_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut paths = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let path = entry.map_err(|e| io_error(&dir, e))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                paths.push(path);
            }
        }
        if paths.len() > LINKS_MAX {
            return Err(invalid(format!("{}: more than {LINKS_MAX} links", dir.display())));
        }
        paths.sort();
        Ok(paths)
    }

    /// Checks a peer's bundle against this network (before anything else of a link is
    /// looked at): it is not this network, its BIC is no participant here, and it settles
    /// in another currency.
    pub fn check_link_peer(&self, peer: &LinkBundle) -> Result<(), PkiError> {
        let own = self.require_link_identity()?;
        let (own_ca, directory) = self.own_ca_and_directory()?;
        check_peer(&own, &own_ca, &directory, peer)
    }

    fn own_ca_and_directory(&self) -> Result<(CertificateDer<'static>, Directory), PkiError> {
        let own_ca = pem_certificates(&self.root().join("ca.pem"))?.remove(0);
        let directory = Directory::load(self.root()).map_err(|e| invalid(e.to_string()))?;
        Ok((own_ca, directory))
    }

    /// Configures a link: validates it whole against this network and writes
    /// `DIR/links/<PEERBIC>.json`. Refused, writing nothing, if anything is wrong or a
    /// link to that peer (by BIC or by CA) exists.
    pub fn add_link(&self, config: &LinkConfig) -> Result<(), PkiError> {
        let own = self.require_link_identity()?;
        let (own_ca, directory) = self.own_ca_and_directory()?;
        check_link(&own, &own_ca, &directory, config)?;
        let existing = self.links()?;
        if let Some(other) =
            existing.iter().find(|l| l.peer.bic == config.peer.bic || l.peer.ca_pem == config.peer.ca_pem)
        {
            return Err(invalid(format!(
                "this network already has a link to {} ({}): remove its file first to replace it",
                other.peer.bic,
                self.links_dir().join(format!("{}.json", other.peer.bic)).display()
            )));
        }
        if existing.len() >= LINKS_MAX {
            return Err(invalid(format!("this network has {LINKS_MAX} links, the most it may have")));
        }
        let dir = self.links_dir();
        create_dir(&dir)?;
        let path = dir.join(format!("{}.json", config.peer.bic));
        let side = dir.join(format!("{}.json.new", config.peer.bic));
        let _ = fs::remove_file(&side);
        let json = serde_json::to_string_pretty(&config.to_file()).expect("a link serialises");
        write_new(&side, json.as_bytes(), false)?;
        // A hard link never replaces a file: if another add won the race, this one fails.
        let linked = fs::hard_link(&side, &path).map_err(|e| io_error(&path, e));
        let _ = fs::remove_file(&side);
        linked?;
        sync_dir(&dir)
    }

    // -----------------------------------------------------------------------------------
    // TLS of a link session.

    fn link_certificate_and_key(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        self.require_link_identity()?;
        let dir = self.link_dir();
        let chain = pem_certificates(&dir.join("link.crt"))?;
        let key_path = dir.join("link.key");
        let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?)
            .map_err(|e| invalid(format!("{}: {e}", key_path.display())))?;
        Ok((chain, key))
    }

    /// Server-side mutual TLS of the link listener: this network's link certificate;
    /// a client certificate is required, and accepted only if it names a configured peer
    /// in its `corridor:link:` URI and chains to that peer's CA. A certificate of a third
    /// CA, a link certificate of one peer's CA naming another peer, or a bank or hub
    /// certificate of a peer, is refused. HTTP/2 by ALPN.
    pub fn link_server_config(&self, links: &[LinkConfig]) -> Result<rustls::ServerConfig, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = LinkClientVerifier::new(links, &provider)?;
        let (chain, key) = self.link_certificate_and_key()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS versions: {e}")))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(chain, key)
            .map_err(|e| invalid(format!("the link certificate: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    /// Client-side mutual TLS of a link dialer: this network's link certificate as the
    /// client identity; the server trusted only from the peer's CA, and only under the
    /// peer's link name ([`link_server_name`]), which the peer's bank and hub certificates
    /// do not carry.
    pub fn link_client_tls(&self, link: &LinkConfig) -> Result<ClientTlsConfig, PkiError> {
        self.require_link_identity()?;
        link.peer.validate()?;
        let dir = self.link_dir();
        let identity = Identity::from_pem(read(&dir.join("link.crt"))?, read(&dir.join("link.key"))?);
        Ok(ClientTlsConfig::new()
            .domain_name(link_server_name(link.peer.bic))
            .ca_certificate(Certificate::from_pem(link.peer.ca_pem.as_bytes()))
            .identity(identity))
    }
}

/// Reads a link file, refusing one larger than [`LINK_FILE_SIZE_MAX_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, PkiError> {
    let size = fs::metadata(path).map_err(|e| io_error(path, e))?.len();
    if size > LINK_FILE_SIZE_MAX_BYTES {
        return Err(invalid(format!(
            "{}: {size} bytes, more than a link file may hold ({LINK_FILE_SIZE_MAX_BYTES})",
            path.display()
        )));
    }
    read(path)
}

/// Reads a bundle file (`corridor link add --peer FILE`), bounded and validated.
pub fn read_bundle(path: &Path) -> Result<LinkBundle, PkiError> {
    let bytes = read_bounded(path)?;
    let what = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|_| invalid(format!("{what}: not UTF-8 text")))?;
    LinkBundle::from_json(&text, &what)
}

// ---------------------------------------------------------------------------------------
// The link listener's client certificate check.

/// Accepts a client certificate only through the verifier of the peer its link URI
/// names: each peer's verifier trusts that peer's CA alone.
#[derive(Debug)]
struct LinkClientVerifier {
    peers: Vec<(Bic, Arc<dyn ClientCertVerifier>)>,
    hints: Vec<DistinguishedName>,
}

impl LinkClientVerifier {
    fn new(links: &[LinkConfig], provider: &Arc<rustls::crypto::CryptoProvider>) -> Result<Self, PkiError> {
        if links.is_empty() {
            return Err(invalid("no link is configured: add one with `corridor link add`"));
        }
        let mut peers = Vec::new();
        let mut hints = Vec::new();
        for link in links {
            let ca = ca_certificate_der(&link.peer.ca_pem)
                .map_err(|e| invalid(format!("the CA of {}: {e}", link.peer.bic)))?;
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).map_err(|e| invalid(format!("the CA of {}: {e}", link.peer.bic)))?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::clone(provider),
            )
            .build()
            .map_err(|e| invalid(format!("the client verifier of {}: {e}", link.peer.bic)))?;
            hints.extend_from_slice(verifier.root_hint_subjects());
            peers.push((link.peer.bic, verifier));
        }
        Ok(Self { peers, hints })
    }

    /// Any peer's verifier: they share one crypto provider, so they check handshake
    /// signatures alike.
    fn any(&self) -> &dyn ClientCertVerifier {
        self.peers[0].1.as_ref()
    }
}

fn refused(reason: String) -> rustls::Error {
    let error = std::io::Error::new(std::io::ErrorKind::PermissionDenied, reason);
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(error))))
}

impl ClientCertVerifier for LinkClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let bic = link_bic_of_certificate(end_entity).ok_or_else(|| {
            refused("the client certificate is not a link certificate (no corridor:link: URI)".into())
        })?;
        let (_, verifier) = self
            .peers
            .iter()
            .find(|(peer, _)| *peer == bic)
            .ok_or_else(|| refused(format!("{bic} is not a configured link peer")))?;
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.any().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.any().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.any().supported_verify_schemes()
    }
}
