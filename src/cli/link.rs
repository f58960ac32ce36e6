//! `corridor link ...`: joining two networks. A network gets a link identity (`init`),
//! hands its bundle to the peer (`export`), configures the link to the peer's bundle with
//! the bilateral agreement (`add`), and shows its links (`list`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use corridor::model::{Amount, Currency, CurrencyPair, MessageType, Rate, format_minor_units};
use corridor::tls::NetworkDir;
use corridor::tls::link::{self, LINK_MESSAGE_TYPES, LinkConfig, LinkIdentity};
use serde::Serialize;

use super::{JsonArgs, json, parse_bic};

#[derive(Subcommand)]
pub enum LinkCommand {
    /// Give the network a link identity: its central bank as a linked network sees it,
    /// with a link certificate from the network's CA.
    Init(InitArgs),
    /// Write the bundle a peer network needs to link to this one: the link identity, the
    /// network CA and the hub's signing keys (JSON, on stdout or to --out).
    Export(ExportArgs),
    /// Configure a link to a peer network from its bundle, with the agreement's two rates
    /// and the swap line's cap.
    Add(AddArgs),
    /// This network's link identity and links.
    List(ListArgs),
}

#[derive(Args)]
pub struct InitArgs {
    /// Network directory (made by `corridor pki init`).
    #[arg(long)]
    dir: PathBuf,
    /// The link BIC: the network's central bank, e.g. CBRFRUMMXXX (not a participant's).
    #[arg(long)]
    bic: String,
    /// Display name, e.g. "Bank of Russia".
    #[arg(long)]
    name: String,
    /// The currency the network settles in, e.g. RUB.
    #[arg(long)]
    currency: String,
    #[command(flatten)]
    json: JsonArgs,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Network directory.
    #[arg(long)]
    dir: PathBuf,
    /// Write the bundle to this new file instead of stdout (never replaces a file).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct AddArgs {
    /// Network directory.
    #[arg(long)]
    dir: PathBuf,
    /// The peer network's bundle (its `corridor link export`).
    #[arg(long)]
    peer: PathBuf,
    /// A rate of the agreement, `FROM/TO=RATE`: both directions, e.g. `--rate RUB/IRR=450
    /// --rate IRR/RUB=0.0022`.
    #[arg(long = "rate", required = true)]
    rates: Vec<String>,
    /// The swap line's cap in this network's currency, e.g. 10000000.00.
    #[arg(long)]
    cap: String,
    /// The peer's link listener, `https://HOST:PORT`: this hub dials it. Without it, the
    /// peer dials this hub.
    #[arg(long)]
    peer_url: Option<String>,
    /// The message types this network's banks accept from the peer network
    /// (default: pacs.008, pacs.002, pacs.004, camt.056, camt.029).
    #[arg(long, value_delimiter = ',')]
    accepts: Option<Vec<String>>,
    #[command(flatten)]
    json: JsonArgs,
}

#[derive(Args)]
pub struct ListArgs {
    /// Network directory.
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    json: JsonArgs,
}

/// Runs one `link` command.
pub fn run(command: LinkCommand) -> Result<()> {
    match command {
        LinkCommand::Init(args) => init(args),
        LinkCommand::Export(args) => export(args),
        LinkCommand::Add(args) => add(args),
        LinkCommand::List(args) => list(args),
    }
}

/// The network at `dir`, if `dir` holds one (a clear error instead of a missing file's).
fn network(dir: &Path) -> Result<NetworkDir> {
    if !dir.join(corridor::directory::DIRECTORY_FILE).is_file() || !dir.join("ca.pem").is_file() {
        bail!("--dir {}: not a network directory (create one with `corridor pki init`)", dir.display());
    }
    Ok(NetworkDir::new(dir))
}

fn init(args: InitArgs) -> Result<()> {
    network(&args.dir)?;
    let bic = parse_bic(&args.bic, "--bic")?;
    let currency = Currency::parse(&args.currency).map_err(|e| anyhow!("--currency: {}", e.rule))?;
    let identity = link::init(&args.dir, bic, &args.name, currency)?;
    if args.json.json {
        return json::print(&IdentityJson::from(&identity));
    }
    say!(
        "created the link identity {} ({}, {}) in {}",
        identity.bic,
        identity.name,
        identity.currency,
        args.dir.join(link::LINK_DIR).display()
    );
    Ok(())
}

fn export(args: ExportArgs) -> Result<()> {
    let bundle = network(&args.dir)?.link_bundle()?;
    let text = bundle.to_json();
    let Some(out) = args.out else {
        say!("{text}");
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out)
        .with_context(|| format!("--out {}: cannot create it (it must not exist yet)", out.display()))?;
    use std::io::Write as _;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("--out {}", out.display()))?;
    say!("wrote the link bundle of {} to {}", bundle.bic, out.display());
    Ok(())
}

fn add(args: AddArgs) -> Result<()> {
    let network = network(&args.dir)?;
    let own = network.link_identity()?.ok_or_else(|| {
        anyhow!("{} has no link identity: run `corridor link init` first", args.dir.display())
    })?;
    let peer = link::read_bundle(&args.peer).map_err(|e| anyhow!("--peer: {e}"))?;
    network.check_link_peer(&peer).map_err(|e| anyhow!("--peer: {e}"))?;
    let (rate_out, rate_in) = rates(&args.rates, own.currency, peer.currency)?;
    let cap = Amount::parse(&args.cap, own.currency).map_err(|e| anyhow!("--cap: {}", e.rule))?;
    if let Some(url) = &args.peer_url {
        link::check_peer_url(url).map_err(|e| anyhow!("--peer-url: {e}"))?;
    }
    let accepts = match &args.accepts {
        None => LINK_MESSAGE_TYPES.to_vec(),
        Some(codes) => codes
            .iter()
            .map(|code| MessageType::parse(code.trim()).map_err(|e| anyhow!("--accepts: {}", e.rule)))
            .collect::<Result<Vec<_>>>()?,
    };
    let config = LinkConfig { peer, peer_url: args.peer_url, rate_out, rate_in, cap, accepts };
    network.add_link(&config)?;
    if args.json.json {
        return json::print(&LinkJson::from(&config));
    }
    say!("linked: {}", describe(&config));
    Ok(())
}

/// The two `--rate FROM/TO=RATE` of a link: own -> peer first, then peer -> own.
fn rates(
    texts: &[String],
    own: Currency,
    peer: Currency,
) -> Result<((CurrencyPair, Rate), (CurrencyPair, Rate))> {
    let expected = format!("{own}/{peer} and {peer}/{own}");
    let mut out = None;
    let mut back = None;
    for text in texts {
        let (pair, rate) = text
            .split_once('=')
            .ok_or_else(|| anyhow!("--rate {text:?}: expected FROM/TO=RATE, like {own}/{peer}=450"))?;
        let pair = CurrencyPair::parse(pair.trim()).map_err(|e| anyhow!("--rate {text:?}: {}", e.rule))?;
        let rate = Rate::parse(rate.trim()).map_err(|e| anyhow!("--rate {text:?}: {}", e.rule))?;
        let slot = match (pair.from, pair.to) {
            (from, to) if from == own && to == peer => &mut out,
            (from, to) if from == peer && to == own => &mut back,
            _ => bail!("--rate {text:?}: this link's rates are {expected}"),
        };
        if slot.replace((pair, rate)).is_some() {
            bail!("--rate: {pair} is given twice");
        }
    }
    match (out, back) {
        (Some(out), Some(back)) => Ok((out, back)),
        _ => bail!("--rate: a link needs both rates, {expected}"),
    }
}

fn list(args: ListArgs) -> Result<()> {
    let network = network(&args.dir)?;
    let identity = network.link_identity()?;
    let links = network.links()?;
    if args.json.json {
        return json::print(&ListJson {
            identity: identity.as_ref().map(IdentityJson::from),
            links: links.iter().map(LinkJson::from).collect(),
        });
    }
    match &identity {
        None => say!("no link identity (create one with `corridor link init`)"),
        Some(identity) => say!("link identity {} ({}, {})", identity.bic, identity.name, identity.currency),
    }
    for link in &links {
        say!("{}", describe(link));
    }
    Ok(())
}

/// `link init --json`, and the identity of `link list --json`.
#[derive(Serialize)]
struct IdentityJson {
    bic: String,
    name: String,
    currency: String,
}

impl From<&LinkIdentity> for IdentityJson {
    fn from(identity: &LinkIdentity) -> Self {
        Self {
            bic: identity.bic.to_string(),
            name: identity.name.clone(),
            currency: identity.currency.to_string(),
        }
    }
}

/// One rate of a link.
#[derive(Serialize)]
struct RateJson {
    pair: String,
    rate: String,
}

/// `link add --json`, and each link of `link list --json`. The cap is money as the other
/// documents carry it: minor units, its text beside, the currency.
#[derive(Serialize)]
struct LinkJson {
    peer_bic: String,
    peer_name: String,
    peer_currency: String,
    peer_url: Option<String>,
    rates: Vec<RateJson>,
    cap: i64,
    cap_text: String,
    currency: String,
    accepts: Vec<String>,
}

impl From<&LinkConfig> for LinkJson {
    fn from(link: &LinkConfig) -> Self {
        let rate =
            |(pair, rate): &(CurrencyPair, Rate)| RateJson { pair: pair.to_string(), rate: rate.to_string() };
        Self {
            peer_bic: link.peer.bic.to_string(),
            peer_name: link.peer.name.clone(),
            peer_currency: link.peer.currency.to_string(),
            peer_url: link.peer_url.clone(),
            rates: vec![rate(&link.rate_out), rate(&link.rate_in)],
            cap: link.cap.minor_units(),
            cap_text: format_minor_units(link.cap.minor_units(), link.cap.currency()),
            currency: link.cap.currency().to_string(),
            accepts: link.accepts.iter().map(|t| t.code().to_owned()).collect(),
        }
    }
}

/// `link list --json`: the identity (`null` before `link init`) and every link.
#[derive(Serialize)]
struct ListJson {
    identity: Option<IdentityJson>,
    links: Vec<LinkJson>,
}

/// One link in a line: the peer, the agreement's rates and cap, what this network's banks
/// accept from the peer, and who dials.
fn describe(link: &LinkConfig) -> String {
    format!(
        "link to {} ({}, {})  {}={}  {}={}  cap {} {}  accepts {}  {}",
        link.peer.bic,
        link.peer.name,
        link.peer.currency,
        link.rate_out.0,
        link.rate_out.1,
        link.rate_in.0,
        link.rate_in.1,
        format_minor_units(link.cap.minor_units(), link.cap.currency()),
        link.cap.currency(),
        link.accepts.iter().map(|t| t.code()).collect::<Vec<_>>().join(","),
        link.peer_url.as_deref().map_or("(the peer dials)".to_owned(), |url| format!("dials {url}"))
    )
}
