//! ISO 20022 XML: the safe reader, and the round trip through the XML writer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corridor::fuzzing::iso20022_xml(data));
