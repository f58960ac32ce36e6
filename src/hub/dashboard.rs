//! The hub's web dashboard: participants and their connections, the live message flow,
//! throughput and latency, positions, a payment's path by UETR, the last reconciliation.
//! Served over plain HTTP on `--dashboard-addr` (loopback by default), updated live with
//! server-sent events; every script and style is vendored under `src/hub/dashboard/`
//! (compiled in with `include_str!`), so the page works offline. It is read-only: every
//! route is a GET, and nothing it serves changes the hub.
//!
//! # Routes
//!
//! - `GET /`: the page. `GET /assets/dashboard.js`, `GET /assets/dashboard.css`: its
//!   script and style.
//! - `GET /api/state`: a JSON snapshot: `hub`, `settlement_model`, `participants`
//!   (`bic`, `name`, `country`: the ISO 3166 code in its BIC, `currencies`: those it
//!   holds a position in at the hub, `connected`), `messages` (`accepted_total`, `refused_total`,
//!   `refused_type_unknown`, `by_type`: `type`, `accepted`, `refused`), `positions`
//!   (per participant and currency, minor units and decimal text), `fx_positions`,
//!   `throughput` (`window_s`, `per_second`: accepted messages in each of the last
//!   seconds, oldest first, and `axis`: the chart's `top` and its grid lines' `labels`,
//!   see [`ChartAxis`]), `latency` (pacs.008 accepted to its pacs.002 accepted, at the
//!   hub: `samples`, `p50_ms`, `p90_ms`, `max_ms`, `axis`) and `reconciliation` (the last
//!   one posted with [`Hub::set_last_reconciliation`], or `null`).
//! - `GET /api/events`: server-sent events, one JSON object per [`HubEvent`] with its
//!   `kind` (`session_opened`, `session_closed`, `accepted`, `refused`, `delivered`,
//!   `acked`; `lagged` when this stream fell behind and lost some), with keep-alives.
//! - `GET /api/payments/{uetr}`: `{"payment": {...}, "steps": [{"step", "time_unix_ms",
//!   "by", "detail"}, ...], "messages": [{"type", "message_id", "sender", "receiver",
//!   "osn"}, ...]}` (the messages the hub relayed about it, in the order sent); 404 with
//!   `{"error": ...}` for an unknown or malformed UETR.
//! - `GET /api/payments/{uetr}/messages/{message_id}`: one of those messages as ISO 20022
//!   XML, written with [`crate::iso20022::write`] from the envelope the hub journalled
//!   (exactly as its sender signed it): `{"uetr", "type", "message_id", "sender",
//!   "receiver", "osn", "definition", "xml", "xml_unavailable"}`. A message Corridor cannot
//!   write as XML (a type it does not write yet, or a value the schema cannot hold, such
//!   as a rate with more than 10 decimals) has `xml` null and `xml_unavailable` saying why,
//!   still with 200. 404 with `{"error": ...}` for a malformed or unknown UETR or message
//!   id, or a message not yet durable in the journal.
//! - Anything else: 404 (405 for a method other than GET on a known route).
//!
//! `/api/state` also has `hub_name` (the name this dashboard gives the hub), `hubs` (every
//! hub it serves: `name`, `path`, `current`), `link_identity` (`bic`, `name`; `null`
//! without links) and `links`: per link, the peer network's link identity and name
//! (`link`, `name`, `peer_currency`), whether this hub dials it (`dials`), whether its
//! session is up (`up`, [`Hub::link_up`]), the swap line in this hub's `currency`
//! (`settled_net`: the link participant's position here; `reserved_out`: reserved for
//! payments out through the link; `reserved_in`: for payments in from it; `cap`; each in
//! minor units and as `*_text`) and `queued`, the messages waiting for the link
//! ([`Hub::queued_for`]).
//!
//! # Several hubs on one dashboard
//!
//! [`serve_dashboards`] serves the first hub at `/` and hub `i` at `/hubs/{i}/` (the same
//! routes under that path; `/hubs/{i}` redirects there), each page with tabs to the
//! others. Each is a [`DashboardHub`], which its owner takes away while the hub restarts
//! (the dashboard must not hold a hub that is closing): meanwhile that hub's API answers
//! 503 with `{"error", "hubs"}`, and its page says the hub is down. `corridor demo --linked`
//! shows the Russian hub at `/` and the Iranian at `/hubs/1/`.
//!
//! # The page's DOM contract (tests/dashboard_browser.rs relies on it)
//!
//! - `#participants` holds one element per participant, with `data-bic="<BIC>"` and
//!   `data-connected="true"` or `"false"`, updated live.
//! - `#messages-total`'s text is the number of messages the hub accepted, updated live.
//! - `#search-uetr` is the UETR search's text input, `#search-button` its button; after a
//!   search, `#sequence` holds one element with `data-step="<step name>"` per tracker step
//!   (`submitted`, `acknowledged`, `delivered`, `status_reported`, `settled`,
//!   `status_delivered`, ...). `#sequence` gets `data-uetr` once drawn, or `data-error`.
//! - `#payment-messages` then holds one button per message the hub relayed about the
//!   payment, with `data-message-id` and `data-type`; a click shows that message's XML in
//!   `#message-xml` (a `<pre>`, set as text, never as markup), which gets
//!   `data-message-id` once shown, and `data-unavailable` (the reason as its text) when
//!   Corridor cannot write it, or `data-error`.
//! - `#reconciliation` shows the last reconciliation (`data-clean="true"|"false"` once
//!   there is one).
//! - `#hubs` holds one link per hub served (hidden with one hub), `data-current="true"` on
//!   this page's; `#hub-down` (hidden unless) says this hub is down, and `body` then has
//!   `data-hub-down="true"`.
//! - `#links` (in `#links-panel`, hidden without links) holds one row per link, with
//!   `data-link="<BIC>"`, `data-up="true"|"false"` and `data-queued="<n>"`.
//!
//! # Running the demo with its dashboard from a test
//!
//! [`crate::sim::demo::run_demo`] with `DemoConfig { dashboard: Some(addr), .. }` (port 0
//! for any free one) serves this dashboard on the demo's hub and sends the progress line
//! `Dashboard: http://IP:PORT/` (exactly that, with the trailing slash) right after the
//! hub starts, before any bank starts or payment is sent. `DemoConfig::pace` pauses
//! between payment orders (default zero), so that payments flow for a while;
//! `DemoConfig::hold: Option<CancellationToken>` keeps the network and the dashboard up
//! after the summary and the reconciliation (posted to the hub with
//! [`Hub::set_last_reconciliation`], so `#reconciliation` shows it) until the token is
//! cancelled; then run_demo stops the dashboard and the network and returns the summary.
//! run_demo's future is not `Send` (its progress callback is a `&mut dyn FnMut`): run it
//! in the test's own task and the checks beside it (a spawned task or thread that hears
//! the progress lines through a channel and cancels the token when done, e.g. with
//! `hold.drop_guard()`). Alternatively [`crate::sim::demo::start_demo`] returns the
//! summary with a [`crate::sim::demo::RunningDemo`] (`dashboard_url()`, `network()`,
//! `stop(progress)`), which is what `corridor demo` uses to stay up at a terminal.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::positions::Positions;
use super::tracker::HubPayment;
use super::{Hub, HubEvent};
use crate::iso20022;
use crate::model::wire::decode_message;
use crate::model::{Bic, Currency, Message, MessageId, MessageType, Uetr, format_minor_units};
use crate::pb;

/// Event streams (`/api/events`) open at once: a projector and a few students' laptops.
pub const EVENT_STREAMS_MAX: usize = 64;
/// Events queued towards one event stream before the oldest are dropped.
const EVENT_STREAM_QUEUE_DEPTH: usize = 256;
/// Seconds of throughput the snapshot carries.
pub const THROUGHPUT_WINDOW_S: usize = 60;
/// Payment latencies the snapshot carries (the most recent).
pub const LATENCY_SAMPLES_MAX: usize = 200;
/// pacs.008s remembered while waiting for their pacs.002 (for the latency); past it,
/// new ones are not timed.
const LATENCY_PENDING_MAX: usize = 10_000;
/// Longest UETR text looked at (a UUID is 36 characters).
const UETR_TEXT_MAX: usize = 64;
/// Longest message id text looked at (an ISO 20022 message id has at most 35).
const MESSAGE_ID_TEXT_MAX: usize = 64;
/// How often an idle event stream sends a keep-alive comment.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

const PAGE_HTML: &str = include_str!("dashboard/index.html");
const PAGE_JS: &str = include_str!("dashboard/dashboard.js");
const PAGE_CSS: &str = include_str!("dashboard/dashboard.css");
/// Only what the page's own origin serves: no script, style or connection elsewhere.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Serves the dashboard of `hub` on `listener` until `shutdown` completes; then event
/// streams end, the server drains and this returns (having let go of the hub).
pub async fn serve_dashboard(
    hub: Hub,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let name = hub.directory().hub().to_string();
    serve_dashboards(vec![DashboardHub::new(name, hub)], listener, shutdown).await
}

/// A hub a dashboard shows, under a name for its tab. Its owner may take the hub away
/// ([`DashboardHub::set`] `None`, before the hub stops: the dashboard then holds no handle
/// on it, and answers for it that it is down) and give it back once it runs again.
#[derive(Clone)]
pub struct DashboardHub {
    name: String,
    slot: Arc<watch::Sender<Option<Hub>>>,
}

impl DashboardHub {
    /// `hub`, shown as `name`.
    pub fn new(name: impl Into<String>, hub: Hub) -> Self {
        Self { name: name.into(), slot: Arc::new(watch::Sender::new(Some(hub))) }
    }

    /// Shows `hub` from now on; `None` while it is down.
    pub fn set(&self, hub: Option<Hub>) {
        self.slot.send_replace(hub);
    }

    fn hub(&self) -> Option<Hub> {
        self.slot.borrow().clone()
    }
}

/// Serves the dashboards of `hubs` on `listener` until `shutdown` completes: the first at
/// `/`, the others at `/hubs/{index}/`, each page with tabs to the others. Then event
/// streams end, the server drains and this returns (having let go of every hub it took;
/// the callers' [`DashboardHub`]s still hold theirs).
pub async fn serve_dashboards(
    hubs: Vec<DashboardHub>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    assert!(!hubs.is_empty(), "a dashboard shows at least one hub");
    let stop = CancellationToken::new();
    let streams = Arc::new(Semaphore::new(EVENT_STREAMS_MAX));
    let tabs: Arc<Vec<(String, String)>> =
        Arc::new(hubs.iter().enumerate().map(|(index, hub)| (hub.name.clone(), tab_path(index))).collect());
    let mut collectors = Vec::new();
    let mut app = Router::new();
    for (index, shown) in hubs.into_iter().enumerate() {
        let stats = Arc::new(Mutex::new(Stats::default()));
        collectors.push(tokio::spawn(collect(shown.clone(), Arc::clone(&stats), stop.clone())));
        let tabs = Arc::clone(&tabs);
        let dashboard =
            Dashboard { shown, index, tabs, stats, stop: stop.clone(), streams: Arc::clone(&streams) };
        app = app.merge(router(dashboard));
    }
    let server = axum::serve(listener, app.fallback(not_found))
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);
    let served = tokio::select! {
        served = &mut server => served,
        () = shutdown => {
            stop.cancel();
            server.await
        }
    };
    stop.cancel();
    for collector in collectors {
        let _ = collector.await;
    }
    served.map_err(|e| format!("the dashboard's server failed: {e}"))
}

/// Where the dashboard of hub `index` is: `/` for the first, `/hubs/{index}/` for others.
fn tab_path(index: usize) -> String {
    if index == 0 { "/".into() } else { format!("/hubs/{index}/") }
}

/// What every handler shares.
#[derive(Clone)]
struct Dashboard {
    /// The hub this dashboard shows (absent while it is down).
    shown: DashboardHub,
    /// Its place among the hubs served: `tabs[index]`.
    index: usize,
    /// Every hub served: its name and its page's path.
    tabs: Arc<Vec<(String, String)>>,
    /// Throughput and latency, from the hub's events. Short sections only.
    stats: Arc<Mutex<Stats>>,
    /// Cancelled at shutdown: event streams end so the server can drain.
    stop: CancellationToken,
    /// One permit per open event stream, [`EVENT_STREAMS_MAX`] in all.
    streams: Arc<Semaphore>,
}

impl Dashboard {
    /// The hub, `None` while it is down.
    fn hub(&self) -> Option<Hub> {
        self.shown.hub()
    }

    /// The answer while the hub is down: 503, with the tabs for the page.
    fn down(&self) -> Response {
        let body = json!({
            "error": format!("the hub {} is down (it is restarting, or stopped)", self.shown.name),
            "hubs": self.tabs_json(),
        });
        json_response(StatusCode::SERVICE_UNAVAILABLE, &body)
    }

    /// Every hub served, for the page's tabs: `name`, `path`, `current`.
    fn tabs_json(&self) -> Vec<Value> {
        self.tabs
            .iter()
            .enumerate()
            .map(
                |(index, (name, path))| json!({ "name": name, "path": path, "current": index == self.index }),
            )
            .collect()
    }
}

/// The routes of one hub's dashboard, under its tab's path.
fn router(dashboard: Dashboard) -> Router {
    let at = tab_path(dashboard.index);
    let mut routes = Router::new()
        .route(&at, get(page))
        .route(&format!("{at}assets/{{name}}"), get(asset))
        .route(&format!("{at}api/state"), get(state))
        .route(&format!("{at}api/events"), get(events))
        .route(&format!("{at}api/payments/{{uetr}}"), get(payment))
        .route(&format!("{at}api/payments/{{uetr}}/messages/{{message_id}}"), get(payment_message));
    if at != "/" {
        // The page's links are relative to its folder: `/hubs/1` is `/hubs/1/`.
        let folder = at.clone();
        routes = routes.route(
            at.trim_end_matches('/'),
            get(move || async move { axum::response::Redirect::permanent(&folder) }),
        );
    }
    routes.with_state(dashboard)
}

async fn page(State(dashboard): State<Dashboard>) -> Response {
    if dashboard.index == 0 {
        return with_type("text/html; charset=utf-8", PAGE_HTML);
    }
    // Another hub's page loads its assets from under its own path.
    let page = PAGE_HTML.replace("\"/assets/", &format!("\"{}assets/", tab_path(dashboard.index)));
    with_type("text/html; charset=utf-8", page)
}

async fn asset(name: Result<Path<String>, PathRejection>) -> Response {
    match name.as_ref().map_or("", |Path(name)| name.as_str()) {
        "dashboard.js" => with_type("text/javascript; charset=utf-8", PAGE_JS),
        "dashboard.css" => with_type("text/css; charset=utf-8", PAGE_CSS),
        _ => error(StatusCode::NOT_FOUND, "no such asset"),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such page: the dashboard serves /, /assets/*, /api/state, /api/events, /api/payments/{uetr} \
         and /api/payments/{uetr}/messages/{message_id}",
    )
}

fn with_type(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (status, headers, body.to_string()).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

async fn state(State(dashboard): State<Dashboard>) -> Response {
    match dashboard.hub() {
        Some(hub) => json_response(StatusCode::OK, &snapshot(&dashboard, &hub)),
        None => dashboard.down(),
    }
}

/// The whole `/api/state` object.
fn snapshot(dashboard: &Dashboard, hub: &Hub) -> Value {
    let directory = hub.directory();
    let positions = hub.positions();
    let names: HashMap<_, _> = directory.participants().map(|(bic, name)| (bic, name.to_owned())).collect();
    // What the network gave each participant: its country (in its BIC) and the
    // currencies it holds a position in at the hub.
    let mut currencies = currencies_held(&positions);
    let participants: Vec<Value> = hub
        .connections()
        .into_iter()
        .map(|(bic, connected)| {
            let held = currencies.remove(&bic).unwrap_or_default();
            json!({
                "bic": bic.to_string(),
                "name": names.get(&bic),
                "country": bic.country(),
                "currencies": held,
                "connected": connected,
            })
        })
        .collect();
    let counts = hub.message_counts();
    let by_type: Vec<Value> = counts
        .accepted
        .iter()
        .zip(&counts.refused)
        .map(|((message_type, accepted), (_, refused))| {
            json!({ "type": message_type.code(), "accepted": accepted, "refused": refused })
        })
        .collect();
    let listed: Vec<Value> = positions
        .positions()
        .map(|(bic, currency, position)| {
            let wire = super::admin::position_to_pb(bic, currency, position, positions.is_suspended(bic));
            position_json(&wire, currency)
        })
        .collect();
    let fx: Vec<Value> = positions
        .fx_positions()
        .map(|line| {
            json!({
                "pair": line.pair.to_string(),
                "currency": line.currency.code(),
                "settled_net": line.net,
                "settled_net_text": format_minor_units(line.net, line.currency),
            })
        })
        .collect();
    let (throughput, latency) =
        dashboard.stats.lock().expect("dashboard stats lock").figures(hub.now_unix_ms());
    let reconciliation = hub.last_reconciliation();
    json!({
        "hub": directory.hub().to_string(),
        "hub_name": dashboard.shown.name,
        "hubs": dashboard.tabs_json(),
        "link_identity": hub.links().map(|l| json!({ "bic": l.identity.bic.to_string(), "name": l.identity.name })),
        "links": links_json(hub),
        "settlement_model": positions.model().name(),
        "participants": participants,
        "messages": {
            "accepted_total": counts.accepted_total(),
            "refused_total": counts.refused_total(),
            "refused_type_unknown": counts.refused_type_unknown,
            "by_type": by_type,
        },
        "positions": listed,
        "fx_positions": fx,
        "throughput": throughput,
        "latency": latency,
        "reconciliation": reconciliation,
    })
}

/// Each link of the hub: the peer network's link identity and name, whether its session is
/// up, the swap line (the link participant's position here, in this hub's currency, and
/// the cap; what is reserved on it for payments out through the link, and for payments in
/// from it) and the messages waiting for it.
fn links_json(hub: &Hub) -> Vec<Value> {
    let Some(links) = hub.links() else { return Vec::new() };
    links
        .links
        .iter()
        .map(|link| {
            let peer = link.peer.bic;
            let currency = link.cap.currency();
            // Both read together: a payment settling in between moves one and the other.
            let (position, reserved_out) = hub.swap_line(peer, currency);
            let text = |minor_units: i64| format_minor_units(minor_units, currency);
            json!({
                "link": peer.to_string(),
                "name": link.peer.name,
                "peer_currency": link.peer.currency.code(),
                "dials": link.peer_url.is_some(),
                "up": hub.link_up(peer),
                "currency": currency.code(),
                "settled_net": position.settled_net,
                "reserved_out": reserved_out,
                "reserved_in": position.reserved,
                "cap": position.net_debit_cap,
                "settled_net_text": text(position.settled_net),
                "reserved_out_text": text(reserved_out),
                "reserved_in_text": text(position.reserved),
                "cap_text": text(position.net_debit_cap),
                "queued": hub.queued_for(peer),
            })
        })
        .collect()
}

/// The currencies each participant holds a position in at the hub, in order of their
/// codes (a participant with none is absent).
fn currencies_held(positions: &Positions) -> HashMap<Bic, Vec<String>> {
    let mut currencies: HashMap<Bic, Vec<String>> = HashMap::new();
    for (bic, currency, _) in positions.positions() {
        currencies.entry(bic).or_default().push(currency.to_string());
    }
    for held in currencies.values_mut() {
        held.sort_unstable();
    }
    currencies
}

fn position_json(p: &pb::Position, currency: Currency) -> Value {
    let text = |minor_units: i64| format_minor_units(minor_units, currency);
    json!({
        "participant": p.participant_bic,
        "currency": p.currency,
        "liquidity": p.liquidity,
        "net_debit_cap": p.net_debit_cap,
        "reserved": p.reserved,
        "window_net": p.window_net,
        "available": p.available,
        "settled_net": p.settled_net,
        "suspended": p.suspended,
        "liquidity_text": text(p.liquidity),
        "reserved_text": text(p.reserved),
        "available_text": text(p.available),
        "settled_net_text": text(p.settled_net),
    })
}

/// Why a request gets no answer but an error: its status and the message the body says.
type Refusal = (StatusCode, String);

fn refused((status, message): Refusal) -> Response {
    error(status, &message)
}

/// The UETR of a request's path, or the 404 that says why it is none.
fn parse_uetr(text: &str) -> Result<Uetr, Refusal> {
    if text.len() > UETR_TEXT_MAX {
        return Err((
            StatusCode::NOT_FOUND,
            "malformed UETR: too long (a UETR is a 36-character UUID)".into(),
        ));
    }
    Uetr::parse(text.trim()).map_err(|e| (StatusCode::NOT_FOUND, format!("malformed UETR: {e}")))
}

/// The payment the hub knows by the UETR of a request's path, or the 404 that says why not.
fn find_payment(hub: &Hub, text: &str) -> Result<HubPayment, Refusal> {
    let uetr = parse_uetr(text)?;
    hub.payment(&uetr).ok_or_else(|| (StatusCode::NOT_FOUND, format!("the hub has no payment {uetr}")))
}

async fn payment(State(dashboard): State<Dashboard>, text: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(text)) = text else {
        return error(StatusCode::NOT_FOUND, "malformed UETR: not UTF-8 text");
    };
    let Some(hub) = dashboard.hub() else { return dashboard.down() };
    let found = match find_payment(&hub, &text) {
        Ok(found) => found,
        Err(refusal) => return refused(refusal),
    };
    let positions = hub.positions();
    let steps: Vec<Value> = super::admin::track_steps(&found, positions.reports())
        .into_iter()
        .map(
            |s| json!({ "step": s.step, "time_unix_ms": s.time_unix_ms, "by": s.by_bic, "detail": s.detail }),
        )
        .collect();
    let wire = super::admin::hub_payment_to_pb(&found);
    // "ACSC", "RJCT", or empty while the receiver has not answered.
    let status = match pb::PaymentStatus::try_from(wire.status) {
        Ok(pb::PaymentStatus::Unspecified) | Err(_) => "",
        Ok(status) => status.as_str_name().trim_start_matches("PAYMENT_STATUS_"),
    };
    let body = json!({
        "payment": {
            "uetr": wire.uetr,
            "message_id": wire.message_id,
            "sender": wire.sender_bic,
            "receiver": wire.receiver_bic,
            "amount": found.amount.to_string(),
            "instructed_amount": found.instructed.to_string(),
            "exchange_rate": wire.exchange_rate,
            "status": status,
            "reason_code": wire.reason_code,
            "settled": wire.settled,
            "returned": wire.returned,
            "recall_case_id": wire.recall_case_id,
        },
        "hub": hub.directory().hub().to_string(),
        "steps": steps,
        "messages": relayed_messages(&found).iter().map(Relayed::to_json).collect::<Vec<_>>(),
    });
    json_response(StatusCode::OK, &body)
}

/// One message the hub relayed about a payment: where the journal keeps it.
struct Relayed {
    message_type: MessageType,
    message_id: MessageId,
    sender: Bic,
    receiver: Bic,
    osn: u64,
}

impl Relayed {
    fn to_json(&self) -> Value {
        json!({
            "type": self.message_type.code(),
            "message_id": self.message_id.to_string(),
            "sender": self.sender.to_string(),
            "receiver": self.receiver.to_string(),
            "osn": self.osn,
        })
    }
}

/// The messages the tracker knows of `payment`, in the order a payment's life sends them:
/// the pacs.008 and the receiver's pacs.002, then a recall (camt.056), a return (pacs.004)
/// and the recall's answer (camt.029). Each is in the journal under its receiver and OSN.
fn relayed_messages(payment: &HubPayment) -> Vec<Relayed> {
    let recall = payment.recall.as_deref();
    let answer = recall.and_then(|case| case.answer.as_ref());
    // (type, its id and OSN if the hub relayed one, sent by the debtor agent)
    let known = [
        (MessageType::Pacs008, Some((&payment.message_id, payment.osn)), true),
        (MessageType::Pacs002, payment.status.as_ref().map(|s| (&s.message_id, s.osn)), false),
        (MessageType::Camt056, recall.map(|c| (&c.message_id, c.osn)), true),
        (MessageType::Pacs004, payment.returned.as_deref().map(|r| (&r.message_id, r.osn)), false),
        (MessageType::Camt029, answer.map(|a| (&a.message_id, a.osn)), false),
    ];
    known
        .into_iter()
        .filter_map(|(message_type, relayed, from_debtor_agent)| {
            let (message_id, osn) = relayed?;
            let (sender, receiver) = if from_debtor_agent {
                (payment.sender, payment.receiver)
            } else {
                (payment.receiver, payment.sender)
            };
            Some(Relayed { message_type, message_id: message_id.clone(), sender, receiver, osn })
        })
        .collect()
}

async fn payment_message(
    State(dashboard): State<Dashboard>,
    texts: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((uetr_text, id_text))) = texts else {
        return error(StatusCode::NOT_FOUND, "malformed UETR or message id: not UTF-8 text");
    };
    let Some(hub) = dashboard.hub() else { return dashboard.down() };
    let found = match find_payment(&hub, &uetr_text) {
        Ok(found) => found,
        Err(refusal) => return refused(refusal),
    };
    if id_text.len() > MESSAGE_ID_TEXT_MAX {
        return error(StatusCode::NOT_FOUND, "malformed message id: too long (at most 35 characters)");
    }
    let messages = relayed_messages(&found);
    let Some(relayed) = messages.iter().find(|m| m.message_id.as_str() == id_text) else {
        let ids: Vec<String> =
            messages.iter().map(|m| format!("{} {}", m.message_type, m.message_id)).collect();
        return error(
            StatusCode::NOT_FOUND,
            &format!("payment {} has no message {id_text:?}; its messages: {}", found.uetr, ids.join(", ")),
        );
    };
    let message = match journalled_message(&hub, found.uetr, relayed).await {
        Ok(message) => message,
        Err(refusal) => return refused(refusal),
    };
    let (xml, unavailable) = match (iso20022::definition_of(relayed.message_type), iso20022::write(&message))
    {
        (None, _) => (None, Some(format!("Corridor does not write {} as XML yet", relayed.message_type))),
        (Some(_), Ok(xml)) => (Some(xml), None),
        (Some(_), Err(e)) => {
            (None, Some(format!("Corridor cannot write this {} as XML: {e}", relayed.message_type)))
        }
    };
    let mut body = relayed.to_json();
    body["uetr"] = json!(found.uetr.to_string());
    body["definition"] = json!(iso20022::definition_of(relayed.message_type));
    body["xml"] = json!(xml);
    body["xml_unavailable"] = json!(unavailable);
    json_response(StatusCode::OK, &body)
}

/// The message `relayed` of payment `uetr` as its sender signed it, decoded from the
/// journal; a 404 while it is not durable yet, a 500 if the journal disagrees.
async fn journalled_message(hub: &Hub, uetr: Uetr, relayed: &Relayed) -> Result<Message, Refusal> {
    let internal = |detail: String| (StatusCode::INTERNAL_SERVER_ERROR, detail);
    let record = hub
        .message_to(relayed.receiver, relayed.osn)
        .await
        .map_err(|e| internal(format!("the hub's journal cannot be read: {e}")))?
        .ok_or_else(|| {
            let what =
                format!("{} {} is not in the hub's journal yet", relayed.message_type, relayed.message_id);
            (StatusCode::NOT_FOUND, what)
        })?;
    if record.uetr != Some(uetr) || record.message_id != relayed.message_id {
        return Err(internal(format!(
            "the journal's message to {} with OSN {} is {} of {:?}, not {} of {uetr}",
            relayed.receiver, relayed.osn, record.message_id, record.uetr, relayed.message_id
        )));
    }
    decode_message(&record.envelope.payload)
        .map_err(|e| internal(format!("the journalled message does not decode: {e}")))
}

async fn events(State(dashboard): State<Dashboard>) -> Response {
    let Ok(permit) = Arc::clone(&dashboard.streams).try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{EVENT_STREAMS_MAX} event streams are open already; close one"),
        );
    };
    let Some(hub) = dashboard.hub() else { return dashboard.down() };
    let mut events = hub.subscribe_events();
    // The stream holds the hub's events, not the hub (which may restart meanwhile).
    drop(hub);
    let (sender, receiver) = mpsc::channel::<Result<Event, Infallible>>(EVENT_STREAM_QUEUE_DEPTH);
    let stop = dashboard.stop.clone();
    // Ends when the client goes (the next send fails), or at shutdown.
    tokio::spawn(async move {
        let _permit = permit;
        loop {
            let data = tokio::select! {
                () = stop.cancelled() => return,
                () = sender.closed() => return,
                received = events.recv() => match received {
                    Ok(event) => event_json(&event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => json!({ "kind": "lagged", "missed": missed }),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            // A client too slow to take its queue loses events rather than hold the hub's.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                sender.try_send(Ok(Event::default().data(data.to_string())))
            {
                return;
            }
        }
    });
    let keep_alive = KeepAlive::new().interval(KEEP_ALIVE_INTERVAL);
    let mut response = Sse::new(ReceiverStream::new(receiver)).keep_alive(keep_alive).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// One hub event as the page reads it.
pub fn event_json(event: &HubEvent) -> Value {
    let kind = event.kind();
    match event {
        HubEvent::SessionOpened { participant, unix_ms }
        | HubEvent::SessionClosed { participant, unix_ms } => {
            json!({ "kind": kind, "participant": participant.to_string(), "unix_ms": unix_ms })
        }
        HubEvent::Accepted { message_type, sender, receiver, uetr, isn, osn, unix_ms } => json!({
            "kind": kind,
            "type": message_type.code(),
            "sender": sender.to_string(),
            "receiver": receiver.to_string(),
            "uetr": uetr.map(|u| u.to_string()),
            "isn": isn,
            "osn": osn,
            "unix_ms": unix_ms,
        }),
        HubEvent::Refused { message_type, sender, reason, unix_ms } => json!({
            "kind": kind,
            "type": message_type.map(|t| t.code()),
            "sender": sender.to_string(),
            "reason": reason.map(|r| r.code()),
            "unix_ms": unix_ms,
        }),
        HubEvent::Delivered { participant, osn, unix_ms } => {
            json!({ "kind": kind, "participant": participant.to_string(), "osn": osn, "unix_ms": unix_ms })
        }
        HubEvent::Acked { participant, isn, unix_ms } => {
            json!({ "kind": kind, "participant": participant.to_string(), "isn": isn, "unix_ms": unix_ms })
        }
    }
}

/// Throughput and latency, gathered from the hub's events off the message path.
#[derive(Default)]
struct Stats {
    /// Accepted messages per Unix second, the last [`THROUGHPUT_WINDOW_S`] seconds.
    per_second: VecDeque<(i64, u64)>,
    /// pacs.008s accepted and not yet answered, by UETR: when accepted (Unix ms).
    pending: HashMap<Uetr, i64>,
    /// (when answered, pacs.008 to pacs.002 in ms), the most recent last.
    latencies: VecDeque<(i64, i64)>,
}

impl Stats {
    fn record(&mut self, message_type: MessageType, uetr: Option<Uetr>, unix_ms: i64) {
        let second = unix_ms.div_euclid(1000);
        match self.per_second.back_mut() {
            Some((last, count)) if *last == second => *count += 1,
            _ => self.per_second.push_back((second, 1)),
        }
        while self.per_second.front().is_some_and(|(s, _)| *s <= second - THROUGHPUT_WINDOW_S as i64) {
            self.per_second.pop_front();
        }
        let Some(uetr) = uetr else { return };
        match message_type {
            MessageType::Pacs008 if self.pending.len() < LATENCY_PENDING_MAX => {
                self.pending.insert(uetr, unix_ms);
            }
            MessageType::Pacs002 => {
                if let Some(sent) = self.pending.remove(&uetr) {
                    if self.latencies.len() == LATENCY_SAMPLES_MAX {
                        self.latencies.pop_front();
                    }
                    self.latencies.push_back((unix_ms, unix_ms - sent));
                }
            }
            _ => {}
        }
    }

    /// The throughput and latency objects of the snapshot, `now_unix_ms` by the hub's clock.
    fn figures(&self, now_unix_ms: i64) -> (Value, Value) {
        let now_s = now_unix_ms.div_euclid(1000);
        let per_second: Vec<Value> = (now_s - THROUGHPUT_WINDOW_S as i64 + 1..=now_s)
            .map(|second| {
                let count = self.per_second.iter().find(|(s, _)| *s == second).map_or(0, |(_, c)| *c);
                json!({ "unix_s": second, "messages": count })
            })
            .collect();
        let mut sorted: Vec<i64> = self.latencies.iter().map(|(_, ms)| *ms).collect();
        sorted.sort_unstable();
        let quantile =
            |q: f64| (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * q).round() as usize]);
        let samples: Vec<Value> =
            self.latencies.iter().map(|(at, ms)| json!({ "unix_ms": at, "ms": ms })).collect();
        let busiest = self.per_second.iter().filter(|(s, _)| *s > now_s - THROUGHPUT_WINDOW_S as i64);
        let throughput_max = busiest.map(|(_, count)| *count).max().unwrap_or(0);
        let throughput = json!({
            "window_s": THROUGHPUT_WINDOW_S,
            "per_second": per_second,
            "axis": ChartAxis::covering(throughput_max).to_json(),
        });
        let latency_max = sorted.last().map_or(0, |ms| u64::try_from(*ms).unwrap_or(0));
        let latency = json!({
            "what": "pacs.008 accepted to its pacs.002 accepted, at the hub",
            "axis": ChartAxis::covering(latency_max).to_json(),
            "samples": samples,
            "p50_ms": quantile(0.5),
            "p90_ms": quantile(0.9),
            "max_ms": sorted.last(),
        });
        (throughput, latency)
    }
}

/// A chart's vertical axis: its top and the labels of its three grid lines (bottom,
/// middle, top). The top is the smallest of 1, 2, 4, 6 and 8 times a power of ten that
/// covers every value, so that the middle line is a round number too and no two lines
/// read the same (a top of 1 reads 0, 0.5, 1; rounding each line of the largest value
/// read 0, 1, 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartAxis {
    /// The value at the top of the chart: at least the largest value, and at least 1.
    pub top: u64,
    /// The labels of the lines at 0, half the top and the top.
    pub labels: [String; 3],
}

impl ChartAxis {
    /// The axis for values up to `max_value`.
    pub fn covering(max_value: u64) -> Self {
        let mut power = 1u64;
        let top = loop {
            if let Some(top) = [1, 2, 4, 6, 8].iter().map(|m| m * power).find(|top| *top >= max_value) {
                break top;
            }
            match power.checked_mul(10) {
                Some(next) if next <= u64::MAX / 8 => power = next,
                _ => break max_value,
            }
        };
        let middle = if top % 2 == 0 { (top / 2).to_string() } else { format!("{}.5", top / 2) };
        Self { top, labels: ["0".to_owned(), middle, top.to_string()] }
    }

    /// As `/api/state` gives it: `{"top": 4, "labels": ["0", "2", "4"]}`.
    fn to_json(&self) -> Value {
        json!({ "top": self.top, "labels": self.labels })
    }
}

/// Feeds the accepted messages of the hub `shown` holds into `stats` until `stop`, taking
/// up each hub it is given in turn (it holds no handle on one: only its events).
async fn collect(shown: DashboardHub, stats: Arc<Mutex<Stats>>, stop: CancellationToken) {
    let mut changes = shown.slot.subscribe();
    loop {
        let events = changes.borrow_and_update().as_ref().map(Hub::subscribe_events);
        tokio::select! {
            () = stop.cancelled() => return,
            () = collect_from(events, &stats) => {}
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

/// Feeds `events` into `stats` until the hub closes them (forever without a hub).
async fn collect_from(events: Option<broadcast::Receiver<HubEvent>>, stats: &Mutex<Stats>) {
    let Some(mut events) = events else { return std::future::pending().await };
    loop {
        match events.recv().await {
            Ok(HubEvent::Accepted { message_type, uetr, unix_ms, .. }) => {
                stats.lock().expect("dashboard stats lock").record(message_type, uetr, unix_ms);
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            // The hub stopped: wait for the next one.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChartAxis, Positions, currencies_held};
    use crate::hub::positions::SettlementModel;
    use crate::model::{Amount, Bic, Currency};

    /// A participant card lists the currencies its bank holds at the hub, each once and
    /// in order of code, whatever order the positions were opened in; a participant
    /// without a position lists none.
    #[test]
    fn the_currencies_held_are_each_participants_positions_in_order() {
        let bic = |text: &str| Bic::parse(text).unwrap();
        let mut positions = Positions::new(SettlementModel::Gross, 0);
        for (participant, currency) in
            [("BANKRUMMXXX", "RUB"), ("BANKRUMMXXX", "CNY"), ("BANKIRTHXXX", "IRR")]
        {
            let currency = Currency::parse(currency).unwrap();
            positions.fund(bic(participant), Amount::from_minor_units(100, currency).unwrap()).unwrap();
        }
        positions
            .fund(bic("BANKRUMMXXX"), Amount::parse("1", Currency::parse("RUB").unwrap()).unwrap())
            .unwrap();
        let held = currencies_held(&positions);
        assert_eq!(held[&bic("BANKRUMMXXX")], ["CNY", "RUB"]);
        assert_eq!(held[&bic("BANKIRTHXXX")], ["IRR"]);
        assert!(!held.contains_key(&bic("BANKCNSHXXX")));
    }

    /// Whatever the largest value, the axis covers it, its three lines read three
    /// different labels, and the middle one is exactly half the top: the throughput chart
    /// at 1 message a second read "1, 1, 0" when each line rounded its share of the
    /// largest value.
    #[test]
    fn every_axis_covers_its_values_with_three_distinct_exact_labels() {
        for max_value in (0..=2_000).chain([9_999, 10_001, 123_456_789, u64::MAX / 8, u64::MAX]) {
            let axis = ChartAxis::covering(max_value);
            assert!(axis.top >= max_value.max(1), "{max_value}: {axis:?}");
            let [bottom, middle, top] = &axis.labels;
            assert!(bottom != middle && middle != top, "{max_value}: {axis:?}");
            let middle: f64 = middle.parse().unwrap();
            assert_eq!(middle * 2.0, axis.top as f64, "{max_value}: {axis:?}");
        }
        assert_eq!(ChartAxis::covering(0).labels, ["0", "0.5", "1"]);
        assert_eq!(ChartAxis::covering(1).labels, ["0", "0.5", "1"]);
        assert_eq!(ChartAxis::covering(3).labels, ["0", "2", "4"]);
        assert_eq!(ChartAxis::covering(37).labels, ["0", "20", "40"]);
        assert_eq!(ChartAxis::covering(81).top, 100);
    }
}
