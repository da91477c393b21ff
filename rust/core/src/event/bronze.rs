//! Valid events into the typed bronze columns.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Date32Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};

use super::contract::{bronze_schema, Cell, Kind, ValidEvent, CONTRACT};

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
    ///
    /// `max_bytes` caps each column's room: the bytes of the records still to come. Without it,
    /// one 60 KB event at the head of a batch made a column reserve 100,000 × 60 KB = 6 GB.
    pub fn with_capacity_like(rows: usize, like: &ValidEvent<'_>, max_bytes: usize) -> Self {
        let lengths = CONTRACT.iter().zip(&like.cells).filter_map(|((_, kind), cell)| match (kind, cell) {
            (Kind::Str | Kind::OptStr, Cell::Str(v)) => Some((rows * (v.len() + 4)).min(max_bytes)),
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
                (Kind::Timestamp, Cell::Micros(v)) => self.ts.append_value(*v),
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
