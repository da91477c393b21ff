//! The quarantine record: one row per record the drain refused, with why, where it was in Kafka,
//! and its bytes. Written here once: the drain builds it, the quarantine Delta table and the
//! warehouse's `<table>_quarantine` have its columns.

use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::event::{utc_timestamp, KafkaPosition, Rejection};

pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("kafka_topic", DataType::Utf8, false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new("kafka_ts", utc_timestamp(), true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        // Exactly one of the two: the payload as text when it is UTF-8, else base64.
        Field::new("payload", DataType::Utf8, true),
        Field::new("payload_base64", DataType::Utf8, true),
    ]))
}

/// Quarantine columns with file statistics.
pub const QUARANTINE_STATS_COLUMNS: &[&str] = &["kafka_ts", "kafka_partition", "kafka_offset"];

#[derive(Default)]
pub struct QuarantineBuilder {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    reason: StringBuilder,
    detail: StringBuilder,
    payload: StringBuilder,
    payload_base64: StringBuilder,
    rows: usize,
}

impl QuarantineBuilder {
    pub fn append(&mut self, at: &KafkaPosition<'_>, rejection: &Rejection, payload: &[u8]) {
        self.topic.append_value(at.topic);
        self.partition.append_value(at.partition);
        self.offset.append_value(at.offset);
        self.ts.append_option(at.kafka_ts_ms.map(|ms| ms * 1000));
        self.reason.append_value(rejection.class.as_str());
        self.detail.append_value(&rejection.detail);
        match std::str::from_utf8(payload) {
            Ok(s) => {
                self.payload.append_value(s);
                self.payload_base64.append_null();
            }
            Err(_) => {
                self.payload.append_null();
                self.payload_base64.append_value(base64(payload));
            }
        }
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(&mut self) -> crate::Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.reason.finish()),
            Arc::new(self.detail.finish()),
            Arc::new(self.payload.finish()),
            Arc::new(self.payload_base64.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(quarantine_schema(), columns)?)
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    use crate::event::Reason;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn a_refused_record_keeps_its_bytes_as_text_or_base64() {
        let mut b = QuarantineBuilder::default();
        let at = |offset| KafkaPosition { topic: "t", partition: 1, offset, kafka_ts_ms: Some(2) };
        b.append(&at(7), &Rejection { class: Reason::InvalidJson, detail: "EOF".into() }, b"{\"a\":");
        b.append(&at(9), &Rejection { class: Reason::NotUtf8, detail: "byte 0".into() }, b"\xff\xfe");
        let batch = b.finish().unwrap();
        assert_eq!(batch.schema(), quarantine_schema());
        let col = |n: &str| batch.column_by_name(n).unwrap().as_string::<i32>().clone();
        assert_eq!((col("payload").value(0), col("payload").is_null(1)), ("{\"a\":", true));
        assert_eq!(col("payload_base64").value(1), "//4=");
        assert_eq!(col("reason").value(1), "not_utf8");
    }
}
