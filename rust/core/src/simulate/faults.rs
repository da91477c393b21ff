//! Fault injection: which faults, at what rates, and how a valid record is made malformed.

use serde::{Deserialize, Serialize};

use crate::event::Reason;
use crate::Result;

/// Malformed record classes the simulator can inject: the drain's reasons for refusing them.
pub const MALFORMED_CLASSES: [Reason; 6] =
    [Reason::InvalidJson, Reason::NotUtf8, Reason::MissingField, Reason::WrongType, Reason::UnknownEventType, Reason::Oversized];

/// Fault injection, each a probability per event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Delivered late: between one minute and `max_late_ms` after it happened.
    pub late_rate: f64,
    pub max_late_ms: i64,
    /// Delivered twice (same event_id, same bytes), the copy within 30 s.
    pub duplicate_rate: f64,
    /// Replaced by a malformed record of one of [`MALFORMED_CLASSES`], chosen uniformly.
    pub malformed_rate: f64,
}

/// Turns a valid event's JSON into a malformed record of class `c` of [`MALFORMED_CLASSES`].
pub(super) fn corrupt(buf: &mut Vec<u8>, c: usize) -> Result<()> {
    let mut edit = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| -> Result<()> {
        let mut v: serde_json::Value = serde_json::from_slice(buf)?;
        f(v.as_object_mut().expect("events are objects"));
        buf.clear();
        serde_json::to_writer(&mut *buf, &v)?;
        Ok(())
    };
    match MALFORMED_CLASSES[c] {
        Reason::InvalidJson => buf.truncate(buf.len() / 2),
        Reason::NotUtf8 => drop(buf.splice(2..2, [0xff, 0xfe])),
        Reason::MissingField => edit(&|o| drop(o.remove("song_id")))?,
        Reason::WrongType => edit(&|o| drop(o.insert("duration_ms".into(), "three minutes".into())))?,
        Reason::UnknownEventType => edit(&|o| drop(o.insert("event_type".into(), "dance".into())))?,
        Reason::Oversized => edit(&|o| drop(o.insert("padding".into(), "x".repeat(crate::event::MAX_EVENT_BYTES).into())))?,
        // Not injected: the simulator writes its timestamps itself.
        Reason::BadTimestamp => edit(&|o| drop(o.insert("event_ts".into(), "yesterday".into())))?,
        Reason::EmptyValue => buf.clear(),
    }
    Ok(())
}
