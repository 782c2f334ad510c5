//! Replays the godb fuzz targets' committed inputs on stable: the crash reproducers in
//! `godb/fuzz/regressions/<target>` (one per crash the fuzzer found) and the seeds in
//! `godb/fuzz/corpus/<target>`, through the same harness code the fuzzer runs
//! (`godb/fuzz/src/lib.rs`, included here).

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod harness;

/// The committed inputs of `target`: reproducers first, then seeds, each sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for sub in ["regressions", "corpus"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(sub)
            .join(target);
        let mut v: Vec<PathBuf> = fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.is_file());
        v.sort();
        all.extend(v);
    }
    assert!(
        !all.is_empty(),
        "no committed inputs for fuzz target {target}"
    );
    all
}

/// Limits the test process's address space to 3 GiB, as the fuzzer limits memory to
/// 2 GiB: a reproducer that makes godb allocate for billions of claimed rows then aborts
/// the test instead of passing slowly on a machine with enough memory.
fn limit_memory() {
    let limit = libc::rlimit {
        rlim_cur: 3 << 30,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct passed by reference.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

fn replay(target: &str, mut run: impl FnMut(&[u8])) {
    limit_memory();
    for p in inputs(target) {
        let data = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        eprintln!("replaying {}", p.display());
        run(&data);
    }
}

#[test]
fn meta_inputs_replay_without_panic() {
    let s = harness::Scratch::new(Some(&harness::golden_day()));
    replay("meta", |d| harness::meta(&s, d));
}

#[test]
fn block_inputs_replay_without_panic() {
    let s = harness::Scratch::new(None);
    replay("block", |d| harness::block(&s, d));
}

#[test]
fn condition_inputs_replay_without_panic() {
    replay("condition", harness::condition);
}
