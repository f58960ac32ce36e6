//! Linked networks' PKI and configuration (issue 23, item 1): each network keeps its own
//! CA; `corridor link init` gives it a link identity and certificate, `link export` the
//! bundle a peer needs, `link add` the link with its agreement, `link list` shows them.
//! Checked with real files made by `corridor pki init`, as a user makes them: the round
//! trip across two networks, and that bad input of every kind gets a clear error and
//! changes nothing (DESIGN.md, "Guarantees").
#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::cli::{corridor, files_under, json_document, refused, refused_in_one_line, succeeded, text};
use corridor::directory::DirectoryFile;
use corridor::model::{Amount, Bic, Currency, CurrencyPair, MessageType, Rate};
use corridor::tls::link::{self, LinkBundle, LinkConfig};
use corridor::tls::{NetworkDir, role_of_certificate};
use serde_json::{Value, json};
use tempfile::TempDir;

const RU_LINK: &str = "CBRFRUMMXXX";
const IR_LINK: &str = "BMJIIRTHXXX";
const RU_BANKS: &str = "BANKRUMMXXX,SBERRUMMXXX";
const IR_BANKS: &str = "BANKIRTHXXX,MELIIRTHXXX";

/// Two networks made by `corridor pki init` in one temporary folder: ru/ and ir/.
struct Networks {
    temp: TempDir,
}

impl Networks {
    fn new() -> Self {
        let temp = tempfile::tempdir().expect("a temporary directory");
        for (name, banks) in [("ru", RU_BANKS), ("ir", IR_BANKS)] {
            let dir = temp.path().join(name);
            succeeded(corridor(&["pki", "init", "--dir", text(&dir), "--participants", banks]));
        }
        Self { temp }
    }

    fn ru(&self) -> PathBuf {
        self.temp.path().join("ru")
    }

    fn ir(&self) -> PathBuf {
        self.temp.path().join("ir")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// Both link identities, and each network's bundle exported to ru.bundle / ir.bundle.
    fn with_identities(self) -> Self {
        init(&self.ru(), RU_LINK, "Bank of Russia", "RUB");
        init(&self.ir(), IR_LINK, "Bank Markazi", "IRR");
        for name in ["ru", "ir"] {
            let out = self.path(&format!("{name}.bundle"));
            succeeded(corridor(&["link", "export", "--dir", text(&self.path(name)), "--out", text(&out)]));
        }
        self
    }

    /// Every file under both networks and beside them.
    fn files(&self) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        files_under(self.temp.path())
    }
}

fn init(dir: &Path, bic: &str, name: &str, currency: &str) -> Value {
    json_document(corridor(&[
        "link",
        "init",
        "--dir",
        text(dir),
        "--bic",
        bic,
        "--name",
        name,
        "--currency",
        currency,
        "--json",
    ]))
}

/// `corridor link add` of RU to IR's bundle, with `extra` flags after the required ones.
fn add_args<'a>(dir: &'a Path, bundle: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "link",
        "add",
        "--dir",
        text(dir),
        "--peer",
        text(bundle),
        "--rate",
        "RUB/IRR=450",
        "--rate",
        "IRR/RUB=0.0022",
        "--cap",
        "10000000.00",
    ];
    args.extend_from_slice(extra);
    args
}

/// The round trip a user makes: both networks get a link identity, export their bundles,
/// add each other's, and list what they have. The files hold what the spec says
/// (link-spec: identity.json, link.crt/key, links/<PEER>.json), the library reads back
/// exactly what the commands wrote, and the bundle carries the hub's keys as
/// directory.json lists them.
#[test]
fn two_networks_link_to_each_other_by_init_export_add_and_list() {
    let networks = Networks::new();
    let identity = init(&networks.ru(), RU_LINK, "Bank of Russia", "RUB");
    assert_eq!(identity, json!({"bic": RU_LINK, "name": "Bank of Russia", "currency": "RUB"}));
    init(&networks.ir(), IR_LINK, "Bank Markazi", "IRR");
    let (ru, ir) = (NetworkDir::new(networks.ru()), NetworkDir::new(networks.ir()));
    for (dir, bic) in [(&ru, RU_LINK), (&ir, IR_LINK)] {
        let pem = fs::read(dir.link_dir().join("link.crt")).unwrap();
        let der: rustls::pki_types::CertificateDer<'static> =
            rustls::pki_types::pem::PemObject::from_pem_slice(&pem).expect("link.crt is a PEM certificate");
        assert_eq!(role_of_certificate(&der), None);
        assert_eq!(link::link_bic_of_certificate(&der), Some(Bic::parse(bic).unwrap()));
        let mode = fs::metadata(dir.link_dir().join("link.key")).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    }

    // export: to stdout and to a file, the same bundle.
    let stdout = succeeded(corridor(&["link", "export", "--dir", text(&networks.ir())]));
    let ir_bundle = networks.path("ir.bundle");
    let said =
        succeeded(corridor(&["link", "export", "--dir", text(&networks.ir()), "--out", text(&ir_bundle)]));
    assert!(said.contains(IR_LINK), "{said}");
    assert_eq!(stdout, fs::read_to_string(&ir_bundle).unwrap());
    let bundle: Value = serde_json::from_str(&stdout).unwrap();
    let directory = DirectoryFile::read(&networks.ir()).unwrap();
    assert_eq!(bundle["version"], 1);
    assert_eq!(bundle["bic"], IR_LINK);
    assert_eq!(bundle["currency"], "IRR");
    assert_eq!(bundle["ca_certificate"], fs::read_to_string(networks.ir().join("ca.pem")).unwrap());
    assert_eq!(bundle["hub_keys"], serde_json::to_value(&directory.hub.keys).unwrap());
    let ru_bundle = networks.path("ru.bundle");
    succeeded(corridor(&["link", "export", "--dir", text(&networks.ru()), "--out", text(&ru_bundle)]));

    // add: RU dials IR; IR accepts fewer message types and waits to be dialled.
    let added = json_document(corridor(&add_args(
        &networks.ru(),
        &ir_bundle,
        &["--peer-url", "https://127.0.0.1:7401", "--json"],
    )));
    assert_eq!(added["peer_bic"], IR_LINK);
    assert_eq!(added["cap"], 1_000_000_000);
    assert_eq!(added["cap_text"], "10000000.00");
    assert_eq!(added["currency"], "RUB");
    let ir_dir = networks.ir();
    let ir_add = [
        "link",
        "add",
        "--dir",
        text(&ir_dir),
        "--peer",
        text(&ru_bundle),
        "--rate",
        "IRR/RUB=0.0022",
        "--rate",
        "RUB/IRR=450",
        "--cap",
        "4500000000",
        "--accepts",
        "pacs.008,pacs.002",
    ];
    succeeded(corridor(&ir_add));

    let file: Value =
        serde_json::from_slice(&fs::read(ru.links_dir().join(format!("{IR_LINK}.json"))).unwrap()).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["peer"], bundle, "the link file holds the peer's bundle as exported");
    assert_eq!(file["peer_url"], "https://127.0.0.1:7401");
    assert_eq!(
        file["rates"],
        json!([{"pair": "RUB/IRR", "rate": "450"}, {"pair": "IRR/RUB", "rate": "0.0022"}])
    );
    assert_eq!(file["cap"], "10000000.00");
    assert_eq!(file["accepts"], json!(["pacs.008", "pacs.002", "pacs.004", "camt.056", "camt.029"]));

    // The library reads back what the commands wrote.
    let rub = Currency::parse("RUB").unwrap();
    let irr = Currency::parse("IRR").unwrap();
    let expected = LinkConfig {
        peer: link::read_bundle(&ir_bundle).unwrap(),
        peer_url: Some("https://127.0.0.1:7401".into()),
        rate_out: (CurrencyPair::new(rub, irr).unwrap(), Rate::parse("450").unwrap()),
        rate_in: (CurrencyPair::new(irr, rub).unwrap(), Rate::parse("0.0022").unwrap()),
        cap: Amount::parse("10000000.00", rub).unwrap(),
        accepts: link::LINK_MESSAGE_TYPES.to_vec(),
    };
    assert_eq!(ru.links().unwrap(), vec![expected]);
    assert_eq!(ir.link_bundle().unwrap(), link::read_bundle(&ir_bundle).unwrap());
    let ir_links = ir.links().unwrap();
    assert_eq!(ir_links.len(), 1);
    assert_eq!(ir_links[0].peer.bic.as_str(), RU_LINK);
    assert_eq!(ir_links[0].peer_url, None);
    assert_eq!(
        ir_links[0].rate_out.0,
        CurrencyPair::new(irr, rub).unwrap(),
        "own -> peer, whatever the flags' order"
    );
    assert_eq!(ir_links[0].accepts, vec![MessageType::Pacs008, MessageType::Pacs002]);

    // list: text and JSON.
    let listed = succeeded(corridor(&["link", "list", "--dir", text(&networks.ru())]));
    assert!(listed.contains(&format!("link identity {RU_LINK}")) && listed.contains(IR_LINK), "{listed}");
    let listed = json_document(corridor(&["link", "list", "--dir", text(&networks.ir()), "--json"]));
    assert_eq!(listed["identity"]["bic"], IR_LINK);
    assert_eq!(listed["links"][0]["peer_bic"], RU_LINK);
    assert_eq!(listed["links"][0]["peer_url"], Value::Null);
    assert_eq!(listed["links"][0]["cap"], 450_000_000_000_i64);
    assert_eq!(listed["links"][0]["accepts"], json!(["pacs.008", "pacs.002"]));
}

/// Before `link init` a network has no identity and no links: `list` says so, `export`
/// and `add` refuse and point at `link init`.
#[test]
fn a_network_without_a_link_identity_lists_none_and_refuses_export_and_add() {
    let networks = Networks::new();
    let listed = json_document(corridor(&["link", "list", "--dir", text(&networks.ru()), "--json"]));
    assert_eq!(listed, json!({"identity": null, "links": []}));
    let before = networks.files();
    let error = refused_in_one_line(corridor(&["link", "export", "--dir", text(&networks.ru())]));
    assert!(error.contains("link init"), "{error}");
    fs::write(networks.path("x.bundle"), "{}").unwrap();
    let before_add = networks.files();
    let error = refused_in_one_line(corridor(&add_args(&networks.ru(), &networks.path("x.bundle"), &[])));
    assert!(error.contains("link init"), "{error}");
    assert_eq!(networks.files(), before_add);
    assert_eq!(before.len() + 1, before_add.len());
}

/// `link init` refuses, changing nothing: a directory that is no network, a bad BIC, a BIC
/// a participant or the hub already has, an empty, control-character or too long name, a
/// bad currency, and a second init (even with other values).
#[test]
fn link_init_refuses_garbage_and_a_second_init_changing_nothing() {
    let networks = Networks::new();
    let ru = networks.ru();
    let long_name = "x".repeat(141);
    let nowhere = networks.path("nowhere");
    let (ru_text, nowhere_text) = (text(&ru), text(&nowhere));
    let cases = [
        (nowhere_text, RU_LINK, "B", "RUB", "not a network directory"),
        (ru_text, "NOTABIC", "B", "RUB", "--bic"),
        (ru_text, "BANKRUMMXXX", "B", "RUB", "participant"),
        (ru_text, "CRDRZZ00XXX", "B", "RUB", "the hub"),
        (ru_text, RU_LINK, "", "RUB", "name"),
        (ru_text, RU_LINK, "Bank\nof Russia", "RUB", "control"),
        (ru_text, RU_LINK, &long_name, "RUB", "140"),
        (ru_text, RU_LINK, "B", "ROUBLES", "--currency"),
        (ru_text, RU_LINK, "B", "XAU", "--currency"),
    ];
    let before = networks.files();
    for (dir, bic, name, currency, expected) in cases {
        let args = ["link", "init", "--dir", dir, "--bic", bic, "--name", name, "--currency", currency];
        let error = refused_in_one_line(corridor(&args));
        assert!(error.contains(expected), "{args:?}: {error}");
        assert_eq!(networks.files(), before, "{args:?} changed a file");
    }
    let error = refused(corridor(&["link", "init", "--dir", text(&ru), "--bic", RU_LINK]));
    assert!(error.contains("--name"), "clap names the missing flag: {error}");

    init(&ru, RU_LINK, "Bank of Russia", "RUB");
    let after_first = networks.files();
    for (bic, currency) in [(RU_LINK, "RUB"), ("CBRFRUM2XXX", "USD")] {
        let second =
            ["link", "init", "--dir", text(&ru), "--bic", bic, "--name", "Other", "--currency", currency];
        let error = refused_in_one_line(corridor(&second));
        assert!(error.contains("already has a link identity"), "{error}");
        assert_eq!(networks.files(), after_first, "a second init changed a file");
    }
}

/// `link add` refuses every bad flag with an error that names it, and writes nothing: rates
/// that are not FROM/TO=RATE, not a rate, the wrong pairs, one direction missing or given
/// twice; a zero, negative, over-precise or foreign cap; a URL that is not
/// https://HOST:PORT; message types that are unknown, cannot cross a link, repeat, or are
/// none; a bundle file that does not exist.
#[test]
fn link_add_refuses_every_bad_flag_and_writes_nothing() {
    let networks = Networks::new().with_identities();
    let (ru, bundle) = (networks.ru(), networks.path("ir.bundle"));
    let rates = |a: &'static str, b: &'static str| ["--rate", a, "--rate", b];
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["link", "add", "--dir", text(&ru), "--peer", text(&bundle)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let cap = ["--cap", "1000.00"];
    let cases: Vec<(Vec<&'static str>, &str)> = vec![
        ([&rates("RUB/IRR:450", "IRR/RUB=0.0022")[..], &cap].concat(), "FROM/TO=RATE"),
        ([&rates("RUB/IRR=abc", "IRR/RUB=0.0022")[..], &cap].concat(), "--rate"),
        ([&rates("RUB/IRR=0", "IRR/RUB=0.0022")[..], &cap].concat(), "greater than zero"),
        ([&rates("RUB/IRR=-1", "IRR/RUB=0.0022")[..], &cap].concat(), "--rate"),
        ([&rates("RUB-IRR=450", "IRR/RUB=0.0022")[..], &cap].concat(), "FROM/TO"),
        ([&rates("RUB/USD=90", "IRR/RUB=0.0022")[..], &cap].concat(), "RUB/IRR and IRR/RUB"),
        ([&rates("RUB/IRR=450", "RUB/IRR=451")[..], &cap].concat(), "twice"),
        ([&["--rate", "RUB/IRR=450"][..], &cap].concat(), "both rates"),
        ([&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &["--cap", "0"]].concat(), "positive"),
        ([&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &["--cap=-5"]].concat(), "--cap"),
        ([&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &["--cap", "1.001"]].concat(), "decimal places"),
        ([&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &["--cap", "lots"]].concat(), "--cap"),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--peer-url", "http://127.0.0.1:7401"]]
                .concat(),
            "--peer-url",
        ),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--peer-url", "https://127.0.0.1"]]
                .concat(),
            "port",
        ),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--peer-url", "https://127.0.0.1:7401/x"]]
                .concat(),
            "no path",
        ),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--peer-url", "not a url"]].concat(),
            "--peer-url",
        ),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--accepts", "pacs.009"]].concat(),
            "--accepts",
        ),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--accepts", "camt.053"]].concat(),
            "cannot cross a link",
        ),
        (
            [&rates("RUB/IRR=450", "IRR/RUB=0.0022")[..], &cap, &["--accepts", "pacs.008,pacs.008"]].concat(),
            "twice",
        ),
    ];
    let before = networks.files();
    for (extra, expected) in &cases {
        let args = base(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let error = refused_in_one_line(corridor(&args));
        assert!(error.contains(expected), "{extra:?}: {error}");
        assert_eq!(networks.files(), before, "{extra:?} changed a file");
    }
    let missing_bundle = networks.path("missing.bundle");
    let missing = add_args(&ru, &missing_bundle, &[]);
    let error = refused_in_one_line(corridor(&missing));
    assert!(error.contains("--peer") && error.contains("missing.bundle"), "{error}");
    let error =
        refused(corridor(&["link", "add", "--dir", text(&ru), "--peer", text(&bundle), "--cap", "1"]));
    assert!(error.contains("--rate"), "clap names the missing flag: {error}");
    assert_eq!(networks.files(), before);
}

/// A bundle is checked whole before anything is written: JSON that is not a bundle, an
/// unknown field, another version, a bad BIC, currency or name, a CA certificate that is
/// not PEM, not a CA (a bank's certificate), or two certificates, hub keys that
/// directory.json would refuse (none, bad hex, a weak key, one listed twice), and a file
/// too large to be one.
#[test]
fn link_add_refuses_garbage_bundles_and_writes_nothing() {
    let networks = Networks::new().with_identities();
    let good: Value = serde_json::from_str(&fs::read_to_string(networks.path("ir.bundle")).unwrap()).unwrap();
    let bank_certificate = fs::read_to_string(networks.ir().join("banks/BANKIRTHXXX/tls.pem")).unwrap();
    let ca = good["ca_certificate"].as_str().unwrap().to_owned();
    let key = good["hub_keys"][0].clone();
    let with = |field: &str, value: Value| {
        let mut bundle = good.clone();
        bundle[field] = value;
        bundle.to_string()
    };
    let mut unknown = good.clone();
    unknown["extra"] = json!(1);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not a link bundle"),
        ("[]".into(), "not a link bundle"),
        (json!({"version": 1}).to_string(), "missing field"),
        (unknown.to_string(), "unknown field"),
        (with("version", json!(2)), "version 2"),
        (with("bic", json!("BMJI")), "bic"),
        (with("currency", json!("XYZ")), "currency"),
        (with("name", json!("")), "name"),
        (with("ca_certificate", json!("garbage")), "ca_certificate"),
        (
            with("ca_certificate", json!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
            "ca_certificate",
        ),
        (with("ca_certificate", json!(bank_certificate)), "not a CA certificate"),
        (with("ca_certificate", json!(format!("{ca}{ca}"))), "exactly one"),
        (with("hub_keys", json!([])), "no signing key"),
        (with("hub_keys", json!([{"key_id": "k1", "public_key": "zz"}])), "64 hexadecimal"),
        (with("hub_keys", json!([{"key_id": "k1", "public_key": "00".repeat(32)}])), "hub_keys"),
        (with("hub_keys", json!([key.clone(), key])), "twice"),
        (" ".repeat(300 * 1024), "more than a link file may hold"),
    ];
    let before = networks.files();
    for (index, (contents, expected)) in cases.iter().enumerate() {
        let path = networks.path(&format!("garbage-{index}.bundle"));
        fs::write(&path, contents).unwrap();
        let error = refused_in_one_line(corridor(&add_args(&networks.ru(), &path, &[])));
        assert!(error.contains(expected) && error.contains("--peer"), "case {index}: {error}");
        fs::remove_file(&path).unwrap();
        assert_eq!(networks.files(), before, "case {index} changed a file");
    }
}

/// A network does not link to itself (its own bundle: same link BIC and CA, or its CA
/// under another BIC), nor to a peer whose link BIC is one of its own participants, nor to
/// a peer in its own currency; and a second link to the same peer (by BIC, or by CA under
/// another BIC) is refused. Each refusal writes nothing.
#[test]
fn link_add_refuses_its_own_network_a_clashing_peer_and_a_second_link() {
    let networks = Networks::new().with_identities();
    let own: Value = serde_json::from_str(&fs::read_to_string(networks.path("ru.bundle")).unwrap()).unwrap();
    let peer: Value = serde_json::from_str(&fs::read_to_string(networks.path("ir.bundle")).unwrap()).unwrap();
    let variant = |base: &Value, changes: &[(&str, Value)]| {
        let mut bundle = base.clone();
        for (field, value) in changes {
            bundle[*field] = value.clone();
        }
        bundle.to_string()
    };
    let cases = [
        (own.to_string(), "own link BIC"),
        (variant(&own, &[("bic", json!("OTHRRUMMXXX")), ("currency", json!("IRR"))]), "own CA"),
        (variant(&peer, &[("bic", json!("BANKRUMMXXX"))]), "participant"),
        (variant(&peer, &[("bic", json!("CRDRZZ00XXX"))]), "the hub"),
        (variant(&peer, &[("currency", json!("RUB"))]), "two currencies"),
    ];
    let before = networks.files();
    for (index, (contents, expected)) in cases.iter().enumerate() {
        let path = networks.path(&format!("clash-{index}.bundle"));
        fs::write(&path, contents).unwrap();
        let error = refused_in_one_line(corridor(&add_args(&networks.ru(), &path, &[])));
        assert!(error.contains(expected), "case {index}: {error}");
        fs::remove_file(&path).unwrap();
        assert_eq!(networks.files(), before, "case {index} changed a file");
    }

    succeeded(corridor(&add_args(&networks.ru(), &networks.path("ir.bundle"), &[])));
    let after_first = networks.files();
    let error = refused_in_one_line(corridor(&add_args(&networks.ru(), &networks.path("ir.bundle"), &[])));
    assert!(error.contains("already has a link to BMJIIRTHXXX"), "{error}");
    let same_ca = networks.path("same-ca.bundle");
    fs::write(&same_ca, variant(&peer, &[("bic", json!("BMJIIRT2XXX"))])).unwrap();
    let with_bundle = networks.files();
    let error = refused_in_one_line(corridor(&add_args(&networks.ru(), &same_ca, &[])));
    assert!(error.contains("already has a link to BMJIIRTHXXX"), "{error}");
    assert_eq!(networks.files(), with_bundle);
    assert_eq!(after_first.len() + 1, with_bundle.len());
}

/// The files under link/ and links/ are checked whole whenever they are read: a damaged
/// identity or link file, one named after another peer, or one with a field this build
/// does not know, makes `list` (and the next `add`, and the library's `links()`) refuse
/// with the file's name, rather than run a link on half of it.
#[test]
fn damaged_link_files_are_refused_by_name() {
    let networks = Networks::new().with_identities();
    succeeded(corridor(&add_args(&networks.ru(), &networks.path("ir.bundle"), &[])));
    let ru = NetworkDir::new(networks.ru());
    let link_file = ru.links_dir().join(format!("{IR_LINK}.json"));
    let good = fs::read_to_string(&link_file).unwrap();
    let value: Value = serde_json::from_str(&good).unwrap();
    let edit = |field: &str, replacement: Value| {
        let mut link = value.clone();
        link[field] = replacement;
        link.to_string()
    };
    let cases = [
        ("garbage".to_owned(), "not a link file"),
        (edit("version", json!(7)), "version 7"),
        (edit("rates", json!([{"pair": "RUB/IRR", "rate": "450"}])), "IRR/RUB exactly once"),
        (
            edit(
                "rates",
                json!([{"pair": "RUB/IRR", "rate": "450"}, {"pair": "IRR/RUB", "rate": "1"}, {"pair": "IRR/RUB", "rate": "2"}]),
            ),
            "exactly once",
        ),
        (edit("cap", json!("0")), "cap"),
        (edit("accepts", json!([])), "at least one"),
        (edit("peer_url", json!("ftp://x")), "peer URL"),
        (edit("surprise", json!(true)), "unknown field"),
    ];
    for (contents, expected) in &cases {
        fs::write(&link_file, contents).unwrap();
        let error = refused_in_one_line(corridor(&["link", "list", "--dir", text(&networks.ru())]));
        assert!(error.contains(expected) && error.contains(&format!("{IR_LINK}.json")), "{error}");
        assert!(ru.links().is_err());
    }
    fs::write(&link_file, &good).unwrap();
    fs::rename(&link_file, ru.links_dir().join("ZZZZRUMMXXX.json")).unwrap();
    let error = refused_in_one_line(corridor(&["link", "list", "--dir", text(&networks.ru())]));
    assert!(error.contains("named after it"), "{error}");
    let before = networks.files();
    let error = refused_in_one_line(corridor(&add_args(&networks.ru(), &networks.path("ir.bundle"), &[])));
    assert!(error.contains("named after it"), "the next add reads every link first: {error}");
    assert_eq!(networks.files(), before);

    let identity = ru.link_dir().join("identity.json");
    fs::write(&identity, r#"{"version":1,"bic":"CBRF","name":"x","currency":"RUB"}"#).unwrap();
    let error = refused_in_one_line(corridor(&["link", "list", "--dir", text(&networks.ru())]));
    assert!(error.contains("identity.json") && error.contains("bic"), "{error}");
}

/// `link export --out` never replaces a file (the PKI never overwrites), and a directory
/// that is no network is refused.
#[test]
fn link_export_never_replaces_a_file() {
    let networks = Networks::new().with_identities();
    let out = networks.path("ir.bundle");
    let before = networks.files();
    let error = refused_in_one_line(corridor(&[
        "link",
        "export",
        "--dir",
        text(&networks.ru()),
        "--out",
        text(&out),
    ]));
    assert!(error.contains("must not exist"), "{error}");
    let error = refused_in_one_line(corridor(&["link", "export", "--dir", text(&networks.path("nowhere"))]));
    assert!(error.contains("not a network directory"), "{error}");
    assert_eq!(networks.files(), before);
}

/// A link certificate is never a participant's: role_of_certificate gives no role for it,
/// so it opens no bank, hub or operator session (spec: "a NEW prefix"). Even a certificate
/// that carried both a link URI and a bank's URI stands for nobody on either side.
#[test]
fn a_link_certificate_has_no_participant_role() {
    let networks = Networks::new();
    init(&networks.ru(), RU_LINK, "Bank of Russia", "RUB");
    let pem = fs::read(networks.ru().join("link/link.crt")).unwrap();
    let der: rustls::pki_types::CertificateDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    assert_eq!(role_of_certificate(&der), None);
    assert_eq!(link::link_bic_of_certificate(&der), Some(Bic::parse(RU_LINK).unwrap()));

    let bank_pem = fs::read(networks.ru().join("banks/BANKRUMMXXX/tls.pem")).unwrap();
    let bank: rustls::pki_types::CertificateDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(&bank_pem).unwrap();
    assert!(role_of_certificate(&bank).is_some());
    assert_eq!(link::link_bic_of_certificate(&bank), None, "a bank certificate is no link's");

    let both =
        certificate_with_uris(&networks.ru(), &["urn:corridor:bic:BANKRUMMXXX", "corridor:link:CBRFRUMMXXX"]);
    assert_eq!(role_of_certificate(&both), None);
    assert_eq!(link::link_bic_of_certificate(&both), None);
    let two =
        certificate_with_uris(&networks.ru(), &["corridor:link:CBRFRUMMXXX", "corridor:link:BMJIIRTHXXX"]);
    assert_eq!(link::link_bic_of_certificate(&two), None, "a certificate names one link");
}

/// A certificate from `network`'s CA with the given SAN URIs.
fn certificate_with_uris(network: &Path, uris: &[&str]) -> rustls::pki_types::CertificateDer<'static> {
    let ca_pem = fs::read_to_string(network.join("ca.pem")).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&fs::read_to_string(network.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    for uri in uris {
        params.subject_alt_names.push(rcgen::SanType::URI((*uri).try_into().unwrap()));
    }
    let key = rcgen::KeyPair::generate().unwrap();
    params.signed_by(&key, &issuer).unwrap().der().clone()
}

/// The library refuses what the command line refuses: add_link re-checks a config built
/// in code (a bundle with a bad CA, rates in the wrong direction, a cap in the peer's
/// currency, camt.053 accepted), since the hub may build one without the CLI.
#[test]
fn add_link_checks_a_config_built_in_code() {
    let networks = Networks::new().with_identities();
    let ru = NetworkDir::new(networks.ru());
    let (rub, irr) = (Currency::parse("RUB").unwrap(), Currency::parse("IRR").unwrap());
    let good = LinkConfig {
        peer: link::read_bundle(&networks.path("ir.bundle")).unwrap(),
        peer_url: None,
        rate_out: (CurrencyPair::new(rub, irr).unwrap(), Rate::parse("450").unwrap()),
        rate_in: (CurrencyPair::new(irr, rub).unwrap(), Rate::parse("0.0022").unwrap()),
        cap: Amount::parse("100", rub).unwrap(),
        accepts: vec![MessageType::Pacs008],
    };
    let bad: Vec<(LinkConfig, &str)> = vec![
        (
            LinkConfig { peer: LinkBundle { ca_pem: "x".into(), ..good.peer.clone() }, ..good.clone() },
            "ca_certificate",
        ),
        (LinkConfig { rate_out: good.rate_in, rate_in: good.rate_out, ..good.clone() }, "rates must be"),
        (LinkConfig { cap: Amount::parse("100", irr).unwrap(), ..good.clone() }, "cap"),
        (LinkConfig { accepts: vec![MessageType::Camt053], ..good.clone() }, "cannot cross"),
        (LinkConfig { peer_url: Some("https://h:1/path".into()), ..good.clone() }, "no path"),
    ];
    let before = networks.files();
    for (config, expected) in bad {
        let error = ru.add_link(&config).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert_eq!(networks.files(), before);
    }
    ru.add_link(&good).unwrap();
    assert_eq!(ru.links().unwrap(), vec![good]);
}
