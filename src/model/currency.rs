//! ISO 4217 currencies and their minor-unit exponents.

use std::fmt;
use std::str::FromStr;

use super::ModelError;

/// An ISO 4217 currency that has minor units (so not gold, SDRs or "no currency").
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Parses an ISO 4217 alphabetic code, upper case (`RUB`, `JPY`).
    pub fn parse(code: &str) -> Result<Self, ModelError> {
        let err = |rule: &str| ModelError::new("currency", format!("{rule} (got {code:?})"));
        let iso =
            iso_currency::Currency::from_code(code).ok_or_else(|| err("not an ISO 4217 currency code"))?;
        let exponent = iso
            .exponent()
            .ok_or_else(|| err("this ISO 4217 code has no minor unit and cannot carry payments"))?;
        let exponent = u8::try_from(exponent).map_err(|_| err("minor-unit exponent too large"))?;
        let code: [u8; 3] = code.as_bytes().try_into().map_err(|_| err("a currency code has 3 letters"))?;
        Ok(Self { code, exponent })
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ISO codes are ASCII, checked in parse")
    }

    /// Number of decimal places of the minor unit (2 for RUB, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u32 {
        u32::from(self.exponent)
    }
}

impl FromStr for Currency {
    type Err = ModelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_come_from_iso_4217() {
        assert_eq!(Currency::parse("RUB").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        for bad in ["", "rub", "ZZZ", "XAU", "EURO"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
