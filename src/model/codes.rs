//! ISO 20022 code sets: message types, payment statuses and external reason codes.

use std::fmt;

use super::ModelError;

macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The ISO code.
            pub fn code(&self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// Parses the ISO code.
            pub fn parse(text: &str) -> Result<Self, ModelError> {
                match text {
                    $($code => Ok($name::$variant),)+
                    _ => Err(ModelError::new($field, format!("unknown code {text:?}"))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ModelError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

code_enum! {
    /// The ISO 20022 message types Corridor carries.
    MessageType, "message_type" {
        /// FI-to-FI customer credit transfer.
        Pacs008 = "pacs.008",
        /// Payment status report.
        Pacs002 = "pacs.002",
        /// Payment return.
        Pacs004 = "pacs.004",
        /// Cancellation request.
        Camt056 = "camt.056",
        /// Resolution of investigation.
        Camt029 = "camt.029",
        /// Statement.
        Camt053 = "camt.053",
    }
}

code_enum! {
    /// ISO 20022 payment transaction status.
    PaymentStatus, "status" {
        /// Accepted technical validation: the hub has the message.
        Actc = "ACTC",
        /// Accepted, settlement in process.
        Acsp = "ACSP",
        /// Accepted, settlement completed.
        Acsc = "ACSC",
        /// Accepted, credited to the creditor's account.
        Accc = "ACCC",
        /// Pending.
        Pdng = "PDNG",
        /// Rejected, with a reason code.
        Rjct = "RJCT",
    }
}

impl PaymentStatus {
    /// True once the status can no longer change.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Acsc | Self::Accc | Self::Rjct)
    }
}

code_enum! {
    /// Outcome of a cancellation request (camt.029).
    InvestigationStatus, "status" {
        /// Cancelled as requested.
        Cncl = "CNCL",
        /// Rejected cancellation request.
        Rjcr = "RJCR",
        /// Pending cancellation request.
        Pdcr = "PDCR",
    }
}

code_enum! {
    /// Who bears the charges of a credit transfer.
    ChargeBearer, "charge_bearer" {
        /// The debtor.
        Debt = "DEBT",
        /// The creditor.
        Cred = "CRED",
        /// Shared.
        Shar = "SHAR",
        /// Following the service level.
        Slev = "SLEV",
    }
}

code_enum! {
    /// Direction of a statement entry.
    EntryDirection, "direction" {
        /// Credit.
        Crdt = "CRDT",
        /// Debit.
        Dbit = "DBIT",
    }
}

code_enum! {
    /// ISO 20022 external status, return and cancellation reason codes used here.
    ReasonCode, "reason_code" {
        /// Account number is invalid or missing.
        Ac01 = "AC01",
        /// Account has been closed.
        Ac04 = "AC04",
        /// Account is blocked.
        Ac06 = "AC06",
        /// Transaction forbidden on this type of account or by agreement.
        Ag01 = "AG01",
        /// The agent is suspended from the system.
        Ag10 = "AG10",
        /// Amount not allowed.
        Am02 = "AM02",
        /// Currency not allowed.
        Am03 = "AM03",
        /// Insufficient funds.
        Am04 = "AM04",
        /// Transaction currency invalid (here: no rate agreement covers the pair).
        Am11 = "AM11",
        /// Amount invalid (here: the conversion does not match the agreement or quote).
        Am12 = "AM12",
        /// Duplication.
        Am05 = "AM05",
        /// Inconsistent with end customer.
        Be01 = "BE01",
        /// Requested by the customer.
        Cust = "CUST",
        /// Duplicate payment.
        Dupl = "DUPL",
        /// Invalid file format.
        Ff01 = "FF01",
        /// Returned following a cancellation request (a recall).
        Focr = "FOCR",
        /// Fraudulent origin.
        Frad = "FRAD",
        /// Not specified, agent generated.
        Ms03 = "MS03",
        /// Narrative reason in the additional information.
        Narr = "NARR",
        /// No answer from the customer.
        Noas = "NOAS",
        /// Bank identifier incorrect.
        Rc01 = "RC01",
        /// Regulatory reason.
        Rr04 = "RR04",
        /// Received outside the agreed time window (here: the message's creation time is
        /// outside the hub's replay window).
        Tm01 = "TM01",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back() {
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.code()).unwrap(), *code);
        }
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.code()).unwrap(), *status);
        }
        assert_eq!(ReasonCode::parse("XX99").unwrap_err().field, "reason_code");
    }
}
