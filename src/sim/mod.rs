//! Simulation: a whole network in one process on loopback ports, and the demo.
//!
//! Everything here runs the real parts: real gRPC over real sockets, real mTLS with
//! certificates from the demo PKI, real signatures.

pub mod breakdown;
pub mod ceilings;
pub mod demo;
pub mod linked;
pub mod loadgen;
mod local;
pub mod narrate;
pub mod scenario;
mod workload;
mod xml_view;

pub use local::{LinkTerms, LocalBank, LocalNetwork, link_networks};
pub use workload::{Rng, sample_credit_transfer};
