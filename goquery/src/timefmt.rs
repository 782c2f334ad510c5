//! Time arguments (`-f/--first`, `-l/--last`): epoch seconds, RFC 3339,
//! `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DD` (local time), `now`, and relative times
//! before now (`-1h`, `-7d`, `-2d4h`, `-90m`, `-1w`, `-30s`).

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};

/// Why a time argument could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError(pub String);

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read time '{}': use epoch seconds, RFC 3339 (2024-01-31T12:00:00Z), \
             'YYYY-MM-DD HH:MM[:SS]' or a relative time like -1h, -7d, -2d4h",
            self.0
        )
    }
}

impl std::error::Error for TimeError {}

/// Parses `text` relative to `now` (UTC seconds).
pub fn parse_time(text: &str, now: i64) -> Result<i64, TimeError> {
    let t = text.trim();
    let err = || TimeError(text.to_string());
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(rel) = t.strip_prefix('-') {
        if rel.bytes().any(|b| b.is_ascii_alphabetic()) {
            let secs = parse_duration(rel).ok_or_else(err)?;
            return now.checked_sub(secs).ok_or_else(err);
        }
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|_| err());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(t, fmt) {
            return local(ndt).ok_or_else(err);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).and_then(local).ok_or_else(err);
    }
    Err(err())
}

fn local(ndt: NaiveDateTime) -> Option<i64> {
    Local
        .from_local_datetime(&ndt)
        .earliest()
        .map(|d| d.timestamp())
}

/// Parses `2d4h`, `90m`, `1w`, `30s` into seconds. Every number needs a unit.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut num: Option<i64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(i64::from(d))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(num.take()?.checked_mul(unit)?)?;
    }
    if num.is_some() || total == 0 && text.is_empty() {
        return None;
    }
    Some(total)
}

/// Formats UTC seconds as local `YYYY-MM-DD HH:MM:SS`.
pub fn format_local(ts: i64) -> String {
    match Local.timestamp_opt(ts, 0).earliest() {
        Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ts.to_string(),
    }
}

/// Formats UTC seconds as RFC 3339 in UTC (`2024-01-31T12:00:00Z`).
pub fn format_rfc3339(ts: i64) -> String {
    match DateTime::from_timestamp(ts, 0) {
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => ts.to_string(),
    }
}

/// Formats a span of seconds as `1d2h3m4s` (leading zero units left out).
pub fn format_span(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h{m}m{s}s")
    } else if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn relative_times() {
        assert_eq!(parse_time("-1h", NOW), Ok(NOW - 3600));
        assert_eq!(parse_time("-7d", NOW), Ok(NOW - 7 * 86_400));
        assert_eq!(parse_time("-2d4h", NOW), Ok(NOW - 2 * 86_400 - 4 * 3600));
        assert_eq!(parse_time("-90m", NOW), Ok(NOW - 5400));
        assert_eq!(parse_time("-1w", NOW), Ok(NOW - 604_800));
        assert_eq!(parse_time("-30s", NOW), Ok(NOW - 30));
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert!(parse_time("-1x", NOW).is_err());
        assert!(parse_time("-h", NOW).is_err());
        assert!(parse_time("-2d4", NOW).is_err());
    }

    #[test]
    fn absolute_times() {
        assert_eq!(parse_time("1700000000", NOW), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z", NOW), Ok(1_700_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00", NOW),
            Ok(1_700_000_000)
        );
        // Local-time forms agree with chrono's own local conversion.
        let want = Local
            .with_ymd_and_hms(2023, 11, 14, 22, 13, 20)
            .earliest()
            .map(|d| d.timestamp());
        assert_eq!(parse_time("2023-11-14 22:13:20", NOW).ok(), want);
        let want = Local
            .with_ymd_and_hms(2023, 11, 14, 22, 13, 0)
            .earliest()
            .map(|d| d.timestamp());
        assert_eq!(parse_time("2023-11-14 22:13", NOW).ok(), want);
        assert!(parse_time("2023-11-14 25:00", NOW).is_err());
        assert!(parse_time("yesterday", NOW).is_err());
        assert!(parse_time("", NOW).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_span(86_400 + 3600 + 61), "1d1h1m1s");
        assert_eq!(format_span(59), "59s");
        assert_eq!(format_span(3600), "1h0m0s");
    }
}
