//! The hub operator's gRPC services: `HubAdminService` (positions, suspensions,
//! settlement windows, statements, the reconciler's export), callable only with the
//! operator's certificate, and `TrackerService` (where is my payment?).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::fx::Agreement;
use super::positions::{FxLine, Position, SettlementReport};
use super::tracker::{HubPayment, settlement_statement};
use super::{Hub, OperatorAction, OperatorOutcome, SettlementModel};
use crate::model::wire::{investigation_status_to_pb, payment_status_to_pb};
use crate::model::{Amount, Bic, Currency, CurrencyPair, InvestigationStatus, Rate, Uetr, wire};
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
        fx_lines: report.fx.iter().map(fx_line_to_pb).collect(),
    }
}

fn fx_line_to_pb(line: &FxLine) -> pb::FxPosition {
    pb::FxPosition {
        currency_pair: line.pair.to_string(),
        currency: line.currency.code().to_owned(),
        settled_net: line.net,
    }
}

/// An agreement on the wire.
pub fn agreement_to_pb(agreement: &Agreement) -> pb::RateAgreement {
    pb::RateAgreement {
        currency_pair: agreement.pair.to_string(),
        rate: agreement.rate.to_string(),
        spread_bps: agreement.spread_bps,
        valid_from_unix_ms: agreement.valid_from_unix_ms,
        valid_until_unix_ms: agreement.valid_until_unix_ms.unwrap_or(0),
        applied_rate: agreement.applied.to_string(),
    }
}

/// An agreement from the wire, checked; a zero start means `now`, a zero end none.
pub fn agreement_from_pb(agreement: Option<pb::RateAgreement>, now: i64) -> Result<Agreement, Status> {
    let a = agreement.ok_or_else(|| Status::invalid_argument("agreement: is required"))?;
    let invalid =
        |field: &str, e: crate::model::ModelError| Status::invalid_argument(e.at(field).to_string());
    let pair = CurrencyPair::parse(&a.currency_pair).map_err(|e| invalid("agreement.currency_pair", e))?;
    let rate = Rate::parse(&a.rate).map_err(|e| invalid("agreement.rate", e))?;
    if a.valid_from_unix_ms < 0 || a.valid_until_unix_ms < 0 {
        return Err(Status::invalid_argument("agreement: validity times are Unix milliseconds, 0 or more"));
    }
    let from = if a.valid_from_unix_ms == 0 { now } else { a.valid_from_unix_ms };
    let until = (a.valid_until_unix_ms != 0).then_some(a.valid_until_unix_ms);
    Agreement::new(pair, rate, a.spread_bps, from, until)
        .map_err(|e| Status::invalid_argument(e.under("agreement").to_string()))
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
        instructed_amount: Some(wire::money_of_amount(&payment.instructed)),
        exchange_rate: payment.pair_and_rate().map(|(_, rate)| rate.to_string()).unwrap_or_default(),
        returned: payment.returned.is_some(),
        return_reason_code: payment.returned.as_ref().map(|r| r.reason.code().to_owned()).unwrap_or_default(),
        return_delivered_to_sender: payment.returned.as_ref().is_some_and(|r| r.delivered_unix_ms.is_some()),
        recall_case_id: payment.recall.as_ref().map(|c| c.case_id.clone()).unwrap_or_default(),
        recall_status: payment
            .recall
            .as_ref()
            .map_or(pb::InvestigationStatus::Unspecified, |c| investigation_status_to_pb(c.status()))
            as i32,
        recall_reason_code: payment
            .recall
            .as_ref()
            .map(|c| c.answer.as_ref().and_then(|a| a.reason).unwrap_or(c.reason).code().to_owned())
            .unwrap_or_default(),
    }
}

/// The steps of a payment's path, in time order.
pub fn track_steps(payment: &HubPayment, reports: &[SettlementReport]) -> Vec<pb::TrackStep> {
    let amount = payment.amount;
    let converted = match payment.pair_and_rate() {
        Some((pair, rate)) => format!("{} converted at {rate} ({pair}) into ", payment.instructed),
        None => String::new(),
    };
    let route = payment.route();
    let came =
        route.sender_link.map(|link| format!(", arrived over the link from {link}")).unwrap_or_default();
    let mut steps = vec![step(
        "submitted",
        payment.submitted_unix_ms,
        route.sender_link.unwrap_or(payment.sender),
        format!(
            "pacs.008 {} from {} for {converted}{amount} to {} checked and journalled{came}",
            payment.message_id, payment.sender, payment.receiver
        ),
    )];
    let hub = Bic::parse(crate::tls::HUB_BIC).expect("valid");
    // A return is pushed before a recall's answer: the pacs.004 precedes the camt.029
    // CNCL, and the two often share a millisecond (the sort keeps ties in this order).
    if let Some(returned) = &payment.returned {
        let undone = match payment.pair_and_rate() {
            Some((_, rate)) => format!("{amount} back as {} (at the original {rate})", payment.instructed),
            None => format!("{amount} back"),
        };
        steps.push(step(
            "returned",
            returned.returned_unix_ms,
            payment.receiver,
            format!(
                "pacs.004 {} ({}) settled: {undone} from {} to {}",
                returned.message_id, returned.reason, payment.receiver, payment.sender
            ),
        ));
        if let Some(at) = returned.delivered_unix_ms {
            steps.push(step(
                "return_delivered",
                at,
                payment.sender,
                "the sender confirmed it processed the pacs.004".into(),
            ));
        }
    }
    if let Some(case) = &payment.recall {
        steps.push(step(
            "recall_requested",
            case.requested_unix_ms,
            payment.sender,
            format!("camt.056 {} opens recall case {} ({})", case.message_id, case.case_id, case.reason),
        ));
        if let Some(at) = case.delivered_unix_ms {
            steps.push(step(
                "recall_delivered",
                at,
                payment.receiver,
                "the receiver confirmed it processed the camt.056".into(),
            ));
        }
        if let Some(answer) = &case.answer {
            let detail = match answer.status {
                InvestigationStatus::Cncl => {
                    format!("camt.029 {}: CNCL, the funds were returned", answer.message_id)
                }
                _ => format!(
                    "camt.029 {}: {} ({})",
                    answer.message_id,
                    answer.status,
                    answer.reason.map(|r| r.code()).unwrap_or("no reason")
                ),
            };
            steps.push(step("recall_answered", answer.answered_unix_ms, payment.receiver, detail));
            if let Some(at) = answer.delivered_unix_ms {
                steps.push(step(
                    "recall_answer_delivered",
                    at,
                    payment.sender,
                    "the sender confirmed it processed the camt.029".into(),
                ));
            }
        }
    }
    if let Some(at) = payment.acknowledged_unix_ms {
        steps.push(step(
            "acknowledged",
            at,
            payment.sender,
            "the hub's ACK, with its signed receipt, left".into(),
        ));
    }
    if let Some(at) = payment.delivered_unix_ms {
        steps.push(match route.receiver_link {
            None => step(
                "delivered",
                at,
                payment.receiver,
                "the receiver confirmed it processed the pacs.008".into(),
            ),
            Some(link) => step(
                "crossed_link",
                at,
                link,
                format!(
                    "the hub across the link ({link}) took the pacs.008 for {}, durably",
                    payment.receiver
                ),
            ),
        });
    }
    let Some(status) = &payment.status else { return steps };
    let reason = status.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    let over = route.receiver_link.map(|link| format!(", over the link from {link}")).unwrap_or_default();
    steps.push(step(
        "status_reported",
        status.reported_unix_ms,
        payment.receiver,
        format!("pacs.002 {} reports {}{reason}{over}", status.message_id, status.status),
    ));
    if payment.settled() {
        let closed = status.window_id.and_then(|id| reports.iter().find(|r| r.window_id == id));
        let detail = match (status.window_id, closed) {
            (None, _) if !route.is_local() => {
                let (debtor, debit, creditor, _) =
                    route.legs(payment.instructed, payment.amount, payment.sender, payment.receiver);
                format!(
                    "{debit} moved from {debtor} to {creditor} (gross, final); the hub across the link settles the other leg"
                )
            }
            (None, _) => format!(
                "{}{amount} moved from {} to {} (gross, final)",
                if converted.is_empty() { String::new() } else { format!("{} paid, ", payment.instructed) },
                payment.sender,
                payment.receiver
            ),
            (Some(id), Some(_)) => format!("settled net when window {id} closed"),
            (Some(id), None) => format!("in settlement window {id}, settles net when it closes"),
        };
        let at = closed.map_or(status.reported_unix_ms, |r| r.closed_unix_ms);
        steps.push(step("settled", at, hub, detail));
    } else if status.status == crate::model::PaymentStatus::Rjct {
        let detail =
            format!("reservation of {} on {}'s position released", payment.instructed, payment.sender);
        steps.push(step("released", status.reported_unix_ms, hub, detail));
    }
    if let Some(at) = status.delivered_unix_ms {
        steps.push(match route.sender_link {
            None => step(
                "status_delivered",
                at,
                payment.sender,
                "the sender confirmed it processed the pacs.002".into(),
            ),
            Some(link) => step(
                "status_crossed_link",
                at,
                link,
                format!("the hub across the link ({link}) took the pacs.002 for {}, durably", payment.sender),
            ),
        });
    }
    steps.sort_by_key(|s| s.time_unix_ms);
    steps
}

/// The steps of the hub across the link with `link`, each marked as that hub's; when it
/// cannot be asked, one step that says so.
async fn steps_across(hub: &super::Hub, link: Bic, uetr: &Uetr) -> Vec<pb::TrackStep> {
    match hub.track_across(link, &uetr.to_string()).await {
        Ok(steps) => steps
            .into_iter()
            .map(|step| pb::TrackStep {
                detail: format!("[across the link, at {link}'s hub] {}", step.detail),
                ..step
            })
            .collect(),
        Err(error) => vec![step(
            "across_link_unknown",
            hub.now_unix_ms(),
            link,
            format!("the steps at the hub across the link are not known now: {error}"),
        )],
    }
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
        // "0" (or "0.00") for no cap, as for an opening deposit.
        let cap = Amount::parse_zero_or_positive(&r.cap, currency)
            .map_err(|e| Status::invalid_argument(e.at("cap").to_string()))?
            .map_or(0, |cap| cap.minor_units());
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
            fx_positions: positions.fx_positions().map(|l| fx_line_to_pb(&l)).collect(),
        }))
    }

    async fn set_agreement(
        &self,
        request: Request<pb::SetAgreementRequest>,
    ) -> Result<Response<pb::AgreementResponse>, Status> {
        operator_only(&request)?;
        let agreement = agreement_from_pb(request.into_inner().agreement, self.hub.now_unix_ms())?;
        match self.operate(OperatorAction::SetAgreement(agreement)).await? {
            OperatorOutcome::Agreement(agreement) => {
                Ok(Response::new(pb::AgreementResponse { agreement: Some(agreement_to_pb(&agreement)) }))
            }
            other => unreachable!("setting an agreement answers with it, not {other:?}"),
        }
    }

    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        operator_only(&request)?;
        let agreements = self.hub.agreements().iter().map(agreement_to_pb).collect();
        Ok(Response::new(pb::ListAgreementsResponse { agreements }))
    }

    async fn get_statement(
        &self,
        request: Request<pb::HubStatementRequest>,
    ) -> Result<Response<pb::Statement>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let bic = self.participant(&r.participant_bic)?;
        let currency = currency(&r.currency)?;
        let (from, to) = wire::statement_period(r.from_time_unix_ms, r.to_time_unix_ms)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
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
        let mut steps = track_steps(&payment, positions.reports());
        let route = payment.route();
        if let Some(link) =
            route.sender_link.or(route.receiver_link).filter(|_| !request.get_ref().this_hub_only)
        {
            steps.extend(steps_across(&self.hub, link, &uetr).await);
            steps.sort_by_key(|step| step.time_unix_ms);
        }
        Ok(Response::new(pb::TrackResponse { steps, payment: Some(hub_payment_to_pb(&payment)) }))
    }
}
