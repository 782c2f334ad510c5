//! Fuzz target `decode`: arbitrary bytes through the decoder and the flow table, on
//! every link type (input layout and checks in `goflow_fuzz::decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    goflow_fuzz::decode(data);
});
