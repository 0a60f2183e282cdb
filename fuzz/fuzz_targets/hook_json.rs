#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hivewatch::fuzzing::hook_json(data));
