//! Civil time without a time-zone database (the contract is UTC only): dates and RFC 3339
//! timestamps, parsed and formatted by hand on the hot paths.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch (years 0-9999).
pub fn format_rfc3339_ms(ms: i64, out: &mut String) {
    // Written digit by digit: this runs once per simulated event, and `write!` costs 5x more.
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    let y = y.clamp(0, 9999) as u32;
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, h as u32);
    put(14, 2, mi as u32);
    put(17, 2, s as u32);
    put(20, 3, milli as u32);
    out.push_str(std::str::from_utf8(&b).expect("ASCII digits"));
}

/// Lower-case hex of `v`, `width` digits (the low ones), appended to `out`.
pub fn push_hex(out: &mut String, v: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..width).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xf) as usize] as char);
    }
}

/// `YYYY-MM-DD` for days since the epoch.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

pub(crate) fn parse_date_days(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !is_real_date(y, m, d) {
        return None;
    }
    i32::try_from(days_from_civil(y, m as u32, d as u32)).ok()
}

/// Whether `y-m-d` is a day of the Gregorian calendar: 2025-02-31 is not, and must not roll over
/// into March (which the day count would do silently).
fn is_real_date(y: i64, m: i64, d: i64) -> bool {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    (1..=12).contains(&m) && d >= 1 && d <= [31, 28 + leap as i64, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1]
}

/// The value of a run of ASCII digits (short enough not to overflow).
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64))
}

/// Parses RFC 3339 timestamps (any offset, optional fraction) to UTC milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    parse_canonical_ms(s).or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis()))
}

/// Parses RFC 3339 timestamps to UTC microseconds, the bronze column's unit: every form RFC 3339
/// allows (any offset, `t`/`z` in either case, a space for the `T`, any number of fractional
/// digits; digits past the sixth are cut, not rounded). The contract's own form takes the fast path.
pub fn parse_rfc3339_us(s: &str) -> Option<i64> {
    match parse_canonical_ms(s) {
        Some(ms) => Some(ms * 1000),
        None => chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros()),
    }
}

/// The contract's own form, `YYYY-MM-DDTHH:MM:SS.mmmZ`, without the general parser: it is what
/// almost every event carries, once per record on the drain's hot path.
pub(crate) fn parse_canonical_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits(&b[r]);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !is_real_date(y, mo, d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 1, 19_000, 20_468, 50_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_date(0), "1970-01-01");
        for ms in [0, 1_768_471_200_123, 951_782_400_000, 4_102_444_799_999] {
            let mut s = String::new();
            format_rfc3339_ms(ms, &mut s);
            let reference = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(s, reference);
            assert_eq!(parse_rfc3339_ms(&s), Some(ms));
        }
        for (day, real) in [("2025-02-31", false), ("2024-02-29", true), ("2023-02-29", false), ("2026-04-31", false), ("2026-13-01", false), ("2026-12-31", true), ("2026-00-10", false)] {
            assert_eq!(parse_date_days(day).is_some(), real, "{day}");
        }
        let mut h = String::new();
        push_hex(&mut h, 0xab_cdef, 8);
        assert_eq!(h, "00abcdef");
    }

    #[test]
    fn every_rfc3339_form_parses_to_microseconds() {
        let at = 1_772_359_200_000_000; // 2026-03-01T10:00:00Z
        for (ts, us) in [
            ("2026-03-01T10:00:00.000Z", at),
            ("2026-03-01T10:00:00Z", at),
            ("2026-03-01T10:00:00.1Z", at + 100_000),
            ("2026-03-01T10:00:00.123456Z", at + 123_456),
            ("2026-03-01T10:00:00.123456789Z", at + 123_456),
            ("2026-03-01T11:00:00+01:00", at),
            ("2026-03-01T04:30:00.5-05:30", at + 500_000),
            ("2026-03-01t10:00:00z", at),
            ("2026-03-01 10:00:00Z", at),
        ] {
            assert_eq!(parse_rfc3339_us(ts), Some(us), "{ts}");
        }
        for bad in ["2026-03-01T10:00:00", "2026-03-01", "2026-02-30T10:00:00Z", "yesterday", ""] {
            assert_eq!(parse_rfc3339_us(bad), None, "{bad}");
        }
    }
}
