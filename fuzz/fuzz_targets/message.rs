//! Message bytes: decoding, conversion and validation, and the round trip back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corridor::fuzzing::message(data));
