//! Crash safety of godb's writer: writer processes killed with SIGKILL, readers
//! running beside a writer (see `crash.rs`).
//!
//! A binary of its own because the kill test spawns processes: until a spawned child
//! execs, it holds copies of the parent's file descriptors, among them the lock files
//! of writers that other tests of the same binary opened and then dropped, so their
//! flock outlives the drop for a moment and such a test's next `Database::writer`
//! failed now and then with `WriterLocked`. Cargo runs test binaries one after the
//! other.

#[path = "../store/common.rs"]
mod common;
mod crash;

pub use common::*;
