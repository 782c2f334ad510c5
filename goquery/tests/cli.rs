//! End-to-end tests of the goquery binary over databases written through godb from
//! known flows: every query type and option, JSON and CSV parsed back, the text
//! table's totals and footer, `list`, and every bad-input case with its exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use godb::{Block, CaptureStats, Counters, Database, FlowKey, FlowRow};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_goquery");
/// A multiple of 300 some days in the past relative to any plausible test run is not
/// needed: every test passes explicit -f/-l around T0.
const T0: i64 = 1_700_000_100;

fn flow(sip: &str, dip: &str, proto: u8, dport: u16, l7: u16, n: u64) -> FlowRow {
    FlowRow {
        key: FlowKey {
            sip: sip.parse().unwrap(),
            dip: dip.parse().unwrap(),
            proto,
            dport,
            l7,
        },
        counters: Counters {
            bytes_rcvd: n * 1000,
            bytes_sent: n * 100,
            pkts_rcvd: n * 2,
            pkts_sent: n,
        },
    }
}

fn dns_id() -> u16 {
    godb::l7::id("dns").unwrap_or(0)
}

/// eth0: 3 blocks; eth1: 1 block. Known totals per flow: n summed over blocks.
fn make_db(dir: &Path) -> PathBuf {
    let path = dir.join("db");
    let db = Database::create(&path).unwrap();
    let mut w = db.writer("eth0").unwrap();
    for b in 0..3i64 {
        let k = b as u64 + 1;
        w.append(&Block {
            timestamp: T0 + 300 * b,
            stats: CaptureStats {
                packets_received: 1000,
                packets_dropped: 2,
                ..Default::default()
            },
            rows: vec![
                flow("10.0.0.1", "192.0.2.1", 6, 443, 0, 10 * k),
                flow("10.0.0.2", "192.0.2.1", 6, 443, 0, 5),
                flow("10.0.0.1", "192.0.2.53", 17, 53, dns_id(), 1),
                flow("2001:db8::1", "2001:db8::2", 6, 22, 0, 3),
            ],
        })
        .unwrap();
    }
    let mut w = db.writer("eth1").unwrap();
    w.append(&Block {
        timestamp: T0,
        stats: CaptureStats::default(),
        rows: vec![flow("172.16.0.1", "192.0.2.1", 6, 443, 0, 7)],
    })
    .unwrap();
    path
}

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = make_db(dir.path());
    Env { _dir: dir, db }
}

fn goquery(db: &Path, args: &[&str]) -> Output {
    let first = (T0 - 3600).to_string();
    let last = (T0 + 3600).to_string();
    let mut cmd = Command::new(BIN);
    cmd.env("TZ", "UTC")
        .env_remove("GOPROBE_DB")
        .env("GOPROBE_CONFIG", "")
        .arg("-d")
        .arg(db);
    if !args.contains(&"-f") {
        cmd.args(["-f", &first]);
    }
    if !args.contains(&"-l") {
        cmd.args(["-l", &last]);
    }
    cmd.args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(db: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-e", "json"]);
    serde_json::from_str(&ok(&goquery(db, &a))).unwrap()
}

fn code_and_err(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn talk_src_json_shape_and_values() {
    let e = env();
    let v = json(&e.db, &["talk_src", "-i", "eth0"]);
    let rows = v["rows"].as_array().unwrap();
    // 10.0.0.1: 10+20+30 (https) + 3 (dns) = 63 units; 10.0.0.2: 15; 2001:db8::1: 9.
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["attributes"]["sip"], "10.0.0.1");
    assert_eq!(rows[0]["counters"]["br"], 63_000);
    assert_eq!(rows[0]["counters"]["bs"], 6_300);
    assert_eq!(rows[0]["counters"]["pr"], 126);
    assert_eq!(rows[0]["counters"]["ps"], 63);
    assert_eq!(rows[1]["attributes"]["sip"], "10.0.0.2");
    assert_eq!(rows[2]["attributes"]["sip"], "2001:db8::1");
    // Only the queried attributes, no labels for a single interface.
    assert_eq!(rows[0]["attributes"].as_object().unwrap().len(), 1);
    assert!(rows[0].get("labels").is_none());
    let s = &v["summary"];
    assert_eq!(s["totals"]["br"], 87_000);
    assert_eq!(s["hits"]["total"], 3);
    assert_eq!(s["hits"]["displayed"], 3);
    assert_eq!(s["interfaces"], serde_json::json!(["eth0"]));
    assert_eq!(s["skipped_blocks"]["count"], 0);
    assert!(s["time_first"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn every_query_type_runs() {
    let e = env();
    let cases: &[(&str, &[&str])] = &[
        ("talk_src", &["sip"]),
        ("talk_dst", &["dip"]),
        ("talk_conv", &["sip", "dip"]),
        ("apps_port", &["dport", "proto"]),
        ("apps_dpi", &["proto", "l7"]),
        ("agg_talk_port", &["sip", "dip", "dport", "proto"]),
        ("raw", &["sip", "dip", "dport", "proto", "l7"]),
        ("src,dst,port,protocol", &["sip", "dip", "dport", "proto"]),
    ];
    for (q, attrs) in cases {
        let v = json(&e.db, &[q, "-i", "eth0"]);
        let rows = v["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{q}");
        let got: Vec<&String> = rows[0]["attributes"].as_object().unwrap().keys().collect();
        let mut want: Vec<&str> = attrs.to_vec();
        want.sort_unstable();
        let mut got: Vec<&str> = got.iter().map(|s| s.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, want, "{q}");
    }
    // apps_port: numbers for proto and dport.
    let v = json(&e.db, &["apps_port", "-i", "eth0"]);
    assert_eq!(v["rows"][0]["attributes"]["dport"], 443);
    assert_eq!(v["rows"][0]["attributes"]["proto"], 6);
    // raw: time and iface labels, one row per block and flow.
    let v = json(&e.db, &["raw", "-i", "eth0"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 12);
    assert_eq!(v["rows"][0]["labels"]["iface"], "eth0");
    assert_eq!(v["rows"][0]["labels"]["time"], "2023-11-14T22:15:00Z");
    // apps_dpi: l7 as a name.
    let v = json(&e.db, &["apps_dpi", "-i", "eth0", "-c", "dport = 53"]);
    let want = godb::l7::name(dns_id()).unwrap();
    assert_eq!(v["rows"][0]["attributes"]["l7"], want);
}

#[test]
fn several_interfaces_add_the_iface_label() {
    let e = env();
    for ifaces in ["eth0,eth1", "any", ""] {
        let args: &[&str] = if ifaces.is_empty() {
            &["talk_dst"]
        } else {
            &["talk_dst", "-i", ifaces]
        };
        let v = json(&e.db, args);
        let rows = v["rows"].as_array().unwrap();
        assert!(
            rows.iter().all(|r| r["labels"]["iface"].is_string()),
            "{ifaces}"
        );
        assert!(rows.iter().any(|r| r["labels"]["iface"] == "eth1"));
        assert_eq!(
            v["summary"]["interfaces"],
            serde_json::json!(["eth0", "eth1"])
        );
    }
}

#[test]
fn conditions_limit_sort_and_direction() {
    let e = env();
    let v = json(
        &e.db,
        &["talk_conv", "-c", "dport = 443 and snet = 10.0.0.0/8"],
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    let v = json(
        &e.db,
        &["talk_src", "-i", "eth0", "-c", "not (proto = tcp)"],
    );
    assert_eq!(v["rows"][0]["attributes"]["sip"], "10.0.0.1");
    assert_eq!(v["rows"][0]["counters"]["br"], 3_000);
    let v = json(&e.db, &["talk_src", "-i", "eth0", "-n", "1"]);
    assert_eq!(v["summary"]["hits"]["displayed"], 1);
    assert_eq!(v["summary"]["hits"]["total"], 3);
    let v = json(&e.db, &["talk_src", "-i", "eth0", "-a"]);
    assert_eq!(v["rows"][0]["attributes"]["sip"], "2001:db8::1");
    let v = json(
        &e.db,
        &["talk_src", "-i", "eth0", "-s", "packets", "-a", "-n", "0"],
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    for dir in ["--in", "--out", "--sum"] {
        let v = json(&e.db, &["talk_src", "-i", "eth0", dir]);
        assert_eq!(v["query"]["direction"], &dir[2..]);
    }
    // Time queries are ordered by time.
    let v = json(&e.db, &["time", "-i", "eth0"]);
    let times: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["labels"]["time"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted);
    assert_eq!(times.len(), 3);
}

#[test]
fn time_range_forms() {
    let e = env();
    // Only the second block of eth0 (T0+300).
    let f = (T0 + 1).to_string();
    let l = (T0 + 300).to_string();
    let v = json(&e.db, &["talk_src", "-i", "eth0", "-f", &f, "-l", &l]);
    assert_eq!(v["rows"][0]["counters"]["br"], 21_000);
    let v = json(
        &e.db,
        &[
            "talk_src",
            "-i",
            "eth0",
            "-f",
            "2023-11-14 22:15:01",
            "-l",
            "2023-11-14T22:20:00Z",
        ],
    );
    assert_eq!(v["rows"][0]["counters"]["br"], 21_000);
    // Relative times: the data is years old, so the last hour has none.
    let o = goquery(&e.db, &["talk_src", "-f", "-1h", "-l", "now"]);
    assert_eq!(code_and_err(&o).0, 4);
    let o = goquery(&e.db, &["talk_src", "-f", "-2d4h", "-l", "now"]);
    assert_eq!(code_and_err(&o).0, 4);
}

#[test]
fn text_table_has_totals_and_footer() {
    let e = env();
    let out = ok(&goquery(
        &e.db,
        &["talk_src", "-i", "eth0", "-c", "dport = 443"],
    ));
    assert!(out.contains("10.0.0.1"), "{out}");
    assert!(out.contains("Totals:"), "{out}");
    assert!(out.contains("58.59 kB"), "{out}"); // 60000 bytes received by 10.0.0.1
    assert!(out.contains("Timespan"), "{out}");
    assert!(out.contains("Interface   : eth0"), "{out}");
    assert!(out.contains("Sorted by   : accumulated data volume (sent and received)"));
    assert!(out.contains("Conditions  : dport = 443"), "{out}");
    assert!(out.contains("displayed top 2 hits out of 2"), "{out}");
    assert!(out.contains("%"), "{out}");
}

#[test]
fn csv_parses_back() {
    let e = env();
    let out = ok(&goquery(
        &e.db,
        &["apps_port", "-i", "eth0", "-e", "csv", "--sum"],
    ));
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        lines[0],
        [
            "dport",
            "proto",
            "packets",
            "packets_percent",
            "bytes",
            "bytes_percent"
        ]
    );
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1][..3], ["443", "6", &((60 + 15) * 3).to_string()]);
    let bytes: u64 = lines[1..]
        .iter()
        .map(|l| l[4].parse::<u64>().unwrap())
        .sum();
    assert_eq!(bytes, 87 * 1100);
}

#[test]
fn list_reads_metadata() {
    let e = env();
    let out = ok(&goquery(&e.db, &["list", "-e", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    let ifaces = v["interfaces"].as_array().unwrap();
    assert_eq!(ifaces.len(), 2);
    assert_eq!(ifaces[0]["iface"], "eth0");
    assert_eq!(ifaces[0]["flows"], 12);
    assert_eq!(ifaces[0]["drops"], 6);
    assert_eq!(ifaces[0]["bytes"], 87 * 1100);
    assert_eq!(ifaces[1]["packets"], 21);
    let out = ok(&goquery(&e.db, &["list"]));
    assert!(
        out.contains("eth0") && out.contains("eth1") && out.contains("Totals:"),
        "{out}"
    );
}

#[test]
fn bad_input_exit_codes() {
    let e = env();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["talk_foo"], 2, "unknown attribute 'talk_foo'"),
        (&["sip,dprt"], 2, "unknown attribute 'dprt'"),
        (
            &["talk_src", "-c", "dport = 80 & dprt = 1"],
            2,
            "unknown attribute 'dprt' at position 13",
        ),
        (&["talk_src", "-c", "(dport = 80"], 2, "never closed"),
        (&["talk_src", "-e", "xml"], 2, "unknown output format"),
        (&["talk_src", "-s", "flows"], 2, "unknown sort order"),
        (&["talk_src", "-f", "yesterday"], 2, "--first"),
        (&["talk_src", "-i", "wlan0"], 3, "unknown interface 'wlan0'"),
        (&["talk_src", "--bogus"], 2, "--bogus"),
        (&[], 2, "no query type"),
    ];
    for (args, code, msg) in cases {
        let (c, err) = code_and_err(&goquery(&e.db, args));
        assert_eq!(c, *code, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // The caret points at the offending token.
    let (_, err) = code_and_err(&goquery(
        &e.db,
        &["talk_src", "-c", "dport = 80 & dprt = 1"],
    ));
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "{err}");
    let input = lines[1];
    let caret = lines[2];
    assert_eq!(caret.find('^'), input.find("dprt"), "{err}");
    // Reversed range.
    let (c, err) = code_and_err(&goquery(&e.db, &["talk_src", "-f", "2000", "-l", "1000"]));
    assert_eq!(c, 2, "{err}");
    // Missing and empty databases.
    let missing = e.db.join("nope");
    let (c, err) = code_and_err(&goquery(&missing, &["talk_src"]));
    assert_eq!(c, 3, "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (c, err) = code_and_err(&goquery(empty.path(), &["talk_src"]));
    assert_eq!(c, 3, "{err}");
    assert!(err.contains("empty"), "{err}");
    // Memory limit.
    let (c, err) = code_and_err(&goquery(&e.db, &["raw", "--max-mem", "0"]));
    assert_eq!(c, 2, "{err}");
}

#[test]
fn corrupted_blocks_are_reported() {
    let e = env();
    // Damage eth0's dport column in the middle.
    let db = Database::open(&e.db).unwrap();
    let plan = db
        .plan(&godb::ScanRequest {
            ifaces: vec!["eth0".into()],
            first: T0,
            last: T0,
        })
        .unwrap();
    let path = plan[0].dir().join("dport.col");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let o = goquery(&e.db, &["apps_port", "-i", "eth0", "-e", "json"]);
    let (c, err) = code_and_err(&o);
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("skipped corrupted block"), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = v["summary"]["skipped_blocks"]["count"].as_u64().unwrap();
    assert!(n >= 1);
    let o = goquery(&e.db, &["apps_port", "-i", "eth0"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("corrupted block"), "{out}");
    // talk_src does not read dport: unaffected.
    ok(&goquery(&e.db, &["talk_src", "-i", "eth0"]));
}

#[test]
fn broken_pipe_exits_zero() {
    use std::io::Read;
    use std::process::Stdio;
    let e = env();
    let mut child = Command::new(BIN)
        .env("TZ", "UTC")
        .args(["-d"])
        .arg(&e.db)
        .args(["raw", "-n", "0", "-f", "0", "-l", "2000000000", "-e", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end of stdout at once.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn db_from_environment_and_config() {
    let e = env();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.env("TZ", "UTC")
            .env_remove("GOPROBE_DB")
            .env_remove("GOPROBE_CONFIG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.args(["list", "-e", "json"]).output().unwrap()
    };
    let db = e.db.to_str().unwrap();
    ok(&run(&[("GOPROBE_DB", db)]));
    let cfg = e.db.parent().unwrap().join("goprobe.toml");
    std::fs::write(&cfg, format!("db_path = \"{db}\"\n[interfaces.eth0]\n")).unwrap();
    ok(&run(&[("GOPROBE_CONFIG", cfg.to_str().unwrap())]));
}

#[test]
fn direction_flags_choose_the_counter_columns() {
    let e = env();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[],
            &[
                "packets_in",
                "packets_out",
                "packets_percent",
                "bytes_in",
                "bytes_out",
                "bytes_percent",
            ],
        ),
        (
            &["--in"],
            &["packets_in", "packets_percent", "bytes_in", "bytes_percent"],
        ),
        (
            &["--out"],
            &[
                "packets_out",
                "packets_percent",
                "bytes_out",
                "bytes_percent",
            ],
        ),
        (
            &["--sum"],
            &["packets", "packets_percent", "bytes", "bytes_percent"],
        ),
        (
            &["--in", "--out"],
            &[
                "packets_in",
                "packets_out",
                "packets_percent",
                "bytes_in",
                "bytes_out",
                "bytes_percent",
            ],
        ),
    ];
    for (flags, cols) in cases {
        let mut args = vec!["talk_src", "-i", "eth0", "-e", "csv", "-n", "1"];
        args.extend_from_slice(flags);
        let out = ok(&goquery(&e.db, &args));
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(&header[1..], *cols, "{flags:?}");
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(row[0], "10.0.0.1");
        // 10.0.0.1: 63 units of n; in = 2n packets / 1000n bytes, out = n / 100n.
        let want: &[&str] = match flags.first().copied() {
            Some("--in") if flags.len() == 1 => &["126", "72.41", "63000", "72.41"],
            Some("--out") => &["63", "72.41", "6300", "72.41"],
            Some("--sum") => &["189", "72.41", "69300", "72.41"],
            _ => &["126", "63", "72.41", "63000", "6300", "72.41"],
        };
        assert_eq!(&row[1..], want, "{flags:?}");
    }
    assert!(!goquery(&e.db, &["talk_src", "--in", "--sum"])
        .status
        .success());
}

#[test]
fn threads_and_list_flag() {
    let e = env();
    let a = json(&e.db, &["agg_talk_port", "--threads", "1"]);
    let b = json(&e.db, &["agg_talk_port", "--threads", "3"]);
    assert_eq!(a["rows"], b["rows"]);
    let out = ok(&goquery(&e.db, &["--list", "-e", "csv"]));
    assert!(out.starts_with("iface,time_first,time_last,days,flows,packets,bytes,drops\n"));
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn resolve_names_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let mut w = db.writer("lo").unwrap();
    w.append(&Block {
        timestamp: T0,
        stats: CaptureStats::default(),
        rows: vec![flow("127.0.0.1", "127.0.0.1", 6, 631, 0, 1)],
    })
    .unwrap();
    let want = goquery::resolve::lookup("127.0.0.1".parse().unwrap());
    let out = ok(&goquery(
        &path,
        &["talk_conv", "-r", "--resolve-timeout", "2"],
    ));
    match want {
        Some(name) => assert!(out.contains(&name), "{name}: {out}"),
        None => assert!(out.contains("127.0.0.1"), "{out}"),
    }
    // JSON keeps the addresses.
    let v = json(&path, &["talk_conv", "-r"]);
    assert_eq!(v["rows"][0]["attributes"]["sip"], "127.0.0.1");
    let (c, _) = code_and_err(&goquery(
        &path,
        &["talk_conv", "-r", "--resolve-timeout", "0"],
    ));
    assert_eq!(c, 2);
}

#[test]
fn memory_limit_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let mut w = db.writer("eth0").unwrap();
    let rows = (0..40_000u32)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            flow(&ip, "192.0.2.1", 6, 443, 0, 1)
        })
        .collect();
    w.append(&Block {
        timestamp: T0,
        stats: CaptureStats::default(),
        rows,
    })
    .unwrap();
    let (c, err) = code_and_err(&goquery(&path, &["talk_src", "--max-mem", "1"]));
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("memory limit of 1 MiB"), "{err}");
    let v = json(&path, &["talk_src", "--max-mem", "64", "-n", "5"]);
    assert_eq!(v["summary"]["hits"]["total"], 40_000);
}

/// Regression: the default window ends "now"; the interval in progress, stamped with
/// its end (here now + 200 s), must be in it (it printed "no data" before).
#[test]
fn default_window_includes_the_interval_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut w = db.writer("eth0").unwrap();
    w.append(&Block {
        timestamp: now + 200,
        stats: CaptureStats::default(),
        rows: vec![flow("10.9.8.7", "192.0.2.1", 6, 443, 0, 4)],
    })
    .unwrap();
    for q in ["talk_src", "raw"] {
        let o = Command::new(BIN)
            .env("TZ", "UTC")
            .env_remove("GOPROBE_DB")
            .env("GOPROBE_CONFIG", "")
            .args(["-e", "json", q, "-d"])
            .arg(&path)
            .output()
            .unwrap();
        let v: Value = serde_json::from_str(&ok(&o)).unwrap();
        assert_eq!(v["rows"][0]["attributes"]["sip"], "10.9.8.7", "{q}");
        assert_eq!(v["rows"][0]["counters"]["br"], 4000, "{q}");
    }
}

/// `-c "l7 = dns?"` selects the port guesses, `l7 = dns` the payload detections.
#[test]
fn l7_port_guess_condition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let guess = godb::l7::port_guess(dns_id());
    let mut w = db.writer("eth0").unwrap();
    w.append(&Block {
        timestamp: T0,
        stats: CaptureStats::default(),
        rows: vec![
            flow("10.0.0.1", "192.0.2.53", 17, 53, dns_id(), 2),
            flow("10.0.0.2", "192.0.2.53", 17, 53, guess, 3),
        ],
    })
    .unwrap();
    for (cond, sip, l7) in [
        ("l7 = dns?", "10.0.0.2", "dns?"),
        ("l7=dns?&dport=53", "10.0.0.2", "dns?"),
        ("l7 = dns", "10.0.0.1", "dns"),
    ] {
        let v = json(&path, &["sip,l7", "-c", cond]);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{cond}: {v}");
        assert_eq!(rows[0]["attributes"]["sip"], sip, "{cond}");
        assert_eq!(rows[0]["attributes"]["l7"], l7, "{cond}");
    }
}

/// Faults in the database folder (issue 8): a missing column file, an unreadable day
/// (a folder where day.meta belongs; tests may run as root, so no chmod), garbage
/// metadata, foreign files. goquery warns on stderr, counts them in the footer and
/// the JSON summary, exits 1 and shows the rest; `list` too. Never a panic.
#[test]
fn database_folder_faults_are_reported_and_the_rest_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let mut w = db.writer("eth0").unwrap();
    for day in 0..3i64 {
        w.append(&Block {
            timestamp: T0 + 86_400 * day,
            stats: CaptureStats::default(),
            rows: vec![flow("10.0.0.1", "192.0.2.1", 6, 443, 0, 1 + day as u64)],
        })
        .unwrap();
    }
    let day_dir = |day: i64| {
        db.plan(&godb::ScanRequest {
            ifaces: vec!["eth0".into()],
            first: T0 + 86_400 * day,
            last: T0 + 86_400 * day,
        })
        .unwrap()[0]
            .dir()
            .to_path_buf()
    };
    let days: Vec<_> = (0..3).map(day_dir).collect();
    std::fs::remove_file(days[0].join("dport.col")).unwrap();
    std::fs::remove_file(days[1].join("day.meta")).unwrap();
    std::fs::create_dir(days[1].join("day.meta")).unwrap();
    std::fs::write(path.join("stray.txt"), b"x").unwrap();
    std::fs::write(days[2].join("foreign.bin"), b"x").unwrap();
    let window = ["-f", "2023-11-13", "-l", "2023-11-18"];

    let mut a = vec!["apps_port", "-e", "json"];
    a.extend(window);
    let o = goquery(&path, &a);
    let (c, err) = code_and_err(&o);
    assert_eq!(c, 1, "{err}");
    for needle in ["dport.col", "day.meta", "stray.txt", "foreign.bin"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["problems"]["count"], 4, "{v}");
    assert_eq!(v["summary"]["problems"]["blocks_left_out"], 1, "{v}");
    // Only day 2 is left for apps_port: 3 units of 1000 bytes.
    assert_eq!(v["summary"]["totals"]["br"], 3000);

    let mut a = vec!["talk_src"];
    a.extend(window);
    let o = goquery(&path, &a);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Problems    : 4 in the database folder"),
        "{out}"
    );

    let o = goquery(&path, &["list", "-e", "json"]);
    let (c, err) = code_and_err(&o);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("day.meta") && err.contains("stray.txt"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["interfaces"][0]["days"], 2, "{v}");

    // Foreign entries alone: a warning, exit 0.
    std::fs::remove_dir(days[1].join("day.meta")).unwrap();
    let o = goquery(&path, &["list"]);
    let (c, err) = code_and_err(&o);
    assert!(c == 1 && err.contains("dport.col"), "{c} {err}");
    std::fs::write(days[0].join("dport.col"), b"").unwrap();
    let o = goquery(&path, &["list"]);
    let (c, err) = code_and_err(&o);
    assert_eq!(c, 0, "{err}");
    assert!(err.contains("stray.txt"), "{err}");
}
