//! The JSON renderer, in goQuery's shape:
//!
//! ```text
//! {"status": "ok"|"empty",
//!  "query": {"type", "attributes": [...], "condition", "direction", "sort_by", ...},
//!  "summary": {"time_first", "time_last", "interfaces", "totals": {"br","bs","pr","ps"},
//!              "hits": {"displayed","total"}, "timings": {...},
//!              "skipped_blocks": {"count", "blocks": [...]},
//!              "problems": {"count", "blocks_left_out", "items": [...]}},
//!  "rows": [{"labels": {"time","iface"}, "attributes": {"sip","dip","dport","proto","l7"},
//!            "counters": {"br","bs","pr","ps"}}]}
//! ```
//!
//! Only the queried attributes and labels appear; `labels` is left out when the query
//! has neither time nor iface. `proto` and `dport` are numbers, addresses strings,
//! `l7` the protocol's name, times RFC 3339 in UTC.

use std::io::{self, Write};

use godb::query::ResultRow;
use godb::Counters;
use serde_json::{json, Map, Value};

use super::{l7_name, Report};
use crate::timefmt::format_rfc3339;

fn counters(c: &Counters) -> Value {
    json!({"br": c.bytes_rcvd, "bs": c.bytes_sent, "pr": c.pkts_rcvd, "ps": c.pkts_sent})
}

fn row(r: &ResultRow) -> Value {
    let mut labels = Map::new();
    if let Some(t) = r.time {
        labels.insert("time".into(), format_rfc3339(t).into());
    }
    if let Some(i) = &r.iface {
        labels.insert("iface".into(), i.clone().into());
    }
    let mut attrs = Map::new();
    if let Some(ip) = r.sip {
        attrs.insert("sip".into(), ip.to_string().into());
    }
    if let Some(ip) = r.dip {
        attrs.insert("dip".into(), ip.to_string().into());
    }
    if let Some(p) = r.dport {
        attrs.insert("dport".into(), p.into());
    }
    if let Some(p) = r.proto {
        attrs.insert("proto".into(), p.into());
    }
    if let Some(id) = r.l7 {
        attrs.insert("l7".into(), l7_name(id).into());
    }
    let mut obj = Map::new();
    if !labels.is_empty() {
        obj.insert("labels".into(), labels.into());
    }
    obj.insert("attributes".into(), attrs.into());
    obj.insert("counters".into(), counters(&r.counters));
    obj.into()
}

/// The JSON document of `r`.
pub fn document(r: &Report<'_>) -> Value {
    let s = r.stmt;
    let res = r.result;
    let attributes: Vec<&str> = s.attributes.list().iter().map(|a| a.name()).collect();
    let skipped: Vec<Value> = res
        .skipped
        .iter()
        .map(|b| {
            json!({
                "iface": b.iface,
                "time": if b.timestamp > 0 { Value::from(format_rfc3339(b.timestamp)) } else { Value::Null },
                "reason": b.reason,
            })
        })
        .collect();
    let mut query = json!({
        "type": r.query,
        "attributes": attributes,
        "direction": s.direction.name(),
        "sort_by": match s.sort {
            godb::query::SortBy::Bytes => "bytes",
            godb::query::SortBy::Packets => "packets",
            godb::query::SortBy::Time => "time",
        },
        "sort_ascending": s.ascending,
        "limit": s.limit,
    });
    if let (Some(c), Some(q)) = (&s.condition, query.as_object_mut()) {
        q.insert("condition".into(), c.to_string().into());
    }
    json!({
        "status": if res.rows.is_empty() { "empty" } else { "ok" },
        "query": query,
        "summary": {
            "time_first": format_rfc3339(s.first),
            "time_last": format_rfc3339(s.last),
            "interfaces": res.interfaces,
            "totals": counters(&res.totals),
            "hits": {"displayed": res.hits_displayed(), "total": res.hits_total},
            "timings": {
                "query_duration_ms": res.duration.as_secs_f64() * 1000.0,
            },
            "blocks_read": res.blocks_read,
            "rows_scanned": res.rows_scanned,
            "skipped_blocks": {"count": res.skipped.len(), "blocks": skipped},
            "problems": problems(&res.problems),
        },
        "rows": res.rows.iter().map(row).collect::<Vec<_>>(),
    })
}

/// The `problems` object of the summary: what is wrong in the database folder.
pub fn problems(list: &[godb::query::Problem]) -> Value {
    let items: Vec<Value> = list
        .iter()
        .map(|p| {
            json!({
                "iface": p.iface,
                "path": p.path.display().to_string(),
                "problem": p.to_string(),
                "loses_data": p.loses_data(),
                "blocks_left_out": p.blocks_left_out,
            })
        })
        .collect();
    json!({
        "count": list.len(),
        "blocks_left_out": list.iter().map(|p| p.blocks_left_out).sum::<usize>(),
        "items": items,
    })
}

/// Writes the JSON document of `r` and a newline.
pub fn write(out: &mut dyn Write, r: &Report<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &document(r))?;
    writeln!(out)
}
