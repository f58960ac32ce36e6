//! `corridor loadgen`: the load generator, against a network of its own or running banks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;
use corridor::directory::Directory;
use corridor::sim::loadgen::{self, LoadgenConfig};

use super::bank_urls;

/// The arguments of `corridor loadgen`.
#[derive(Args)]
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
    /// A running network's directory (with --bank): drive it instead of starting one.
    #[arg(long, requires = "banks_running")]
    dir: Option<PathBuf>,
    /// A running bank as BIC=URL, once per bank (with --dir). Fund them at the hub first.
    #[arg(long = "bank", value_name = "BIC=URL", id = "banks_running", requires = "dir")]
    banks_running: Vec<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the load and prints its report.
pub async fn run(args: LoadgenArgs) -> Result<()> {
    let LoadgenArgs {
        banks,
        rate,
        duration,
        payments,
        warmup,
        in_flight,
        ceiling_secs,
        seed,
        dir,
        banks_running,
        json,
    } = args;
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| anyhow!("{flag} must be a number of seconds, 0 or more"))
    };
    let target = match dir {
        Some(dir) => {
            let directory = Directory::load(&dir)?;
            let banks = bank_urls(&directory, &banks_running)?;
            Some(loadgen::Target { dir, banks })
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
        target,
    };
    let report = loadgen::run(&config, &|line: &str| eprintln!("{line}")).await.map_err(|e| anyhow!(e))?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        say!("{}", report.render());
    }
    Ok(())
}
