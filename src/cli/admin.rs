//! `corridor admin ...` (the hub operator's control of the hub) and `corridor track` (a
//! payment's path through the hub): the commands that speak to the hub.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use corridor::model::{CurrencyPair, Rate, wire};
use corridor::net::{admin_client, tracker_client};
use corridor::pb;
use corridor::tls::NetworkDir;

use super::json::{self, AgreementState, agreement_state};
use super::output::{minor, money, statement_text, table_row};
use super::{JsonArgs, PeriodArgs};

/// Where the hub is and who we are.
#[derive(Args)]
pub struct HubArgs {
    /// Network directory (for the operator certificate).
    #[arg(long)]
    dir: PathBuf,
    /// The hub's URL, for example https://127.0.0.1:7000.
    #[arg(long)]
    hub: String,
}

/// The arguments of `corridor admin`.
#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    hub: HubArgs,
    #[command(subcommand)]
    action: AdminCommand,
}

/// The arguments of `corridor track`.
#[derive(Args)]
pub struct TrackArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// The payment's UETR.
    uetr: String,
    /// For a payment across a link: the linked network's directory (its operator
    /// certificate reads its hub)...
    #[arg(long, requires = "linked_hub")]
    linked_dir: Option<PathBuf>,
    /// ...and its hub's URL: the path is shown whole, both hubs' steps in time order.
    #[arg(long, requires = "linked_dir")]
    linked_hub: Option<String>,
    #[command(flatten)]
    output: JsonArgs,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Add prefunded liquidity to a participant's position.
    Fund(AmountArgs),
    /// Take liquidity back (refused if the position could not cover its reservations).
    Defund(AmountArgs),
    /// Set a participant's net debit cap in a currency ("0" for none).
    Cap(AmountArgs),
    /// Refuse new payments from and to a participant.
    Suspend(ParticipantArgs),
    /// Lift a suspension.
    Resume(ParticipantArgs),
    /// Close the settlement window (deferred net) and print its report.
    CloseWindow,
    /// Every position.
    Positions(JsonArgs),
    /// The report of every closed settlement window.
    Reports(JsonArgs),
    /// A participant's settlement statement from the hub's journal.
    Statement {
        #[command(flatten)]
        participant: ParticipantArgs,
        /// ISO 4217 code.
        #[arg(long)]
        currency: String,
        #[command(flatten)]
        period: PeriodArgs,
        #[command(flatten)]
        output: JsonArgs,
    },
    /// Set a currency pair's rate agreement; prints it with its applied rate.
    ///
    /// It replaces the pair's previous agreement. While it is in force, payments
    /// instructed in the first currency settle in the second at the applied rate: the
    /// rate less the spread. The other direction (IRR/RUB) takes an agreement of its own.
    Agreement(AgreementArgs),
    /// Every rate agreement, in force or not.
    Agreements(JsonArgs),
}

/// The arguments of `admin agreement`.
#[derive(Args)]
pub struct AgreementArgs {
    /// FROM/TO, for example RUB/IRR: payments instructed in RUB settle in IRR.
    #[arg(long)]
    pair: String,
    /// Units of TO per unit of FROM, decimal text, for example 512.25.
    #[arg(long)]
    rate: String,
    /// The network's margin in basis points (hundredths of a percent), taken off the
    /// rate: 0 to 9999.
    #[arg(long, default_value_t = 0)]
    spread_bps: u32,
    /// In force from (inclusive), RFC 3339 such as 2026-11-28T09:00:00Z [default: now].
    #[arg(long)]
    valid_from: Option<String>,
    /// In force until (exclusive), RFC 3339 [default: without end].
    #[arg(long)]
    valid_until: Option<String>,
}

#[derive(Args)]
pub struct ParticipantArgs {
    /// The participant's BIC.
    #[arg(long)]
    participant: String,
}

#[derive(Args)]
pub struct AmountArgs {
    /// The participant's BIC.
    #[arg(long)]
    participant: String,
    /// ISO 4217 code.
    #[arg(long)]
    currency: String,
    /// Decimal text, for example 1000000.00.
    #[arg(long)]
    amount: String,
}

/// Follows a payment through the hub's tracker.
pub async fn track(args: TrackArgs) -> Result<()> {
    let TrackArgs { hub, uetr, linked_dir, linked_hub, output } = args;
    let both = linked_dir.is_some();
    let mut tracked = track_at(&NetworkDir::new(&hub.dir), &hub.hub, &uetr, both).await?;
    if let (Some(dir), Some(url)) = (linked_dir, linked_hub) {
        let here = network_name(&NetworkDir::new(&hub.dir))?;
        let linked = NetworkDir::new(dir);
        let there = network_name(&linked)?;
        let other =
            track_at(&linked, &url, &uetr, true).await.map_err(|e| anyhow!("--linked-hub {url}: {e:#}"))?;
        for step in &mut tracked.steps {
            step.detail = format!("[{here}] {}", step.detail);
        }
        tracked.steps.extend(other.steps.into_iter().map(|mut step| {
            step.detail = format!("[{there}] {}", step.detail);
            step
        }));
        tracked.steps.sort_by_key(|step| step.time_unix_ms);
    }
    if output.json {
        return json::print(&json::Track::from(&tracked));
    }
    let p = tracked.payment.unwrap_or_default();
    let amount = if p.exchange_rate.is_empty() {
        money(p.amount.as_ref())
    } else {
        format!(
            "{} converted at {} into {}",
            money(p.instructed_amount.as_ref()),
            p.exchange_rate,
            money(p.amount.as_ref())
        )
    };
    say!("{}  {amount} from {} to {}", p.uetr, p.sender_bic, p.receiver_bic);
    for step in tracked.steps {
        say!(
            "{}  {:<23} {:<12} {}",
            wire::format_unix_ms(step.time_unix_ms),
            step.step,
            step.by_bic,
            step.detail
        );
    }
    Ok(())
}

/// The tracker's answer for `uetr` at the hub of `network` at `url` (with the steps of the
/// hub across a link too, unless `this_hub_only`).
async fn track_at(
    network: &NetworkDir,
    url: &str,
    uetr: &str,
    this_hub_only: bool,
) -> Result<pb::TrackResponse> {
    let mut client = tracker_client(network, url).await.map_err(|e| anyhow!(e))?;
    Ok(client
        .track(pb::TrackRequest { uetr: uetr.to_owned(), this_hub_only })
        .await
        .map_err(hub_status)?
        .into_inner())
}

/// How a linked network is named in a path across the link: its link identity.
fn network_name(network: &NetworkDir) -> Result<String> {
    let identity = network.link_identity()?;
    let identity = identity.ok_or_else(|| anyhow!("{} has no link identity", network.root().display()))?;
    Ok(format!("{} {}", identity.bic, identity.name))
}

fn hub_status(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unimplemented => anyhow!("that server is not a Corridor hub: is --hub the hub's URL?"),
        code => anyhow!("{} ({code:?})", s.message()),
    }
}

/// The hub operator's commands.
pub async fn run(args: AdminArgs) -> Result<()> {
    let AdminArgs { hub, action } = args;
    let mut client = admin_client(&NetworkDir::new(&hub.dir), &hub.hub).await.map_err(|e| anyhow!(e))?;
    let position = |response: pb::PositionResponse| position_line(&response.position.unwrap_or_default());
    match action {
        AdminCommand::Fund(a) => {
            let request =
                pb::FundRequest { participant_bic: a.participant, currency: a.currency, amount: a.amount };
            say!("{}", position(client.fund(request).await.map_err(hub_status)?.into_inner()));
        }
        AdminCommand::Defund(a) => {
            let request =
                pb::FundRequest { participant_bic: a.participant, currency: a.currency, amount: a.amount };
            say!("{}", position(client.defund(request).await.map_err(hub_status)?.into_inner()));
        }
        AdminCommand::Cap(a) => {
            let request = pb::SetNetDebitCapRequest {
                participant_bic: a.participant,
                currency: a.currency,
                cap: a.amount,
            };
            say!("{}", position(client.set_net_debit_cap(request).await.map_err(hub_status)?.into_inner()));
        }
        AdminCommand::Suspend(p) => {
            let request = pb::SuspendRequest { participant_bic: p.participant };
            let r = client.suspend(request).await.map_err(hub_status)?.into_inner();
            say!("{} is suspended", r.participant_bic);
        }
        AdminCommand::Resume(p) => {
            let request = pb::SuspendRequest { participant_bic: p.participant };
            let r = client.resume(request).await.map_err(hub_status)?.into_inner();
            say!("{} is resumed", r.participant_bic);
        }
        AdminCommand::CloseWindow => {
            let report =
                client.close_window(pb::CloseWindowRequest {}).await.map_err(hub_status)?.into_inner();
            say!("{}", report_text(&report).trim_end());
        }
        AdminCommand::Positions(output) => positions(&mut client, output.json).await?,
        AdminCommand::Reports(output) => reports(&mut client, output.json).await?,
        AdminCommand::Statement { participant, currency, period, output } => {
            let request = pb::HubStatementRequest {
                participant_bic: participant.participant,
                currency,
                from_time_unix_ms: period.from_ms,
                to_time_unix_ms: period.to_ms,
            };
            let statement = client.get_statement(request).await.map_err(hub_status)?.into_inner();
            if output.json {
                return json::print(&json::Statement::from(&statement));
            }
            say!("{}", statement_text(&statement).trim_end());
        }
        AdminCommand::Agreement(args) => set_agreement(&mut client, args).await?,
        AdminCommand::Agreements(output) => agreements(&mut client, output.json).await?,
    }
    Ok(())
}

type AdminClient = pb::hub_admin_service_client::HubAdminServiceClient<tonic::transport::Channel>;

/// `admin agreement`: checks the flags, sets the agreement, prints it.
async fn set_agreement(client: &mut AdminClient, args: AgreementArgs) -> Result<()> {
    let AgreementArgs { pair, rate, spread_bps, valid_from, valid_until } = args;
    // Checked here too, so that a mistake names the flag and never reaches the hub.
    let pair = CurrencyPair::parse(&pair).map_err(|e| anyhow!("--pair: {}", e.rule))?;
    let parsed = Rate::parse(&rate).map_err(|e| anyhow!("--rate: {}", e.rule))?;
    parsed.less_spread(spread_bps).map_err(|e| anyhow!("--spread-bps: {}", e.rule))?;
    let time = |text: Option<String>, flag: &str| -> Result<i64> {
        let Some(text) = text else { return Ok(0) };
        let unix_ms = wire::parse_unix_ms(&text, flag).map_err(|e| anyhow!("{e}"))?;
        if unix_ms <= 0 {
            bail!("{flag}: must be after 1970-01-01T00:00:00Z (got {text:?})");
        }
        Ok(unix_ms)
    };
    let (from, until) = (time(valid_from, "--valid-from")?, time(valid_until, "--valid-until")?);
    if until != 0 && until <= if from == 0 { corridor::clock::unix_ms_now() } else { from } {
        bail!("--valid-until: must be after --valid-from (which is now when not given)");
    }
    let agreement = pb::RateAgreement {
        currency_pair: pair.to_string(),
        rate,
        spread_bps,
        valid_from_unix_ms: from,
        valid_until_unix_ms: until,
        applied_rate: String::new(),
    };
    let request = pb::SetAgreementRequest { agreement: Some(agreement) };
    let r = client.set_agreement(request).await.map_err(hub_status)?.into_inner();
    say!("{}", agreement_line(&r.agreement.unwrap_or_default()));
    Ok(())
}

/// `admin positions`.
async fn positions(client: &mut AdminClient, json: bool) -> Result<()> {
    let r = client.list_positions(pb::ListPositionsRequest {}).await.map_err(hub_status)?.into_inner();
    if json {
        return json::print(&json::Positions::from(&r));
    }
    say!("settlement: {}, open window {}", model_name(r.model), r.open_window_id);
    for p in &r.positions {
        say!("{}", position_line(p));
    }
    for fx in &r.fx_positions {
        say!("fx account {}  settled net {}", fx.currency_pair, minor(fx.settled_net, &fx.currency));
    }
    Ok(())
}

/// `admin reports`.
async fn reports(client: &mut AdminClient, json: bool) -> Result<()> {
    let request = pb::ListSettlementReportsRequest {};
    let r = client.list_settlement_reports(request).await.map_err(hub_status)?.into_inner();
    if json {
        return json::print(&json::Reports::from(&r));
    }
    say!("settlement: {}, {} closed windows", model_name(r.model), r.reports.len());
    for report in &r.reports {
        say!("{}", report_text(report).trim_end());
    }
    Ok(())
}

/// `admin agreements`.
async fn agreements(client: &mut AdminClient, json: bool) -> Result<()> {
    let r = client.list_agreements(pb::ListAgreementsRequest {}).await.map_err(hub_status)?.into_inner();
    let now = corridor::clock::unix_ms_now();
    if json {
        return json::print(&json::Agreements::at(&r.agreements, now));
    }
    if r.agreements.is_empty() {
        say!("no rate agreements");
    }
    for line in agreements_table(&r.agreements, now) {
        say!("{line}");
    }
    Ok(())
}

/// `RUB/IRR  rate 512.25 less 25 bps = applied rate 510.969375, in force from ... until ...`.
fn agreement_line(a: &pb::RateAgreement) -> String {
    format!(
        "{}  rate {} less {} bps = applied rate {}, in force from {} {}",
        a.currency_pair,
        a.rate,
        a.spread_bps,
        a.applied_rate,
        wire::format_unix_ms(a.valid_from_unix_ms),
        match a.valid_until_unix_ms {
            0 => "without end".to_owned(),
            until => format!("until {}", wire::format_unix_ms(until)),
        }
    )
}

/// The agreements as a table with a header, each said to be in force or not at `now`.
fn agreements_table(agreements: &[pb::RateAgreement], now: i64) -> Vec<String> {
    if agreements.is_empty() {
        return Vec::new();
    }
    let rows: Vec<[String; 7]> = agreements
        .iter()
        .map(|a| {
            let until = a.valid_until_unix_ms;
            let state = match agreement_state(a, now) {
                AgreementState::NotYet => "not yet",
                AgreementState::Expired => "expired",
                AgreementState::InForce => "in force",
            };
            [
                a.currency_pair.clone(),
                a.rate.clone(),
                format!("{} bps", a.spread_bps),
                a.applied_rate.clone(),
                wire::format_unix_ms(a.valid_from_unix_ms),
                if until == 0 { "-".to_owned() } else { wire::format_unix_ms(until) },
                state.to_owned(),
            ]
        })
        .collect();
    let header =
        ["pair", "rate", "spread", "applied rate", "valid from", "valid until", "now"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    [header].iter().chain(&rows).map(|row| table_row(row, &widths)).collect()
}

fn model_name(model: i32) -> &'static str {
    match pb::SettlementModel::try_from(model) {
        Ok(pb::SettlementModel::DeferredNet) => "deferred net",
        _ => "gross",
    }
}

fn position_line(p: &pb::Position) -> String {
    let c = &p.currency;
    let suspended = if p.suspended { "  SUSPENDED" } else { "" };
    if c.is_empty() {
        return format!("{}{suspended}", p.participant_bic);
    }
    format!(
        "{}  available {}  (liquidity {}, net debit cap {}, reserved {}, window net {}; settled net {}){suspended}",
        p.participant_bic,
        minor(p.available, c),
        minor(p.liquidity, c),
        minor(p.net_debit_cap, c),
        minor(p.reserved, c),
        minor(p.window_net, c),
        minor(p.settled_net, c),
    )
}

fn report_text(r: &pb::SettlementReport) -> String {
    let mut text = format!(
        "window {} ({} to {})\n",
        r.window_id,
        wire::format_unix_ms(r.opened_unix_ms),
        wire::format_unix_ms(r.closed_unix_ms)
    );
    for l in &r.lines {
        let (c, net) = (&l.currency, l.net);
        text += &format!(
            "  {}  sent {}  received {}  net {}\n",
            l.participant_bic,
            minor(l.sent, c),
            minor(l.received, c),
            minor(net, c)
        );
    }
    for fx in &r.fx_lines {
        text += &format!("  fx account {}  net {}\n", fx.currency_pair, minor(fx.settled_net, &fx.currency));
    }
    for t in &r.totals {
        let c = &t.currency;
        text += &format!(
            "  {c}: {} payments, gross {}, net {}, netting saved {}\n",
            t.payments,
            minor(t.gross, c),
            minor(t.net, c),
            minor(t.saved, c)
        );
    }
    text
}
