//! `corridor reconcile` (the hub and every bank agree) and `corridor audit` (every archived
//! message verifies against the key valid when it was created).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use corridor::directory::Directory;
use corridor::hub;
use corridor::model::Bic;
use corridor::reconcile::Scope;
use corridor::tls::NetworkDir;

use super::{bank_urls, parse_bic};

/// The arguments of `corridor audit`.
#[derive(Args)]
pub struct AuditArgs {
    /// Network directory.
    #[arg(long)]
    dir: PathBuf,
    /// The hub's data directory [default: DIR/data/hub].
    #[arg(long)]
    data: Option<PathBuf>,
}

/// The arguments of `corridor reconcile`.
#[derive(Args)]
pub struct ReconcileArgs {
    /// Network directory (directory file and operator certificate).
    #[arg(long)]
    dir: PathBuf,
    /// The running hub's URL; without it, reads stopped nodes' data offline.
    #[arg(long, requires = "banks")]
    hub: Option<String>,
    /// A running bank as BIC=URL, once per bank (with --hub).
    #[arg(long = "bank", value_name = "BIC=URL", requires = "hub")]
    banks: Vec<String>,
    /// Offline: the data root holding hub/ and banks/<BIC>/ [default: DIR/data].
    #[arg(long, conflicts_with = "hub")]
    data: Option<PathBuf>,
    /// Compare only these participants' records with the hub's (live: exactly the --bank
    /// banks; offline: each needs a store); the others are listed as not checked, not as
    /// breaks [default: every participant].
    #[arg(long, value_delimiter = ',', value_name = "BIC,BIC")]
    participants: Vec<String>,
    /// Live: how long to wait for payments in transit to settle, in seconds.
    #[arg(long, default_value_t = 10)]
    wait_secs: u64,
    /// Also compare this network's running hub (--hub) with the hub of a network linked
    /// to it: that network's directory (its operator certificate reads its hub)...
    #[arg(long, requires_all = ["hub", "linked_hub"])]
    linked_dir: Option<PathBuf>,
    /// ...and that network's hub URL. The two hubs must agree on every payment across the
    /// link and on the swap line.
    #[arg(long, requires = "linked_dir")]
    linked_hub: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Audits a stopped hub's journal: exit 1 when a message fails.
pub fn audit(args: AuditArgs) -> Result<ExitCode> {
    let network = NetworkDir::new(args.dir);
    let directory = network.directory()?;
    let data = args.data.unwrap_or_else(|| network.hub_data_dir());
    let report = hub::audit_journal(&directory, &data).map_err(|e| anyhow!(e))?;
    say!("{} archived messages verified against the keys valid when they were created", report.verified);
    for (message_id, problem) in &report.failed {
        say!("FAILED {message_id}: {problem}");
    }
    Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Reconciles and prints the report: exit 0 clean, 1 breaks found, 2 could not run.
pub async fn run(args: ReconcileArgs) -> Result<ExitCode> {
    let json = args.json;
    // Exit status 2 when it could not run, so that 1 always means breaks found.
    let report = match reconcile(args).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: cannot reconcile: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say!("{}", report.render().trim_end());
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn reconcile(args: ReconcileArgs) -> Result<corridor::reconcile::Report> {
    use corridor::reconcile::{reconcile_in_scope, sources};
    let ReconcileArgs { dir, hub, banks, data, participants, wait_secs, linked_dir, linked_hub, json: _ } =
        args;
    let network = NetworkDir::new(dir);
    let directory = network.directory()?;
    if let (Some(hub), Some(linked_dir), Some(linked_hub)) = (&hub, linked_dir, linked_hub) {
        let mut report = network_report(&network, &directory, hub, &banks, &participants, wait_secs).await?;
        let linked = NetworkDir::new(linked_dir);
        let wait = std::time::Duration::from_secs(wait_secs);
        let across = sources::reconcile_link_live((&network, hub), (&linked, &linked_hub), wait)
            .await
            .map_err(|e| anyhow!(e))?;
        report.breaks.extend(across.breaks);
        report.payments_in_transit += across.payments_in_transit;
        return Ok(report);
    }
    let Some(hub) = hub else {
        let data = data.unwrap_or_else(|| network.root().join("data"));
        let scope = scope(&directory, &participants)?;
        let (hub, views) =
            sources::offline_in_scope(&directory, &data.join("hub"), &data.join("banks"), &scope)
                .map_err(|e| anyhow!(e))?;
        return Ok(reconcile_in_scope(&hub, &views, &scope));
    };
    network_report(&network, &directory, &hub, &banks, &participants, wait_secs).await
}

/// Reconciles the running network: its hub at `hub` and its banks at `banks`.
async fn network_report(
    network: &NetworkDir,
    directory: &Directory,
    hub: &str,
    banks: &[String],
    participants: &[String],
    wait_secs: u64,
) -> Result<corridor::reconcile::Report> {
    use corridor::reconcile::sources;
    let scope = scope(directory, participants)?;
    let nodes = bank_urls(directory, banks)?;
    if let Scope::Only(listed) = &scope {
        let given: BTreeSet<Bic> = nodes.iter().map(|(bic, _)| *bic).collect();
        if let Some(bic) = given.difference(listed).next() {
            bail!("--bank {bic}=...: {bic} is not in --participants");
        }
        if let Some(bic) = listed.difference(&given).next() {
            bail!("--participants names {bic}, but no --bank {bic}=URL says where to read it");
        }
    }
    let wait = std::time::Duration::from_secs(wait_secs);
    sources::reconcile_live_in_scope(network, hub, &nodes, wait, &scope).await.map_err(|e| anyhow!(e))
}

/// `--participants` as a scope: every participant when empty.
fn scope(directory: &Directory, participants: &[String]) -> Result<Scope> {
    if participants.is_empty() {
        return Ok(Scope::Every);
    }
    let mut listed = BTreeSet::new();
    for text in participants {
        let bic = parse_bic(text.trim(), "--participants")?;
        if !directory.is_participant(bic) {
            bail!("--participants: {bic} is not a participant of this network");
        }
        listed.insert(bic);
    }
    Ok(Scope::Only(listed))
}
