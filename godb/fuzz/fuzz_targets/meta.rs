//! Fuzz target `meta`: arbitrary `day.meta` files (with optional repairs chosen by the
//! first byte, see `godb_fuzz::meta`) read through godb's listing, planning, block
//! reading and query engine next to the golden database's column files.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static SCRATCH: OnceLock<godb_fuzz::Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let s = SCRATCH.get_or_init(|| godb_fuzz::Scratch::new(Some(&godb_fuzz::golden_day())));
    godb_fuzz::meta(s, data);
});
