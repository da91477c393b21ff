//! The event contract (DESIGN.md, "Data contracts"): the JSON every producer writes, the checks
//! the drain applies to it, and the typed bronze schema it becomes.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Date32Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;
use std::borrow::Cow;

use serde_json::Value;

pub const SCHEMA_VERSION: i32 = 1;

/// Event types the pipeline knows. Anything else is quarantined as `unknown_event_type`.
pub const EVENT_TYPES: [&str; 6] =
    ["play", "skip", "pause", "resume", "add_to_playlist", "complete"];

/// Payloads larger than this are quarantined as `oversized` rather than parsed.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One listening event, as the simulator writes it to Kafka. Borrowed strings point into the
/// simulator's catalog, so making an event allocates nothing but its id.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub event_ts: &'a str,
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub song_id: &'a str,
    pub song_name: &'a str,
    pub artist_id: &'a str,
    pub artist_name: &'a str,
    pub album: &'a str,
    pub genre: &'a str,
    pub release_date: &'a str,
    pub duration_ms: i64,
    pub position_ms: i64,
    pub device_type: &'a str,
    pub country: &'a str,
    pub city: &'a str,
    pub timezone: &'a str,
    pub subscription: &'a str,
    pub playlist_id: Option<&'a str>,
    pub schema_version: i32,
}

/// Fields of the contract, in schema order, with how each is typed in bronze.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str,
    OptStr,
    Timestamp,
    Date,
    Int64,
    Int32,
}

const CONTRACT: [(&str, Kind); 21] = [
    ("event_id", Kind::Str),
    ("event_type", Kind::Str),
    ("event_ts", Kind::Timestamp),
    ("user_id", Kind::Str),
    ("session_id", Kind::Str),
    ("song_id", Kind::Str),
    ("song_name", Kind::Str),
    ("artist_id", Kind::Str),
    ("artist_name", Kind::Str),
    ("album", Kind::Str),
    ("genre", Kind::Str),
    ("release_date", Kind::Date),
    ("duration_ms", Kind::Int64),
    ("position_ms", Kind::Int64),
    ("device_type", Kind::Str),
    ("country", Kind::Str),
    ("city", Kind::Str),
    ("timezone", Kind::Str),
    ("subscription", Kind::Str),
    ("playlist_id", Kind::OptStr),
    ("schema_version", Kind::Int32),
];

/// The typed bronze schema: the contract's fields, then what the drain adds. Column names are
/// the warehouse's column names too.
pub fn bronze_schema() -> SchemaRef {
    let mut fields: Vec<Field> = CONTRACT
        .iter()
        .map(|(name, kind)| {
            let (dt, nullable) = match kind {
                Kind::Str => (DataType::Utf8, false),
                Kind::OptStr => (DataType::Utf8, true),
                Kind::Timestamp => (utc_timestamp(), false),
                Kind::Date => (DataType::Date32, false),
                Kind::Int64 => (DataType::Int64, false),
                Kind::Int32 => (DataType::Int32, false),
            };
            Field::new(*name, dt, nullable)
        })
        .collect();
    // Unknown fields are kept, as a JSON object, never silently dropped.
    fields.push(Field::new("extra_fields", DataType::Utf8, true));
    fields.push(Field::new("kafka_topic", DataType::Utf8, false));
    fields.push(Field::new("kafka_partition", DataType::Int32, false));
    fields.push(Field::new("kafka_offset", DataType::Int64, false));
    // When the record reached Kafka: the table's date/hour partition derives from it.
    fields.push(Field::new("kafka_ts", utc_timestamp(), true));
    // The record's bytes as they came, when the drain keeps them (its `raw` option).
    fields.push(Field::new("raw", DataType::Binary, true));
    Arc::new(Schema::new(fields))
}

/// Timestamps in the lake: microseconds, UTC, which is Delta's `timestamp` type.
pub fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Bronze columns with file statistics: time and Kafka position, what readers prune on.
pub const BRONZE_STATS_COLUMNS: &[&str] = &["event_ts", "kafka_ts", "kafka_partition", "kafka_offset"];

/// Why a record was quarantined: a class (counted) and a detail (kept with the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub class: &'static str,
    pub detail: String,
}

impl Rejection {
    fn new(class: &'static str, detail: impl Into<String>) -> Self {
        Self { class, detail: detail.into() }
    }
}

/// A validated value of one contract field. Strings borrow from the payload where they can.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Str(Cow<'a, str>),
    Null,
    Millis(i64),
    Days(i32),
    Int(i64),
}

/// An event that passed validation, with its unknown fields kept aside.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent<'a> {
    cells: [Cell<'a>; CONTRACT.len()],
    pub event_ts_ms: i64,
    pub extra: Option<String>,
}

/// A field as found in the payload, before validation.
enum Raw<'a> {
    Missing,
    Str(Cow<'a, str>),
    Int(Option<i64>),
    Other,
}

/// Where `event_type`, whose value must be one of [`EVENT_TYPES`], is in [`CONTRACT`].
const EVENT_TYPE_FIELD: usize = 1;

/// Checks field `field` of [`CONTRACT`].
fn validate(field: usize, raw: Raw<'_>) -> Result<Cell<'_>, Rejection> {
    let (name, kind) = CONTRACT[field];
    Ok(match (kind, raw) {
        (Kind::OptStr, Raw::Missing) => Cell::Null,
        (_, Raw::Missing) => return Err(Rejection::new("missing_field", name)),
        (Kind::Str | Kind::OptStr, Raw::Str(s)) => {
            if field == EVENT_TYPE_FIELD && !EVENT_TYPES.iter().any(|t| same_short(t.as_bytes(), s.as_bytes())) {
                return Err(Rejection::new("unknown_event_type", s));
            }
            if kind == Kind::Str && s.is_empty() {
                return Err(Rejection::new("missing_field", name));
            }
            Cell::Str(s)
        }
        (Kind::Timestamp, Raw::Str(s)) => {
            Cell::Millis(parse_rfc3339_ms(&s).ok_or_else(|| Rejection::new("bad_timestamp", format!("{name}={s}")))?)
        }
        (Kind::Date, Raw::Str(s)) => {
            Cell::Days(parse_date_days(&s).ok_or_else(|| Rejection::new("wrong_type", format!("{name}={s}")))?)
        }
        (Kind::Int64, Raw::Int(Some(i))) => Cell::Int(i),
        (Kind::Int32, Raw::Int(Some(i))) if i32::try_from(i).is_ok() => Cell::Int(i),
        _ => return Err(Rejection::new("wrong_type", name)),
    })
}

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
fn same_short(a: &[u8], b: &[u8]) -> bool {
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

fn from_raw<'a>(raw: [Raw<'a>; CONTRACT.len()], extra: Option<String>) -> Result<ValidEvent<'a>, Rejection> {
    let mut cells: [Cell<'a>; CONTRACT.len()] = std::array::from_fn(|_| Cell::Null);
    let mut event_ts_ms = 0;
    for (field, (r, cell)) in raw.into_iter().zip(&mut cells).enumerate() {
        *cell = validate(field, r)?;
        if let Cell::Millis(ms) = cell {
            event_ts_ms = *ms;
        }
    }
    Ok(ValidEvent { cells, event_ts_ms, extra })
}

/// Parses and validates one Kafka payload against the contract.
pub fn parse_event(payload: &[u8]) -> Result<ValidEvent<'_>, Rejection> {
    if payload.len() > MAX_EVENT_BYTES {
        return Err(Rejection::new("oversized", format!("{} bytes > {}", payload.len(), MAX_EVENT_BYTES)));
    }
    // The SIMD check says only yes or no; the standard one says where, for the quarantine.
    let text = match simdutf8::basic::from_utf8(payload) {
        Ok(text) => text,
        Err(_) => return Err(Rejection::new("not_utf8", std::str::from_utf8(payload).err().map_or_else(String::new, |e| e.to_string()))),
    };
    if let Some(raw) = scan_contract(text) {
        return from_raw(raw, None);
    }
    parse_general(text)
}

/// The general path: any valid JSON, unknown fields kept, escapes decoded.
fn parse_general(text: &str) -> Result<ValidEvent<'_>, Rejection> {
    let value: Value = serde_json::from_str(text).map_err(|e| Rejection::new("invalid_json", e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(Rejection::new("invalid_json", "not a JSON object"));
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

/// Where a record was in Kafka.
#[derive(Debug, Clone, Copy)]
pub struct KafkaPosition<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub kafka_ts_ms: Option<i64>,
}

/// Accumulates valid events into the typed bronze columns.
pub struct BronzeBuilder {
    strings: Vec<StringBuilder>,
    ts: TimestampMicrosecondBuilder,
    date: Date32Builder,
    ints64: Vec<Int64Builder>,
    int32: Int32Builder,
    extra: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    kafka_ts: TimestampMicrosecondBuilder,
    raw: BinaryBuilder,
    rows: usize,
}

impl Default for BronzeBuilder {
    fn default() -> Self {
        // Arrow's own default: room for 1,024 rows and 1 KiB per string column.
        Self::sized(1024, std::iter::repeat(1024))
    }
}

impl BronzeBuilder {
    /// Room for `rows` rows, and `string_bytes` bytes for each string column in schema order.
    fn sized(rows: usize, mut string_bytes: impl Iterator<Item = usize>) -> Self {
        let n_str = CONTRACT.iter().filter(|(_, k)| matches!(k, Kind::Str | Kind::OptStr)).count();
        let n_i64 = CONTRACT.iter().filter(|(_, k)| *k == Kind::Int64).count();
        Self {
            strings: (0..n_str).map(|_| StringBuilder::with_capacity(rows, string_bytes.next().unwrap_or(0))).collect(),
            ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            date: Date32Builder::with_capacity(rows),
            ints64: (0..n_i64).map(|_| Int64Builder::with_capacity(rows)).collect(),
            int32: Int32Builder::with_capacity(rows),
            extra: StringBuilder::new(),
            topic: StringBuilder::with_capacity(rows, rows * 16),
            partition: Int32Builder::with_capacity(rows),
            offset: Int64Builder::with_capacity(rows),
            kafka_ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            raw: BinaryBuilder::new(),
            rows: 0,
        }
    }

    /// A builder with room for `rows` rows whose strings are about as long as `like`'s, so that
    /// a batch fills it without reallocating (room that is never used is never touched).
    pub fn with_capacity_like(rows: usize, like: &ValidEvent<'_>) -> Self {
        let lengths = CONTRACT.iter().zip(&like.cells).filter_map(|((_, kind), cell)| match (kind, cell) {
            (Kind::Str | Kind::OptStr, Cell::Str(v)) => Some(rows * (v.len() + 4)),
            (Kind::Str | Kind::OptStr, _) => Some(0),
            _ => None,
        });
        Self::sized(rows, lengths)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one event with where it was in Kafka, and its raw bytes if they are kept.
    pub fn append(&mut self, ev: &ValidEvent<'_>, at: &KafkaPosition<'_>, raw: Option<&[u8]>) {
        let (mut s, mut i) = (0, 0);
        for ((_, kind), cell) in CONTRACT.iter().zip(&ev.cells) {
            match (kind, cell) {
                (Kind::Str | Kind::OptStr, Cell::Str(v)) => {
                    self.strings[s].append_value(v);
                    s += 1;
                }
                (Kind::OptStr, Cell::Null) => {
                    self.strings[s].append_null();
                    s += 1;
                }
                (Kind::Timestamp, Cell::Millis(v)) => self.ts.append_value(*v * 1000),
                (Kind::Date, Cell::Days(v)) => self.date.append_value(*v),
                (Kind::Int64, Cell::Int(v)) => {
                    self.ints64[i].append_value(*v);
                    i += 1;
                }
                (Kind::Int32, Cell::Int(v)) => self.int32.append_value(*v as i32),
                _ => unreachable!("parse_event produces one cell of the right kind per field"),
            }
        }
        self.extra.append_option(ev.extra.as_deref());
        self.topic.append_value(at.topic);
        self.partition.append_value(at.partition);
        self.offset.append_value(at.offset);
        self.kafka_ts.append_option(at.kafka_ts_ms.map(|ms| ms * 1000));
        self.raw.append_option(raw);
        self.rows += 1;
    }

    pub fn finish(&mut self) -> crate::Result<RecordBatch> {
        let (mut s, mut i) = (0, 0);
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(CONTRACT.len() + 4);
        for (_, kind) in CONTRACT {
            let col: ArrayRef = match kind {
                Kind::Str | Kind::OptStr => {
                    s += 1;
                    Arc::new(self.strings[s - 1].finish())
                }
                Kind::Timestamp => Arc::new(self.ts.finish()),
                Kind::Date => Arc::new(self.date.finish()),
                Kind::Int64 => {
                    i += 1;
                    Arc::new(self.ints64[i - 1].finish())
                }
                Kind::Int32 => Arc::new(self.int32.finish()),
            };
            cols.push(col);
        }
        cols.push(Arc::new(self.extra.finish()));
        cols.push(Arc::new(self.topic.finish()));
        cols.push(Arc::new(self.partition.finish()));
        cols.push(Arc::new(self.offset.finish()));
        cols.push(Arc::new(self.kafka_ts.finish()));
        cols.push(Arc::new(self.raw.finish()));
        self.rows = 0;
        Ok(RecordBatch::try_new(bronze_schema(), cols)?)
    }
}

// ---- civil time, without a time-zone database: the contract is UTC only ----

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

fn parse_date_days(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])? as u32, digits(&b[8..10])? as u32);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

/// The value of a run of ASCII digits (short enough not to overflow).
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64))
}

/// Parses RFC 3339 timestamps (any offset, optional fraction) to UTC milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    parse_canonical_ms(s).or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis()))
}

/// The contract's own form, `YYYY-MM-DDTHH:MM:SS.mmmZ`, without the general parser: it is what
/// almost every event carries, once per record on the drain's hot path.
fn parse_canonical_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits(&b[r]);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Reject dates like 02-31 that the day count would silently roll over.
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    if d > [31, 28 + leap as i64, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo as usize - 1] {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut h = String::new();
        push_hex(&mut h, 0xab_cdef, 8);
        assert_eq!(h, "00abcdef");
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
        ];
        for (payload, class) in cases {
            assert_eq!(parse_event(&payload).unwrap_err().class, class);
        }
    }
}
