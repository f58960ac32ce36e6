//! MT103 text: the SWIFT MT reader, and the round trip through the MT103 writer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corridor::fuzzing::mt103(data));
