//! Signed envelope bytes: decoding, conversion and verification, alone and batched.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corridor::fuzzing::envelope(data));
