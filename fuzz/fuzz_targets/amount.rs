//! `CODE amount` text: currency and amount parsing, and the round trip through display.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corridor::fuzzing::amount(data));
