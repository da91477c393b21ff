//! Parquet encoding of lake files, and the Delta statistics that describe them.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::Result;

/// Columns whose values are (nearly) unique per row: a dictionary would only cost time. The two
/// timestamps too: without their dictionaries a 4 M-event drain wrote 166 MB instead of 173 MB,
/// 1-5 % faster.
const NO_DICTIONARY: [&str; 5] = ["event_id", "session_id", "kafka_offset", "event_ts", "kafka_ts"];

/// Writer settings for lake files: zstd 1, statistics only on `stats_columns` (min/max of every
/// string column cost a fifth of the drain's encoding), row groups of `row_group_rows`.
pub fn writer_properties(stats_columns: &[&str], row_group_rows: usize) -> Result<WriterProperties> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(row_group_rows));
    for column in NO_DICTIONARY {
        props = props.set_column_dictionary_enabled(column.into(), false);
    }
    for column in stats_columns {
        props = props.set_column_statistics_enabled((*column).into(), EnabledStatistics::Chunk);
    }
    Ok(props.build())
}

/// One in-memory Parquet file of `batch`.
pub fn encode_parquet(batch: &RecordBatch, stats_columns: &[&str]) -> Result<Vec<u8>> {
    let props = writer_properties(stats_columns, batch.num_rows().max(1))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))?;
    w.write(batch)?;
    Ok(w.into_inner()?)
}

/// Min, max and null count of one column, kept as they fold over batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnStats {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub nulls: u64,
}

impl ColumnStats {
    fn fold(&mut self, v: Option<i64>) {
        match v {
            None => self.nulls += 1,
            Some(v) => {
                self.min = Some(self.min.map_or(v, |m| m.min(v)));
                self.max = Some(self.max.map_or(v, |m| m.max(v)));
            }
        }
    }

    pub fn merge(&mut self, other: &ColumnStats) {
        self.nulls += other.nulls;
        for v in [other.min, other.max].into_iter().flatten() {
            self.min = Some(self.min.map_or(v, |m| m.min(v)));
            self.max = Some(self.max.map_or(v, |m| m.max(v)));
        }
    }
}

/// Statistics of a file: rows, and min/max/nulls of its integer and timestamp stats columns.
#[derive(Debug, Clone, Default)]
pub struct FileStats {
    pub rows: u64,
    pub columns: Vec<(String, DataType, ColumnStats)>,
}

impl FileStats {
    pub fn of(batch: &RecordBatch, stats_columns: &[&str]) -> Self {
        let mut out = FileStats { rows: batch.num_rows() as u64, columns: Vec::new() };
        for name in stats_columns {
            let Some(col) = batch.column_by_name(name) else { continue };
            let mut s = ColumnStats::default();
            match col.data_type() {
                DataType::Int32 => col.as_primitive::<Int32Type>().iter().for_each(|v| s.fold(v.map(i64::from))),
                DataType::Int64 => col.as_primitive::<Int64Type>().iter().for_each(|v| s.fold(v)),
                DataType::Timestamp(TimeUnit::Microsecond, _) => col.as_primitive::<TimestampMicrosecondType>().iter().for_each(|v| s.fold(v)),
                _ => continue,
            }
            debug_assert_eq!(s.nulls as usize, col.null_count());
            out.columns.push((name.to_string(), col.data_type().clone(), s));
        }
        out
    }

    pub fn merge(&mut self, other: &FileStats) {
        self.rows += other.rows;
        for (name, dt, s) in &other.columns {
            match self.columns.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, _, mine)) => mine.merge(s),
                None => self.columns.push((name.clone(), dt.clone(), s.clone())),
            }
        }
    }

    /// Delta's `stats` JSON: numRecords, minValues, maxValues, nullCount (timestamps as
    /// RFC 3339 with microseconds, UTC).
    pub fn to_delta_json(&self) -> serde_json::Value {
        let value = |dt: &DataType, v: i64| -> serde_json::Value {
            match dt {
                DataType::Timestamp(..) => match chrono::DateTime::from_timestamp_micros(v) {
                    Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string().into(),
                    None => serde_json::Value::Null,
                },
                _ => v.into(),
            }
        };
        let (mut min, mut max, mut nulls) = (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
        for (name, dt, s) in &self.columns {
            if let (Some(lo), Some(hi)) = (s.min, s.max) {
                min.insert(name.clone(), value(dt, lo));
                max.insert(name.clone(), value(dt, hi));
            }
            nulls.insert(name.clone(), s.nulls.into());
        }
        serde_json::json!({"numRecords": self.rows, "minValues": min, "maxValues": max, "nullCount": nulls})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, TimestampMicrosecondArray};
    use std::sync::Arc;

    #[test]
    fn delta_stats_fold_and_merge() {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("kafka_offset", DataType::Int64, false),
            arrow_schema::Field::new("kafka_ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ]));
        let batch = |offsets: Vec<i64>, ts: Vec<Option<i64>>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(offsets)), Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC"))]).unwrap()
        };
        let mut a = FileStats::of(&batch(vec![5, 3, 9], vec![Some(1_768_471_200_000_000), None, Some(1_768_471_200_123_456)]), &["kafka_offset", "kafka_ts"]);
        a.merge(&FileStats::of(&batch(vec![1], vec![None]), &["kafka_offset", "kafka_ts"]));
        let j = a.to_delta_json();
        assert_eq!(j["numRecords"], 4);
        assert_eq!((j["minValues"]["kafka_offset"].as_i64(), j["maxValues"]["kafka_offset"].as_i64()), (Some(1), Some(9)));
        assert_eq!(j["maxValues"]["kafka_ts"], "2026-01-15T10:00:00.123456Z");
        assert_eq!(j["nullCount"]["kafka_ts"], 2);
        let bytes = encode_parquet(&batch(vec![1], vec![None]), &["kafka_offset"]).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
    }
}
