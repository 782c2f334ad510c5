//! Fuzz target `condition`: arbitrary text through the query condition parser (with
//! an offline resolver), the printed form's round trip, evaluation on sample rows, and
//! statement construction and validation (see `godb_fuzz::condition`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    godb_fuzz::condition(data);
});
