//! A batch: one partition's records since its last cut, as they came, then parsed and encoded
//! into the files of its arrival hours (events and quarantine).

use std::collections::BTreeMap;

use crate::event::{format_date, parse_event, BronzeBuilder, KafkaPosition, BRONZE_STATS_COLUMNS};
use crate::lake;
use crate::parquet::{encode_parquet, FileStats};
use crate::quarantine::{QuarantineBuilder, QUARANTINE_STATS_COLUMNS};
use crate::Result;

/// One record as it came from Kafka, its payload in its batch's buffer.
#[derive(Clone, Copy)]
pub(super) struct RawRecord {
    pub offset: i64,
    pub kafka_ts_ms: Option<i64>,
    /// End of the payload in [`RawBatch::payloads`]; it starts where the previous one ends.
    pub end: usize,
}

/// The records of one partition since its last cut. The consumer thread only copies bytes into
/// it; a worker parses and encodes it.
pub(super) struct RawBatch {
    pub partition: i32,
    /// Its place in the partition's cut order: batches commit in it.
    pub seq: u64,
    /// Where this batch's range starts: the previous batch's end + 1, or the drain's start. Its
    /// first record may come later (offsets that hold no record, such as transaction markers).
    pub from: i64,
    pub last: i64,
    pub payloads: Vec<u8>,
    pub records: Vec<RawRecord>,
}

impl RawBatch {
    pub fn push(&mut self, offset: i64, kafka_ts_ms: Option<i64>, payload: &[u8]) {
        self.payloads.extend_from_slice(payload);
        self.records.push(RawRecord { offset, kafka_ts_ms, end: self.payloads.len() });
        self.last = offset;
    }

    pub fn iter(&self) -> impl Iterator<Item = (RawRecord, &[u8])> {
        let mut begin = 0;
        self.records.iter().map(move |r| {
            let p = &self.payloads[begin..r.end];
            begin = r.end;
            (*r, p)
        })
    }
}

/// Which table a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Events,
    Quarantine,
}

/// One encoded file, to be uploaded, then added by a commit.
pub(super) struct EncodedFile {
    pub target: Target,
    pub date: String,
    pub hour: u32,
    /// Inside its table: `date=…/hour=…/<topic>+<partition>+<from>-<uuid>.parquet`.
    pub path: String,
    pub bytes: Vec<u8>,
    pub stats: FileStats,
}

/// A batch, encoded: its files, and what it counted.
pub(super) struct EncodedBatch {
    pub partition: i32,
    pub seq: u64,
    pub from: i64,
    pub last: i64,
    pub files: Vec<EncodedFile>,
    pub rows: u64,
    pub quarantined: u64,
    pub reasons: BTreeMap<String, u64>,
}

/// The rows of one arrival hour being built.
#[derive(Default)]
struct Hour {
    events: Option<BronzeBuilder>,
    quarantine: QuarantineBuilder,
}

/// Parses, validates and encodes `raw`: valid events by arrival hour, refused records likewise
/// (only from `quarantine_from` on: below it, a commit of the quarantine table already has them).
pub(super) fn encode(raw: &RawBatch, topic: &str, keep_raw: bool, quarantine_from: i64) -> Result<EncodedBatch> {
    let mut hours: BTreeMap<(i64, u32), Hour> = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let (mut rows, mut quarantined) = (0u64, 0u64);
    for (i, (r, payload)) in raw.iter().enumerate() {
        let bytes_left = raw.payloads.len() - (r.end - payload.len());
        let at = KafkaPosition { topic, partition: raw.partition, offset: r.offset, kafka_ts_ms: r.kafka_ts_ms };
        let hour = hours.entry(lake::day_hour(r.kafka_ts_ms.unwrap_or(now_ms))).or_default();
        match parse_event(payload) {
            Ok(ev) => {
                let left = raw.records.len() - i;
                hour.events.get_or_insert_with(|| BronzeBuilder::with_capacity_like(left, &ev, bytes_left)).append(&ev, &at, keep_raw.then_some(payload));
                rows += 1;
            }
            Err(rejection) if r.offset >= quarantine_from => {
                *reasons.entry(rejection.class.to_string()).or_default() += 1;
                hour.quarantine.append(&at, &rejection, payload);
                quarantined += 1;
            }
            Err(_) => {}
        }
    }
    let mut files = Vec::new();
    for ((day, h), mut hour) in hours {
        let date = format_date(day);
        if let Some(mut events) = hour.events.take() {
            let batch = events.finish()?;
            let stats = FileStats::of(&batch, BRONZE_STATS_COLUMNS);
            let bytes = encode_parquet(&batch, BRONZE_STATS_COLUMNS)?;
            files.push(EncodedFile { target: Target::Events, path: lake::data_file_path(&date, h, topic, raw.partition, raw.from), date: date.clone(), hour: h, bytes, stats });
        }
        if hour.quarantine.rows() > 0 {
            let batch = hour.quarantine.finish()?;
            let stats = FileStats::of(&batch, QUARANTINE_STATS_COLUMNS);
            let bytes = encode_parquet(&batch, QUARANTINE_STATS_COLUMNS)?;
            files.push(EncodedFile { target: Target::Quarantine, path: lake::data_file_path(&date, h, topic, raw.partition, raw.from), date, hour: h, bytes, stats });
        }
    }
    Ok(EncodedBatch { partition: raw.partition, seq: raw.seq, from: raw.from, last: raw.last, files, rows, quarantined, reasons })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event_json(ts: &str) -> String {
        serde_json::json!({
            "event_id": "e", "event_type": "play", "event_ts": ts, "user_id": "u", "session_id": "s",
            "song_id": "so", "song_name": "n", "artist_id": "a", "artist_name": "an", "album": "al",
            "genre": "pop", "release_date": "2025-01-01", "duration_ms": 1, "position_ms": 0,
            "device_type": "mobile", "country": "US", "city": "c", "timezone": "UTC",
            "subscription": "free", "playlist_id": null, "schema_version": 1
        })
        .to_string()
    }

    #[test]
    fn a_batch_splits_by_arrival_hour_not_event_time_and_quarantines_with_reasons() {
        let hour10 = 1_768_471_200_000; // 2026-01-15T10:00Z
        let mut raw = RawBatch { partition: 0, seq: 0, from: 10, last: 10, payloads: vec![], records: vec![] };
        // Events from weeks apart that arrived in the same hour land in one file.
        raw.push(10, Some(hour10 + 5), event_json("2025-12-01T10:59:59Z").as_bytes());
        raw.push(11, Some(hour10 + 6), event_json("2026-01-15T11:00:00Z").as_bytes());
        raw.push(12, Some(hour10 + 3_600_000), event_json("2026-01-15T11:00:00Z").as_bytes());
        raw.push(13, Some(hour10 + 7), b"\xff\xfe");
        let offsets: Vec<(i64, usize)> = raw.iter().map(|(r, p)| (r.offset, p.len())).collect();
        assert_eq!(offsets[3], (13, 2), "each payload comes back whole, with its offset");
        let b = encode(&raw, "t", true, i64::MIN).unwrap();
        assert_eq!((b.rows, b.quarantined, b.reasons.get("not_utf8")), (3, 1, Some(&1)));
        let events: Vec<(&str, u32, u64)> = b.files.iter().filter(|f| f.target == Target::Events).map(|f| (f.date.as_str(), f.hour, f.stats.rows)).collect();
        assert_eq!(events, vec![("2026-01-15", 10, 2), ("2026-01-15", 11, 1)]);
        assert!(b.files.iter().any(|f| f.target == Target::Quarantine && f.hour == 10 && f.path.starts_with("date=2026-01-15/hour=10/t+0+00000000000000000010-")));
        // Below `quarantine_from`, refused records are already in the quarantine table: skipped.
        let again = encode(&raw, "t", false, 14).unwrap();
        assert_eq!((again.rows, again.quarantined), (3, 0));
        assert!(again.files.iter().all(|f| f.target == Target::Events));
    }
}
