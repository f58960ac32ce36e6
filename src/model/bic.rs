//! ISO 9362 business identifier codes.

use std::fmt;
use std::str::FromStr;

use super::ModelError;

/// A BIC (ISO 9362): 4 letters of institution, 2 letters of country, 2 alphanumerics
/// of location and an optional 3 alphanumerics of branch, upper case.
///
/// An 8-character BIC names the institution's primary office, which is the same as
/// branch `XXX`: it is stored as the 11-character form so that both compare equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bic([u8; 11]);

impl Bic {
    /// Parses and validates a BIC.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let bytes = text.as_bytes();
        let rule = |rule: &str| Err(ModelError::new("bic", format!("{rule} (got {text:?})")));
        if bytes.len() != 8 && bytes.len() != 11 {
            return rule("a BIC has 8 or 11 characters");
        }
        if !bytes[..6].iter().all(u8::is_ascii_uppercase) {
            return rule("the first 6 characters of a BIC (institution and country) are letters A-Z");
        }
        let is_code = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit();
        if !bytes[6..].iter().all(is_code) {
            return rule("location and branch of a BIC are letters A-Z or digits");
        }
        let mut code = *b"XXXXXXXXXXX";
        code[..bytes.len()].copy_from_slice(bytes);
        Ok(Self(code))
    }

    /// The 11-character form.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a Bic holds ASCII only, checked in parse")
    }

    /// The ISO 3166 country code inside the BIC.
    pub fn country(&self) -> &str {
        &self.as_str()[4..6]
    }
}

impl FromStr for Bic {
    type Err = ModelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bic({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_and_eleven_characters_name_the_same_office() {
        assert_eq!(Bic::parse("BANKRUMM").unwrap(), Bic::parse("BANKRUMMXXX").unwrap());
        assert_eq!(Bic::parse("BANKRUMM").unwrap().to_string(), "BANKRUMMXXX");
        assert_eq!(Bic::parse("BANKIRTH001").unwrap().country(), "IR");
    }

    #[test]
    fn malformed_bics_are_refused() {
        for bad in ["", "BANKRU", "BANKRUMMX", "bankrumm", "BAN1RUMM", "BANKRUM_", "BANKRUMMXXXX"] {
            assert!(Bic::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
