#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| adapters_fuzz::check(&adapters::housing::Housing, data));
