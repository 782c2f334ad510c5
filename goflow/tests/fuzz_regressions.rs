//! Replays the decode fuzz target's committed inputs on stable: the crash reproducers
//! in `goflow/fuzz/regressions/decode` (one per crash the fuzzer found) and the seeds
//! in `goflow/fuzz/corpus/decode`, through the same harness code the fuzzer runs
//! (`goflow/fuzz/src/lib.rs`, included here).

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod harness;

/// The files of `goflow/fuzz/<sub>/decode`, sorted.
fn inputs(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(sub)
        .join("decode");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file() && !p.ends_with(".gitkeep"));
    v.sort();
    v
}

fn replay(files: &[PathBuf]) {
    for p in files {
        let data = fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        eprintln!("replaying {}", p.display());
        harness::decode(&data);
    }
}

#[test]
fn decode_regressions_replay_without_panic() {
    replay(&inputs("regressions"));
}

#[test]
fn decode_seed_corpus_replays_without_panic() {
    let files = inputs("corpus");
    assert!(!files.is_empty(), "goflow/fuzz/corpus/decode is empty");
    replay(&files);
}
