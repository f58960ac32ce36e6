//! Payloads and session frames through the hub's whole ingest path, in process.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corridor::fuzzing::hub_ingest(data));
