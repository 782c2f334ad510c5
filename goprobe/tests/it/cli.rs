//! Command-line and configuration tests of the goprobe binary: help texts, usage
//! errors, `check`, and `clean`.

use std::net::Ipv4Addr;

use crate::common::*;

#[test]
fn help_documents_every_option() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for opt in [
        "--config",
        "--db",
        "--pidfile",
        "--syslog",
        "--log-level",
        "IFACE",
        "replay",
        "clean",
        "check",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}:\n{text}");
    }
    let o = run(&["replay", "--help"]);
    let text = stdout(&o);
    for opt in ["--db", "--iface", "FILE"] {
        assert!(text.contains(opt), "replay --help lacks {opt}:\n{text}");
    }
    let o = run(&["clean", "--help"]);
    let text = stdout(&o);
    for opt in ["--older-than", "--config", "--db", "--iface"] {
        assert!(text.contains(opt), "clean --help lacks {opt}:\n{text}");
    }
}

#[test]
fn usage_errors_exit_2_and_other_errors_exit_1() {
    let o = run(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["replay", "-d", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Valid syntax, but no database path anywhere.
    let o = run(&["eth0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("-d DB"), "{}", stderr(&o));
    let o = run(&["-d", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no interface"), "{}", stderr(&o));
}

/// An error names the file and the operating system's (or libpcap's) reason once:
/// the reason is in the message, not also printed again as the error's cause.
#[test]
fn file_errors_say_their_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let o = run(&["check", "-c", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot read config file"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let db = dir.path().join("db");
    let pcap = dir.path().join("missing.pcap");
    let o = run(&[
        "replay",
        "-d",
        db.to_str().unwrap(),
        "--iface",
        "x",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot read as pcap or pcapng"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // A pidfile in a folder that does not exist.
    let pid = dir.path().join("no/such/folder/goprobe.pid");
    let o = run(&[
        "-d",
        db.to_str().unwrap(),
        "--pidfile",
        pid.to_str().unwrap(),
        "lo",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot write pidfile"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn check_reports_unknown_keys_and_bad_filters() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        "db_path = \"/tmp/db\"\n[interfaces.eth0]\nsnap_len = 100\n",
    )
    .unwrap();
    let o = run(&["check", "-c", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("snap_len"), "{}", stderr(&o));

    std::fs::write(
        &conf,
        "db_path = \"/tmp/db\"\n[interfaces.eth0]\nbpf_filter = \"tcp prt 80\"\n",
    )
    .unwrap();
    let o = run(&["check", "-c", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("tcp prt 80"), "{}", stderr(&o));

    std::fs::write(
        &conf,
        "db_path = \"/tmp/db\"\n[interfaces.eth0]\nbpf_filter = \"tcp port 80\"\n",
    )
    .unwrap();
    let o = run(&["check", "-c", conf.to_str().unwrap(), "eth1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("eth0, eth1"), "{}", stdout(&o));

    let o = run(&[
        "check",
        "-c",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}

#[test]
fn example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/goprobe.toml");
    let o = run(&["check", "-c", example]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(example).unwrap();
    let config = goprobe::config::Config::parse(&text, std::path::Path::new(example)).unwrap();
    // The example documents every key with its default value.
    assert_eq!(
        config.interfaces["eth0"],
        goprobe::config::InterfaceConfig::default()
    );
}

#[test]
fn clean_deletes_old_days_by_flag_and_by_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Two packets in 1970 and one in 2000: three days.
    let mut pcap = Vec::new();
    pcap_header(&mut pcap, 1);
    let frame = eth_ipv4(
        [2; 6],
        [4; 6],
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        17,
        1000,
        53,
        0,
        60,
    );
    for ts in [1000, 90_000, 946_684_800] {
        pcap_record(&mut pcap, ts, &frame);
    }
    let file = dir.path().join("old.pcap");
    std::fs::write(&file, &pcap).unwrap();
    let dbs = db.to_str().unwrap();
    let o = run(&[
        "replay",
        "-d",
        dbs,
        "--iface",
        "old",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_blocks(&db, "old").len(), 3);

    // retention_days = 0 in the config: nothing is deleted.
    let conf = dir.path().join("c.toml");
    std::fs::write(&conf, format!("db_path = {dbs:?}\nretention_days = 0\n")).unwrap();
    let o = run(&["clean", "-c", conf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_blocks(&db, "old").len(), 3);

    // --older-than: 14600 days (40 years) before today lies between 1970 and 2000
    // (until 2039), so the two 1970 days go and the 2000 day stays.
    let o = run(&[
        "clean",
        "-d",
        dbs,
        "--older-than",
        "14600",
        "--iface",
        "old",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("deleted 2 day"), "{}", stdout(&o));
    let left = read_blocks(&db, "old");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].timestamp, 946_685_100);

    // retention_days from the config.
    std::fs::write(&conf, format!("db_path = {dbs:?}\nretention_days = 1\n")).unwrap();
    let o = run(&["clean", "-c", conf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read_blocks(&db, "old").is_empty());
}

#[test]
fn syslog_flag_keeps_log_lines_off_stderr_but_errors_are_still_printed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // No such interface: goprobe cannot open any and fails at start-up.
    let o = run(&["--syslog", "-d", db.to_str().unwrap(), "gp-no-such-if0"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("goprobe: no interface could be opened"),
        "{err}"
    );
    assert!(err.contains("gp-no-such-if0"), "{err}");
    // Log lines (UTC time stamp first) went to syslog, not here.
    assert!(!err.contains(" ERROR "), "{err}");
}

#[test]
fn flags_win_over_the_file_and_interfaces_come_from_both() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        "db_path = \"/from/file\"\n[interfaces.eth0]\n[interfaces.eth1]\nenabled = false\n",
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    let o = run(&["check", "-c", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("database /from/file, interfaces: eth0\n"),
        "{}",
        stdout(&o)
    );
    // -d replaces db_path; eth1 named on the command line is enabled despite the file.
    let o = run(&["check", "-c", c, "-d", "/from/flag", "eth1", "eth2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("database /from/flag, interfaces: eth0, eth1, eth2\n"),
        "{}",
        stdout(&o)
    );
}
