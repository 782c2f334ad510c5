//! Renderers of a query result: a text table with human units and goQuery's footer
//! ([`text`]), goQuery-shaped JSON ([`json`]) and CSV with a header row ([`csv`]).
//! All three share the cell formatting of attributes defined here.

pub mod csv;
pub mod json;
pub mod text;
pub mod units;

use std::collections::HashMap;
use std::net::IpAddr;

use godb::query::{proto_name, Attribute, QueryResult, ResultRow, Statement};

/// Everything a renderer needs.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The statement that ran.
    pub stmt: &'a Statement,
    /// What it returned.
    pub result: &'a QueryResult,
    /// The query type as the user wrote it.
    pub query: &'a str,
    /// Reverse DNS names of addresses (empty unless `-r`).
    pub names: &'a HashMap<IpAddr, String>,
}

/// The name of layer-7 id `id`, or the id as text if this version does not know it.
pub fn l7_name(id: u16) -> String {
    godb::l7::name(id)
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string())
}

/// The text of attribute `a` of `row` for the table and CSV: names for proto and l7,
/// host names for resolved addresses; `time_fmt` formats timestamps.
pub fn cell(
    row: &ResultRow,
    a: Attribute,
    names: &HashMap<IpAddr, String>,
    time_fmt: fn(i64) -> String,
) -> String {
    let ip = |ip: Option<IpAddr>| match ip {
        Some(ip) => names.get(&ip).cloned().unwrap_or_else(|| ip.to_string()),
        None => String::new(),
    };
    match a {
        Attribute::Time => row.time.map(time_fmt).unwrap_or_default(),
        Attribute::Iface => row.iface.clone().unwrap_or_default(),
        Attribute::Sip => ip(row.sip),
        Attribute::Dip => ip(row.dip),
        Attribute::Dport => row.dport.map(|p| p.to_string()).unwrap_or_default(),
        Attribute::Proto => row
            .proto
            .map(|p| {
                proto_name(p)
                    .map(str::to_string)
                    .unwrap_or_else(|| p.to_string())
            })
            .unwrap_or_default(),
        Attribute::L7 => row.l7.map(l7_name).unwrap_or_default(),
    }
}

/// A number formatter.
type Fmt = fn(u64) -> String;

/// One counter column of the table and CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterCol {
    /// Packets received (dip → sip).
    PktsIn,
    /// Packets sent (sip → dip).
    PktsOut,
    /// Packets in both directions.
    PktsSum,
    /// Share of the packet total, for the direction shown.
    PktsPct,
    /// Bytes received.
    BytesIn,
    /// Bytes sent.
    BytesOut,
    /// Bytes in both directions.
    BytesSum,
    /// Share of the byte total, for the direction shown.
    BytesPct,
}

impl CounterCol {
    /// The counter columns shown for `dir`, in order.
    pub fn for_direction(dir: godb::query::Direction) -> &'static [CounterCol] {
        use godb::query::Direction as D;
        use CounterCol as C;
        match dir {
            D::Both => &[
                C::PktsIn,
                C::PktsOut,
                C::PktsPct,
                C::BytesIn,
                C::BytesOut,
                C::BytesPct,
            ],
            D::In => &[C::PktsIn, C::PktsPct, C::BytesIn, C::BytesPct],
            D::Out => &[C::PktsOut, C::PktsPct, C::BytesOut, C::BytesPct],
            D::Sum => &[C::PktsSum, C::PktsPct, C::BytesSum, C::BytesPct],
        }
    }

    /// Header for the text table (two lines) and CSV (one word).
    pub fn header(self) -> (&'static str, &'static str) {
        match self {
            CounterCol::PktsIn => ("packets\nin", "packets_in"),
            CounterCol::PktsOut => ("packets\nout", "packets_out"),
            CounterCol::PktsSum => ("packets\nin+out", "packets"),
            CounterCol::BytesIn => ("bytes\nin", "bytes_in"),
            CounterCol::BytesOut => ("bytes\nout", "bytes_out"),
            CounterCol::BytesSum => ("bytes\nin+out", "bytes"),
            CounterCol::PktsPct => ("\n%", "packets_percent"),
            CounterCol::BytesPct => ("\n%", "bytes_percent"),
        }
    }

    /// The value of the column for counters `c`, with `totals` for percentages;
    /// `human` selects units (`1.20 MB`) over plain numbers.
    pub fn value(
        self,
        dir: godb::query::Direction,
        c: &godb::Counters,
        totals: &godb::Counters,
        human: bool,
    ) -> String {
        let (count, size): (Fmt, Fmt) = if human {
            (units::count, units::bytes)
        } else {
            (|v| v.to_string(), |v| v.to_string())
        };
        match self {
            CounterCol::PktsIn => count(c.pkts_rcvd),
            CounterCol::PktsOut => count(c.pkts_sent),
            CounterCol::PktsSum => count(c.packets()),
            CounterCol::BytesIn => size(c.bytes_rcvd),
            CounterCol::BytesOut => size(c.bytes_sent),
            CounterCol::BytesSum => size(c.bytes()),
            CounterCol::PktsPct => units::percent(dir.pick(c).1, dir.pick(totals).1),
            CounterCol::BytesPct => units::percent(dir.pick(c).0, dir.pick(totals).0),
        }
    }
}
