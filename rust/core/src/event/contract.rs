//! The contract's fields, how each is typed in bronze, and how a raw value is checked: the one
//! place that says what a valid event is, and why a record is refused ([`Reason`]).

use std::borrow::Cow;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

use super::EVENT_TYPES;
use crate::time::{parse_date_days, parse_rfc3339_us};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Str,
    OptStr,
    Timestamp,
    Date,
    Int64,
    Int32,
}

pub(crate) const CONTRACT: [(&str, Kind); 21] = [
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

/// Why a record is refused: the quarantine's `reason` column, the drain's counts, the
/// simulator's malformed classes, and silver's accepted values (checked by a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    InvalidJson,
    NotUtf8,
    MissingField,
    WrongType,
    UnknownEventType,
    Oversized,
    BadTimestamp,
    /// A null value (a tombstone, as compacted topics use to delete a key) or an empty one.
    EmptyValue,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::InvalidJson,
        Reason::NotUtf8,
        Reason::MissingField,
        Reason::WrongType,
        Reason::UnknownEventType,
        Reason::Oversized,
        Reason::BadTimestamp,
        Reason::EmptyValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::NotUtf8 => "not_utf8",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::UnknownEventType => "unknown_event_type",
            Reason::Oversized => "oversized",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::EmptyValue => "empty_value",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record was quarantined: a reason (counted) and a detail (kept with the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub class: Reason,
    pub detail: String,
}

impl Rejection {
    pub(crate) fn new(class: Reason, detail: impl Into<String>) -> Self {
        Self { class, detail: detail.into() }
    }
}

/// A validated value of one contract field. Strings borrow from the payload where they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    Str(Cow<'a, str>),
    Null,
    /// Microseconds since the epoch, UTC.
    Micros(i64),
    Days(i32),
    Int(i64),
}

/// An event that passed validation, with its unknown fields kept aside.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent<'a> {
    pub(crate) cells: [Cell<'a>; CONTRACT.len()],
    pub event_ts_ms: i64,
    pub extra: Option<String>,
}

/// A field as found in the payload, before validation.
pub(crate) enum Raw<'a> {
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
        (_, Raw::Missing) => return Err(Rejection::new(Reason::MissingField, name)),
        (Kind::Str | Kind::OptStr, Raw::Str(s)) => {
            if field == EVENT_TYPE_FIELD && !EVENT_TYPES.iter().any(|t| super::parse::same_short(t.as_bytes(), s.as_bytes())) {
                return Err(Rejection::new(Reason::UnknownEventType, s));
            }
            if kind == Kind::Str && s.is_empty() {
                return Err(Rejection::new(Reason::MissingField, name));
            }
            Cell::Str(s)
        }
        (Kind::Timestamp, Raw::Str(s)) => {
            Cell::Micros(parse_rfc3339_us(&s).ok_or_else(|| Rejection::new(Reason::BadTimestamp, format!("{name}={s}")))?)
        }
        (Kind::Date, Raw::Str(s)) => {
            Cell::Days(parse_date_days(&s).ok_or_else(|| Rejection::new(Reason::WrongType, format!("{name}={s}")))?)
        }
        (Kind::Int64, Raw::Int(Some(i))) => Cell::Int(i),
        (Kind::Int32, Raw::Int(Some(i))) if i32::try_from(i).is_ok() => Cell::Int(i),
        _ => return Err(Rejection::new(Reason::WrongType, name)),
    })
}


/// Validates every field: the event, or why it is refused (the first broken rule).
pub(crate) fn from_raw<'a>(raw: [Raw<'a>; CONTRACT.len()], extra: Option<String>) -> Result<ValidEvent<'a>, Rejection> {
    let mut cells: [Cell<'a>; CONTRACT.len()] = std::array::from_fn(|_| Cell::Null);
    let mut event_ts_ms = 0;
    for (field, (r, cell)) in raw.into_iter().zip(&mut cells).enumerate() {
        *cell = validate(field, r)?;
        if let Cell::Micros(us) = cell {
            event_ts_ms = us.div_euclid(1000);
        }
    }
    Ok(ValidEvent { cells, event_ts_ms, extra })
}
