//! The hub operator's gRPC services: `HubAdminService` (positions, suspensions,
//! settlement windows, statements, the reconciler's export), callable only with the
//! operator's certificate, and `TrackerService` (where is my payment?).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::positions::{Position, SettlementReport};
use super::tracker::{HubPayment, settlement_statement};
use super::{Hub, OperatorAction, OperatorOutcome, SettlementModel};
use crate::model::wire::payment_status_to_pb;
use crate::model::{Amount, Bic, Currency, Uetr, wire};
use crate::net;
use crate::pb;
use crate::pb::hub_admin_service_server::HubAdminService;
use crate::pb::tracker_service_server::TrackerService;
use crate::tls::Role;

/// The hub's operator services.
#[derive(Clone)]
pub struct HubAdmin {
    hub: Hub,
}

impl HubAdmin {
    /// Serves `hub`.
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }

    fn participant(&self, text: &str) -> Result<Bic, Status> {
        let bic =
            Bic::parse(text).map_err(|e| Status::invalid_argument(e.at("participant_bic").to_string()))?;
        if !self.hub.directory().is_participant(bic) {
            return Err(Status::not_found(format!("{bic} is not a participant of this network")));
        }
        Ok(bic)
    }

    /// The participant and amount of a fund or defund request, from the operator.
    fn funding(&self, request: Request<pb::FundRequest>) -> Result<(Bic, Amount), Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let bic = self.participant(&r.participant_bic)?;
        Ok((bic, amount(&r.amount, currency(&r.currency)?, "amount")?))
    }

    async fn operate(&self, action: OperatorAction) -> Result<OperatorOutcome, Status> {
        self.hub.operate(action).await.map_err(Status::failed_precondition)
    }

    async fn position_change(
        &self,
        action: OperatorAction,
    ) -> Result<Response<pb::PositionResponse>, Status> {
        match self.operate(action).await? {
            OperatorOutcome::Position(bic, currency, position) => {
                let suspended = self.hub.positions().is_suspended(bic);
                Ok(Response::new(pb::PositionResponse {
                    position: Some(position_to_pb(bic, currency, &position, suspended)),
                }))
            }
            other => unreachable!("a position change answers with a position, not {other:?}"),
        }
    }
}

fn operator_only<T>(request: &Request<T>) -> Result<(), Status> {
    match net::peer_role(request)? {
        Role::Operator => Ok(()),
        other => Err(Status::permission_denied(format!(
            "only the hub operator's certificate may call the admin service, not {other:?}"
        ))),
    }
}

fn currency(text: &str) -> Result<Currency, Status> {
    Currency::parse(text).map_err(|e| Status::invalid_argument(e.at("currency").to_string()))
}

fn amount(text: &str, currency: Currency, field: &str) -> Result<Amount, Status> {
    Amount::parse(text, currency).map_err(|e| Status::invalid_argument(e.at(field).to_string()))
}

/// A position on the wire.
pub fn position_to_pb(bic: Bic, currency: Currency, position: &Position, suspended: bool) -> pb::Position {
    pb::Position {
        participant_bic: bic.to_string(),
        currency: currency.code().to_owned(),
        liquidity: position.liquidity,
        net_debit_cap: position.net_debit_cap,
        reserved: position.reserved,
        window_net: position.window_net(),
        available: i64::try_from(position.available()).unwrap_or(i64::MAX),
        settled_net: position.settled_net,
        suspended,
    }
}

fn model_to_pb(model: SettlementModel) -> pb::SettlementModel {
    match model {
        SettlementModel::Gross => pb::SettlementModel::Gross,
        SettlementModel::DeferredNet => pb::SettlementModel::DeferredNet,
    }
}

fn report_to_pb(report: &SettlementReport) -> pb::SettlementReport {
    pb::SettlementReport {
        window_id: report.window_id,
        opened_unix_ms: report.opened_unix_ms,
        closed_unix_ms: report.closed_unix_ms,
        lines: report
            .lines
            .iter()
            .map(|l| pb::SettlementLine {
                participant_bic: l.participant.to_string(),
                currency: l.currency.code().to_owned(),
                sent: l.sent,
                received: l.received,
                net: l.net,
            })
            .collect(),
        totals: report
            .totals
            .iter()
            .map(|t| pb::SettlementTotal {
                currency: t.currency.code().to_owned(),
                payments: t.payments,
                gross: t.gross,
                net: t.net,
                saved: t.gross - t.net,
            })
            .collect(),
    }
}

/// A payment as the hub saw it, on the wire.
pub fn hub_payment_to_pb(payment: &HubPayment) -> pb::HubPayment {
    let status = payment.status.as_ref();
    pb::HubPayment {
        uetr: payment.uetr.to_string(),
        message_id: payment.message_id.to_string(),
        sender_bic: payment.sender.to_string(),
        receiver_bic: payment.receiver.to_string(),
        amount: Some(wire::money_of_amount(&payment.amount)),
        status: status.map_or(pb::PaymentStatus::Unspecified, |s| payment_status_to_pb(s.status)) as i32,
        reason_code: status.and_then(|s| s.reason).map(|r| r.code().to_owned()).unwrap_or_default(),
        delivered_to_receiver: payment.delivered_unix_ms.is_some(),
        status_delivered_to_sender: status.is_some_and(|s| s.delivered_unix_ms.is_some()),
        settled: payment.settled(),
    }
}

/// The steps of a payment's path, in time order.
pub fn track_steps(payment: &HubPayment, reports: &[SettlementReport]) -> Vec<pb::TrackStep> {
    let amount = payment.amount;
    let mut steps = vec![step(
        "submitted",
        payment.submitted_unix_ms,
        payment.sender,
        format!(
            "pacs.008 {} for {amount} to {} checked and journalled",
            payment.message_id, payment.receiver
        ),
    )];
    if let Some(at) = payment.acknowledged_unix_ms {
        steps.push(step(
            "acknowledged",
            at,
            payment.sender,
            "the hub's ACK, with its signed receipt, left".into(),
        ));
    }
    if let Some(at) = payment.delivered_unix_ms {
        steps.push(step(
            "delivered",
            at,
            payment.receiver,
            "the receiver confirmed it processed the pacs.008".into(),
        ));
    }
    let Some(status) = &payment.status else { return steps };
    let reason = status.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    steps.push(step(
        "status_reported",
        status.reported_unix_ms,
        payment.receiver,
        format!("pacs.002 {} reports {}{reason}", status.message_id, status.status),
    ));
    if payment.settled() {
        let closed = status.window_id.and_then(|id| reports.iter().find(|r| r.window_id == id));
        let detail = match (status.window_id, closed) {
            (None, _) => {
                format!("{amount} moved from {} to {} (gross, final)", payment.sender, payment.receiver)
            }
            (Some(id), Some(_)) => format!("settled net when window {id} closed"),
            (Some(id), None) => format!("in settlement window {id}, settles net when it closes"),
        };
        let at = closed.map_or(status.reported_unix_ms, |r| r.closed_unix_ms);
        steps.push(step("settled", at, Bic::parse(crate::tls::HUB_BIC).expect("valid"), detail));
    } else if status.status == crate::model::PaymentStatus::Rjct {
        let detail = format!("reservation of {amount} on {}'s position released", payment.sender);
        steps.push(step(
            "released",
            status.reported_unix_ms,
            Bic::parse(crate::tls::HUB_BIC).expect("valid"),
            detail,
        ));
    }
    if let Some(at) = status.delivered_unix_ms {
        steps.push(step(
            "status_delivered",
            at,
            payment.sender,
            "the sender confirmed it processed the pacs.002".into(),
        ));
    }
    steps.sort_by_key(|s| s.time_unix_ms);
    steps
}

fn step(name: &str, time_unix_ms: i64, by: Bic, detail: String) -> pb::TrackStep {
    pb::TrackStep { step: name.to_owned(), time_unix_ms, by_bic: by.to_string(), detail }
}

#[tonic::async_trait]
impl HubAdminService for HubAdmin {
    type ExportPaymentsStream = ReceiverStream<Result<pb::HubPayment, Status>>;

    async fn fund(
        &self,
        request: Request<pb::FundRequest>,
    ) -> Result<Response<pb::PositionResponse>, Status> {
        let (bic, amount) = self.funding(request)?;
        self.position_change(OperatorAction::Fund(bic, amount)).await
    }

    async fn defund(
        &self,
        request: Request<pb::FundRequest>,
    ) -> Result<Response<pb::PositionResponse>, Status> {
        let (bic, amount) = self.funding(request)?;
        self.position_change(OperatorAction::Defund(bic, amount)).await
    }

    async fn set_net_debit_cap(
        &self,
        request: Request<pb::SetNetDebitCapRequest>,
    ) -> Result<Response<pb::PositionResponse>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let bic = self.participant(&r.participant_bic)?;
        let currency = currency(&r.currency)?;
        let cap = match r.cap.as_str() {
            "0" => 0,
            text => amount(text, currency, "cap")?.minor_units(),
        };
        self.position_change(OperatorAction::SetNetDebitCap(bic, currency, cap)).await
    }

    async fn suspend(
        &self,
        request: Request<pb::SuspendRequest>,
    ) -> Result<Response<pb::SuspendResponse>, Status> {
        operator_only(&request)?;
        let bic = self.participant(&request.get_ref().participant_bic)?;
        suspend_response(self.operate(OperatorAction::Suspend(bic)).await?)
    }

    async fn resume(
        &self,
        request: Request<pb::SuspendRequest>,
    ) -> Result<Response<pb::SuspendResponse>, Status> {
        operator_only(&request)?;
        let bic = self.participant(&request.get_ref().participant_bic)?;
        suspend_response(self.operate(OperatorAction::Resume(bic)).await?)
    }

    async fn close_window(
        &self,
        request: Request<pb::CloseWindowRequest>,
    ) -> Result<Response<pb::SettlementReport>, Status> {
        operator_only(&request)?;
        match self.operate(OperatorAction::CloseWindow).await? {
            OperatorOutcome::Report(report) => Ok(Response::new(report_to_pb(&report))),
            other => unreachable!("closing a window answers with a report, not {other:?}"),
        }
    }

    async fn list_settlement_reports(
        &self,
        request: Request<pb::ListSettlementReportsRequest>,
    ) -> Result<Response<pb::ListSettlementReportsResponse>, Status> {
        operator_only(&request)?;
        let positions = self.hub.positions();
        Ok(Response::new(pb::ListSettlementReportsResponse {
            model: model_to_pb(positions.model()) as i32,
            reports: positions.reports().iter().map(report_to_pb).collect(),
        }))
    }

    async fn list_positions(
        &self,
        request: Request<pb::ListPositionsRequest>,
    ) -> Result<Response<pb::ListPositionsResponse>, Status> {
        operator_only(&request)?;
        let positions = self.hub.positions();
        let mut listed: Vec<pb::Position> = positions
            .positions()
            .map(|(bic, currency, p)| position_to_pb(bic, currency, p, positions.is_suspended(bic)))
            .collect();
        // A suspended participant without a position is still shown.
        for (bic, _) in self.hub.directory().participants() {
            if positions.is_suspended(bic) && !listed.iter().any(|p| p.participant_bic == bic.as_str()) {
                listed.push(pb::Position {
                    participant_bic: bic.to_string(),
                    suspended: true,
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(pb::ListPositionsResponse {
            model: model_to_pb(positions.model()) as i32,
            open_window_id: positions.open_window_id(),
            positions: listed,
        }))
    }

    async fn get_statement(
        &self,
        request: Request<pb::HubStatementRequest>,
    ) -> Result<Response<pb::Statement>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let bic = self.participant(&r.participant_bic)?;
        let currency = currency(&r.currency)?;
        let (from, to) = period(r.from_time_unix_ms, r.to_time_unix_ms)?;
        let payments = self.hub.payments();
        let statement = settlement_statement(&payments, bic, currency, from, to);
        Ok(Response::new(wire::statement_to_pb(&statement)))
    }

    async fn export_payments(
        &self,
        request: Request<pb::ExportPaymentsRequest>,
    ) -> Result<Response<Self::ExportPaymentsStream>, Status> {
        operator_only(&request)?;
        let payments = self.hub.payments();
        let (sender, receiver) = mpsc::channel(256);
        tokio::spawn(async move {
            for payment in &payments {
                if sender.send(Ok(hub_payment_to_pb(payment))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

fn suspend_response(outcome: OperatorOutcome) -> Result<Response<pb::SuspendResponse>, Status> {
    match outcome {
        OperatorOutcome::Suspended(bic, suspended) => {
            Ok(Response::new(pb::SuspendResponse { participant_bic: bic.to_string(), suspended }))
        }
        other => unreachable!("a suspension answers with its state, not {other:?}"),
    }
}

/// A statement period: `[from, to)`, with 0 and 0 meaning everything.
pub fn period(from: i64, to: i64) -> Result<(i64, i64), Status> {
    match (from, to) {
        (0, 0) => Ok((0, i64::MAX)),
        (from, to) if from >= 0 && from < to => Ok((from, to)),
        _ => Err(Status::invalid_argument("the period needs 0 <= from_time_unix_ms < to_time_unix_ms")),
    }
}

#[tonic::async_trait]
impl TrackerService for HubAdmin {
    async fn track(&self, request: Request<pb::TrackRequest>) -> Result<Response<pb::TrackResponse>, Status> {
        let role = net::peer_role(&request)?;
        let uetr = Uetr::parse(&request.get_ref().uetr)
            .map_err(|e| Status::invalid_argument(e.at("uetr").to_string()))?;
        let payment = self.hub.payment(&uetr);
        let visible = match (&role, &payment) {
            (Role::Operator, _) => true,
            (Role::Bank(bic), Some(p)) => p.sender == *bic || p.receiver == *bic,
            _ => false,
        };
        // A bank learns nothing about payments that are not its own, not even whether they exist.
        let payment = payment
            .filter(|_| visible)
            .ok_or_else(|| Status::not_found(format!("no payment {uetr} of yours")))?;
        let positions = self.hub.positions();
        Ok(Response::new(pb::TrackResponse {
            steps: track_steps(&payment, positions.reports()),
            payment: Some(hub_payment_to_pb(&payment)),
        }))
    }
}
