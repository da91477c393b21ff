//! The event contract: the JSON every producer writes ([`Event`]), the checks the drain applies
//! to it ([`contract`], [`parse`]), and the typed bronze rows it becomes ([`bronze`]).
//! See docs/architecture.md, "The event contract".

mod bronze;
mod contract;
mod parse;

pub use bronze::{BronzeBuilder, KafkaPosition};
pub use contract::{bronze_schema, utc_timestamp, Reason, Rejection, ValidEvent, BRONZE_STATS_COLUMNS};
pub use parse::parse_event;
pub use crate::time::{format_date, format_rfc3339_ms, parse_rfc3339_ms, parse_rfc3339_us, push_hex};

use serde::Serialize;

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

