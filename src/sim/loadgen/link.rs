//! One bank as the load generator drives it: its `SubmitPayments` and `WatchPayments`
//! streams, and what happens when they break (the bank restarted, or its watch fell
//! behind): the link opens them again, asks after the payments whose end it may have
//! missed, and sends again the orders the broken stream never answered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::book::{Book, Final};
use crate::model::{Bic, Uetr};
use crate::net::operator_client;
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::tls::NetworkDir;

/// Longest a bank may stay unreachable before the run gives up on it, unless the run
/// says otherwise (`--outage-max-secs`).
pub const OUTAGE_MAX: Duration = Duration::from_secs(60);
/// First wait between two attempts to reach a bank that went away; it doubles up to
/// [`RECONNECT_DELAY_MAX`].
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(50);
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(1);

/// Orders a link takes from its bank's queue in the book at once.
const ORDERS_TAKEN_MAX: usize = 256;

/// How the generator and one bank's link wake each other about that bank's queue of
/// orders in the book.
#[derive(Default)]
pub(super) struct Signals {
    /// Orders wait: the generator tells the link.
    pub ready: Notify,
    /// Orders were taken: the link tells a generator waiting for room.
    pub room: Notify,
}

/// What every order of the run has in common, and what differs by bank.
pub(super) struct Orders {
    /// The banks, by index.
    pub bics: Vec<Bic>,
    /// The account each bank pays from and into, by index.
    pub accounts: Vec<String>,
    /// ISO 4217 code of every payment.
    pub currency: String,
    /// The amount of every payment, decimal text.
    pub amount: String,
}

impl Orders {
    /// The order bank `from` gets to pay bank `to`.
    pub fn order(&self, from: usize, to: usize) -> pb::SubmitPaymentRequest {
        pb::SubmitPaymentRequest {
            settlement_currency: String::new(),
            quote_id: String::new(),
            debtor_account: self.accounts[from].clone(),
            creditor_agent_bic: self.bics[to].to_string(),
            creditor_account: self.accounts[to].clone(),
            creditor_name: "Load generator".into(),
            amount: self.amount.clone(),
            currency: self.currency.clone(),
            remittance_information: "corridor loadgen".into(),
            end_to_end_id: String::new(),
        }
    }
}

/// A bank's open streams.
pub(super) struct Streams {
    client: BankServiceClient<Channel>,
    submit: mpsc::Sender<pb::SubmitPaymentRequest>,
    answers: tonic::Streaming<pb::SubmitPaymentResult>,
    events: tonic::Streaming<pb::PaymentEvent>,
}

/// One bank of the run.
pub(super) struct Link {
    /// Its index among the run's banks.
    pub index: usize,
    pub url: String,
    pub network: NetworkDir,
    pub orders: Arc<Orders>,
    pub book: Arc<Mutex<Book>>,
    /// Its bank's queue of orders in the book: when orders wait, when they were taken.
    pub signals: Arc<Signals>,
    /// Closed loop: the window of payments in flight, a permit back for each that ends.
    pub window: Option<Arc<Semaphore>>,
    /// Where the link says what happened to its bank, for people.
    pub notices: mpsc::Sender<String>,
    /// Longest the bank may stay unreachable before the link gives up.
    pub outage_max: Duration,
}

impl Link {
    fn bic(&self) -> Bic {
        self.orders.bics[self.index]
    }

    /// Opens the bank's streams: the watch first, so that no end is missed after it.
    pub async fn open(&self, mut client: BankServiceClient<Channel>) -> Result<Streams, String> {
        let bic = self.bic();
        let events = client
            .watch_payments(pb::WatchPaymentsRequest {})
            .await
            .map_err(|s| format!("bank {bic}: {}", s.message()))?
            .into_inner();
        let (submit, receiver) = mpsc::channel(crate::bank::SUBMIT_STREAM_WINDOW);
        let answers = client
            .submit_payments(ReceiverStream::new(receiver))
            .await
            .map_err(|s| format!("bank {bic}: {}", s.message()))?
            .into_inner();
        Ok(Streams { client, submit, answers, events })
    }

    /// Writes the bank's orders, as they wait in the book, on its streams, reopening
    /// them whenever they break; ends only on an error that reconnecting cannot mend.
    pub async fn run(self, mut streams: Streams) -> Result<(), String> {
        let mut after_outage = false;
        loop {
            self.serve(streams, after_outage).await?;
            streams = self.reconnect().await?;
            after_outage = true;
        }
    }

    /// Drives one set of streams until one breaks (`Ok`) or the bank breaks the
    /// protocol (`Err`).
    async fn serve(&self, streams: Streams, after_outage: bool) -> Result<(), String> {
        let Streams { mut client, submit, answers, events } = streams;
        let mut readers = JoinSet::new();
        readers.spawn(read_answers(self.index, answers, self.book.clone(), self.window.clone()));
        readers.spawn(watch(events, self.book.clone(), self.window.clone()));
        let resend: Vec<usize> = {
            let book = self.book.lock().expect("book lock");
            book.due[self.index].iter().take(book.written[self.index]).map(|(_, to)| *to).collect()
        };
        let outcome = async {
            for to in resend {
                if submit.send(self.orders.order(self.index, to)).await.is_err() {
                    return Ok(());
                }
            }
            if after_outage {
                self.settle_missed(&mut client).await?;
            }
            loop {
                // Counted as written before they are: if the stream breaks first, they
                // are among those sent again.
                let taken = self.book.lock().expect("book lock").take_waiting(self.index, ORDERS_TAKEN_MAX);
                if taken.is_empty() {
                    self.signals.ready.notified().await;
                    continue;
                }
                self.signals.room.notify_one();
                for to in taken {
                    if submit.send(self.orders.order(self.index, to)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        };
        let ended = tokio::select! {
            ended = outcome => ended,
            Some(ended) = readers.join_next() => ended.map_err(|e| e.to_string())?,
        };
        // Stop the readers before anyone reads the book's count of unanswered orders.
        readers.shutdown().await;
        ended
    }

    /// Asks the bank after each of its open payments, whose end may have come while
    /// its watch was down.
    async fn settle_missed(&self, client: &mut BankServiceClient<Channel>) -> Result<(), String> {
        let open = self.book.lock().expect("book lock").open_at(self.index);
        let mut found = 0;
        for uetr in open {
            let request = pb::GetPaymentRequest { uetr: uetr.to_string() };
            let payment = match client.get_payment(request).await {
                Ok(response) => response.into_inner().payment.unwrap_or_default(),
                // Taken orders are durable: a bank that does not know one is not this run's.
                Err(status) if status.code() == tonic::Code::NotFound => continue,
                // Broken again: the next reconnection asks again.
                Err(_) => return Ok(()),
            };
            if !payment.r#final {
                continue;
            }
            let end = Final::of(payment.status, &payment.reason_code);
            if self.book.lock().expect("book lock").found_final(uetr, end) {
                found += 1;
                release(&self.window);
            }
        }
        if found > 0 {
            let _ =
                self.notices.try_send(format!("{}: {found} payments ended while it was away", self.bic()));
        }
        Ok(())
    }

    /// Reaches the bank again and opens its streams, trying for up to `outage_max`.
    async fn reconnect(&self) -> Result<Streams, String> {
        let (bic, down_at) = (self.bic(), Instant::now());
        self.book.lock().expect("book lock").banks_down += 1;
        let _ = self.notices.try_send(format!("{bic}: its streams broke; reconnecting to {}", self.url));
        let mut delay = RECONNECT_DELAY_MIN;
        let streams = loop {
            let attempt = match operator_client(&self.network, &self.url).await {
                Ok(client) => self.open(client).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(streams) => break streams,
                Err(e) if down_at.elapsed() >= self.outage_max => {
                    return Err(format!(
                        "bank {bic} at {} has not come back in {} s: {e}",
                        self.url,
                        self.outage_max.as_secs_f64()
                    ));
                }
                Err(_) => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RECONNECT_DELAY_MAX);
        };
        let resent = {
            let mut book = self.book.lock().expect("book lock");
            book.banks_down -= 1;
            book.outages += 1;
            book.outage += down_at.elapsed();
            book.last_reconnect = Some(Instant::now());
            let resent = book.written[self.index];
            book.orders_resent += resent as u64;
            resent
        };
        let _ = self.notices.try_send(format!(
            "{bic}: back after {:.1} s; orders it had not answered, sent again: {resent}",
            down_at.elapsed().as_secs_f64()
        ));
        Ok(streams)
    }
}

/// Gives a slot of the closed loop's window back.
fn release(window: &Option<Arc<Semaphore>>) {
    if let Some(window) = window {
        window.add_permits(1);
    }
}

/// Reads one bank's answers to its orders until the stream breaks: each payment taken
/// is now open (or already final), each refused order ends there.
async fn read_answers(
    index: usize,
    mut answers: tonic::Streaming<pb::SubmitPaymentResult>,
    book: Arc<Mutex<Book>>,
    window: Option<Arc<Semaphore>>,
) -> Result<(), String> {
    loop {
        let answer = match answers.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => return Ok(()),
            Err(status) => {
                tracing::warn!(error = %status.message(), "a bank's order stream broke");
                return Ok(());
            }
        };
        if book.lock().expect("book lock").answered(index, answer)? {
            release(&window);
        }
    }
}

/// Reads one bank's finished payments until the stream breaks: the outgoing ones end a
/// measurement.
async fn watch(
    mut events: tonic::Streaming<pb::PaymentEvent>,
    book: Arc<Mutex<Book>>,
    window: Option<Arc<Semaphore>>,
) -> Result<(), String> {
    loop {
        let event = match events.message().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            Err(status) => {
                tracing::warn!(error = %status.message(), "a bank's payment watch broke");
                return Ok(());
            }
        };
        if event.direction != pb::PaymentDirection::Outgoing as i32 {
            continue;
        }
        let uetr = Uetr::parse(&event.uetr).map_err(|e| e.to_string())?;
        let end = Final::of(event.status, &event.reason_code);
        if book.lock().expect("book lock").reported(uetr, end) {
            release(&window);
        }
    }
}
