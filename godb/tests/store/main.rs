//! Integration tests of godb's storage engine: round trips (unit and proptest), the
//! writer's rules, corruption handling and retention. One test binary; shared helpers
//! live in `common.rs` (also used by the `kill` binary, which holds the crash tests).

mod common;
mod corruption;
mod golden;
mod retention;
mod roundtrip;

pub use common::*;
