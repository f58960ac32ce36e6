//! Foreign exchange: exact decimal rates, currency pairs and the one conversion rule.
//!
//! A rate is decimal text held as an integer and a scale (never a float). Converting an
//! instructed amount multiplies its minor units by the rate, shifts by the difference of
//! the two currencies' exponents and rounds **to the nearest minor unit of the target
//! currency, ties away from zero**. Every party (the paying bank, the hub that checks it,
//! the reconciler) computes the same integer from the same inputs.

use std::fmt;
use std::str::FromStr;

use super::{AMOUNT_MINOR_UNITS_MAX, Amount, Currency, ModelError};

/// Most significant digits of a rate.
pub const RATE_DIGITS_MAX: usize = 18;
/// Most decimal places of a rate.
pub const RATE_SCALE_MAX: u32 = 16;

/// Digits of ISO 20022's `BaseOneRate` (see [`Rate::fits_base_one_rate`]).
pub const BASE_ONE_RATE_DIGITS: usize = 11;
/// Decimals of ISO 20022's `BaseOneRate` (see [`Rate::fits_base_one_rate`]).
pub const BASE_ONE_RATE_DECIMALS: usize = 10;
/// A spread is given in basis points (hundredths of a percent), below this.
pub const SPREAD_BPS_MAX: u32 = 10_000;

/// A positive exchange rate: units of the target currency per unit of the source
/// currency (`512.25` RUB/IRR: one rouble buys 512.25 rials). Normalised: no trailing
/// zeros after the decimal point, so equal rates have equal representations.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    mantissa: u64,
    scale: u32,
}

impl Rate {
    /// Parses decimal text such as `512.25` or `0.0019`: digits with an optional decimal
    /// point, at most [`RATE_DIGITS_MAX`] significant digits and [`RATE_SCALE_MAX`]
    /// decimals, greater than zero. No sign, exponent or spaces.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let err = |rule: &str| ModelError::new("exchange_rate", format!("{rule} (got {text:?})"));
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(err("a rate is digits with an optional decimal point, like 512.25"));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > RATE_SCALE_MAX as usize {
            return Err(err(&format!("a rate has at most {RATE_SCALE_MAX} decimal places")));
        }
        let significant = format!("{whole}{fraction}");
        let significant = significant.trim_start_matches('0');
        if significant.is_empty() {
            return Err(err("a rate must be greater than zero"));
        }
        if significant.len() > RATE_DIGITS_MAX {
            return Err(err(&format!("a rate has at most {RATE_DIGITS_MAX} significant digits")));
        }
        let mantissa = significant.parse::<u64>().map_err(|_| err("not a number"))?;
        Ok(Self { mantissa, scale: fraction.len() as u32 })
    }

    /// The rate less a spread of `bps` basis points: `rate × (1 − bps / 10 000)`, exact.
    pub fn less_spread(self, bps: u32) -> Result<Self, ModelError> {
        if bps >= SPREAD_BPS_MAX {
            return Err(ModelError::new(
                "spread_bps",
                format!("a spread is below {SPREAD_BPS_MAX} basis points (got {bps})"),
            ));
        }
        let mantissa = u128::from(self.mantissa) * u128::from(SPREAD_BPS_MAX - bps);
        Self::normalised(mantissa, self.scale + 4).ok_or_else(|| {
            ModelError::new(
                "exchange_rate",
                format!(
                    "{self} less {bps} basis points has more than {RATE_DIGITS_MAX} significant digits or \
                     {RATE_SCALE_MAX} decimals"
                ),
            )
        })
    }

    /// Whether ISO 20022's `BaseOneRate` (the `XchgRate` of a pacs.008) can hold this rate
    /// as it is: at most [`BASE_ONE_RATE_DIGITS`] digits, [`BASE_ONE_RATE_DECIMALS`] of
    /// them after the point (counted as the XML writer counts them). A payment at a rate
    /// that does not fit cannot be written as ISO 20022 XML, which refuses to round.
    pub fn fits_base_one_rate(self) -> bool {
        let text = self.to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let digits = whole.trim_start_matches('0').len() + fraction.len();
        fraction.len() <= BASE_ONE_RATE_DECIMALS && digits <= BASE_ONE_RATE_DIGITS
    }

    fn normalised(mut mantissa: u128, mut scale: u32) -> Option<Self> {
        while scale > 0 && mantissa.is_multiple_of(10) {
            mantissa /= 10;
            scale -= 1;
        }
        let mantissa =
            u64::try_from(mantissa).ok().filter(|m| *m > 0 && *m < 10u64.pow(RATE_DIGITS_MAX as u32))?;
        (scale <= RATE_SCALE_MAX).then_some(Self { mantissa, scale })
    }

    /// Converts `amount` into `to` at this rate, rounding to the nearest minor unit of
    /// `to`, ties away from zero. Refused when the result is below one minor unit or
    /// beyond the largest amount.
    pub fn convert(self, amount: Amount, to: Currency) -> Result<Amount, ModelError> {
        let from = amount.currency();
        let too_large =
            || ModelError::new("amount", format!("{amount} at {self} does not fit in an amount of {to}"));
        // minor(to) = minor(from) × rate × 10^(e_to − e_from), as an exact fraction.
        let mut numerator = u128::from(amount.minor_units().unsigned_abs())
            .checked_mul(u128::from(self.mantissa))
            .ok_or_else(too_large)?;
        let mut denominator = 10u128.pow(self.scale);
        let (e_from, e_to) = (from.exponent(), to.exponent());
        if e_to >= e_from {
            numerator = numerator.checked_mul(10u128.pow(e_to - e_from)).ok_or_else(too_large)?;
        } else {
            denominator *= 10u128.pow(e_from - e_to);
        }
        let (quotient, remainder) = (numerator / denominator, numerator % denominator);
        // Ties away from zero: round up when the remainder is at least half.
        let rounded = if remainder * 2 >= denominator { quotient + 1 } else { quotient };
        if rounded == 0 {
            return Err(ModelError::new(
                "amount",
                format!("{amount} at {self} is less than one minor unit of {to}"),
            ));
        }
        let minor =
            u64::try_from(rounded).ok().filter(|m| *m <= AMOUNT_MINOR_UNITS_MAX).ok_or_else(too_large)?;
        Amount::from_minor_units(minor as i64, to)
    }
}

impl FromStr for Rate {
    type Err = ModelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{whole}.{fraction}")
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rate({self})")
    }
}

/// A currency pair of a rate agreement: payments instructed in `from` settle in `to`.
/// Written `RUB/IRR`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CurrencyPair {
    /// The instructed (debtor's) currency.
    pub from: Currency,
    /// The settlement (creditor's) currency.
    pub to: Currency,
}

impl CurrencyPair {
    /// A pair of two different currencies.
    pub fn new(from: Currency, to: Currency) -> Result<Self, ModelError> {
        if from == to {
            return Err(ModelError::new(
                "currency_pair",
                format!("a pair needs two currencies (got {from}/{to})"),
            ));
        }
        Ok(Self { from, to })
    }

    /// Parses `RUB/IRR`.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let (from, to) = text.split_once('/').ok_or_else(|| {
            ModelError::new("currency_pair", format!("is written FROM/TO, like RUB/IRR (got {text:?})"))
        })?;
        Self::new(Currency::parse(from)?, Currency::parse(to)?)
    }
}

impl FromStr for CurrencyPair {
    type Err = ModelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for CurrencyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.from, self.to)
    }
}

/// The conversion a cross-currency pacs.008 carries: what the debtor instructed in its
/// own currency, the rate applied, and the quote it comes from, if any. The interbank
/// settlement amount (what the creditor agent receives) is the instructed amount
/// converted at the rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// Instructed amount, in the debtor's currency.
    pub instructed: Amount,
    /// Units of the settlement currency per unit of the instructed currency.
    pub rate: Rate,
    /// The hub's quote this rate was fixed by.
    pub quote_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20: whether a rate fits ISO 20022's BaseOneRate is counted as the XML writer
    /// counts it (11 digits, 10 after the point, zeros after the point included), so
    /// that what the scenario loader accepts is what the writer can write.
    #[test]
    fn base_one_rate_holds_11_digits_10_after_the_point() {
        let fits = |text: &str| Rate::parse(text).unwrap().fits_base_one_rate();
        assert!(fits("12345678901") && fits("0.0123456789") && fits("5818.7496675"));
        assert!(!fits("123456789012"), "12 digits");
        assert!(!fits("0.01234567891"), "11 decimals");
        assert!(!fits("5818.74999967"), "12 digits, 8 decimals");
        let applied = Rate::parse("5833.333").unwrap().less_spread(25).unwrap();
        assert!(applied.fits_base_one_rate(), "7 digits, 6 decimals, less a spread: {applied}");
        assert!(!Rate::parse("5833.3333").unwrap().less_spread(25).unwrap().fits_base_one_rate());
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn amount(text: &str, code: &str) -> Amount {
        Amount::parse(text, currency(code)).unwrap()
    }

    #[test]
    fn rates_parse_normalised_and_print_back() {
        for (text, shown) in [
            ("512.25", "512.25"),
            ("512.2500", "512.25"),
            ("0.0019", "0.0019"),
            ("7", "7"),
            ("007.10", "7.1"),
        ] {
            assert_eq!(Rate::parse(text).unwrap().to_string(), shown);
        }
        assert_eq!(Rate::parse("512.25").unwrap(), Rate::parse("512.250").unwrap());
        for bad in [
            "",
            "0",
            "0.000",
            "-1",
            "1e3",
            " 1",
            "1.",
            ".5",
            "1,5",
            "12345678901234567890",
            "0.00000000000000001",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_spread_comes_off_exactly() {
        let rate = Rate::parse("512.25").unwrap();
        assert_eq!(rate.less_spread(0).unwrap(), rate);
        assert_eq!(rate.less_spread(25).unwrap().to_string(), "510.969375");
        assert!(rate.less_spread(10_000).is_err());
    }

    #[test]
    fn conversion_rounds_to_the_nearest_minor_unit_ties_away_from_zero() {
        // 100.00 RUB at 512.25 = 51,225.00 IRR exactly.
        let rate = Rate::parse("512.25").unwrap();
        assert_eq!(
            rate.convert(amount("100.00", "RUB"), currency("IRR")).unwrap(),
            amount("51225.00", "IRR")
        );
        // 0.01 RUB at 0.125 = 0.00125 CNY: below a fen.
        let eighth = Rate::parse("0.125").unwrap();
        assert!(eighth.convert(amount("0.01", "RUB"), currency("CNY")).is_err());
        // 0.04 RUB at 0.125 = 0.005 CNY, a tie: up to 0.01.
        assert_eq!(eighth.convert(amount("0.04", "RUB"), currency("CNY")).unwrap(), amount("0.01", "CNY"));
        // 0.11 RUB at 0.125 = 0.01375 CNY: down to 0.01.
        assert_eq!(eighth.convert(amount("0.11", "RUB"), currency("CNY")).unwrap(), amount("0.01", "CNY"));
        // Exponents differ: 1.00 USD at 150.5 = 150.5 JPY -> 151 (tie away from zero).
        assert_eq!(
            Rate::parse("150.5").unwrap().convert(amount("1.00", "USD"), currency("JPY")).unwrap(),
            amount("151", "JPY")
        );
        // And the other way: 1,000 JPY at 0.006645 = 6.645 USD -> 6.65.
        assert_eq!(
            Rate::parse("0.006645").unwrap().convert(amount("1000", "JPY"), currency("USD")).unwrap(),
            amount("6.65", "USD")
        );
        // Too large to fit.
        let huge = Rate::parse("999999999").unwrap();
        assert!(huge.convert(amount("90000000000000000.00", "RUB"), currency("IRR")).is_err());
    }

    #[test]
    fn pairs_name_two_currencies() {
        assert_eq!(CurrencyPair::parse("RUB/IRR").unwrap().to_string(), "RUB/IRR");
        for bad in ["RUB", "RUB/RUB", "RUB/XYZ", "rub/irr", "RUB/IRR/CNY"] {
            assert!(CurrencyPair::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
