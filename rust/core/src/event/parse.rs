//! Parsing a payload: a hand-written scan of the contract for the common case, and the general
//! JSON path for everything else; the two agree wherever the scan answers (checked on 20,000
//! mutated records below).

use std::borrow::Cow;

use serde_json::Value;

use super::contract::{from_raw, Raw, Reason, Rejection, ValidEvent, CONTRACT};
use super::MAX_EVENT_BYTES;

/// The fast path for the common case: a compact object of contract fields, in any order, whose
/// strings have no escapes. Scanned by hand, borrowing every string from the payload. Returns
/// `None` for anything else (unknown or repeated fields, escapes, floats, nesting, invalid JSON),
/// which the general path then decides: the two agree wherever this one answers.
fn scan_contract(text: &str) -> Option<[Raw<'_>; CONTRACT.len()]> {
    let b = text.as_bytes();
    let mut raw: [Raw<'_>; CONTRACT.len()] = std::array::from_fn(|_| Raw::Missing);
    let mut seen = 0u32;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        // Producers write the fields in contract order: try the next one before a lookup.
        let mut expect = 0;
        loop {
            let (at, after) = match CONTRACT.get(expect) {
                Some((name, _)) if quoted_at(b, i, name) => (expect, i + name.len() + 2),
                _ => {
                    let (key, after) = scan_string(text, i)?;
                    (CONTRACT.iter().position(|(name, _)| same_short(name.as_bytes(), key.as_bytes()))?, after)
                }
            };
            expect = at + 1;
            if seen & (1 << at) != 0 {
                return None;
            }
            seen |= 1 << at;
            i = skip_ws(b, after);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let (value, after) = match *b.get(i)? {
                b'"' => {
                    let (s, after) = scan_string(text, i)?;
                    (Raw::Str(Cow::Borrowed(s)), after)
                }
                b'n' if b[i..].starts_with(b"null") => (Raw::Missing, i + 4),
                b'-' | b'0'..=b'9' => {
                    let (n, after) = scan_int(b, i)?;
                    (Raw::Int(Some(n)), after)
                }
                _ => return None,
            };
            raw[at] = value;
            i = skip_ws(b, after);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(raw)
}

/// `a == b` for short strings such as field names, without a call to `memcmp` (which costs
/// more than the comparison at these lengths, 21 times a record).
#[inline]
pub(crate) fn same_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    match n {
        // Two overlapping words cover the whole string.
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        0..=7 => a.iter().zip(b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

/// Whether `b[i..]` starts with `name` in quotes.
#[inline]
fn quoted_at(b: &[u8], i: usize, name: &str) -> bool {
    let n = name.len();
    b.get(i) == Some(&b'"') && b.get(i + 1 + n) == Some(&b'"') && same_short(name.as_bytes(), &b[i + 1..i + 1 + n])
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// A string starting at `b[i] == '"'` without escapes: its text and the index after it.
fn scan_string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    // Eight bytes at a time until one is a quote, a backslash or a control character.
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = b.get(j..j + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let hit = zero_byte(x ^ (ONES * b'"' as u64)) | zero_byte(x ^ (ONES * b'\\' as u64)) | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hit != 0 {
            // The lowest flagged byte is exact (false flags only appear above a true one).
            j += (hit.trailing_zeros() / 8) as usize;
            break;
        }
        j += 8;
    }
    loop {
        match *b.get(j)? {
            b'"' => break,
            // Escapes are decoded by the general path; raw control characters are invalid JSON.
            b'\\' | 0..=0x1f => return None,
            _ => j += 1,
        }
    }
    // Both ends are ASCII quotes, so char boundaries: no second UTF-8 check.
    Some((text.get(start..j)?, j + 1))
}

/// A JSON integer (no fraction or exponent, no leading zeros) that fits an i64.
fn scan_int(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let neg = b[i] == b'-';
    let start = i + neg as usize;
    let mut j = start;
    let mut n: i64 = 0;
    while let Some(&c @ b'0'..=b'9') = b.get(j) {
        n = n.checked_mul(10)?.checked_sub((c - b'0') as i64)?;
        j += 1;
    }
    let digits = j - start;
    // serde_json reads -0 as a float: leave it, like fractions and exponents, to the general path.
    if digits == 0 || (digits > 1 && b[start] == b'0') || (neg && n == 0) || matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    // Accumulated negatively so that i64::MIN fits.
    Some((if neg { n } else { n.checked_neg()? }, j))
}



/// Parses and validates one Kafka payload against the contract.
pub fn parse_event(payload: &[u8]) -> Result<ValidEvent<'_>, Rejection> {
    if payload.len() > MAX_EVENT_BYTES {
        return Err(Rejection::new(Reason::Oversized, format!("{} bytes > {}", payload.len(), MAX_EVENT_BYTES)));
    }
    if payload.is_empty() {
        return Err(Rejection::new(Reason::EmptyValue, "null (a tombstone) or empty value"));
    }
    // RFC 8259 lets a parser ignore a byte order mark; some producers (.NET, Windows tools) send one.
    let payload = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
    // The SIMD check says only yes or no; the standard one says where, for the quarantine.
    let text = match simdutf8::basic::from_utf8(payload) {
        Ok(text) => text,
        Err(_) => return Err(Rejection::new(Reason::NotUtf8, std::str::from_utf8(payload).err().map_or_else(String::new, |e| e.to_string()))),
    };
    if let Some(raw) = scan_contract(text) {
        return from_raw(raw, None);
    }
    parse_general(text)
}

/// The general path: any valid JSON, unknown fields kept, escapes decoded.
fn parse_general(text: &str) -> Result<ValidEvent<'_>, Rejection> {
    let value: Value = serde_json::from_str(text).map_err(|e| Rejection::new(Reason::InvalidJson, e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(Rejection::new(Reason::InvalidJson, "not a JSON object"));
    };
    let raw = std::array::from_fn(|i| match obj.remove(CONTRACT[i].0) {
        None | Some(Value::Null) => Raw::Missing,
        Some(Value::String(s)) => Raw::Str(Cow::Owned(s)),
        Some(Value::Number(n)) => Raw::Int(n.as_i64()),
        Some(_) => Raw::Other,
    });
    let extra = if obj.is_empty() { None } else { Some(Value::Object(obj).to_string()) };
    from_raw(raw, extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{BronzeBuilder, KafkaPosition, bronze_schema};
    use crate::time::{format_rfc3339_ms, parse_canonical_ms, parse_rfc3339_ms};

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "event_id": "e1", "event_type": "play", "event_ts": "2026-01-15T10:00:00.000Z",
            "user_id": "u1", "session_id": "s1", "song_id": "so1", "song_name": "Song",
            "artist_id": "a1", "artist_name": "Artist", "album": "Album", "genre": "pop",
            "release_date": "2025-06-01", "duration_ms": 200000, "position_ms": 0,
            "device_type": "mobile", "country": "US", "city": "New York",
            "timezone": "America/New_York", "subscription": "free", "playlist_id": null,
            "schema_version": 1
        })
    }

    #[test]
    fn valid_event_parses_and_keeps_unknown_fields() {
        let mut v = sample();
        v["mood"] = "happy".into();
        let payload = v.to_string();
        let ev = parse_event(payload.as_bytes()).unwrap();
        assert_eq!(ev.event_ts_ms, 1_768_471_200_000);
        assert_eq!(ev.extra.as_deref(), Some(r#"{"mood":"happy"}"#));
        let mut b = BronzeBuilder::default();
        b.append(&ev, &KafkaPosition { topic: "t", partition: 2, offset: 7, kafka_ts_ms: Some(1) }, None);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), bronze_schema());
    }

    #[test]
    fn fast_and_general_paths_agree() {
        let mut escaped = sample();
        escaped["song_name"] = "Say \"hi\" \\ to São Paulo".into();
        for v in [sample(), escaped] {
            let text = v.to_string();
            assert_eq!(parse_event(text.as_bytes()).unwrap(), parse_general(&text).unwrap());
        }
        for ms in (0..2_000).map(|i| 1_700_000_000_000i64 + i * 7_777_777_777) {
            let mut s = String::new();
            format_rfc3339_ms(ms, &mut s);
            assert_eq!(parse_canonical_ms(&s), chrono::DateTime::parse_from_rfc3339(&s).ok().map(|t| t.timestamp_millis()));
        }
        assert_eq!(parse_canonical_ms("2026-02-31T00:00:00.000Z"), None);
        for (day, valid) in [("2024-02-29", true), ("2000-02-29", true), ("2023-02-29", false), ("1900-02-29", false), ("2026-04-31", false), ("2026-12-31", true)] {
            let ts = format!("{day}T23:59:59.999Z");
            let reference = chrono::DateTime::parse_from_rfc3339(&ts).ok().map(|t| t.timestamp_millis());
            assert_eq!(parse_canonical_ms(&ts), reference, "{ts}");
            assert_eq!(reference.is_some(), valid, "{ts}");
        }
        assert_eq!(parse_rfc3339_ms("2026-01-15T11:00:00+01:00"), Some(1_768_471_200_000));
    }

    #[test]
    fn the_fast_path_answers_only_where_the_general_path_agrees() {
        let canonical = sample().to_string();
        assert!(scan_contract(&canonical).is_some(), "our producer's records take the fast path");
        let mut reordered = serde_json::Map::new();
        for (k, v) in sample().as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        let spaced = serde_json::to_string_pretty(&reordered).unwrap();
        assert!(scan_contract(&spaced).is_some(), "any order and whitespace");
        // Mutations of a valid record: wherever the fast path answers, it must give exactly what
        // the general path gives; everything else falls through to it.
        let mut rng = crate::simulate::Rng::new(7);
        let specials: &[&[u8]] = &[b"\"", b"\\", b"\\u00e9", b"\n", b"\t", b" ", b"{", b"}", b",", b":", b"-", b"0", b"01", b"1.5", b"1e3", b"null", b"true", b"\x01", "é".as_bytes(), b"99999999999999999999"];
        let (mut answered, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut p = canonical.clone().into_bytes();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(p.len());
                match rng.below(3) {
                    0 => { p.remove(at); }
                    1 => { let s = specials[rng.below(specials.len())]; p.splice(at..at, s.iter().copied()); }
                    _ => { let s = specials[rng.below(specials.len())]; let end = (at + s.len()).min(p.len()); p.splice(at..end, s.iter().copied()); }
                }
            }
            let Ok(text) = std::str::from_utf8(&p) else { continue };
            total += 1;
            if let Some(raw) = scan_contract(text) {
                answered += 1;
                assert_eq!(from_raw(raw, None), parse_general(text), "fast and general paths disagree on {text}");
            }
        }
        assert!(answered > total / 20 && answered < total, "the mutations should exercise both paths ({answered} of {total})");
    }

    /// A fuzz on stable Rust (nightly's cargo-fuzz cannot be had here): a million payloads,
    /// generated and mutated (byte flips, random bytes, cuts, splices of other records' pieces,
    /// reordered and repeated fields, escapes), through both parse paths: no panic anywhere, and
    /// wherever the fast path answers it equals the general path. A million in release builds
    /// (`scripts/test.sh` runs `cargo test --release`, ~10 s), 20,000 in debug ones.
    #[test]
    fn a_million_fuzzed_payloads_never_panic_and_both_paths_agree() {
        let n = if cfg!(debug_assertions) { 20_000 } else { 1_000_000 };
        let mut rng = crate::simulate::Rng::new(15);
        let mut base = sample();
        let pieces: Vec<Vec<u8>> = {
            let mut v: Vec<Vec<u8>> = vec![base.to_string().into_bytes()];
            base["song_name"] = "é \"q\" \\ \u{1F3B5}".into();
            base["extra"] = serde_json::json!({"nested": [1, 2.5, null, true]});
            v.push(base.to_string().into_bytes());
            v.push(serde_json::to_vec_pretty(&base).unwrap());
            v
        };
        let specials: &[&[u8]] = &[b"\"", b"\\", b"\\u0000", b"\\ud83c", b"{", b"}", b"[", b"]", b",", b":", b"-", b"0", b"1e309", b"-0", b"9223372036854775808", b"null", b"\xff", b"\xc3", b"\x00", b"\"event_id\":\"x\","];
        let (mut answered, mut accepted) = (0u64, 0u64);
        for _ in 0..n {
            let mut p = pieces[rng.below(pieces.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(p.len().max(1));
                match rng.below(6) {
                    0 => drop(p.splice(at..(at + 1 + rng.below(8)).min(p.len()), [])),
                    1 if !p.is_empty() => { let i = at.min(p.len() - 1); p[i] ^= 1 << rng.below(8) }
                    2 => { let s = specials[rng.below(specials.len())]; p.splice(at..at, s.iter().copied()); }
                    3 => p.truncate(at),
                    4 => { let src = &pieces[rng.below(pieces.len())]; let from = rng.below(src.len()); let to = (from + rng.below(40)).min(src.len()); p.splice(at..at, src[from..to].iter().copied()); }
                    _ => p.insert(at.min(p.len()), rng.below(256) as u8),
                }
            }
            let parsed = parse_event(&p);
            accepted += parsed.is_ok() as u64;
            if let Ok(text) = std::str::from_utf8(&p) {
                if let Some(raw) = scan_contract(text) {
                    answered += 1;
                    assert_eq!(from_raw(raw, None), parse_general(text), "fast and general paths disagree on {text:?}");
                }
            }
        }
        assert!(answered > 0 && accepted > 0 && accepted < n, "the fuzz should reach both paths and both outcomes ({answered} answered, {accepted} accepted of {n})");
    }

    #[test]
    fn every_bad_class_is_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "invalid_json"),
            (b"[1,2]".to_vec(), "invalid_json"),
            (vec![0xff, 0xfe, b'{'], "not_utf8"),
            (vec![b' '; MAX_EVENT_BYTES + 1], "oversized"),
            ({ let mut v = sample(); v.as_object_mut().unwrap().remove("event_id"); v.to_string().into_bytes() }, "missing_field"),
            ({ let mut v = sample(); v["duration_ms"] = "long".into(); v.to_string().into_bytes() }, "wrong_type"),
            ({ let mut v = sample(); v["event_type"] = "dance".into(); v.to_string().into_bytes() }, "unknown_event_type"),
            ({ let mut v = sample(); v["event_ts"] = "yesterday".into(); v.to_string().into_bytes() }, "bad_timestamp"),
            (Vec::new(), "empty_value"),
        ];
        for (payload, class) in cases {
            assert_eq!(parse_event(&payload).unwrap_err().class.as_str(), class);
        }
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let plain = sample().to_string().into_bytes();
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), &plain].concat();
        assert_eq!(parse_event(&with_bom).unwrap(), parse_event(&plain).unwrap());
    }
}
