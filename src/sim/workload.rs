//! Workload building blocks: a deterministic random generator (the same seed replays the
//! same run) and a realistic sample message.

use time::macros::date;

use crate::model::{
    Amount, Bic, Body, ChargeBearer, CreditTransfer, Currency, Header, Message, MessageId, Party, Uetr,
};

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence
/// on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no answer");
        self.next_u64() % n
    }
}

/// A realistic pacs.008 of about 300 encoded bytes from `sender` to `receiver`, with a
/// fresh UETR and message id: what benchmarks and load tests send.
pub fn sample_credit_transfer(sender: Bic, receiver: Bic) -> Message {
    let uetr = Uetr::generate();
    let cny = Currency::parse("CNY").expect("CNY is ISO 4217");
    let transfer = CreditTransfer {
        conversion: None,
        instruction_id: "INSTR-1".into(),
        end_to_end_id: "E2E-1".into(),
        uetr,
        amount: Amount::parse("1234.56", cny).expect("a valid amount"),
        settlement_date: date!(2026 - 11 - 28),
        charge_bearer: ChargeBearer::Shar,
        debtor: Party::new("Ivan Petrov", "RU-0001").expect("a valid party"),
        debtor_agent: sender,
        creditor: Party::new("Sara Ahmadi", "IR-0001").expect("a valid party"),
        creditor_agent: receiver,
        remittance_information: "Invoice 42 for machine parts, delivered November".into(),
    };
    let header = Header {
        message_id: MessageId::generate(),
        uetr: Some(uetr),
        sender,
        receiver,
        creation_time_unix_ms: crate::clock::unix_ms_now(),
        sequence_number: 1,
        possible_duplicate: false,
    };
    Message::new(header, Body::Pacs008(transfer)).expect("a consistent sample")
}
