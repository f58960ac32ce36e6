//! The hub's FX desk: bilateral rate agreements and the quotes given under them. Pure:
//! times come from the caller, so that recovery replays the same decisions.
//!
//! A cross-currency pacs.008 must apply the rate of the agreement in force for its pair
//! when the hub accepts it (the agreed rate less the spread), or the rate of a quote it
//! cites: a quote is firm for its participant, amount and pair until it expires, once.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{Amount, Bic, Conversion, Currency, CurrencyPair, ModelError, Rate, ReasonCode};

/// A bilateral rate agreement for one direction of a currency pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// Payments instructed in `pair.from` settle in `pair.to`.
    pub pair: CurrencyPair,
    /// Agreed rate: units of `pair.to` per unit of `pair.from`.
    pub rate: Rate,
    /// The network's margin, in basis points, taken off the agreed rate.
    pub spread_bps: u32,
    /// In force from (inclusive), Unix ms.
    pub valid_from_unix_ms: i64,
    /// In force until (exclusive), Unix ms; `None` without end.
    pub valid_until_unix_ms: Option<i64>,
    /// The rate payments apply: `rate` less the spread.
    pub applied: Rate,
}

impl Agreement {
    /// An agreement, checked: the spread leaves a representable rate, and the period is
    /// not empty.
    pub fn new(
        pair: CurrencyPair,
        rate: Rate,
        spread_bps: u32,
        valid_from_unix_ms: i64,
        valid_until_unix_ms: Option<i64>,
    ) -> Result<Self, ModelError> {
        let applied = rate.less_spread(spread_bps)?;
        if valid_until_unix_ms.is_some_and(|until| until <= valid_from_unix_ms) {
            return Err(ModelError::new("valid_until", "must be after valid_from"));
        }
        Ok(Self { pair, rate, spread_bps, valid_from_unix_ms, valid_until_unix_ms, applied })
    }

    /// Whether it is in force at `unix_ms`.
    pub fn in_force_at(&self, unix_ms: i64) -> bool {
        unix_ms >= self.valid_from_unix_ms && self.valid_until_unix_ms.is_none_or(|until| unix_ms < until)
    }
}

/// A firm quote the hub gave a participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Its id, cited by the pacs.008 that uses it.
    pub id: String,
    /// Who may use it.
    pub participant: Bic,
    /// The instructed amount quoted.
    pub instructed: Amount,
    /// What it converts to.
    pub settlement: Amount,
    /// The rate.
    pub rate: Rate,
    /// Honoured before this time (Unix ms).
    pub expires_unix_ms: i64,
}

/// How agreements and quotes are journalled (the operator record's detail).
#[derive(Serialize, Deserialize)]
pub(crate) struct AgreementRecord {
    pair: String,
    rate: String,
    spread_bps: u32,
    valid_from_unix_ms: i64,
    valid_until_unix_ms: Option<i64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct QuoteRecord {
    id: String,
    participant: String,
    instructed_minor_units: i64,
    instructed_currency: String,
    settlement_minor_units: i64,
    settlement_currency: String,
    rate: String,
    expires_unix_ms: i64,
}

impl Agreement {
    /// The journal's text of it.
    pub(crate) fn to_record(&self) -> String {
        let record = AgreementRecord {
            pair: self.pair.to_string(),
            rate: self.rate.to_string(),
            spread_bps: self.spread_bps,
            valid_from_unix_ms: self.valid_from_unix_ms,
            valid_until_unix_ms: self.valid_until_unix_ms,
        };
        serde_json::to_string(&record).expect("an agreement serialises")
    }

    /// Reads [`Agreement::to_record`].
    pub(crate) fn from_record(text: &str) -> Result<Self, String> {
        let r: AgreementRecord = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let pair = CurrencyPair::parse(&r.pair).map_err(|e| e.to_string())?;
        let rate = Rate::parse(&r.rate).map_err(|e| e.to_string())?;
        Self::new(pair, rate, r.spread_bps, r.valid_from_unix_ms, r.valid_until_unix_ms)
            .map_err(|e| e.to_string())
    }
}

impl Quote {
    /// The journal's text of it.
    pub(crate) fn to_record(&self) -> String {
        let record = QuoteRecord {
            id: self.id.clone(),
            participant: self.participant.to_string(),
            instructed_minor_units: self.instructed.minor_units(),
            instructed_currency: self.instructed.currency().to_string(),
            settlement_minor_units: self.settlement.minor_units(),
            settlement_currency: self.settlement.currency().to_string(),
            rate: self.rate.to_string(),
            expires_unix_ms: self.expires_unix_ms,
        };
        serde_json::to_string(&record).expect("a quote serialises")
    }

    /// Reads [`Quote::to_record`].
    pub(crate) fn from_record(text: &str) -> Result<Self, String> {
        let r: QuoteRecord = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let amount = |minor, code: &str| {
            Currency::parse(code).and_then(|c| Amount::from_minor_units(minor, c)).map_err(|e| e.to_string())
        };
        Ok(Self {
            id: r.id,
            participant: Bic::parse(&r.participant).map_err(|e| e.to_string())?,
            instructed: amount(r.instructed_minor_units, &r.instructed_currency)?,
            settlement: amount(r.settlement_minor_units, &r.settlement_currency)?,
            rate: Rate::parse(&r.rate).map_err(|e| e.to_string())?,
            expires_unix_ms: r.expires_unix_ms,
        })
    }
}

/// Agreements by pair, and the quotes not yet expired or used.
#[derive(Clone, Debug, Default)]
pub struct FxDesk {
    agreements: BTreeMap<CurrencyPair, Agreement>,
    quotes: HashMap<String, Quote>,
}

/// Why a conversion was refused: an ISO reason and a sentence.
pub type FxRefusal = (ReasonCode, String);

impl FxDesk {
    /// Every agreement, by pair.
    pub fn agreements(&self) -> impl Iterator<Item = &Agreement> {
        self.agreements.values()
    }

    /// Sets the agreement of its pair, replacing the pair's previous one.
    pub fn set_agreement(&mut self, agreement: Agreement) {
        self.agreements.insert(agreement.pair, agreement);
    }

    /// The agreement for `pair` in force at `unix_ms`.
    pub fn in_force(&self, pair: CurrencyPair, unix_ms: i64) -> Result<&Agreement, FxRefusal> {
        let agreement = self.agreements.get(&pair).ok_or_else(|| {
            (ReasonCode::Am11, format!("no rate agreement covers {pair}: the hub converts only under one"))
        })?;
        if !agreement.in_force_at(unix_ms) {
            let until = agreement
                .valid_until_unix_ms
                .map_or_else(|| "without end".to_owned(), crate::model::wire::format_unix_ms);
            return Err((
                ReasonCode::Am11,
                format!(
                    "the {pair} agreement is not in force now: it runs from {} until {until}",
                    crate::model::wire::format_unix_ms(agreement.valid_from_unix_ms)
                ),
            ));
        }
        Ok(agreement)
    }

    /// A quote for converting `instructed` into `to` for `participant`, at the agreement
    /// in force at `unix_ms`, firm for `ttl_ms`. Quotes expired by then are forgotten.
    pub fn quote(
        &self,
        id: String,
        participant: Bic,
        instructed: Amount,
        to: Currency,
        unix_ms: i64,
        ttl_ms: i64,
    ) -> Result<Quote, FxRefusal> {
        let pair =
            CurrencyPair::new(instructed.currency(), to).map_err(|e| (ReasonCode::Am11, e.to_string()))?;
        let agreement = self.in_force(pair, unix_ms)?;
        let settlement = agreement.applied.convert(instructed, to).map_err(|e| (ReasonCode::Am12, e.rule))?;
        Ok(Quote {
            id,
            participant,
            instructed,
            settlement,
            rate: agreement.applied,
            expires_unix_ms: unix_ms.saturating_add(ttl_ms),
        })
    }

    /// Keeps a quote given at `unix_ms`. Quotes expired for longer than a quote is
    /// honoured are forgotten; until then a payment citing one is told that it expired
    /// (TM01), not that it is unknown, whatever quotes were given since.
    pub fn keep_quote(&mut self, quote: Quote, unix_ms: i64) {
        let ttl_ms = quote.expires_unix_ms.saturating_sub(unix_ms);
        self.quotes.retain(|_, q| q.expires_unix_ms.saturating_add(ttl_ms) > unix_ms);
        self.quotes.insert(quote.id.clone(), quote);
    }

    /// Checks a pacs.008's conversion from `sender` at `unix_ms`: its arithmetic, and its
    /// rate against the quote it cites or the agreement in force. Returns the pair whose
    /// FX accounts take it.
    pub fn check(
        &self,
        sender: Bic,
        conversion: &Conversion,
        settlement: Amount,
        unix_ms: i64,
    ) -> Result<CurrencyPair, FxRefusal> {
        let pair = CurrencyPair::new(conversion.instructed.currency(), settlement.currency())
            .map_err(|e| (ReasonCode::Am11, e.to_string()))?;
        let expected = match &conversion.quote_id {
            Some(id) => {
                let quote = self.quotes.get(id).filter(|q| q.participant == sender).ok_or_else(|| {
                    (ReasonCode::Am12, format!("no quote {id} for {sender} (unknown, used or expired)"))
                })?;
                if unix_ms >= quote.expires_unix_ms {
                    return Err((
                        ReasonCode::Tm01,
                        format!(
                            "quote {id} expired at {}; ask for a new one",
                            crate::model::wire::format_unix_ms(quote.expires_unix_ms)
                        ),
                    ));
                }
                if quote.instructed != conversion.instructed
                    || quote.settlement.currency() != settlement.currency()
                {
                    return Err((
                        ReasonCode::Am12,
                        format!(
                            "quote {id} is for {} into {}, not {} into {}",
                            quote.instructed,
                            quote.settlement.currency(),
                            conversion.instructed,
                            settlement.currency()
                        ),
                    ));
                }
                quote.rate
            }
            None => self.in_force(pair, unix_ms)?.applied,
        };
        if conversion.rate != expected {
            let source = match &conversion.quote_id {
                Some(id) => format!("quote {id}"),
                None => format!("the {pair} agreement in force (agreed rate less spread)"),
            };
            return Err((
                ReasonCode::Am12,
                format!("rate {} does not match {source}, which is {expected}", conversion.rate),
            ));
        }
        let converted = expected
            .convert(conversion.instructed, settlement.currency())
            .map_err(|e| (ReasonCode::Am12, e.rule))?;
        if converted != settlement {
            return Err((
                ReasonCode::Am12,
                format!(
                    "{} at {expected} is {converted} (nearest minor unit of {}, ties away from zero), not {settlement}",
                    conversion.instructed,
                    settlement.currency()
                ),
            ));
        }
        Ok(pair)
    }

    /// A payment used its quote: it cannot be used again.
    pub fn use_quote(&mut self, conversion: &Conversion) {
        if let Some(id) = &conversion.quote_id {
            self.quotes.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str, code: &str) -> Amount {
        Amount::parse(text, Currency::parse(code).unwrap()).unwrap()
    }

    fn desk() -> (FxDesk, Bic, Bic) {
        let mut desk = FxDesk::default();
        let pair = CurrencyPair::parse("RUB/IRR").unwrap();
        let agreement =
            Agreement::new(pair, Rate::parse("512.25").unwrap(), 25, 1_000, Some(100_000)).unwrap();
        desk.set_agreement(agreement);
        (desk, Bic::parse("AAAARUMMXXX").unwrap(), Bic::parse("BBBBRUMMXXX").unwrap())
    }

    fn conversion(instructed: &str, rate: &str, quote: Option<&str>) -> Conversion {
        Conversion {
            instructed: amount(instructed, "RUB"),
            rate: Rate::parse(rate).unwrap(),
            quote_id: quote.map(str::to_owned),
        }
    }

    #[test]
    fn a_payment_must_apply_the_agreement_in_force_exactly() {
        let (desk, a, _) = desk();
        // 100.00 RUB at 512.25 less 25 bp = 510.969375: 51,096.9375 IRR, rounded to 51,096.94.
        let good = conversion("100.00", "510.969375", None);
        assert!(desk.check(a, &good, amount("51096.94", "IRR"), 2_000).is_ok());
        let (reason, detail) = desk.check(a, &good, amount("51096.93", "IRR"), 2_000).unwrap_err();
        assert_eq!(reason, ReasonCode::Am12, "{detail}");
        assert!(detail.contains("51096.94"), "the refusal says what was expected: {detail}");
        let (reason, detail) = desk
            .check(a, &conversion("100.00", "512.25", None), amount("51225.00", "IRR"), 2_000)
            .unwrap_err();
        assert_eq!(reason, ReasonCode::Am12, "the agreed rate without its spread: {detail}");
        // Before and after its validity, and for a pair without one: AM11.
        for at in [999, 100_000] {
            assert_eq!(desk.check(a, &good, amount("51096.94", "IRR"), at).unwrap_err().0, ReasonCode::Am11);
        }
        let cny = Conversion {
            instructed: amount("100.00", "RUB"),
            rate: Rate::parse("0.08").unwrap(),
            quote_id: None,
        };
        assert_eq!(desk.check(a, &cny, amount("8.00", "CNY"), 2_000).unwrap_err().0, ReasonCode::Am11);
    }

    #[test]
    fn a_quote_is_honoured_for_its_participant_until_it_expires_once() {
        let (mut desk, a, b) = desk();
        let quote = desk
            .quote("Q1".into(), a, amount("100.00", "RUB"), Currency::parse("IRR").unwrap(), 2_000, 60_000)
            .unwrap();
        assert_eq!(quote.settlement, amount("51096.94", "IRR"));
        desk.keep_quote(quote.clone(), 2_000);
        // The agreement changes: the quote still holds at its own rate.
        let pair = CurrencyPair::parse("RUB/IRR").unwrap();
        desk.set_agreement(Agreement::new(pair, Rate::parse("600").unwrap(), 0, 1_000, None).unwrap());
        let cited = conversion("100.00", "510.969375", Some("Q1"));
        assert!(desk.check(a, &cited, quote.settlement, 61_999).is_ok());
        assert_eq!(
            desk.check(b, &cited, quote.settlement, 3_000).unwrap_err().0,
            ReasonCode::Am12,
            "not b's"
        );
        assert_eq!(
            desk.check(a, &cited, quote.settlement, 62_000).unwrap_err().0,
            ReasonCode::Tm01,
            "expired"
        );
        let other_amount = conversion("200.00", "510.969375", Some("Q1"));
        assert_eq!(
            desk.check(a, &other_amount, amount("102193.88", "IRR"), 3_000).unwrap_err().0,
            ReasonCode::Am12
        );
        desk.use_quote(&cited);
        assert_eq!(
            desk.check(a, &cited, quote.settlement, 3_000).unwrap_err().0,
            ReasonCode::Am12,
            "used once"
        );
    }

    #[test]
    fn agreements_and_quotes_survive_the_journal() {
        let (desk, a, _) = desk();
        let agreement = desk.agreements().next().unwrap().clone();
        assert_eq!(Agreement::from_record(&agreement.to_record()).unwrap(), agreement);
        let quote = desk
            .quote("Q9".into(), a, amount("1.00", "RUB"), Currency::parse("IRR").unwrap(), 5_000, 1_000)
            .unwrap();
        assert_eq!(Quote::from_record(&quote.to_record()).unwrap(), quote);
        assert!(Agreement::from_record("{}").is_err() && Quote::from_record("not json").is_err());
    }
}
