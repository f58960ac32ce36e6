//! `corridor loadgen`: the load generator, against a network of its own or running banks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;
use corridor::directory::Directory;
use corridor::sim::loadgen::{self, LoadgenConfig};

use super::bank_urls;

/// The arguments of `corridor loadgen`.
#[derive(Args, Clone)]
pub struct LoadgenArgs {
    /// Banks of its own network (2 to 8).
    #[arg(long, default_value_t = LoadgenConfig::default().banks)]
    banks: usize,
    /// Payments per second (open loop); without it, as fast as the network takes them.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds to measure, after the warm-up.
    #[arg(long, default_value_t = LoadgenConfig::default().duration.as_secs_f64())]
    duration: f64,
    /// Measure this many payments instead of a duration.
    #[arg(long)]
    payments: Option<u64>,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = LoadgenConfig::default().warmup.as_secs_f64())]
    warmup: f64,
    /// Closed loop: payments in flight at once.
    #[arg(long, default_value_t = LoadgenConfig::default().in_flight_max)]
    in_flight: usize,
    /// Seconds to measure each ceiling (0 skips them).
    #[arg(long, default_value_t = LoadgenConfig::default().ceiling_duration.as_secs_f64())]
    ceiling_secs: f64,
    /// Seed of the choice of senders and receivers.
    #[arg(long, default_value_t = LoadgenConfig::default().seed)]
    seed: u64,
    /// ISO 4217 code of every payment (1 unit each) and of the accounts it opens.
    #[arg(long, default_value_t = LoadgenConfig::default().currency)]
    currency: String,
    /// Deposit of each LOADGEN-n account it opens, in the currency's units.
    #[arg(long, default_value_t = LoadgenConfig::default().deposit)]
    deposit: String,
    /// Share of measured payments (0 to 1) that may end rejected or refused; above it
    /// the run exits 1.
    #[arg(long, default_value_t = LoadgenConfig::default().rejected_share_max)]
    max_rejected_share: f64,
    /// Seconds a bank may stay unreachable under the run (it is reconnected meanwhile);
    /// longer, and the run ends with its report marked aborted and exits 1.
    #[arg(long, default_value_t = LoadgenConfig::default().outage_max.as_secs_f64())]
    outage_max_secs: f64,
    /// A running network's directory (with --hub and --bank): drive it instead of
    /// starting one.
    #[arg(long, requires_all = ["hub", "banks_running"])]
    dir: Option<PathBuf>,
    /// The running network's hub URL (with --dir): each bank's position is checked there.
    #[arg(long, requires = "dir")]
    hub: Option<String>,
    /// A running bank as BIC=URL, once per bank (with --dir). Fund them at the hub first.
    #[arg(long = "bank", value_name = "BIC=URL", id = "banks_running", requires = "dir")]
    banks_running: Vec<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the load and prints its report. Exits 1 when the run failed (aborted after its
/// load started, no payment completed, or more rejected than --max-rejected-share),
/// after the report; 2 when it could not start, with one line that says why.
pub async fn run(args: LoadgenArgs) -> Result<ExitCode> {
    let config = match config_of(args.clone()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = match loadgen::run(&config, &|line: &str| eprintln!("{line}")).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say!("{}", report.render());
    }
    Ok(match report.problem(config.rejected_share_max) {
        Some(problem) => {
            eprintln!("error: {problem}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    })
}

/// The run the flags ask for.
fn config_of(args: LoadgenArgs) -> Result<LoadgenConfig> {
    let LoadgenArgs {
        banks,
        rate,
        duration,
        payments,
        warmup,
        in_flight,
        ceiling_secs,
        seed,
        currency,
        deposit,
        max_rejected_share,
        outage_max_secs,
        dir,
        hub,
        banks_running,
        json: _,
    } = args;
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| anyhow!("{flag} must be a number of seconds, 0 or more"))
    };
    let target = match dir {
        Some(dir) => {
            let directory = Directory::load(&dir)?;
            let banks = bank_urls(&directory, &banks_running)?;
            let hub = hub.ok_or_else(|| anyhow!("--dir needs --hub, the hub's URL"))?;
            Some(loadgen::Target { dir, hub, banks })
        }
        None => None,
    };
    let config = LoadgenConfig {
        banks,
        rate_per_s: rate,
        duration: seconds(duration, "--duration")?,
        payments,
        warmup: seconds(warmup, "--warmup")?,
        in_flight_max: in_flight,
        ceiling_duration: seconds(ceiling_secs, "--ceiling-secs")?,
        seed,
        currency,
        deposit,
        rejected_share_max: max_rejected_share,
        outage_max: seconds(outage_max_secs, "--outage-max-secs")?,
        target,
    };
    config.validate().map_err(|e| anyhow!(e))?;
    Ok(config)
}
