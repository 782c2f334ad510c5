//! Prints how compactly a godb database stores its flows: bytes per row on disk for
//! each column and in total (with and without the metadata files), per interface,
//! read from the metadata alone. Usage:
//! `cargo run -p godb --example bytes_per_row -- DB_FOLDER`.

use std::process::ExitCode;

use godb::{Column, Database, ScanRequest, NUM_COLUMNS};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or("usage: bytes_per_row DB_FOLDER")?;
    let db = Database::open(path)?;
    for iface in db.interfaces()? {
        let req = ScanRequest {
            ifaces: vec![iface.clone()],
            first: i64::MIN,
            last: i64::MAX,
        };
        let (mut rows, mut blocks, mut meta) = (0u64, 0u64, 0u64);
        let mut stored = [0u64; NUM_COLUMNS];
        for plan in db.plan(&req)? {
            if let Some(why) = &plan.damaged {
                eprintln!("skipping damaged day {}: {why}", plan.date);
                continue;
            }
            meta += std::fs::metadata(plan.meta_path())?.len();
            for b in &plan.blocks {
                rows += b.rows();
                blocks += 1;
                for c in Column::ALL {
                    stored[c.index()] += u64::from(b.column(c).stored_len);
                }
            }
        }
        if rows == 0 {
            println!("{iface}: no rows");
            continue;
        }
        let per_row = |b: u64| b as f64 / rows as f64;
        println!("{iface}: {blocks} blocks, {rows} rows");
        for c in Column::ALL {
            println!(
                "  {:<10} {:>7.3} bytes/row",
                c.name(),
                per_row(stored[c.index()])
            );
        }
        let total: u64 = stored.iter().sum();
        println!("  {:<10} {:>7.3} bytes/row", "columns", per_row(total));
        println!(
            "  {:<10} {:>7.3} bytes/row",
            "with meta",
            per_row(total + meta)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
