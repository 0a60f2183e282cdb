#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hivewatch::fuzzing::otlp_json(data));
