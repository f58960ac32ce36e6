//! `corridor demo`: a whole network in this process, told step by step (`--narrate`), run
//! from a scenario file (`--scenario`), or as a plain demo with its dashboard.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use corridor::sim::demo::{DemoConfig, render, start_demo};

use super::shutdown_signal;

/// The arguments of `corridor demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Number of banks (2 to 8).
    #[arg(long, default_value_t = DemoConfig::default().banks)]
    banks: usize,
    /// Number of payments.
    #[arg(long, default_value_t = DemoConfig::default().payments)]
    payments: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    seed: u64,
    /// `home`: each bank keeps accounts in its own country's currency, and payments
    /// convert under the hub's rate agreements; or one ISO 4217 code for every bank.
    #[arg(long, default_value_t = DemoConfig::default().currency)]
    currency: String,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Keep the demo's network (PKI and every node's data) in this new directory
    /// instead of a temporary one that is removed at the end.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Tell one payment step by step (what each message carries, who signs and checks
    /// what), then a rejection, a crash and recovery, and a reconciliation.
    #[arg(long, conflicts_with_all = ["scenario", "json"])]
    narrate: bool,
    /// Two national networks linked by their hubs: a Russian network in roubles and an
    /// Iranian one in rials, a payment each way, the link down and back, and a
    /// reconciliation of both (with --data: kept in DIR/russia and DIR/iran).
    #[arg(long, conflicts_with_all = ["narrate", "scenario", "banks", "payments", "seed", "currency"])]
    linked: bool,
    /// With --narrate: do not wait for Enter between steps.
    #[arg(long, requires = "narrate")]
    no_pause: bool,
    /// Run the network a scenario file describes (see scenarios/).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Where the hub serves its web dashboard (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    dashboard_addr: SocketAddr,
    /// Do not serve the dashboard.
    #[arg(long)]
    no_dashboard: bool,
}

/// Runs the demo (or the narration, or a scenario): exit 1 when it did not end well.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    if args.narrate {
        return narrate(args).await;
    }
    if args.linked {
        return linked(args).await;
    }
    if let Some(path) = args.scenario.clone() {
        let dashboard = (!args.no_dashboard).then_some(args.dashboard_addr);
        return scenario(&path, args.json, dashboard).await;
    }
    let DemoArgs { banks, payments, seed, currency, json, data, dashboard_addr, no_dashboard, .. } = args;
    let dashboard = (!no_dashboard).then_some(dashboard_addr);
    let config = DemoConfig { banks, payments, seed, currency, data, dashboard, ..DemoConfig::default() };
    let mut progress = |line: &str| {
        if !json {
            say!("{line}");
        }
    };
    let (summary, running) = start_demo(&config, &mut progress).await.map_err(|e| anyhow!(e))?;
    if json {
        say!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        say!("{}", render(&summary).trim_end());
    }
    // At a terminal, the network stays up for the dashboard until the user is done;
    // otherwise (a script, a test) the demo ends by itself.
    if let Some(url) = running.dashboard_url().filter(|_| !json && std::io::stdin().is_terminal()) {
        say!("\nThe network and its dashboard ({url}) stay up: press Enter to stop");
        wait_for_enter().await?;
    }
    running.stop(&mut progress).await.map_err(|e| anyhow!(e))?;
    Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Completes when the user presses Enter, or stops the process (SIGINT, SIGTERM).
async fn wait_for_enter() -> Result<()> {
    let stopped = shutdown_signal()?;
    // A plain thread, not a blocking task: the runtime does not wait for it at exit.
    let (pressed, enter) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = pressed.send(());
    });
    tokio::select! {
        _ = enter => {}
        () = stopped => {}
    }
    Ok(())
}

async fn narrate(args: DemoArgs) -> Result<ExitCode> {
    let config = corridor::sim::narrate::NarrateConfig { pause: !args.no_pause, data: args.data };
    let mut out = |line: &str| say!("{line}");
    let mut pause = || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    };
    let summary =
        corridor::sim::narrate::run_narrated(&config, &mut out, &mut pause).await.map_err(|e| anyhow!(e))?;
    // Like the demo: a reconciliation that finds a break is a failure.
    Ok(if summary.reconciliation.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn linked(args: DemoArgs) -> Result<ExitCode> {
    use corridor::sim::linked::{LinkedConfig, start_linked};
    let dashboard = (!args.no_dashboard).then_some(args.dashboard_addr);
    let config = LinkedConfig { data: args.data, dashboard };
    let json = args.json;
    let mut out = |line: &str| {
        if !json {
            say!("{line}");
        }
    };
    let (summary, running) = start_linked(&config, &mut out).await.map_err(|e| anyhow!(e))?;
    if json {
        say!("{}", serde_json::to_string_pretty(&summary)?);
    }
    // As the demo: at a terminal, both networks stay up for the dashboard until Enter.
    if let Some(url) = running.dashboard_url().filter(|_| !json && std::io::stdin().is_terminal()) {
        say!("\nBoth networks and their dashboard ({url}) stay up: press Enter to stop");
        wait_for_enter().await?;
    }
    running.stop(&mut out).await.map_err(|e| anyhow!(e))?;
    Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn scenario(path: &std::path::Path, json: bool, dashboard: Option<SocketAddr>) -> Result<ExitCode> {
    use corridor::sim::scenario::{RunOptions, Scenario, start_scenario};
    let scenario = Scenario::load(path).map_err(|e| anyhow!(e))?;
    let mut progress = |line: &str| {
        if !json {
            say!("{line}");
        }
    };
    let options = RunOptions { dashboard };
    let (summary, running) =
        start_scenario(&scenario, &options, &mut progress).await.map_err(|e| anyhow!(e))?;
    if json {
        say!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        say!("{}", summary.render().trim_end());
    }
    // As the demo: at a terminal, the network stays up for the dashboard until Enter.
    if let Some(url) = running.dashboard_url().filter(|_| !json && std::io::stdin().is_terminal()) {
        say!("\nThe network and its dashboard ({url}) stay up: press Enter to stop");
        wait_for_enter().await?;
    }
    running.stop().await.map_err(|e| anyhow!(e))?;
    Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
