//! Retention: deleting whole days before a date, per interface or for all, removing
//! emptied month and year folders, while a writer keeps appending.

use chrono::NaiveDate;
use godb::{Database, INTERVAL_SECS};

use crate::{random_block, read_all, MIDNIGHT};

const DAY: i64 = 86_400;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Writes one block at noon of each of `days` consecutive days starting 2025-11-22.
fn fill(db: &Database, iface: &str, days: i64) {
    let mut w = db.writer(iface).unwrap();
    for d in 0..days {
        w.append(&random_block(d as u64, MIDNIGHT + d * DAY + 12 * 3600, 5))
            .unwrap();
    }
}

#[test]
fn deletes_days_before_a_date_per_interface_and_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    // 2025-11-22 .. 2026-01-01: crosses a month and a year.
    fill(&db, "eth0", 41);
    fill(&db, "eth1", 41);
    let deleted = db
        .delete_days_before(date(2025, 12, 1), Some("eth0"))
        .unwrap();
    assert_eq!(deleted.len(), 9);
    assert!(deleted
        .iter()
        .all(|(i, d)| i == "eth0" && *d < date(2025, 12, 1)));
    assert!(
        !dir.path().join("eth0/2025/11").exists(),
        "emptied month folder kept"
    );
    assert!(dir.path().join("eth0/2025/12/01").exists());
    assert_eq!(db.days("eth1").unwrap().len(), 41);
    assert_eq!(db.days("eth0").unwrap()[0].date, date(2025, 12, 1));

    let deleted = db.delete_days_before(date(2026, 1, 1), None).unwrap();
    assert_eq!(deleted.len(), 31 + 40);
    assert!(
        !dir.path().join("eth0/2025").exists(),
        "emptied year folder kept"
    );
    for iface in ["eth0", "eth1"] {
        let days = db.days(iface).unwrap();
        assert_eq!(
            days.iter().map(|d| d.date).collect::<Vec<_>>(),
            vec![date(2026, 1, 1)]
        );
    }
    // Nothing left before the date: deleting again is a no-op.
    assert!(db
        .delete_days_before(date(2026, 1, 1), None)
        .unwrap()
        .is_empty());
    assert_eq!(read_all(&db).len(), 2);
    assert!(db
        .delete_days_before(date(2026, 1, 1), Some("absent"))
        .unwrap()
        .is_empty());
}

#[test]
fn retention_while_a_writer_appends_to_today() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    fill(&db, "eth0", 3);
    let start = MIDNIGHT + 3 * DAY;
    let writer_db = db.clone();
    let writer = std::thread::spawn(move || {
        let mut w = writer_db.writer("eth0").unwrap();
        for i in 0..40 {
            w.append(&random_block(
                1000 + i,
                start + (i as i64 + 1) * INTERVAL_SECS,
                20,
            ))
            .unwrap();
        }
    });
    let mut deleted = Vec::new();
    for d in 0..4 {
        deleted.extend(db.delete_days_before(date(2025, 11, 22 + d), None).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    writer.join().unwrap();
    assert_eq!(deleted.len(), 3);
    let blocks = read_all(&db);
    assert_eq!(blocks.len(), 40);
    assert!(blocks.iter().all(|(_, b)| b.timestamp > start));
}

#[test]
fn damaged_day_folders_are_set_aside_and_deleted_with_their_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    fill(&db, "eth0", 1);
    let meta = dir.path().join("eth0/2025/11/22/day.meta");
    let mut bytes = std::fs::read(&meta).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&meta, bytes).unwrap();
    assert!(db.days("eth0").unwrap().is_empty());
    assert_eq!(db.damaged_days("eth0").unwrap().len(), 1);
    // The writer sets the damaged day aside and starts it afresh.
    let mut w = db.writer("eth0").unwrap();
    w.append(&random_block(9, MIDNIGHT + 13 * 3600, 3)).unwrap();
    drop(w);
    assert_eq!(db.days("eth0").unwrap().len(), 1);
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("eth0/2025/11"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("22.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        db.delete_days_before(date(2025, 11, 23), None).unwrap(),
        vec![("eth0".to_string(), date(2025, 11, 22))]
    );
    assert!(!dir.path().join("eth0/2025").exists());
}

#[test]
fn keep_n_days() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    fill(&db, "eth0", 10); // 2025-11-22 .. 2025-12-01
    let deleted = db
        .delete_days_older_than(3, date(2025, 12, 1), None)
        .unwrap();
    assert_eq!(deleted.len(), 6);
    let kept: Vec<_> = db.days("eth0").unwrap().iter().map(|d| d.date).collect();
    assert_eq!(
        kept,
        vec![
            date(2025, 11, 28),
            date(2025, 11, 29),
            date(2025, 11, 30),
            date(2025, 12, 1)
        ]
    );
    assert!(db
        .delete_days_older_than(u32::MAX, date(2025, 12, 1), None)
        .unwrap()
        .is_empty());
}
