//! # Corridor
//!
//! A payment messaging network you can run on one machine: bank nodes exchange
//! Ed25519-signed, ISO 20022-shaped messages over gRPC with mutual TLS through a relay
//! hub that validates, stores and forwards them; every bank keeps a double-entry ledger.
//!
//! # Layout
//!
//! - [`clock`]: the time of day as the nodes read it: the system's, or a manual clock
//!   that tests move.
//! - [`model`]: BIC, UETR, message id, currency, amount, reason codes and the messages;
//!   conversion from and to the wire types in one place ([`model::wire`]).
//! - [`crypto`]: signing keys, signed envelopes over the exact payload bytes, the key
//!   directory.
//! - [`ledger`]: the double-entry ledger core: accounts, postings, invariants. No I/O.
//! - [`iso20022`]: the model to and from ISO 20022 XML (pacs.008, pacs.002, pacs.004,
//!   camt.056, camt.029, camt.053, each with its AppHdr), with a safe reader that names
//!   every element it refuses or does not carry by its path, and to and from SWIFT MT103
//!   ([`iso20022::mt103`]). Pure, like the core.
//! - [`directory`]: the network directory: participants, signing keys, relationships (RMA).
//! - [`tls`]: the demo PKI (`corridor pki init`) and the mTLS configurations; certificate
//!   to BIC.
//! - [`metrics`]: the Prometheus metrics nodes serve, by name.
//! - [`net`]: server and client plumbing: limits, health, reflection, graceful shutdown.
//! - [`store`]: durable storage: the group-commit journal and the SQLite backend.
//! - [`hub`]: the relay hub: checks, journal, sequence numbers, store-and-forward,
//!   settlement positions and windows, the operator's admin service, the tracker.
//! - [`bank`]: a bank node: ledger bookings, payments, its session, the operator API.
//! - [`reconcile`]: the reconciler: the hub's journal and every bank's records in,
//!   breaks out; live over gRPC or offline from data directories.
//! - [`sim`]: a whole network in one process, the demo, workload building blocks.
//! - [`fuzzing`]: the fuzz targets, one function per target, for `fuzz/` and the corpus test.
//! - [`pb`]: the generated wire types of `proto/corridor/v1` (package `corridor.v1`).
//!
//! The core (`model`, `crypto`, `ledger`) is pure: it takes inputs and returns outputs,
//! with no sockets, clocks or files, except where `crypto` saves and loads key files.
//! `hub` and `bank` meet only on the wire contract: what both need (the [`clock`], the
//! [`net`] clients, the model's wire conversions) sits in a room below them both.
//! `hub` and `bank` keep their logic in plain methods ([`hub::Hub::submit`], the bank's
//! handlers) and put it on the network in their `service` and `session` modules.

pub mod bank;
pub mod clock;
pub mod crypto;
pub mod directory;
pub mod fuzzing;
pub mod hub;
pub mod iso20022;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod net;
pub mod reconcile;
pub mod sim;
pub mod store;
pub mod tls;

/// Generated protobuf types and gRPC stubs of `corridor.v1`. Kept at the edge: the
/// domain converts from and to them only in [`model::wire`] and the service modules.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("corridor.v1");

    /// Encoded file descriptor set of the whole contract, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("corridor_descriptor");
}
