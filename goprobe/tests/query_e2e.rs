//! End to end from capture to query: real captures from `../shared/pcaps` replayed
//! through goprobe's replay into a database, queried with godb's query engine (the one
//! goquery runs) and compared pair by pair with the independent oracle
//! `../shared/oracle/flowtruth.py`. When the goquery binary of the same build exists
//! (`cargo build -p goquery`, or any workspace build), its JSON output is checked
//! against the same figures.
//!
//! It lives here, not in goquery's tests, because goquery must not depend on capture
//! code, not even as a dev-dependency. Skips cleanly without `../shared`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use godb::query::{run, Statement};
use godb::Database;
use serde_json::Value;

/// (lower address, higher address, protocol) → (packets, bytes), both directions.
type Pairs = BTreeMap<(IpAddr, IpAddr, u64), (u64, u64)>;

fn add(p: &mut Pairs, a: IpAddr, b: IpAddr, proto: u64, packets: u64, bytes: u64) {
    let e = p.entry((a.min(b), a.max(b), proto)).or_default();
    e.0 += packets;
    e.1 += bytes;
}

/// The goquery binary next to this test's own build, if it was built.
fn goquery_bin() -> Option<PathBuf> {
    // target/<profile>/deps/query_e2e-<hash>  →  target/<profile>/goquery
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("goquery");
    bin.is_file().then_some(bin)
}

#[test]
fn replayed_captures_match_the_oracle_through_the_query_engine() {
    let shared = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"));
    let pcaps = shared.join("pcaps/chrissanders");
    if !pcaps.is_dir() {
        eprintln!("note: {} absent, skipping", pcaps.display());
        return;
    }
    let files: Vec<PathBuf> = [
        "http_google.pcapng",
        "dns_query_response.pcapng",
        "http_ip4and6.pcapng",
        "icmp_echo.pcapng",
        "synscan.pcapng",
        "tcp_handshake.pcapng",
        "udp_dnsrequest.pcapng",
    ]
    .iter()
    .map(|f| pcaps.join(f))
    .filter(|p| p.is_file())
    .collect();
    let oracle = match Command::new("python3")
        .arg(shared.join("oracle/flowtruth.py"))
        .args(&files)
        .output()
    {
        Ok(o) if o.status.success() => o,
        other => {
            eprintln!("note: oracle not runnable ({other:?}), skipping");
            return;
        }
    };
    let mut want = Pairs::new();
    let truth: Value = serde_json::from_slice(&oracle.stdout).unwrap();
    for p in truth["pairs"].as_array().unwrap() {
        let a: IpAddr = p["a"].as_str().unwrap().parse().unwrap();
        let b: IpAddr = p["b"].as_str().unwrap().parse().unwrap();
        let n = |k: &str| p[k].as_u64().unwrap();
        add(&mut want, a, b, n("proto"), n("packets"), n("bytes"));
    }
    assert!(!want.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let summary = goprobe::replay::replay(&path, "replay", &files).unwrap();
    assert!(summary.packets > 0);
    let db = Database::open(&path).unwrap();

    let mut stmt = Statement::new("sip,dip,proto", 0, 4_000_000_000).unwrap();
    stmt.limit = 0;
    let r = run(&db, &stmt).unwrap();
    assert!(r.skipped.is_empty() && r.problems.is_empty());
    let mut got = Pairs::new();
    for row in &r.rows {
        let (Some(a), Some(b), Some(p)) = (row.sip, row.dip, row.proto) else {
            panic!("row without attributes: {row:?}");
        };
        let c = &row.counters;
        add(&mut got, a, b, u64::from(p), c.packets(), c.bytes());
    }
    assert_eq!(got, want);
    let packets: u64 = want.values().map(|p| p.0).sum();
    assert_eq!(r.totals.packets(), packets);
    // Other groupings see the same totals.
    for q in ["talk_conv", "apps_port", "apps_dpi", "raw"] {
        let mut s = Statement::new(q, 0, 4_000_000_000).unwrap();
        s.limit = 3;
        assert_eq!(run(&db, &s).unwrap().totals, r.totals, "{q}");
    }

    // The goquery binary over the same database, when it was built.
    let Some(bin) = goquery_bin() else {
        eprintln!("note: goquery binary not built (cargo build -p goquery); CLI part skipped");
        return;
    };
    let out = Command::new(&bin)
        .env("TZ", "UTC")
        .env_remove("GOPROBE_DB")
        .env("GOPROBE_CONFIG", "")
        .arg("-d")
        .arg(&path)
        .args(["sip,dip,proto", "-n", "0", "-e", "json", "-f", "0"])
        .args(["-l", "4000000000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut cli = Pairs::new();
    for row in v["rows"].as_array().unwrap() {
        let at = &row["attributes"];
        let a: IpAddr = at["sip"].as_str().unwrap().parse().unwrap();
        let b: IpAddr = at["dip"].as_str().unwrap().parse().unwrap();
        let c = &row["counters"];
        let n = |k: &str| c[k].as_u64().unwrap();
        let proto = at["proto"].as_u64().unwrap();
        add(&mut cli, a, b, proto, n("pr") + n("ps"), n("br") + n("bs"));
    }
    assert_eq!(cli, want);
    // One interface, none named: no iface label.
    assert!(v["rows"][0].get("labels").is_none());
}
