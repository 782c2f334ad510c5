//! Human units for the text table: counts in steps of 1000 (`k`, `M`, `G`, `T`),
//! byte sizes in steps of 1024 (`B`, `kB`, `MB`, `GB`, `TB`), percentages with two
//! decimals.

/// `1234` → `1.23 k`; values under 1000 stay exact.
pub fn count(v: u64) -> String {
    scaled(v, 1000.0, &["", " k", " M", " G", " T", " P"])
}

/// `1536` → `1.50 kB`; values under 1024 are bytes.
pub fn bytes(v: u64) -> String {
    if v < 1024 {
        return format!("{v} B");
    }
    scaled(v, 1024.0, &[" B", " kB", " MB", " GB", " TB", " PB"])
}

fn scaled(v: u64, step: f64, units: &[&str]) -> String {
    // Precision loss of u64 → f64 only matters far beyond the displayed digits.
    #[allow(clippy::cast_precision_loss)]
    let mut x = v as f64;
    let mut i = 0;
    while x >= step && i + 1 < units.len() {
        x /= step;
        i += 1;
    }
    if i == 0 {
        format!("{v}{}", units[0])
    } else {
        format!("{x:.2}{}", units[i])
    }
}

/// `part` as a percentage of `total` with two decimals (`0.00` when total is 0).
pub fn percent(part: u64, total: u64) -> String {
    format!("{:.2}", ratio(part, total))
}

/// `part / total * 100` (0 when total is 0).
#[allow(clippy::cast_precision_loss)]
pub fn ratio(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes() {
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1.00 k");
        assert_eq!(count(1_234_567), "1.23 M");
        assert_eq!(count(5_000_000_000), "5.00 G");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 kB");
        assert_eq!(bytes(3 << 20), "3.00 MB");
        assert_eq!(bytes(5 << 30), "5.00 GB");
        assert_eq!(percent(1, 3), "33.33");
        assert_eq!(percent(5, 0), "0.00");
    }
}
