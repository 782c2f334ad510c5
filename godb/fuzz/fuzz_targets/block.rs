//! Fuzz target `block`: arbitrary stored column blocks (with valid checksums and a
//! matching `day.meta`, see `godb_fuzz::block`) decoded by a `DayReader`; a decoded
//! block must have exactly as many values as rows.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static SCRATCH: OnceLock<godb_fuzz::Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let s = SCRATCH.get_or_init(|| godb_fuzz::Scratch::new(None));
    godb_fuzz::block(s, data);
});
