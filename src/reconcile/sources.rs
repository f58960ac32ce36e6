//! Where the reconciler's inputs come from: live over gRPC (the hub's admin service and
//! each bank's operator API, with the operator's certificate), or offline from the data
//! directories of stopped nodes.

use std::path::Path;

use tokio_stream::StreamExt as _;

use super::{BankRecord, BankView, Direction, HubRecord, HubView, ReturnView, Scope};
use crate::bank::{self, BankStore, statement::account_statement};
use crate::directory::Directory;
use crate::hub::{self, HubPayment};
use crate::ledger::AccountKind;
use crate::model::{Amount, Bic, MessageId, PaymentStatus, Uetr, wire};
use crate::net::{admin_client, operator_client};
use crate::pb;
use crate::tls::NetworkDir;

impl From<&HubPayment> for HubRecord {
    fn from(p: &HubPayment) -> Self {
        Self {
            uetr: p.uetr,
            message_id: p.message_id.clone(),
            sender: p.sender,
            receiver: p.receiver,
            amount: p.amount,
            instructed: p.instructed,
            final_status: p.final_status(),
            delivered_to_receiver: p.delivered_unix_ms.is_some(),
            status_delivered_to_sender: p.status.as_ref().is_some_and(|s| s.delivered_unix_ms.is_some()),
            returned: p.returned.is_some(),
            return_delivered_to_sender: p.returned.as_ref().is_some_and(|r| r.delivered_unix_ms.is_some()),
        }
    }
}

impl From<&bank::Payment> for BankRecord {
    fn from(p: &bank::Payment) -> Self {
        Self {
            uetr: p.uetr,
            message_id: p.message_id.clone(),
            direction: match p.direction {
                bank::Direction::Outgoing => Direction::Outgoing,
                bank::Direction::Incoming => Direction::Incoming,
            },
            counterparty: p.counterparty,
            amount: p.amount,
            status: p.status,
            returned: match p.return_state {
                bank::ReturnState::None => ReturnView::None,
                bank::ReturnState::Returning { .. } => ReturnView::Returning,
                bank::ReturnState::Returned { .. } => ReturnView::Returned,
            },
        }
    }
}

/// The hub's view from its stopped journal in `data_dir` and every bank's from its
/// stopped store under `banks_dir/<BIC>`. A participant without a store (never run) is
/// left out.
pub fn offline(
    directory: &Directory,
    hub_dir: &Path,
    banks_dir: &Path,
) -> Result<(HubView, Vec<BankView>), String> {
    offline_in_scope(directory, hub_dir, banks_dir, &Scope::Every)
}

/// [`offline`], reading only the stores of the participants in `scope`; with
/// [`Scope::Only`], each of them must have a store (an error names the one that has not).
pub fn offline_in_scope(
    directory: &Directory,
    hub_dir: &Path,
    banks_dir: &Path,
    scope: &Scope,
) -> Result<(HubView, Vec<BankView>), String> {
    if let Scope::Only(participants) = scope {
        for bic in participants {
            if !directory.is_participant(*bic) {
                return Err(format!("{bic} is not a participant of this network"));
            }
            let store = bank::store::store_path(&banks_dir.join(bic.as_str()));
            if !store.exists() {
                return Err(format!("{bic} has no store to read: {} does not exist", store.display()));
            }
        }
    }
    let (positions, payments) = hub::read_journal(directory, hub_dir)?;
    let hub = HubView {
        payments: payments.iter().map(HubRecord::from).collect(),
        settled_net: positions
            .positions()
            .map(|(bic, currency, p)| ((bic, currency.code().to_owned()), p.settled_net))
            .collect(),
        fx_net: positions
            .fx_positions()
            .map(|l| ((l.pair.to_string(), l.currency.to_string()), l.net))
            .collect(),
        linked: linked(directory),
    };
    let mut banks = Vec::new();
    for (bic, _) in directory.participants().filter(|(bic, _)| scope.includes(*bic)) {
        let data = banks_dir.join(bic.as_str());
        if !bank::store::store_path(&data).exists() {
            continue;
        }
        let recovered = BankStore::read(&data, bic).map_err(|e| format!("bank {bic}: {e}"))?;
        let ledger = recovered.ledger();
        let message_ids = recovered.payments.iter().map(|p| (p.uetr, p.message_id.clone())).collect();
        let settlement = ledger
            .accounts()
            .filter(|a| a.kind == AccountKind::Settlement)
            .filter_map(|a| {
                account_statement(ledger, &recovered.posting_times, &message_ids, &a.id, 0, i64::MAX)
            })
            .collect();
        banks.push(BankView {
            bic,
            payments: recovered.payments.iter().map(BankRecord::from).collect(),
            settlement,
            ledger_balanced: ledger.is_balanced(),
        });
    }
    Ok((hub, banks))
}

/// The linked networks' link identities and banks, as `directory` knows them.
pub fn linked(directory: &Directory) -> std::collections::BTreeSet<Bic> {
    directory.links().chain(directory.remote_participants().map(|(bic, _, _)| bic)).collect()
}

fn field<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}"))
}

fn amount(money: Option<pb::Money>, what: &str) -> Result<Amount, String> {
    field(wire::amount(money, "amount"), what)
}

fn status(value: i32, what: &str) -> Result<Option<PaymentStatus>, String> {
    let status = pb::PaymentStatus::try_from(value).map_err(|_| format!("{what}: unknown status {value}"))?;
    if status == pb::PaymentStatus::Unspecified {
        return Ok(None);
    }
    field(wire::payment_status_from_pb(status as i32, what), what).map(Some)
}

fn hub_record(p: pb::HubPayment) -> Result<HubRecord, String> {
    let what = format!("hub payment {}", p.uetr);
    Ok(HubRecord {
        uetr: field(Uetr::parse(&p.uetr), &what)?,
        message_id: field(MessageId::parse(&p.message_id), &what)?,
        sender: field(Bic::parse(&p.sender_bic), &what)?,
        receiver: field(Bic::parse(&p.receiver_bic), &what)?,
        amount: amount(p.amount, &what)?,
        instructed: amount(p.instructed_amount, &what)?,
        final_status: status(p.status, &what)?.filter(PaymentStatus::is_final),
        delivered_to_receiver: p.delivered_to_receiver,
        status_delivered_to_sender: p.status_delivered_to_sender,
        returned: p.returned,
        return_delivered_to_sender: p.return_delivered_to_sender,
    })
}

fn bank_record(p: pb::Payment) -> Result<BankRecord, String> {
    let what = format!("bank payment {}", p.uetr);
    Ok(BankRecord {
        uetr: field(Uetr::parse(&p.uetr), &what)?,
        message_id: field(MessageId::parse(&p.message_id), &what)?,
        direction: if p.direction == pb::PaymentDirection::Incoming as i32 {
            Direction::Incoming
        } else {
            Direction::Outgoing
        },
        counterparty: field(Bic::parse(&p.counterparty_bic), &what)?,
        amount: amount(p.amount, &what)?,
        status: status(p.status, &what)?.ok_or_else(|| format!("{what}: no status"))?,
        returned: match pb::ReturnState::try_from(p.return_state) {
            Ok(pb::ReturnState::Returning) => ReturnView::Returning,
            Ok(pb::ReturnState::Returned) => ReturnView::Returned,
            Ok(pb::ReturnState::None | pb::ReturnState::Unspecified) => ReturnView::None,
            Err(_) => return Err(format!("{what}: unknown return state {}", p.return_state)),
        },
    })
}

/// The hub's view from the running hub at `hub_url`, and each bank's from its running
/// node (`(BIC, operator API URL)`).
pub async fn live(
    network: &NetworkDir,
    hub_url: &str,
    banks: &[(Bic, String)],
) -> Result<(HubView, Vec<BankView>), String> {
    let mut admin = admin_client(network, hub_url).await?;
    let grpc = |what: &str, s: tonic::Status| format!("{what}: {} ({:?})", s.message(), s.code());
    let mut stream =
        admin.export_payments(pb::ExportPaymentsRequest {}).await.map_err(|s| grpc("hub", s))?.into_inner();
    let directory = network.directory().map_err(|e| e.to_string())?;
    let mut hub = HubView { linked: linked(&directory), ..HubView::default() };
    while let Some(payment) = stream.next().await {
        hub.payments.push(hub_record(payment.map_err(|s| grpc("hub", s))?)?);
    }
    let positions = admin.list_positions(pb::ListPositionsRequest {}).await.map_err(|s| grpc("hub", s))?;
    let positions = positions.into_inner();
    for p in positions.positions.into_iter().filter(|p| !p.currency.is_empty()) {
        let bic = field(Bic::parse(&p.participant_bic), "hub position")?;
        hub.settled_net.insert((bic, p.currency), p.settled_net);
    }
    for fx in positions.fx_positions {
        hub.fx_net.insert((fx.currency_pair, fx.currency), fx.settled_net);
    }
    let mut views = Vec::new();
    for (bic, url) in banks {
        views.push(live_bank(network, *bic, url).await?);
    }
    Ok((hub, views))
}

async fn live_bank(network: &NetworkDir, bic: Bic, url: &str) -> Result<BankView, String> {
    let what = format!("bank {bic}");
    let grpc = |s: tonic::Status| format!("{what}: {} ({:?})", s.message(), s.code());
    let mut client = operator_client(network, url).await?;
    let payments =
        client.list_payments(pb::ListPaymentsRequest {}).await.map_err(grpc)?.into_inner().payments;
    let accounts = client.list_accounts(pb::ListAccountsRequest {}).await.map_err(grpc)?.into_inner();
    let mut settlement = Vec::new();
    for account in accounts.accounts.iter().filter(|a| a.kind == pb::AccountKind::Settlement as i32) {
        let request = pb::GetStatementRequest { account_id: account.id.clone(), ..Default::default() };
        let statement = client.get_statement(request).await.map_err(grpc)?.into_inner();
        settlement.push(field(wire::statement_from_pb(statement), &what)?);
    }
    Ok(BankView {
        bic,
        payments: payments.into_iter().map(bank_record).collect::<Result<_, _>>()?,
        settlement,
        ledger_balanced: accounts.ledger_balanced,
    })
}

/// Reconciles a running network, reading it again (every 200 ms, for at most `wait`)
/// while payments are still in transit, so that a network that is settling down is
/// judged once it has settled.
pub async fn reconcile_live(
    network: &NetworkDir,
    hub_url: &str,
    banks: &[(Bic, String)],
    wait: std::time::Duration,
) -> Result<super::Report, String> {
    reconcile_live_in_scope(network, hub_url, banks, wait, &Scope::Every).await
}

/// [`reconcile_live`] where `scope` says whose records were meant to be read (the
/// participants of `banks`, with `--participants`).
pub async fn reconcile_live_in_scope(
    network: &NetworkDir,
    hub_url: &str,
    banks: &[(Bic, String)],
    wait: std::time::Duration,
    scope: &Scope,
) -> Result<super::Report, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (hub, views) = live(network, hub_url, banks).await?;
        let report = super::reconcile_in_scope(&hub, &views, scope);
        if report.payments_in_transit == 0 || tokio::time::Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Compares the running hubs of two linked networks (`(network, hub URL)` each, read with
/// each network's own operator certificate), reading them again (every 200 ms, for at
/// most `wait`) while payments across the link are still moving.
pub async fn reconcile_link_live(
    a: (&NetworkDir, &str),
    b: (&NetworkDir, &str),
    wait: std::time::Duration,
) -> Result<super::Report, String> {
    let identity = |network: &NetworkDir| -> Result<Bic, String> {
        let identity = network.link_identity().map_err(|e| e.to_string())?;
        identity.map(|i| i.bic).ok_or_else(|| format!("{} has no link identity", network.root().display()))
    };
    // Each hub knows the other network by the other's link identity.
    let (link_at_a, link_at_b) = (identity(b.0)?, identity(a.0)?);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (hub_a, _) = live(a.0, a.1, &[]).await?;
        let (hub_b, _) = live(b.0, b.1, &[]).await?;
        let report = super::link::reconcile_link(
            super::link::LinkSide { hub: &hub_a, link: link_at_a },
            super::link::LinkSide { hub: &hub_b, link: link_at_b },
        );
        if report.payments_in_transit == 0 || tokio::time::Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
