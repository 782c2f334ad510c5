//! Crash safety: a writer process killed with SIGKILL at random moments, at least 200
//! times, never leaves a partial block behind and never loses an acknowledged one;
//! readers running while a writer appends always see a consistent prefix of blocks.
//!
//! The writer process is this test binary itself, re-executed to run the ignored test
//! `crash::kill_test_child_writer` with `GODB_KILL_TEST_DB` set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use godb::{Block, Database};

use crate::{random_block, read_all, stored_order, Rng, MIDNIGHT};

const CHILD_ENV: &str = "GODB_KILL_TEST_DB";
/// Blocks are about 3 hours apart, so a run of blocks crosses several days.
const STEP: i64 = 300 * 37;

fn block_for(index: u64) -> Block {
    let rows = (index * 7919 % 150) as usize;
    random_block(index, MIDNIGHT + index as i64 * STEP, rows)
}

fn index_of(timestamp: i64) -> u64 {
    ((timestamp - MIDNIGHT) / STEP) as u64
}

/// The writer process: appends blocks forever, printing "ack N" after block N was
/// acknowledged by `append`. Does nothing unless started by the kill test.
#[test]
#[ignore = "child process of kill_writer_at_random_points"]
fn kill_test_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Database::open(path).unwrap();
    let mut w = db.writer("eth0").unwrap();
    let mut next = w.last_timestamp().map_or(0, |t| index_of(t) + 1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nready").unwrap();
    out.flush().unwrap();
    loop {
        w.append(&block_for(next)).unwrap();
        writeln!(out, "ack {next}").unwrap();
        out.flush().unwrap();
        next += 1;
    }
}

/// Checks that the database holds exactly blocks 0..n for some n in
/// [acked, acked + 1] (the block in flight may or may not have been committed), each
/// exactly as written. Returns n.
fn verify(db: &Database, acked: u64) -> u64 {
    let blocks = read_all(db);
    assert!(
        blocks.len() as u64 == acked || blocks.len() as u64 == acked + 1,
        "{} blocks after {acked} acks",
        blocks.len()
    );
    verify_blocks(&blocks)
}

/// Checks that `blocks` are blocks 0..n, each exactly as written; returns n.
fn verify_blocks(blocks: &[(String, Block)]) -> u64 {
    for (i, (iface, b)) in blocks.iter().enumerate() {
        assert_eq!(iface, "eth0");
        assert_eq!(index_of(b.timestamp), i as u64, "blocks not contiguous");
        let want = block_for(i as u64);
        assert_eq!(b.rows, stored_order(&want.rows), "block {i} differs");
        assert_eq!(b.stats, want.stats);
    }
    blocks.len() as u64
}

/// Whether a column file of the newest day holds bytes past its committed end (the
/// writer was killed while appending).
fn has_garbage(db: &Database) -> bool {
    let req = godb::ScanRequest {
        ifaces: vec![],
        first: i64::MIN,
        last: i64::MAX,
    };
    let plans = db.plan(&req).unwrap();
    let Some(plan) = plans.last() else {
        return false;
    };
    let Some(last) = plan.blocks.last() else {
        return false;
    };
    godb::Column::ALL.iter().any(|c| {
        let len = std::fs::metadata(plan.dir().join(c.file_name())).map_or(0, |m| m.len());
        len > last.column(*c).end()
    })
}

#[test]
fn kill_writer_at_random_points() {
    let exe = std::env::current_exe().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!("kill test seed {seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut kills = 0;
    let mut total_blocks = 0;
    let mut dir = tempfile::tempdir().unwrap();
    let mut committed = 0u64;
    let (mut garbage, mut in_flight) = (0, 0);
    while kills < 200 {
        // A fresh database every 25 kills keeps verification cheap.
        if kills % 25 == 0 {
            dir = tempfile::tempdir().unwrap();
            Database::create(dir.path()).unwrap();
            committed = 0;
        }
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::kill_test_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let acks = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "ready" {
                    let _ = ready_tx.send(());
                }
                if let Some(n) = line.strip_prefix("ack ") {
                    last = n.trim().parse::<u64>().ok().or(last);
                }
            }
            last
        });
        // Kill at a random moment of the writer's life: mostly while it appends (after
        // it opened the database), sometimes while it starts up.
        if rng.below(8) != 0 {
            ready_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("writer child did not start");
        }
        std::thread::sleep(Duration::from_micros(rng.below(50_000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "writer child ended by itself: {status:?}"
        );
        let acked = acks.join().unwrap().map_or(committed, |n| n + 1);
        assert!(acked >= committed);
        let db = Database::open(dir.path()).unwrap();
        garbage += usize::from(has_garbage(&db));
        let n = verify(&db, acked);
        in_flight += usize::from(n > acked);
        committed = n;
        total_blocks += committed;
        kills += 1;
    }
    assert!(total_blocks > 0, "no block was ever acknowledged");
    // After the last kill a new writer truncates the garbage and appends normally.
    let db = Database::open(dir.path()).unwrap();
    let mut w = db.writer("eth0").unwrap();
    w.append(&block_for(committed)).unwrap();
    drop(w);
    verify(&db, committed + 1);
    eprintln!(
        "{kills} kills in {:?}, {total_blocks} blocks verified; {garbage} kills left \
         uncommitted bytes, {in_flight} committed a block that was never acknowledged",
        started.elapsed()
    );
}

#[test]
fn readers_see_a_consistent_prefix_while_a_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    let total = 60u64;
    let wdb = db.clone();
    let writer = std::thread::spawn(move || {
        let mut w = wdb.writer("eth0").unwrap();
        for i in 0..total {
            w.append(&block_for(i)).unwrap();
        }
    });
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut seen = 0u64;
                let mut rounds = 0;
                while seen < total {
                    let n = verify_blocks(&read_all(&db));
                    assert!(n >= seen, "committed blocks disappeared: {n} < {seen}");
                    seen = n;
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() >= 1);
    }
}
