//! Power-loss simulation of the writer's commit protocol (test builds only).
//!
//! The writer runs on a real folder while `fsio` records every file system operation.
//! A small model replays the record and computes, for every point at which the power
//! could fail, the disk images a journaling file system may leave: file data survives
//! only if fsync'd (or, in a second variant, all written data survives), and folder
//! entries survive if their folder was fsync'd, plus any in-order prefix of the entry
//! changes made since (creations and renames may reach the disk before the folder is
//! fsync'd). Every distinct image is written to a folder and checked with the real
//! reader: all acknowledged blocks read back exactly, no block is partial or damaged,
//! and a new writer appends to it cleanly.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::fsio::journal::{self, Op};
use crate::model::{Block, CaptureStats, Counters, FlowKey, FlowRow};
use crate::{ColumnSet, Database, ScanRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    Dir,
    File(usize),
}

#[derive(Debug, Clone)]
enum NsOp {
    Add(PathBuf, Node),
    Rename(PathBuf, PathBuf),
}

impl NsOp {
    fn parents(&self) -> Vec<&Path> {
        match self {
            NsOp::Add(p, _) => p.parent().into_iter().collect(),
            NsOp::Rename(a, b) => a.parent().into_iter().chain(b.parent()).collect(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    vol: Vec<u8>,
    dur: Vec<u8>,
}

/// The simulated disk: volatile and durable namespaces and file contents.
#[derive(Debug, Clone)]
struct Model {
    inodes: Vec<Inode>,
    vol: BTreeMap<PathBuf, Node>,
    dur: BTreeMap<PathBuf, Node>,
    pending: Vec<NsOp>,
}

fn rename_in(ns: &mut BTreeMap<PathBuf, Node>, from: &Path, to: &Path) {
    let moved: Vec<(PathBuf, Node)> = ns
        .iter()
        .filter(|(p, _)| p.starts_with(from))
        .map(|(p, n)| (p.clone(), *n))
        .collect();
    if moved.is_empty() {
        return;
    }
    ns.retain(|p, _| !p.starts_with(to));
    for (p, n) in moved {
        ns.remove(&p);
        let rest = p
            .strip_prefix(from)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        ns.insert(
            if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            },
            n,
        );
    }
}

impl Model {
    fn new(root: &Path) -> Model {
        let ns: BTreeMap<PathBuf, Node> = [(root.to_path_buf(), Node::Dir)].into();
        Model {
            inodes: Vec::new(),
            vol: ns.clone(),
            dur: ns,
            pending: Vec::new(),
        }
    }

    fn inode(&mut self, p: &Path) -> &mut Inode {
        match self.vol.get(p) {
            Some(Node::File(i)) => &mut self.inodes[*i],
            other => panic!("{} is not a file: {other:?}", p.display()),
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Mkdir(p) => {
                self.vol.insert(p.clone(), Node::Dir);
                self.pending.push(NsOp::Add(p.clone(), Node::Dir));
            }
            Op::Create(p) => {
                self.inodes.push(Inode::default());
                let n = Node::File(self.inodes.len() - 1);
                self.vol.insert(p.clone(), n);
                self.pending.push(NsOp::Add(p.clone(), n));
            }
            Op::SetLen(p, len) => self.inode(p).vol.resize(*len as usize, 0),
            Op::Write(p, off, bytes) => {
                let f = self.inode(p);
                let end = *off as usize + bytes.len();
                if f.vol.len() < end {
                    f.vol.resize(end, 0);
                }
                f.vol[*off as usize..end].copy_from_slice(bytes);
            }
            Op::SyncFile(p) => {
                let f = self.inode(p);
                f.dur = f.vol.clone();
            }
            Op::Rename(a, b) => {
                rename_in(&mut self.vol, a, b);
                self.pending.push(NsOp::Rename(a.clone(), b.clone()));
            }
            Op::SyncDir(d) => {
                let child_of_d = |p: &Path| p.parent() == Some(d.as_path());
                let gone: Vec<PathBuf> = self
                    .dur
                    .keys()
                    .filter(|p| child_of_d(p) && !self.vol.contains_key(*p))
                    .cloned()
                    .collect();
                for g in gone {
                    self.dur.retain(|p, _| !p.starts_with(&g));
                }
                for (p, n) in self.vol.iter().filter(|(p, _)| child_of_d(p)) {
                    self.dur.insert(p.clone(), *n);
                }
                self.pending
                    .retain(|op| !op.parents().iter().all(|p| *p == d.as_path()));
            }
            Op::Acked => {}
        }
    }

    /// The disk images possible if the power fails now: (path → None for a folder,
    /// Some(content) for a file).
    fn images(&self) -> Vec<BTreeMap<PathBuf, Option<Vec<u8>>>> {
        let mut out = Vec::new();
        for j in 0..=self.pending.len() {
            let mut ns = self.dur.clone();
            for op in &self.pending[..j] {
                match op {
                    NsOp::Add(p, n) => {
                        ns.insert(p.clone(), *n);
                    }
                    NsOp::Rename(a, b) => rename_in(&mut ns, a, b),
                }
            }
            for volatile_data in [false, true] {
                let img = ns
                    .iter()
                    .map(|(p, n)| {
                        let content = match n {
                            Node::Dir => None,
                            Node::File(i) if volatile_data => Some(self.inodes[*i].vol.clone()),
                            Node::File(i) => Some(self.inodes[*i].dur.clone()),
                        };
                        (p.clone(), content)
                    })
                    .collect();
                out.push(img);
            }
        }
        out
    }
}

fn block(i: u64, timestamp: i64) -> Block {
    let rows = (0..(i * 13 % 40))
        .map(|r| FlowRow {
            key: FlowKey {
                sip: std::net::IpAddr::from([10, 0, (r % 3) as u8, i as u8]),
                dip: if r % 5 == 0 {
                    std::net::IpAddr::from([
                        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i as u8, r as u8,
                    ])
                } else {
                    std::net::IpAddr::from([192, 0, 2, r as u8])
                },
                proto: 6,
                dport: (r * 1000 + i) as u16,
                l7: 0,
            },
            counters: Counters {
                bytes_rcvd: r * 1_000_003 + i,
                bytes_sent: r,
                pkts_rcvd: 1,
                pkts_sent: i,
            },
        })
        .map(|mut r| {
            if r.key.dip.is_ipv6() {
                r.key.sip = std::net::IpAddr::from([
                    0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                ]);
            }
            r
        })
        .collect();
    Block {
        timestamp,
        stats: CaptureStats {
            packets_received: i,
            ..Default::default()
        },
        rows,
    }
}

/// 2025-11-22T00:00:00Z; the blocks cross midnight and repeat a timestamp.
const MIDNIGHT: i64 = 1_763_769_600;
const TIMESTAMPS: [i64; 5] = [
    MIDNIGHT - 300,
    MIDNIGHT,
    MIDNIGHT,
    MIDNIGHT + 300,
    MIDNIGHT + 600,
];

fn sorted(rows: &[FlowRow]) -> Vec<FlowRow> {
    crate::writer::sorted_rows(rows)
}

/// Reads every block of the database; `Err` describes the first problem.
fn read_all(db: &Database) -> Result<Vec<Block>, String> {
    let req = ScanRequest {
        ifaces: vec![],
        first: i64::MIN,
        last: i64::MAX,
    };
    let mut out = Vec::new();
    for plan in db.plan(&req).map_err(|e| e.to_string())? {
        if let Some(d) = plan.damaged {
            return Err(d);
        }
        let r = plan.open(db, ColumnSet::ALL).map_err(|e| e.to_string())?;
        for i in 0..r.len() {
            let d = r.read(i).map_err(|e| e.to_string())?;
            let rows = d.to_rows().ok_or("missing column")?;
            out.push(Block {
                timestamp: d.timestamp,
                stats: d.stats,
                rows,
            });
        }
    }
    Ok(out)
}

/// Checks that `blocks` are the first n expected blocks with acked <= n <= acked + 1.
fn check(blocks: &[Block], expected: &[Block], acked: usize) -> Result<(), String> {
    if blocks.len() < acked || blocks.len() > acked + 1 {
        return Err(format!(
            "{} blocks after {acked} acknowledged",
            blocks.len()
        ));
    }
    for (i, (got, want)) in blocks.iter().zip(expected).enumerate() {
        if got.timestamp != want.timestamp
            || got.stats != want.stats
            || got.rows != sorted(&want.rows)
        {
            return Err(format!("block {i} differs"));
        }
    }
    Ok(())
}

/// Runs the writer under the journal and returns (root, operations, written blocks).
fn record_run(dir: &Path) -> (PathBuf, Vec<Op>, Vec<Block>) {
    let root = dir.join("db");
    let db = Database::create(&root).unwrap();
    let blocks: Vec<Block> = TIMESTAMPS
        .iter()
        .enumerate()
        .map(|(i, t)| block(i as u64, *t))
        .collect();
    journal::start();
    let mut w = db.writer("eth0").unwrap();
    for b in &blocks {
        w.append(b).unwrap();
    }
    (root, journal::take(), blocks)
}

/// Checks every distinct crash image of `ops`; returns (images checked, failures).
/// Stops early once a failure satisfies `stop`.
fn check_all_images(
    root: &Path,
    ops: &[Op],
    blocks: &[Block],
    scratch: &Path,
    stop: impl Fn(&str) -> bool,
) -> (usize, Vec<String>) {
    let mut model = Model::new(root);
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    let mut acked = 0;
    for k in 0..=ops.len() {
        if k > 0 {
            model.apply(&ops[k - 1]);
            if ops[k - 1] == Op::Acked {
                acked += 1;
            }
        }
        for img in model.images() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            img.hash(&mut h);
            acked.hash(&mut h);
            if !seen.insert(h.finish()) {
                continue;
            }
            let at = scratch.join(format!("img{}", seen.len()));
            for (p, content) in &img {
                let rel = p.strip_prefix(root).unwrap();
                let dst = at.join(rel);
                match content {
                    None => std::fs::create_dir_all(&dst).unwrap(),
                    Some(c) => std::fs::write(&dst, c).unwrap(),
                }
            }
            let db = Database::open(&at).unwrap();
            let result = read_all(&db)
                .and_then(|got| check(&got, blocks, acked))
                .and_then(|()| {
                    // A new writer must append cleanly over whatever the crash left.
                    let mut w = db.writer("eth0").map_err(|e| e.to_string())?;
                    let next = block(99, MIDNIGHT + 3600);
                    w.append(&next).map_err(|e| e.to_string())?;
                    let got = read_all(&db)?;
                    match got.last() {
                        Some(b)
                            if b.timestamp == next.timestamp && b.rows == sorted(&next.rows) =>
                        {
                            Ok(())
                        }
                        _ => Err("block appended after the crash not read back".into()),
                    }
                });
            std::fs::remove_dir_all(&at).unwrap();
            if let Err(e) = result {
                let stopping = stop(&e);
                failures.push(format!(
                    "crash after op {k} ({:?}): {e}",
                    ops.get(k.wrapping_sub(1)).map(op_name)
                ));
                if stopping {
                    return (seen.len(), failures);
                }
            }
        }
    }
    (seen.len(), failures)
}

fn op_name(op: &Op) -> String {
    match op {
        Op::Write(p, off, b) => format!("Write({}, {off}, {} bytes)", p.display(), b.len()),
        other => format!("{other:?}"),
    }
}

#[test]
fn every_power_loss_image_keeps_acknowledged_blocks_and_no_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ops, blocks) = record_run(dir.path());
    assert_eq!(
        ops.iter().filter(|o| **o == Op::Acked).count(),
        blocks.len()
    );
    let scratch = dir.path().join("images");
    let (images, failures) = check_all_images(&root, &ops, &blocks, &scratch, |_| false);
    assert!(
        failures.is_empty(),
        "{} of {images} images fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(images > 50, "only {images} distinct images");
}

#[test]
fn the_simulation_catches_a_missing_fsync() {
    // Control: without the fsync of the column files, some image must lose or damage an
    // acknowledged block, or the simulation proves nothing.
    let dir = tempfile::tempdir().unwrap();
    let (root, ops, blocks) = record_run(dir.path());
    let broken: Vec<Op> = ops
        .into_iter()
        .filter(|o| !matches!(o, Op::SyncFile(p) if p.extension().is_some_and(|e| e == "col")))
        .collect();
    let (_, failures) =
        check_all_images(&root, &broken, &blocks, &dir.path().join("images"), |_| {
            true
        });
    assert!(!failures.is_empty());
    // And without the folder fsync after the rename, an acknowledged block can vanish.
    let dir = tempfile::tempdir().unwrap();
    let (root, ops, blocks) = record_run(dir.path());
    let broken: Vec<Op> = ops
        .into_iter()
        .filter(|o| !matches!(o, Op::SyncDir(p) if p.parent().and_then(|m| m.parent()).is_some_and(|y| y.parent().is_some_and(|i| i.ends_with("eth0")))))
        .collect();
    let (_, failures) =
        check_all_images(&root, &broken, &blocks, &dir.path().join("images"), |e| {
            e.contains("acknowledged")
        });
    assert!(
        failures.iter().any(|f| f.contains("acknowledged")),
        "{failures:?}"
    );
}

#[test]
fn a_failed_append_leaves_a_consistent_database_and_the_next_append_works() {
    // Make each file operation of an append fail in turn; the append reports the error,
    // the database stays readable, and the next append succeeds.
    let mut n = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path()).unwrap();
        let mut w = db.writer("eth0").unwrap();
        let (a, b, c) = (
            block(1, MIDNIGHT - 300),
            block(2, MIDNIGHT),
            block(3, MIDNIGHT + 300),
        );
        w.append(&a).unwrap();
        journal::fail_after(Some(n));
        let failed = w.append(&b).is_err();
        journal::fail_after(None);
        let got = read_all(&db).unwrap();
        // The block is visible only if the failure came after its rename.
        assert!(
            got.len() == 1 || got.len() == 2,
            "op {n}: {} blocks",
            got.len()
        );
        check(&got, &[a.clone(), b.clone()], 1).unwrap();
        w.append(&c).unwrap();
        let got = read_all(&db).unwrap();
        let want: Vec<Block> = if got.len() == 3 {
            vec![a, b, c]
        } else {
            vec![a, c]
        };
        check(&got, &want, want.len()).unwrap();
        if !failed {
            // n is past the last operation of an append: every operation was covered.
            assert!(n > 20, "only {n} operations per append");
            break;
        }
        n += 1;
    }
}
