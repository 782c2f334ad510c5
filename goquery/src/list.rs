//! `goquery list`: per interface, the first and last block time, flow records, packets,
//! bytes and drops, summed over the day summaries (metadata only, no column is read).

use std::io::{self, Write};

use comfy_table::{presets, CellAlignment, Table};
use godb::query::Problem;
use godb::{CaptureStats, Counters, Database};
use serde_json::json;

use crate::render::units;
use crate::timefmt::{format_local, format_rfc3339};

/// The summary of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceSummary {
    /// Interface name.
    pub iface: String,
    /// First block time (UTC s).
    pub first: i64,
    /// Last block time (UTC s).
    pub last: i64,
    /// Days stored.
    pub days: usize,
    /// Flow records (rows) stored.
    pub flows: u64,
    /// Summed traffic counters.
    pub counters: Counters,
    /// Summed capture statistics.
    pub stats: CaptureStats,
}

/// Summaries of every interface of `db`, and what is wrong in its folder (foreign
/// entries, unreadable days, missing column files): those days are left out and the
/// rest is listed.
pub fn summaries(db: &Database) -> godb::Result<(Vec<IfaceSummary>, Vec<Problem>)> {
    let mut out = Vec::new();
    let ifaces = db.interfaces()?;
    let mut problems = godb::query::audit(db, &ifaces, None);
    for iface in ifaces {
        let (days, more) = godb::query::day_summaries(db, &iface);
        for p in more {
            if !problems.iter().any(|q| q.path == p.path) {
                problems.push(p);
            }
        }
        if days.is_empty() {
            continue;
        }
        let mut s = IfaceSummary {
            iface: iface.clone(),
            first: i64::MAX,
            last: i64::MIN,
            days: days.len(),
            flows: 0,
            counters: Counters::default(),
            stats: CaptureStats::default(),
        };
        for d in &days {
            s.first = s.first.min(d.first);
            s.last = s.last.max(d.last);
            s.flows = s.flows.saturating_add(d.rows);
            s.counters.add(&d.counters);
            s.stats.add(&d.stats);
        }
        out.push(s);
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, problems))
}

fn drops(s: &CaptureStats) -> u64 {
    s.packets_dropped.saturating_add(s.packets_if_dropped)
}

/// Writes the list as a table (`txt`), JSON or CSV.
pub fn write(out: &mut dyn Write, list: &[IfaceSummary], format: &str) -> io::Result<()> {
    match format {
        "json" => {
            let ifaces: Vec<_> = list
                .iter()
                .map(|s| {
                    json!({
                        "iface": s.iface,
                        "time_first": format_rfc3339(s.first.saturating_sub(godb::INTERVAL_SECS)),
                        "time_last": format_rfc3339(s.last),
                        "days": s.days,
                        "flows": s.flows,
                        "packets": s.counters.packets(),
                        "bytes": s.counters.bytes(),
                        "drops": drops(&s.stats),
                    })
                })
                .collect();
            serde_json::to_writer(&mut *out, &json!({ "interfaces": ifaces }))?;
            writeln!(out)
        }
        "csv" => {
            writeln!(
                out,
                "iface,time_first,time_last,days,flows,packets,bytes,drops"
            )?;
            for s in list {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    s.iface,
                    s.first.saturating_sub(godb::INTERVAL_SECS),
                    s.last,
                    s.days,
                    s.flows,
                    s.counters.packets(),
                    s.counters.bytes(),
                    drops(&s.stats)
                )?;
            }
            Ok(())
        }
        _ => {
            let mut t = Table::new();
            t.load_preset(presets::NOTHING);
            t.set_header(vec![
                "iface", "from", "to", "days", "flows", "packets", "bytes", "drops",
            ]);
            let mut total = (0u64, Counters::default(), 0u64);
            for s in list {
                t.add_row(vec![
                    s.iface.clone(),
                    format_local(s.first.saturating_sub(godb::INTERVAL_SECS)),
                    format_local(s.last),
                    s.days.to_string(),
                    units::count(s.flows),
                    units::count(s.counters.packets()),
                    units::bytes(s.counters.bytes()),
                    units::count(drops(&s.stats)),
                ]);
                total.0 = total.0.saturating_add(s.flows);
                total.1.add(&s.counters);
                total.2 = total.2.saturating_add(drops(&s.stats));
            }
            t.add_row(vec![
                "Totals:".to_string(),
                String::new(),
                String::new(),
                String::new(),
                units::count(total.0),
                units::count(total.1.packets()),
                units::bytes(total.1.bytes()),
                units::count(total.2),
            ]);
            for i in 3..8 {
                if let Some(c) = t.column_mut(i) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
            writeln!(out, "{t}")
        }
    }
}
