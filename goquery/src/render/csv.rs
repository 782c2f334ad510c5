//! The CSV renderer: a header row, then one line per result row with plain numbers
//! (proto and dport numeric, times as epoch seconds, l7 as its name) and the counter
//! columns of the chosen direction. Fields are quoted when they need it (RFC 4180).

use std::io::{self, Write};

use godb::query::Attribute;

use super::{cell, CounterCol, Report};

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the CSV of `r` to `out`.
pub fn write(out: &mut dyn Write, r: &Report<'_>) -> io::Result<()> {
    let attrs = r.stmt.attributes.list();
    let dir = r.stmt.direction;
    let counters = CounterCol::for_direction(dir);
    let mut header: Vec<String> = attrs.iter().map(|a| a.name().to_string()).collect();
    header.extend(counters.iter().map(|c| c.header().1.to_string()));
    writeln!(out, "{}", header.join(","))?;
    let epoch: fn(i64) -> String = |t| t.to_string();
    for row in &r.result.rows {
        let mut cells: Vec<String> = attrs
            .iter()
            .map(|a| match a {
                Attribute::Proto => row.proto.map(|p| p.to_string()).unwrap_or_default(),
                a => cell(row, *a, r.names, epoch),
            })
            .map(|s| field(&s))
            .collect();
        cells.extend(
            counters
                .iter()
                .map(|c| c.value(dir, &row.counters, &r.result.totals, false)),
        );
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::field("a,b"), "\"a,b\"");
        assert_eq!(super::field("a\"b"), "\"a\"\"b\"");
        assert_eq!(super::field("eth0"), "eth0");
    }
}
