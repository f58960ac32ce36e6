//! Money: integer minor units with their currency. No floats near money.

use std::fmt;

use super::{Currency, ModelError};

/// Largest amount in minor units: balances are `i64`, so any amount fits on either side.
pub const AMOUNT_MINOR_UNITS_MAX: u64 = i64::MAX as u64;

/// A positive amount of money: an integer count of minor units of one currency.
///
/// Zero and negative amounts do not exist; a balance, which may be negative, is a
/// [`Balance`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Amount {
    minor_units: u64,
    currency: Currency,
}

impl Amount {
    /// An amount of `minor_units` (1 to [`AMOUNT_MINOR_UNITS_MAX`]) of `currency`.
    pub fn from_minor_units(minor_units: i64, currency: Currency) -> Result<Self, ModelError> {
        if minor_units <= 0 {
            return Err(ModelError::new(
                "minor_units",
                format!("an amount must be positive (got {minor_units})"),
            ));
        }
        Ok(Self { minor_units: minor_units as u64, currency })
    }

    /// Parses decimal text in the currency's units: `"1234.56"` EUR is 123456 minor units,
    /// `"1234"` JPY is 1234; `"12.345"` EUR has too many decimals and is refused, and so is
    /// zero.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, ModelError> {
        match Self::parse_zero_or_positive(text, currency)? {
            Some(amount) => Ok(amount),
            None => Err(ModelError::new("amount", format!("an amount must be positive (got {text:?})"))),
        }
    }

    /// Like [`Amount::parse`], but zero, in any spelling the currency allows (`0`, `0.0`,
    /// `0.00` for EUR), is `None` rather than an error: for the fields where zero means
    /// "none" (an opening deposit, a net debit cap). Anything else `parse` refuses is refused.
    pub fn parse_zero_or_positive(text: &str, currency: Currency) -> Result<Option<Self>, ModelError> {
        let err = |rule: String| ModelError::new("amount", format!("{rule} (got {text:?})"));
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits_only = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(err(
                "an amount is written as digits with an optional decimal point, like 1234.56".into()
            ));
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(err("a decimal point must be followed by digits".into()));
        }
        let exponent = currency.exponent();
        if fraction.len() > exponent as usize {
            return Err(err(format!(
                "{currency} has {exponent} decimal places; this amount has {}",
                fraction.len()
            )));
        }
        let overflow = || err(format!("amount exceeds the maximum of {AMOUNT_MINOR_UNITS_MAX} minor units"));
        let mut minor_units: u64 = 0;
        let padded = std::iter::repeat_n(b'0', exponent as usize - fraction.len());
        for digit in whole.bytes().chain(fraction.bytes()).chain(padded) {
            minor_units = minor_units
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(digit - b'0')))
                .ok_or_else(overflow)?;
        }
        if minor_units > AMOUNT_MINOR_UNITS_MAX {
            return Err(overflow());
        }
        Ok((minor_units != 0).then_some(Self { minor_units, currency }))
    }

    /// Count of minor units, always in `1..=AMOUNT_MINOR_UNITS_MAX`.
    pub fn minor_units(&self) -> i64 {
        self.minor_units as i64
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The sum, or an error if the currencies differ or the sum exceeds the maximum.
    pub fn checked_add(self, other: Amount) -> Result<Amount, ModelError> {
        if self.currency != other.currency {
            return Err(ModelError::new(
                "currency",
                format!("cannot add {} to {}", other.currency, self.currency),
            ));
        }
        self.minor_units
            .checked_add(other.minor_units)
            .filter(|sum| *sum <= AMOUNT_MINOR_UNITS_MAX)
            .map(|minor_units| Amount { minor_units, currency: self.currency })
            .ok_or_else(|| ModelError::new("amount", "sum exceeds the maximum amount"))
    }
}

impl std::str::FromStr for Amount {
    type Err = ModelError;
    /// Reads back what `Display` writes: `1234.56 EUR`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (units, currency) = text.split_once(' ').ok_or_else(|| {
            ModelError::new("amount", format!("is written like 1234.56 EUR (got {text:?})"))
        })?;
        Self::parse(units, Currency::parse(currency)?)
    }
}

impl fmt::Display for Amount {
    /// Decimal text in the currency's units followed by the code: `1234.56 EUR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_minor_units(self.minor_units(), self.currency), self.currency)
    }
}

/// A signed amount: the balance of an account, which may be negative or zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Balance {
    /// Minor units; negative when the account is on the other side of its normal side.
    pub minor_units: i64,
    /// The currency.
    pub currency: Currency,
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_minor_units(self.minor_units, self.currency), self.currency)
    }
}

/// Minor units as decimal text by the currency's exponent: 123456 EUR is `1234.56`.
pub fn format_minor_units(minor_units: i64, currency: Currency) -> String {
    let exponent = currency.exponent();
    let sign = if minor_units < 0 { "-" } else { "" };
    let magnitude = minor_units.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u64.pow(exponent);
    format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale, width = exponent as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn parses_by_the_currency_exponent() {
        assert_eq!(Amount::parse("1234.56", cur("EUR")).unwrap().minor_units(), 123456);
        assert_eq!(Amount::parse("1234.5", cur("EUR")).unwrap().minor_units(), 123450);
        assert_eq!(Amount::parse("1234", cur("EUR")).unwrap().minor_units(), 123400);
        assert_eq!(Amount::parse("1234", cur("JPY")).unwrap().minor_units(), 1234);
        assert_eq!(Amount::parse("0.001", cur("KWD")).unwrap().minor_units(), 1);
    }

    #[test]
    fn refuses_what_is_not_a_positive_amount() {
        for (text, code) in [
            ("12.345", "EUR"),
            ("12.5", "JPY"),
            ("", "EUR"),
            ("-1", "EUR"),
            ("+1", "EUR"),
            ("1.", "EUR"),
            (".5", "EUR"),
            ("1,5", "EUR"),
            ("0", "EUR"),
            ("0.00", "EUR"),
            (" 1", "EUR"),
            ("92233720368547758.08", "EUR"),
            ("99999999999999999999999", "JPY"),
        ] {
            let result = Amount::parse(text, cur(code));
            let err = result.expect_err(&format!("{text:?} {code} should be refused"));
            assert_eq!(err.field, "amount");
        }
    }

    /// Zero means "none" where a field allows it (an opening deposit, a net debit cap), and
    /// it is zero however it is written; what is not an amount is still refused (issue 19,
    /// item 7: `--deposit 0.00` was refused though `--deposit 0` worked).
    #[test]
    fn zero_in_any_spelling_is_none_where_zero_is_allowed() {
        for (text, code) in [("0", "EUR"), ("0.0", "EUR"), ("0.00", "EUR"), ("000", "EUR"), ("0", "JPY")] {
            assert_eq!(Amount::parse_zero_or_positive(text, cur(code)), Ok(None), "{text:?} {code}");
        }
        let one = Amount::parse_zero_or_positive("0.01", cur("EUR")).unwrap();
        assert_eq!(one.map(|a| a.minor_units()), Some(1));
        for (text, code) in
            [("0.000", "EUR"), ("0.0", "JPY"), ("-0", "EUR"), ("-1", "EUR"), ("", "EUR"), ("zero", "EUR")]
        {
            let err = Amount::parse_zero_or_positive(text, cur(code)).expect_err(&format!("{text:?} {code}"));
            assert_eq!(err.field, "amount");
        }
    }

    #[test]
    fn the_maximum_parses_and_one_more_overflows() {
        let max = Amount::parse("92233720368547758.07", cur("EUR")).unwrap();
        assert_eq!(max.minor_units(), i64::MAX);
        let one = Amount::from_minor_units(1, cur("EUR")).unwrap();
        assert!(max.checked_add(one).is_err());
        assert!(one.checked_add(Amount::from_minor_units(1, cur("RUB")).unwrap()).is_err());
    }

    #[test]
    fn displays_as_decimal_text() {
        assert_eq!(Amount::parse("1234.05", cur("EUR")).unwrap().to_string(), "1234.05 EUR");
        assert_eq!(Amount::parse("7", cur("JPY")).unwrap().to_string(), "7 JPY");
        let balance = Balance { minor_units: -5, currency: cur("EUR") };
        assert_eq!(balance.to_string(), "-0.05 EUR");
    }

    #[test]
    fn zero_and_negative_minor_units_are_refused() {
        assert!(Amount::from_minor_units(0, cur("EUR")).is_err());
        assert!(Amount::from_minor_units(-3, cur("EUR")).is_err());
    }
}
