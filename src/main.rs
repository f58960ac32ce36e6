//! The `corridor` command line: parse, set up tracing, dispatch to the command's group in
//! `cli/`, which calls the library.

mod cli;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command, admin, demo, edge, iso20022, link, loadgen, nodes, operator, pki, reconcile};

/// mimalloc: the hot path allocates and frees small buffers (frames, envelopes, records)
/// on one thread and frees them on another. With the system allocator, malloc and free
/// were 13% of a closed-loop `loadgen`'s CPU samples; mimalloc gave 6% more payments/s
/// (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A panic is a broken invariant: the state in memory can no longer be trusted, so the
    // whole process stops rather than serve on with one task dead (crash-only).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("error: corridor stopped on a broken invariant (a bug); please report it");
        std::process::exit(70);
    }));
    init_tracing(if cli.command.runs_a_node() { "info" } else { "warn" });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let colour = log_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).init();
}

/// Whether log lines carry ANSI colour codes: only for a person at a terminal, and never
/// when `NO_COLOR` is set to anything non-empty (no-color.org). A log written to a file or
/// a pipe is plain text that `grep` and log collectors read as it is.
fn log_colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Runs one command; the exit code says how it ended.
async fn execute(command: Command) -> Result<ExitCode> {
    match command {
        Command::Pki(command) => pki::run(command)?,
        Command::Hub(args) => nodes::run_hub(args).await?,
        Command::Bank(args) => nodes::run_bank(args).await?,
        Command::Audit(args) => return reconcile::audit(args),
        Command::Reconcile(args) => return reconcile::run(args).await,
        Command::OpenAccount(args) => operator::open_account(args).await?,
        Command::BlockAccount(args) => operator::block_account(args).await?,
        Command::Pay(args) => operator::pay(args).await?,
        Command::Quote(args) => operator::quote(args).await?,
        Command::Return(args) => operator::return_payment(args).await?,
        Command::Recall(args) => operator::recall(args).await?,
        Command::AnswerRecall(args) => operator::answer_recall(args).await?,
        Command::Status(args) => operator::payment_status(args).await?,
        Command::Export(args) => edge::export(args).await?,
        Command::Balances(args) => operator::balances(args).await?,
        Command::Payments(args) => operator::payments(args).await?,
        Command::Statement(args) => operator::statement(args).await?,
        Command::Admin(args) => admin::run(args).await?,
        Command::Track(args) => admin::track(args).await?,
        Command::Loadgen(args) => return loadgen::run(args).await,
        Command::Demo(args) => return demo::run(args).await,
        Command::Iso20022(command) => return iso20022::run(command),
        Command::Link(command) => link::run(command)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Colour only at a terminal, and `NO_COLOR` with any non-empty value turns it off
    /// there too (an empty value does not, as no-color.org says). Issue 19, item 8: logs
    /// piped to a file carried ANSI codes.
    #[test]
    fn logs_are_coloured_only_at_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsString::new())));
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(true, Some("false".into())), "any non-empty value disables colour");
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsString::new())));
    }
}
