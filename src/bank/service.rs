//! The bank's operator API (`BankService`) on gRPC with mTLS, and the node's `run`.

use std::future::Future;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{
    Bank, BankError, Direction, ExportedMessage, HubUrls, Payment, PaymentOrder, ReturnState, run_session,
};
use crate::ledger::{Account, AccountKind};
use crate::model::wire::payment_status_to_pb;
use crate::net;
use crate::pb;
use crate::pb::bank_service_server::{BankService, BankServiceServer};
use crate::store::Ticket;
use crate::tls::{NetworkDir, Role};

/// The gRPC face of a [`Bank`].
#[derive(Clone)]
pub struct BankServer {
    bank: Bank,
}

impl BankServer {
    /// Serves `bank`.
    pub fn new(bank: Bank) -> Self {
        Self { bank }
    }
}

/// Runs a bank node: its session with one of the hubs at `hubs` and its operator API on
/// `listener`, until `shutdown` completes; then health turns NOT_SERVING, the session
/// ends and the server drains.
pub async fn run(
    bank: Bank,
    network: &NetworkDir,
    hubs: &HubUrls,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let session_end = CancellationToken::new();
    let session = tokio::spawn(run_session(bank.clone(), network.clone(), hubs.clone(), session_end.clone()));
    let sweeper = tokio::spawn(sweep_until(bank.clone(), session_end.clone()));
    // An operator's request is small; the largest, an XML document, fits a frame.
    let service = BankServiceServer::new(BankServer::new(bank.clone()))
        .max_decoding_message_size(net::FRAME_SIZE_MAX_BYTES);
    let role = Role::Bank(bank.bic());
    let limits = net::ConnectionLimits::default();
    let tls = net::ServerTls::new(network, role, limits).map_err(|e| e.to_string())?;
    // All of the bank's keys, not only the one it opened with: one may activate later.
    bank.reload_credentials(network)?;
    let watch = {
        let bank = bank.clone();
        net::watch_network(std::sync::Arc::clone(&tls), move |network| bank.reload_credentials(network))
    };
    let mut builder = net::server_builder(&limits);
    let (router, health) = net::with_health_and_reflection(builder.add_service(service));
    health.set_serving::<BankServiceServer<BankServer>>().await;
    let on_stop = async move {
        health.set_not_serving::<BankServiceServer<BankServer>>().await;
        session_end.cancel();
    };
    let node = format!("bank {}", bank.bic());
    let served =
        net::serve_node(&node, router, listener, tls, shutdown, bank.storage_failure(), on_stop).await;
    let _ = session.await;
    let _ = sweeper.await;
    // The watcher holds the bank: gone before this returns, so the store can close.
    watch.stop().await;
    served
}

/// Moves finished payments, postings and processed messages out of memory every
/// [`super::BankConfig::sweep_interval`], until `stop` is cancelled.
async fn sweep_until(bank: Bank, stop: CancellationToken) {
    let mut every = tokio::time::interval(bank.config().sweep_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => bank.sweep(),
            _ = stop.cancelled() => return,
        }
    }
}

fn operator_only<T>(request: &Request<T>) -> Result<(), Status> {
    match net::peer_role(request)? {
        Role::Operator => Ok(()),
        other => {
            Err(Status::permission_denied(format!("only an operator may drive a bank node, not {other:?}")))
        }
    }
}

impl From<BankError> for Status {
    fn from(error: BankError) -> Self {
        match error {
            BankError::Invalid(e) => Status::invalid_argument(e.to_string()),
            BankError::NotFound(e) => Status::not_found(e),
            BankError::Refused(e) => Status::failed_precondition(e),
            BankError::Ledger(e) => Status::failed_precondition(e.to_string()),
            BankError::Storage(e) => Status::unavailable(format!("the bank cannot store anything: {e}")),
            BankError::Unavailable(e) => Status::unavailable(e),
            BankError::Xml(e) => Status::invalid_argument(e),
        }
    }
}

fn direction_to_pb(direction: Direction) -> pb::PaymentDirection {
    match direction {
        Direction::Outgoing => pb::PaymentDirection::Outgoing,
        Direction::Incoming => pb::PaymentDirection::Incoming,
    }
}

fn payment_to_pb(payment: &Payment) -> pb::Payment {
    pb::Payment {
        uetr: payment.uetr.to_string(),
        message_id: payment.message_id.to_string(),
        direction: direction_to_pb(payment.direction) as i32,
        counterparty_bic: payment.counterparty.to_string(),
        debtor_account: payment.debtor_account.clone(),
        creditor_account: payment.creditor_account.clone(),
        amount: Some(crate::model::wire::money_of_amount(&payment.amount)),
        status: payment_status_to_pb(payment.status) as i32,
        reason_code: payment.reason.map(|r| r.code().to_owned()).unwrap_or_default(),
        detail: payment.detail.clone(),
        r#final: payment.status.is_final(),
        counter_amount: payment
            .conversion
            .as_ref()
            .map(|c| crate::model::wire::money_of_amount(&c.counter_amount)),
        exchange_rate: payment.conversion.as_ref().map(|c| c.rate.to_string()).unwrap_or_default(),
        return_state: match payment.return_state {
            ReturnState::None => pb::ReturnState::None,
            ReturnState::Returning { .. } => pb::ReturnState::Returning,
            ReturnState::Returned { .. } => pb::ReturnState::Returned,
        } as i32,
        return_reason_code: payment.return_state.reason().map(|r| r.code().to_owned()).unwrap_or_default(),
        recall_case_id: payment.recall.as_ref().map(|r| r.case_id.clone()).unwrap_or_default(),
        recall_status: payment.recall.as_ref().map_or(pb::InvestigationStatus::Unspecified, |r| {
            crate::model::wire::investigation_status_to_pb(r.status)
        }) as i32,
        recall_reason_code: payment.recall.as_ref().map(|r| r.reason.code().to_owned()).unwrap_or_default(),
    }
}

fn exported_to_pb(message: ExportedMessage) -> pb::ExportedMessage {
    let (xml, not_writable) = match message.xml {
        Ok(xml) => (xml, String::new()),
        Err(why) => (String::new(), why),
    };
    pb::ExportedMessage {
        message_id: message.message_id.to_string(),
        message_type: message.message_type.to_string(),
        sent: message.sent,
        xml,
        not_writable,
    }
}

fn account_to_pb(account: &Account) -> pb::Account {
    pb::Account {
        id: account.id.to_string(),
        kind: match account.kind {
            AccountKind::Customer => pb::AccountKind::Customer,
            AccountKind::Settlement => pb::AccountKind::Settlement,
            AccountKind::InFlight => pb::AccountKind::InFlight,
            AccountKind::Suspense => pb::AccountKind::Suspense,
            AccountKind::Cash => pb::AccountKind::Cash,
        } as i32,
        balance: Some(pb::Money { minor_units: account.balance, currency: account.currency.to_string() }),
        blocked: account.blocked,
        name: account.name.clone(),
    }
}

fn order_of(r: pb::SubmitPaymentRequest) -> PaymentOrder {
    PaymentOrder {
        debtor_account: r.debtor_account,
        creditor_agent: r.creditor_agent_bic,
        creditor_account: r.creditor_account,
        creditor_name: r.creditor_name,
        amount: r.amount,
        currency: r.currency,
        remittance_information: r.remittance_information,
        settlement_currency: r.settlement_currency,
        quote_id: r.quote_id,
    }
}

/// Orders of one SubmitPayments stream taken but not yet answered: the stream is read
/// no further ahead than this (backpressure on the caller).
pub const SUBMIT_STREAM_WINDOW: usize = 1024;

type Answers = mpsc::Sender<Result<pb::SubmitPaymentResult, Status>>;

/// Takes each order of a SubmitPayments stream at once (booked, signed, queued) and
/// hands it on to be answered once durable, so that one stream fills group commits.
async fn take_orders(
    bank: Bank,
    mut orders: Streaming<pb::SubmitPaymentRequest>,
    taken: mpsc::Sender<(Result<Payment, BankError>, Ticket)>,
) {
    while let Ok(Some(request)) = orders.message().await {
        let order = order_of(request);
        let outcome = match bank.conversion_for(&order).await {
            Ok(conversion) => bank.submit_payment_now(&order, conversion, None),
            Err(error) => Err(error),
        };
        let answer = match outcome {
            Ok((payment, ticket)) => (Ok(payment), ticket),
            Err(error) => (Err(error), Ticket::DURABLE),
        };
        if taken.send(answer).await.is_err() {
            return;
        }
    }
}

/// Answers each taken order, in order, once durable.
async fn answer_orders(
    bank: Bank,
    mut taken: mpsc::Receiver<(Result<Payment, BankError>, Ticket)>,
    answers: Answers,
) {
    while let Some((result, ticket)) = taken.recv().await {
        if let Err(error) = bank.durable(ticket).await {
            let _ = answers.send(Err(Status::from(BankError::Storage(error)))).await;
            return;
        }
        bank.wake_outbox();
        let answer = match result {
            Ok(payment) => {
                pb::SubmitPaymentResult { payment: Some(payment_to_pb(&payment)), ..Default::default() }
            }
            Err(error) => {
                let status = Status::from(error);
                pb::SubmitPaymentResult {
                    payment: None,
                    code: status.code() as i32,
                    detail: status.message().to_owned(),
                }
            }
        };
        if answers.send(Ok(answer)).await.is_err() {
            return;
        }
    }
}

#[tonic::async_trait]
impl BankService for BankServer {
    type SubmitPaymentsStream = ReceiverStream<Result<pb::SubmitPaymentResult, Status>>;
    type WatchPaymentsStream = ReceiverStream<Result<pb::PaymentEvent, Status>>;

    async fn submit_payments(
        &self,
        request: Request<Streaming<pb::SubmitPaymentRequest>>,
    ) -> Result<Response<Self::SubmitPaymentsStream>, Status> {
        operator_only(&request)?;
        let (taken, pending) = mpsc::channel(SUBMIT_STREAM_WINDOW);
        let (answers, stream) = mpsc::channel(SUBMIT_STREAM_WINDOW);
        tokio::spawn(take_orders(self.bank.clone(), request.into_inner(), taken));
        tokio::spawn(answer_orders(self.bank.clone(), pending, answers));
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn watch_payments(
        &self,
        request: Request<pb::WatchPaymentsRequest>,
    ) -> Result<Response<Self::WatchPaymentsStream>, Status> {
        operator_only(&request)?;
        let mut watch = self.bank.watch();
        let (events, stream) = mpsc::channel(SUBMIT_STREAM_WINDOW);
        tokio::spawn(async move {
            loop {
                let event = match watch.next().await {
                    Ok(event) => Ok(pb::PaymentEvent {
                        uetr: event.uetr.to_string(),
                        direction: direction_to_pb(event.direction) as i32,
                        status: payment_status_to_pb(event.status) as i32,
                        reason_code: event.reason.map(|r| r.code().to_owned()).unwrap_or_default(),
                    }),
                    Err(problem) => Err(Status::resource_exhausted(problem)),
                };
                let end = event.is_err();
                if events.send(event).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::Statement>, Status> {
        let (r, from, to) = statement_request(request)?;
        let statement = self.bank.statement(&r.account_id, &r.currency, from, to)?;
        Ok(Response::new(crate::model::wire::statement_to_pb(&statement)))
    }

    async fn submit_payment(
        &self,
        request: Request<pb::SubmitPaymentRequest>,
    ) -> Result<Response<pb::SubmitPaymentResponse>, Status> {
        operator_only(&request)?;
        let order = order_of(request.into_inner());
        let payment = self.bank.submit_payment(&order).await?;
        Ok(Response::new(pb::SubmitPaymentResponse { payment: Some(payment_to_pb(&payment)) }))
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        operator_only(&request)?;
        let payment = self.bank.payment(&request.into_inner().uetr)?;
        Ok(Response::new(pb::GetPaymentResponse { payment: Some(payment_to_pb(&payment)) }))
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        operator_only(&request)?;
        let payments = self.bank.payments()?.iter().map(payment_to_pb).collect();
        Ok(Response::new(pb::ListPaymentsResponse { payments }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        operator_only(&request)?;
        let (accounts, balanced) = self.bank.accounts();
        let accounts = accounts.iter().map(account_to_pb).collect();
        Ok(Response::new(pb::ListAccountsResponse { accounts, ledger_balanced: balanced }))
    }

    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::OpenAccountResponse>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let account = self.bank.open_account(&r.account_id, &r.currency, &r.name, &r.opening_deposit).await?;
        Ok(Response::new(pb::OpenAccountResponse { account: Some(account_to_pb(&account)) }))
    }

    async fn get_quote(&self, request: Request<pb::QuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let money =
            r.instructed_amount.ok_or_else(|| Status::invalid_argument("instructed_amount: is required"))?;
        let currency = crate::model::Currency::parse(&money.currency)
            .map_err(|e| Status::invalid_argument(e.at("instructed_amount.currency").to_string()))?;
        let instructed = crate::model::Amount::from_minor_units(money.minor_units, currency)
            .map_err(|e| Status::invalid_argument(e.at("instructed_amount").to_string()))?;
        let text = crate::model::format_minor_units(instructed.minor_units(), currency);
        let offer = self.bank.get_quote(&text, currency.code(), &r.settlement_currency).await?;
        Ok(Response::new(pb::Quote {
            quote_id: offer.id,
            participant_bic: self.bank.bic().to_string(),
            instructed_amount: Some(crate::model::wire::money_of_amount(&offer.instructed)),
            settlement_amount: Some(crate::model::wire::money_of_amount(&offer.settlement)),
            exchange_rate: offer.rate.to_string(),
            expires_unix_ms: offer.expires_unix_ms,
        }))
    }

    async fn return_payment(
        &self,
        request: Request<pb::ReturnPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let payment = self.bank.return_payment(&r.uetr, &r.reason_code, &r.additional_information).await?;
        Ok(Response::new(pb::GetPaymentResponse { payment: Some(payment_to_pb(&payment)) }))
    }

    async fn recall_payment(
        &self,
        request: Request<pb::RecallPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let payment = self.bank.recall_payment(&r.uetr, &r.reason_code, &r.additional_information).await?;
        Ok(Response::new(pb::GetPaymentResponse { payment: Some(payment_to_pb(&payment)) }))
    }

    async fn answer_recall(
        &self,
        request: Request<pb::AnswerRecallRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let payment =
            self.bank.answer_recall(&r.uetr, r.accept, &r.reason_code, &r.additional_information).await?;
        Ok(Response::new(pb::GetPaymentResponse { payment: Some(payment_to_pb(&payment)) }))
    }

    async fn submit_payment_xml(
        &self,
        request: Request<pb::SubmitPaymentXmlRequest>,
    ) -> Result<Response<pb::SubmitPaymentResponse>, Status> {
        operator_only(&request)?;
        let payment = self.bank.submit_xml(&request.into_inner().document).await?;
        Ok(Response::new(pb::SubmitPaymentResponse { payment: Some(payment_to_pb(&payment)) }))
    }

    async fn export_payment_xml(
        &self,
        request: Request<pb::ExportPaymentXmlRequest>,
    ) -> Result<Response<pb::ExportPaymentXmlResponse>, Status> {
        operator_only(&request)?;
        let uetr = request.into_inner().uetr;
        let (payment, messages) = self.bank.export_xml(&uetr).await?;
        let messages = messages.into_iter().map(exported_to_pb).collect();
        Ok(Response::new(pb::ExportPaymentXmlResponse { payment: Some(payment_to_pb(&payment)), messages }))
    }

    async fn get_statement_xml(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::StatementXml>, Status> {
        let (r, from, to) = statement_request(request)?;
        let xml = self.bank.statement_xml(&r.account_id, &r.currency, from, to)?;
        Ok(Response::new(pb::StatementXml { xml }))
    }

    async fn set_account_blocked(
        &self,
        request: Request<pb::SetAccountBlockedRequest>,
    ) -> Result<Response<pb::SetAccountBlockedResponse>, Status> {
        operator_only(&request)?;
        let r = request.into_inner();
        let account = self.bank.set_account_blocked(&r.account_id, r.blocked).await?;
        Ok(Response::new(pb::SetAccountBlockedResponse { account: Some(account_to_pb(&account)) }))
    }
}

/// A statement request from the bank's operator, with its period read: the request and
/// its first and last times (Unix ms).
fn statement_request(
    request: Request<pb::GetStatementRequest>,
) -> Result<(pb::GetStatementRequest, i64, i64), Status> {
    operator_only(&request)?;
    let r = request.into_inner();
    let (from, to) = crate::model::wire::statement_period(r.from_time_unix_ms, r.to_time_unix_ms)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok((r, from, to))
}
