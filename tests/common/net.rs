//! A network of real nodes for the network tests, and a bank's session spoken by hand
//! to send the hub what no honest bank node would.

use std::time::Duration;

use corridor::crypto::SigningIdentity;
use corridor::hub::HubConfig;
use corridor::model::*;
use corridor::net;
use corridor::pb;
use corridor::pb::hub_service_client::HubServiceClient;
use corridor::pb::session_request::Frame as RequestFrame;
use corridor::pb::session_response::Frame as ResponseFrame;
use corridor::sim::LocalNetwork;
use corridor::tls::{self, NetworkDir, Role};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::{bic, credit_transfer};

pub const RU: &str = "BANKRUMMXXX";
pub const IR: &str = "BANKIRTHXXX";
pub const CN: &str = "BANKCNSHXXX";
/// Each bank's prefunded liquidity at the hub, in CNY.
pub const HUB_LIQUIDITY: &str = "1000000000";

/// A network with the hub and every bank running, each with customer accounts
/// C001 (funded with 1000.00 CNY) and C002 (empty), and a position at the hub far
/// larger than any payment here (positions have their own tests in settlement.rs).
pub async fn network(dir: &std::path::Path, bics: &[&str]) -> LocalNetwork {
    network_with_nodes(dir, bics, bics).await
}

/// A network of `bics` where only `nodes` run a bank node (in that order); the others
/// are left for a test to speak for by hand (a second session would replace the first).
pub async fn network_with_nodes(dir: &std::path::Path, bics: &[&str], nodes: &[&str]) -> LocalNetwork {
    network_with_config(dir, bics, nodes, HubConfig::default()).await
}

/// Like [`network_with_nodes`], with a hub configured by `config`.
pub async fn network_with_config(
    dir: &std::path::Path,
    bics: &[&str],
    nodes: &[&str],
    config: HubConfig,
) -> LocalNetwork {
    let bics: Vec<Bic> = bics.iter().map(|b| bic(b)).collect();
    start_network(tls::init(dir, &bics).unwrap(), nodes, config).await
}

/// Starts a hub configured by `config` on the network directory `pki` (made and perhaps
/// edited by the test), funds every participant and starts bank nodes for `nodes`, each
/// with the accounts of [`network`].
pub async fn start_network(pki: NetworkDir, nodes: &[&str], config: HubConfig) -> LocalNetwork {
    let mut network = LocalNetwork::start_hub(pki, config).await.unwrap();
    network.fund_all("CNY", HUB_LIQUIDITY).await.unwrap();
    for node in nodes {
        let index = network.start_bank(bic(node)).await.unwrap();
        open_accounts(&network, index).await;
    }
    network
}

pub async fn open_accounts(network: &LocalNetwork, index: usize) {
    let bank = &network.banks[index].bank;
    bank.open_account("C001", "CNY", "Customer one", "1000.00").await.unwrap();
    bank.open_account("C002", "CNY", "Customer two", "").await.unwrap();
}

pub fn balance(network: &LocalNetwork, index: usize, account: &str) -> i64 {
    let (accounts, balanced) = network.banks[index].bank.accounts();
    assert!(balanced, "every ledger balances");
    accounts.iter().find(|a| a.id.as_str() == account).map(|a| a.balance).unwrap()
}

pub fn order(to: &str, account: &str, amount: &str) -> corridor::bank::PaymentOrder {
    corridor::bank::PaymentOrder {
        debtor_account: "C001".into(),
        creditor_agent: to.into(),
        creditor_account: account.into(),
        creditor_name: "Beneficiary".into(),
        amount: amount.into(),
        currency: "CNY".into(),
        remittance_information: "test".into(),
        settlement_currency: String::new(),
        quote_id: String::new(),
    }
}

/// An order from C001 of `amount` in `from`, to C002 at bank `to`, settling in `to_currency`
/// (across a link, or through an agreement).
pub fn order_converting(
    to: &str,
    amount: &str,
    from: &str,
    to_currency: &str,
) -> corridor::bank::PaymentOrder {
    corridor::bank::PaymentOrder {
        currency: from.into(),
        settlement_currency: to_currency.into(),
        remittance_information: "converted".into(),
        ..order(to, "C002", amount)
    }
}

/// Waits until each of two linked networks' hubs has its link up and the other network's
/// directory in force (`Hub::link_ready`). Each side is (its network, the other network's
/// link identity). Banks started after this know the other network's banks from the
/// start; one started before learns them when it next reloads its directory.
pub async fn wait_linked(sides: [(&LocalNetwork, &str); 2]) {
    for _ in 0..600 {
        if sides.iter().all(|(network, link)| network.hub().link_ready(bic(link))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the link did not come up in 30 s");
}

/// Waits (a bounded time) until the bank of `network` at `index` has booked payment `uetr`
/// as settled and holds its answer, the pacs.002, alone in its outbox: the answer held
/// back on its way to the hub. The caller asserts what it needs of that.
pub async fn wait_until_answer_queued(network: &LocalNetwork, index: usize, uetr: &str) {
    let payee = &network.banks[index].bank;
    for _ in 0..400 {
        if payee.payment(uetr).is_ok_and(|p| p.status == PaymentStatus::Acsc) && payee.outbox_len() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (bounded) until the payment is final at `index`, through the operator API.
pub async fn final_status(network: &LocalNetwork, index: usize, uetr: &str) -> pb::Payment {
    let mut client = network.operator(index).await.unwrap();
    for _ in 0..400 {
        let response = client.get_payment(pb::GetPaymentRequest { uetr: uetr.into() }).await;
        if let Ok(response) = response {
            let payment = response.into_inner().payment.unwrap();
            if payment.r#final {
                return payment;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("payment {uetr} did not become final at bank {index}");
}

pub fn status_of(payment: &pb::Payment) -> pb::PaymentStatus {
    pb::PaymentStatus::try_from(payment.status).unwrap()
}

/// A bank's session spoken by hand, to send the hub what no honest bank node would.
pub struct RawSession {
    pub sender: mpsc::Sender<pb::SessionRequest>,
    pub inbound: tonic::Streaming<pb::SessionResponse>,
    pub next_isn: u64,
    /// What the hub's Welcome said: the highest number it accepted a new message on.
    pub last_isn_accepted: u64,
}

impl RawSession {
    pub async fn open(network: &NetworkDir, as_bank: &str, hub_url: &str) -> Result<Self, tonic::Status> {
        let channel = net::connect(network, Role::Bank(bic(as_bank)), hub_url)
            .await
            .map_err(tonic::Status::unavailable)?;
        Self::open_on(channel).await
    }

    pub async fn open_on(channel: tonic::transport::Channel) -> Result<Self, tonic::Status> {
        Self::open_with(channel, 0).await
    }

    /// Opens a session whose Hello reports `last_osn_processed`.
    pub async fn open_with(
        channel: tonic::transport::Channel,
        last_osn_processed: u64,
    ) -> Result<Self, tonic::Status> {
        let hello = pb::Hello {
            last_osn_processed,
            contract_version: corridor::net::CONTRACT_VERSION,
            network_directory: None,
        };
        Self::open_saying(channel, hello).await
    }

    /// Opens a session that begins with `hello` (a linked hub's carries its directory).
    pub async fn open_saying(
        channel: tonic::transport::Channel,
        hello: pb::Hello,
    ) -> Result<Self, tonic::Status> {
        let (sender, receiver) = mpsc::channel(16);
        sender.send(pb::SessionRequest { frame: Some(RequestFrame::Hello(hello)) }).await.unwrap();
        let mut inbound =
            HubServiceClient::new(channel).session(ReceiverStream::new(receiver)).await?.into_inner();
        let Some(pb::SessionResponse { frame: Some(ResponseFrame::Welcome(welcome)) }) =
            inbound.message().await?
        else {
            panic!("no Welcome");
        };
        Ok(Self {
            sender,
            inbound,
            next_isn: welcome.next_isn_expected,
            last_isn_accepted: welcome.last_isn_accepted,
        })
    }

    /// Submits an envelope with the next ISN and returns the hub's answer.
    pub async fn submit(&mut self, envelope: pb::SignedEnvelope) -> ResponseFrame {
        let isn = self.next_isn;
        self.next_isn += 1;
        self.submit_as(isn, envelope).await
    }

    /// Signs `message` with `identity` and submits it with the next ISN; returns the hub's
    /// answer.
    pub async fn submit_signed(&mut self, identity: &SigningIdentity, message: &Message) -> ResponseFrame {
        self.submit(pb::SignedEnvelope::from(&identity.sign(message))).await
    }

    /// Submits envelopes with the next ISNs all at once, before reading any answer,
    /// and returns the hub's answers in order.
    pub async fn submit_pipelined(&mut self, envelopes: Vec<pb::SignedEnvelope>) -> Vec<ResponseFrame> {
        let count = envelopes.len();
        for envelope in envelopes {
            let submit =
                pb::Submit { isn: self.next_isn, envelope: Some(envelope), possible_duplicate: false };
            self.next_isn += 1;
            self.sender.send(pb::SessionRequest { frame: Some(RequestFrame::Submit(submit)) }).await.unwrap();
        }
        let mut answers = Vec::with_capacity(count);
        while answers.len() < count {
            match self.inner_next().await {
                ResponseFrame::Deliver(_) => continue,
                answer => answers.push(answer),
            }
        }
        answers
    }

    async fn inner_next(&mut self) -> ResponseFrame {
        self.inbound.message().await.unwrap().unwrap().frame.unwrap()
    }

    /// Submits an envelope with any ISN and returns the hub's answer.
    pub async fn submit_as(&mut self, isn: u64, envelope: pb::SignedEnvelope) -> ResponseFrame {
        let submit = pb::Submit { isn, envelope: Some(envelope), possible_duplicate: false };
        self.sender.send(pb::SessionRequest { frame: Some(RequestFrame::Submit(submit)) }).await.unwrap();
        loop {
            match self.inbound.message().await.unwrap().unwrap().frame.unwrap() {
                ResponseFrame::Deliver(_) => continue,
                answer => return answer,
            }
        }
    }
}

pub fn expect_nak(answer: ResponseFrame, code: Code, reason: &str) -> pb::Nak {
    match answer {
        ResponseFrame::Nak(nak) => {
            assert_eq!(Code::from(nak.code), code, "{nak:?}");
            assert_eq!(nak.reason_code, reason, "{nak:?}");
            assert!(!nak.detail.is_empty(), "a NAK says why");
            nak
        }
        other => panic!("expected a NAK, got {other:?}"),
    }
}

pub fn expect_ack(answer: ResponseFrame) -> pb::Ack {
    match answer {
        ResponseFrame::Ack(ack) => ack,
        other => panic!("expected an ACK, got {other:?}"),
    }
}

/// A pacs.008 from `sender` to `receiver` with a fresh id, as a message.
pub fn transfer(sender: &str, receiver: &str, account: &str) -> Message {
    let uetr = Uetr::generate();
    let mut body = credit_transfer(uetr);
    body.debtor_agent = bic(sender);
    body.creditor_agent = bic(receiver);
    body.debtor = Party::new("Raw sender", "C001").unwrap();
    body.creditor = Party::new("Beneficiary", account).unwrap();
    body.amount = Amount::parse("5.00", Currency::parse("CNY").unwrap()).unwrap();
    let header = Header {
        message_id: MessageId::generate(),
        uetr: Some(uetr),
        sender: bic(sender),
        receiver: bic(receiver),
        creation_time_unix_ms: corridor::clock::unix_ms_now(),
        sequence_number: 1,
        possible_duplicate: false,
    };
    Message::new(header, Body::Pacs008(body)).unwrap()
}

/// A pacs.008 from `sender` to `receiver` converting `instructed` into `settlement` at
/// `rate`, citing `quote_id`, signed by nobody yet.
pub fn converted_transfer(
    sender: &str,
    receiver: &str,
    instructed: (i64, &str),
    settlement: (i64, &str),
    rate: &str,
    quote_id: Option<&str>,
) -> Message {
    let uetr = Uetr::generate();
    let amount =
        |(minor, code): (i64, &str)| Amount::from_minor_units(minor, Currency::parse(code).unwrap()).unwrap();
    let mut body = credit_transfer(uetr);
    body.debtor_agent = bic(sender);
    body.creditor_agent = bic(receiver);
    body.debtor = Party::new("Raw sender", "C001").unwrap();
    body.creditor = Party::new("Beneficiary", "C002").unwrap();
    body.amount = amount(settlement);
    body.conversion = Some(Conversion {
        instructed: amount(instructed),
        rate: Rate::parse(rate).unwrap(),
        quote_id: quote_id.map(str::to_owned),
    });
    Message::new(super::header(sender, receiver, Some(uetr)), Body::Pacs008(body)).unwrap()
}

pub fn signer(network: &NetworkDir, bank: &str) -> SigningIdentity {
    network.signing_identity(Role::Bank(bic(bank))).unwrap()
}

/// Nothing reached `index`: no payment, no delivery waiting at the hub, no money.
pub fn nothing_reached(network: &LocalNetwork, index: usize) {
    let bank = &network.banks[index];
    assert!(bank.bank.payments().unwrap().is_empty(), "no payment reached {}", bank.bic);
    assert_eq!(network.hub().queued_for(bank.bic), 0);
    assert_eq!(balance(network, index, "SYS-SETTLEMENT-CNY"), 0);
}
