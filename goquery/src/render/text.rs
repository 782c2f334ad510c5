//! The text renderer: a comfy-table with the queried attributes, the counters of the
//! chosen direction in human units with percentages, a totals row, and goQuery's
//! footer (time span, interfaces, sort order, conditions, hits, query time, skipped
//! corrupt blocks).

use std::io::{self, Write};

use comfy_table::{presets, CellAlignment, ColumnConstraint, Table};

use super::{cell, units, CounterCol, Report};
use crate::timefmt::{format_local, format_span};

/// Writes the table and footer of `r` to `out`.
pub fn write(out: &mut dyn Write, r: &Report<'_>) -> io::Result<()> {
    let attrs = r.stmt.attributes.list();
    let dir = r.stmt.direction;
    let counters = CounterCol::for_direction(dir);
    let totals = &r.result.totals;

    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    let mut header: Vec<String> = attrs.iter().map(|a| format!("\n{}", a.name())).collect();
    header.extend(counters.iter().map(|c| c.header().0.to_string()));
    table.set_header(header);
    for row in &r.result.rows {
        let mut cells: Vec<String> = attrs
            .iter()
            .map(|a| cell(row, *a, r.names, format_local))
            .collect();
        cells.extend(
            counters
                .iter()
                .map(|c| c.value(dir, &row.counters, totals, true)),
        );
        table.add_row(cells);
    }
    // Totals row: the label in the last attribute column, the totals of all hits.
    let mut cells: Vec<String> = vec![String::new(); attrs.len()];
    if let Some(last) = cells.last_mut() {
        *last = "Totals:".to_string();
    }
    cells.extend(counters.iter().map(|c| match c {
        CounterCol::PktsPct | CounterCol::BytesPct => String::new(),
        c => c.value(dir, totals, totals, true),
    }));
    table.add_row(cells);
    for i in 0..attrs.len() + counters.len() {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
            col.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    writeln!(out, "{table}")?;
    writeln!(out)?;
    footer(out, r)
}

fn footer(out: &mut dyn Write, r: &Report<'_>) -> io::Result<()> {
    let s = r.stmt;
    let res = r.result;
    writeln!(
        out,
        "   Timespan    : [{}, {}] ({})",
        format_local(s.first),
        format_local(s.last),
        format_span(s.last.saturating_sub(s.first))
    )?;
    if res.blocks_read > 0 {
        writeln!(
            out,
            "   Data        : [{}, {}] ({} blocks, {} flow records scanned)",
            format_local(res.time_first.saturating_sub(godb::INTERVAL_SECS)),
            format_local(res.time_last),
            res.blocks_read,
            units::count(res.rows_scanned)
        )?;
    }
    writeln!(out, "   Interface   : {}", res.interfaces.join(", "))?;
    writeln!(out, "   Sorted by   : {}", s.sort.describe(s.direction))?;
    if !s.condition_text.is_empty() {
        let canonical = s
            .condition
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        writeln!(out, "   Conditions  : {canonical}")?;
    }
    writeln!(
        out,
        "   Query stats : displayed top {} hits out of {} in {}",
        res.hits_displayed(),
        res.hits_total,
        duration(res.duration)
    )?;
    if !res.skipped.is_empty() {
        writeln!(
            out,
            "   Skipped     : {} corrupted block{} (details on stderr)",
            res.skipped.len(),
            if res.skipped.len() == 1 { "" } else { "s" }
        )?;
    }
    if !res.problems.is_empty() {
        let left: usize = res.problems.iter().map(|p| p.blocks_left_out).sum();
        writeln!(
            out,
            "   Problems    : {} in the database folder, {left} blocks left out (details on stderr)",
            res.problems.len(),
        )?;
    }
    Ok(())
}

fn duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}
