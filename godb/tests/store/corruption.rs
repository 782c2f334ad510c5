//! Corruption handling: at least 1,000 random byte flips, truncations and removals of
//! column and metadata files. The reader must report exactly the damaged blocks (with
//! file and block), or the damaged day for a metadata file, never panic, and read every
//! untouched block exactly.

use std::collections::BTreeMap;

use chrono::Datelike;
use std::path::PathBuf;

use godb::{Block, BlockErrorKind, Column, ColumnSet, Database, ScanRequest};

use crate::{random_block, stored_order, Rng, MIDNIGHT};

/// What was done to one file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Byte `pos` xor-ed with a non-zero mask.
    Flip(u64),
    /// File cut to this length.
    Truncate(u64),
    /// File removed.
    Remove,
}

impl Damage {
    /// Whether the stored range `start..end` of the damaged file is affected.
    fn hits(self, start: u64, end: u64) -> bool {
        match self {
            Damage::Flip(p) => p >= start && p < end,
            Damage::Truncate(len) => end > len,
            Damage::Remove => true,
        }
    }
}

/// Builds a database of 2 interfaces × 3 days × 4 blocks (some empty, some IPv6-only).
fn build(db: &Database) -> BTreeMap<(String, i64), Block> {
    let mut expected = BTreeMap::new();
    for (k, iface) in ["eth0", "eth1"].iter().enumerate() {
        let mut w = db.writer(iface).unwrap();
        for d in 0..3i64 {
            for b in 0..4i64 {
                let ts = MIDNIGHT + d * 86_400 + (b + 1) * 3600;
                let rows = [0, 1, 40, 90][((b + d) % 4) as usize];
                let block = random_block((k as u64) << 32 | (d * 4 + b) as u64, ts, rows);
                w.append(&block).unwrap();
                let block = Block {
                    rows: stored_order(&block.rows),
                    ..block
                };
                expected.insert((iface.to_string(), ts), block);
            }
        }
    }
    expected
}

fn files_of(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_of(&p, out);
        } else if p.extension().is_some_and(|x| x == "col" || x == "meta") {
            out.push(p);
        }
    }
}

#[test]
fn random_flips_truncations_and_removals_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    let expected = build(&db);
    let mut files = Vec::new();
    files_of(dir.path(), &mut files);
    files.sort();
    assert_eq!(files.len(), 2 * 3 * 10);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    eprintln!("corruption test seed {seed}");
    let mut rng = Rng(seed);
    let req = ScanRequest {
        ifaces: vec![],
        first: i64::MIN,
        last: i64::MAX,
    };
    let (mut bad_blocks, mut bad_days) = (0usize, 0usize);
    for round in 0..1200 {
        let file = &files[rng.below(files.len() as u64) as usize];
        let original = std::fs::read(file).unwrap();
        let len = original.len() as u64;
        let damage = match rng.below(20) {
            0 => Damage::Remove,
            1..=6 if len > 0 => Damage::Truncate(rng.below(len)),
            _ if len > 0 => Damage::Flip(rng.below(len)),
            _ => Damage::Remove,
        };
        match damage {
            Damage::Flip(p) => {
                let mut b = original.clone();
                b[p as usize] ^= (rng.below(255) + 1) as u8;
                std::fs::write(file, b).unwrap();
            }
            Damage::Truncate(l) => std::fs::write(file, &original[..l as usize]).unwrap(),
            Damage::Remove => std::fs::remove_file(file).unwrap(),
        }
        let is_meta = file.extension().is_some_and(|x| x == "meta");
        let day_dir = file.parent().unwrap();
        let column = Column::ALL
            .into_iter()
            .find(|c| file.file_name().is_some_and(|n| n == c.file_name()));

        let mut seen = 0;
        let plans = db.plan(&req).unwrap();
        for plan in &plans {
            if let Some(why) = &plan.damaged {
                assert!(
                    is_meta && plan.dir() == day_dir,
                    "round {round}: unexpected damaged day {why}"
                );
                bad_days += 1;
                continue;
            }
            let reader = plan.open(&db, ColumnSet::ALL).unwrap();
            for (i, meta) in plan.blocks.iter().enumerate() {
                seen += 1;
                let want = &expected[&(plan.iface.clone(), meta.timestamp)];
                let hit = plan.dir() == day_dir
                    && column.is_some_and(|c| {
                        let cm = meta.column(c);
                        damage.hits(cm.offset, cm.end())
                    });
                match reader.read(i) {
                    Ok(data) => {
                        assert!(
                            !hit,
                            "round {round}: {damage:?} of {} not detected in block {i}",
                            file.display()
                        );
                        assert_eq!(data.to_rows().as_ref(), Some(&want.rows), "round {round}");
                        assert_eq!(data.stats, want.stats);
                    }
                    Err(e) => {
                        assert!(hit, "round {round}: untouched block failed: {e}");
                        assert_eq!(&e.file, file, "round {round}: {e}");
                        assert_eq!((e.block, e.timestamp), (i, meta.timestamp));
                        if matches!(damage, Damage::Remove) {
                            assert!(matches!(e.kind, BlockErrorKind::FileUnavailable(_)), "{e}");
                        }
                        bad_blocks += 1;
                    }
                }
            }
        }
        // Every block of every undamaged day was planned.
        let lost = if is_meta {
            expected
                .keys()
                .filter(|(iface, ts)| {
                    let d = godb::day_of(*ts).unwrap();
                    let rel = format!("{iface}/{:04}/{:02}/{:02}", d.year(), d.month(), d.day());
                    db.path().join(rel) == day_dir
                })
                .count()
        } else {
            0
        };
        assert_eq!(seen, expected.len() - lost, "round {round}");
        std::fs::write(file, &original).unwrap();
    }
    eprintln!("{bad_blocks} damaged blocks and {bad_days} damaged days reported");
    assert!(bad_blocks > 0 && bad_days > 0);
}
