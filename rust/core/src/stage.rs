//! Staging: committed bronze batches that the warehouse has not loaded yet, fetched and
//! checked as load-ready Parquet on local disk. The warehouse side (Python) loads each batch and
//! writes its ledger entry in one transaction.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::event::bronze_schema;
use crate::lake::{Lake, LakeConfig, Manifest};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::{Error, Result};

/// The warehouse bronze table: the bronze columns plus the lake file each row came from.
pub fn load_schema() -> SchemaRef {
    let mut fields: Vec<Field> = bronze_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("source_file", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The warehouse quarantine table: one row per record the drain refused, with why, where it
/// was in Kafka, its raw bytes, and the lake file it came from. Typed by the core from the
/// quarantine JSONL, so both warehouses load it as Parquet, like bronze.
pub fn quarantine_schema() -> SchemaRef {
    let ts = DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("kafka_topic", DataType::Utf8, false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new("kafka_ts", ts, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        // Exactly one of the two: the payload as text when it is UTF-8, else base64.
        Field::new("payload", DataType::Utf8, true),
        Field::new("payload_base64", DataType::Utf8, true),
        Field::new("source_file", DataType::Utf8, false),
    ]))
}

/// The columns of `table` (`events` or `quarantine`) as (name, type, nullable), type one of
/// string, int32, int64, date, timestamp_ms_utc: what a warehouse needs to write its DDL.
pub fn load_columns(table: &str) -> Result<Vec<(String, &'static str, bool)>> {
    let schema = match table {
        "events" => load_schema(),
        "quarantine" => quarantine_schema(),
        other => return Err(Error::config(format!("no load table {other:?}: events or quarantine"))),
    };
    Ok(schema
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Utf8 => "string",
                DataType::Int32 => "int32",
                DataType::Int64 => "int64",
                DataType::Date32 => "date",
                DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, _) => "timestamp_ms_utc",
                other => unreachable!("bronze has no {other} column"),
            };
            (f.name().clone(), t, f.is_nullable())
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedBatch {
    pub batch_id: String,
    pub partition: i32,
    pub start_offset: i64,
    pub end_offset: i64,
    pub rows: u64,
    /// The batch's bronze files: their lake keys, and where they now are on local disk
    /// (`<out_dir>/<key>`, so the key is the local path less `out_dir/`).
    pub files: Vec<String>,
    pub local_paths: Vec<String>,
    /// Its quarantine files (lake keys), typed into Parquet at `<out_dir>/<key>.parquet`.
    pub quarantined: u64,
    pub quarantine_files: Vec<String>,
    pub quarantine_local_paths: Vec<String>,
}

/// Bronze Parquet plus a constant `source_file` column: the load table's schema.
fn with_source_file(key: &str, bronze: bytes::Bytes) -> Result<Vec<u8>> {
    let schema = load_schema();
    let mut out = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None)?;
    for batch in ParquetRecordBatchReaderBuilder::try_new(bronze)?.build()? {
        let batch = batch?;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(arrow_array::StringArray::from(vec![key; batch.num_rows()])));
        out.write(&arrow_array::RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    Ok(out.into_inner()?)
}

/// Types a quarantine JSONL file (see [`crate::drain`]) into quarantine Parquet.
fn quarantine_to_parquet(key: &str, body: &[u8]) -> Result<(Vec<u8>, u64)> {
    use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
    #[derive(Deserialize)]
    struct Line {
        topic: String,
        partition: i32,
        offset: i64,
        kafka_ts_ms: Option<i64>,
        reason: String,
        detail: String,
        payload: Option<String>,
        payload_base64: Option<String>,
    }
    let (mut topic, mut partition, mut offset) = (StringBuilder::new(), Int32Builder::new(), Int64Builder::new());
    let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let (mut reason, mut detail, mut payload, mut payload_b64, mut source) =
        (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut rows = 0u64;
    for (i, raw) in body.split(|&c| c == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let l: Line = serde_json::from_slice(raw).map_err(|e| Error::data(format!("{key} line {}: {e}", i + 1)))?;
        if l.payload.is_none() == l.payload_base64.is_none() {
            return Err(Error::data(format!("{key} line {}: needs exactly one of payload, payload_base64", i + 1)));
        }
        topic.append_value(&l.topic);
        partition.append_value(l.partition);
        offset.append_value(l.offset);
        ts.append_option(l.kafka_ts_ms);
        reason.append_value(&l.reason);
        detail.append_value(&l.detail);
        payload.append_option(l.payload);
        payload_b64.append_option(l.payload_base64);
        source.append_value(key);
        rows += 1;
    }
    let columns: Vec<arrow_array::ArrayRef> = vec![
        Arc::new(topic.finish()),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(ts.finish()),
        Arc::new(reason.finish()),
        Arc::new(detail.finish()),
        Arc::new(payload.finish()),
        Arc::new(payload_b64.finish()),
        Arc::new(source.finish()),
    ];
    let batch = arrow_array::RecordBatch::try_new(quarantine_schema(), columns)?;
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), None)?;
    w.write(&batch)?;
    Ok((w.into_inner()?, rows))
}

/// Types an NDJSON bronze file (see [`crate::drain::Format::Ndjson`]) into bronze Parquet.
fn ndjson_to_parquet(key: &str, body: &[u8]) -> Result<Vec<u8>> {
    #[derive(Deserialize)]
    struct Line {
        kafka_topic: String,
        kafka_partition: i32,
        kafka_offset: i64,
        event: serde_json::Value,
    }
    let mut builder = crate::event::BronzeBuilder::default();
    for (i, raw) in body.split(|&c| c == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let line: Line = serde_json::from_slice(raw).map_err(|e| Error::data(format!("{key} line {}: {e}", i + 1)))?;
        let payload = line.event.to_string();
        let ev = crate::event::parse_event(payload.as_bytes())
            .map_err(|r| Error::data(format!("{key} line {}: {} ({})", i + 1, r.class, r.detail)))?;
        builder.append(&ev, &line.kafka_topic, line.kafka_partition, line.kafka_offset);
    }
    crate::drain::encode_parquet(&builder.finish()?)
}

/// Copies every object under `prefix` (with `suffix`) into `out_dir`, keeping key paths.
/// Returns (key, local path) pairs in key order. Used for reference data (dimension tables).
pub fn fetch_prefix(lake_cfg: &LakeConfig, prefix: &str, suffix: &str, out_dir: &Path) -> Result<Vec<(String, String)>> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(async {
        lake.check().await?;
        let keys: Vec<String> = lake.list(prefix).await?.into_iter().filter(|k| k.ends_with(suffix)).collect();
        let bodies = futures::future::try_join_all(keys.iter().map(|k| lake.get(k))).await?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, body) in keys.into_iter().zip(bodies) {
            let local = out_dir.join(&key);
            if let Some(dir) = local.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&local, &body)?;
            out.push((key, local.to_string_lossy().into_owned()));
        }
        Ok(out)
    })
}

/// Committed batches of `topic` whose ids are not in `loaded`, in offset order.
pub fn pending(lake_cfg: &LakeConfig, topic: &str, loaded: &HashSet<String>) -> Result<Vec<Manifest>> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(async {
        lake.check().await?;
        Ok(lake.manifests(topic, None).await?.into_iter().filter(|m| !loaded.contains(&m.batch_id)).collect())
    })
}

/// Fetches the pending batches' bronze files into `out_dir` (at `<out_dir>/<key>`): they are
/// already typed Parquet, so they load as they are. Checks each file's footer (schema and row
/// count, nothing decoded) against the bronze schema and its manifest first.
///
/// With `source_file_column`, each file is rewritten with the load table's `source_file` column
/// (see [`load_schema`]), for warehouses that load by column name and cannot derive it from the
/// path (Snowflake's `COPY INTO … MATCH_BY_COLUMN_NAME`). DuckDB derives it, so skips the rewrite.
pub fn prepare(
    lake_cfg: &LakeConfig,
    batches: &[Manifest],
    out_dir: &Path,
    source_file_column: bool,
    progress: &mut ProgressFn<'_>,
) -> Result<Vec<PreparedBatch>> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    std::fs::create_dir_all(out_dir)?;
    let total: u64 = batches.iter().map(|m| m.rows).sum();
    let mut meter = ProgressMeter::new("stage", Some(total));
    let mut done = 0u64;
    let mut out = Vec::with_capacity(batches.len());
    // Every file of these batches at once: the transfer, not the loop, sets the pace.
    let keys: Vec<&str> = batches
        .iter()
        .flat_map(|m| m.files.iter().chain(&m.quarantine_files).map(|f| f.key.as_str()))
        .collect();
    let mut fetched = rt.block_on(futures::future::try_join_all(keys.iter().map(|k| lake.get(k))))?.into_iter();
    let expected = bronze_schema();
    for m in batches {
        let mut local_paths = Vec::with_capacity(m.files.len());
        for entry in &m.files {
            let mut bytes = fetched.next().expect("one body per key");
            if entry.key.ends_with(".ndjson") {
                bytes = ndjson_to_parquet(&entry.key, &bytes)?.into();
            }
            let footer = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?;
            if footer.schema().fields() != expected.fields() {
                return Err(Error::data(format!("{} does not have the bronze schema", entry.key)));
            }
            let rows = footer.metadata().file_metadata().num_rows() as u64;
            if rows != entry.rows {
                return Err(Error::data(format!("{} has {rows} rows but the manifest of {} says {}", entry.key, m.batch_id, entry.rows)));
            }
            let local = out_dir.join(&entry.key);
            if let Some(dir) = local.parent() {
                std::fs::create_dir_all(dir)?;
            }
            if source_file_column {
                std::fs::write(&local, with_source_file(&entry.key, bytes)?)?;
            } else {
                std::fs::write(&local, &bytes)?;
            }
            local_paths.push(local.to_string_lossy().into_owned());
        }
        let rows: u64 = m.files.iter().map(|f| f.rows).sum();
        if rows != m.rows {
            return Err(Error::data(format!("batch {} lists files of {rows} rows but says {}", m.batch_id, m.rows)));
        }
        let mut quarantine_local_paths = Vec::with_capacity(m.quarantine_files.len());
        let mut quarantined = 0;
        for entry in &m.quarantine_files {
            let (parquet, n) = quarantine_to_parquet(&entry.key, &fetched.next().expect("one body per key"))?;
            if n != entry.rows {
                return Err(Error::data(format!("{} has {n} records but the manifest of {} says {}", entry.key, m.batch_id, entry.rows)));
            }
            quarantined += n;
            let local = out_dir.join(format!("{}.parquet", entry.key));
            if let Some(dir) = local.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&local, parquet)?;
            quarantine_local_paths.push(local.to_string_lossy().into_owned());
        }
        if quarantined != m.quarantined {
            return Err(Error::data(format!("batch {} lists {quarantined} quarantined records but says {}", m.batch_id, m.quarantined)));
        }
        done += rows;
        meter.tick(done, 0, false, progress)?;
        out.push(PreparedBatch {
            batch_id: m.batch_id.clone(),
            partition: m.partition,
            start_offset: m.start_offset,
            end_offset: m.end_offset,
            rows,
            files: m.files.iter().map(|f| f.key.clone()).collect(),
            local_paths,
            quarantined,
            quarantine_files: m.quarantine_files.iter().map(|f| f.key.clone()).collect(),
            quarantine_local_paths,
        });
    }
    meter.tick(done, 0, true, progress)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, StringArray, TimestampMillisecondArray};

    #[test]
    fn quarantine_jsonl_types_into_parquet_with_its_source_file() {
        let key = "quarantine/spotify_events/date=2026-01-15/hour=10/t+0+00000000000000000007.jsonl";
        let body = concat!(
            r#"{"topic":"t","partition":0,"offset":7,"kafka_ts_ms":1768471200000,"reason":"invalid_json","detail":"EOF","payload":"{\"a\":"}"#,
            "\n",
            r#"{"topic":"t","partition":0,"offset":9,"kafka_ts_ms":null,"reason":"not_utf8","detail":"byte 3","payload_base64":"/w=="}"#,
            "\n",
        );
        let (parquet, rows) = quarantine_to_parquet(key, body.as_bytes()).unwrap();
        assert_eq!(rows, 2);
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(parquet)).unwrap().build().unwrap();
        let batch = reader.next().unwrap().unwrap();
        assert_eq!(batch.schema(), quarantine_schema());
        let col = |n: &str| batch.column_by_name(n).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        assert_eq!(col("reason").value(1), "not_utf8");
        assert!(col("payload").is_null(1) && col("payload_base64").value(1) == "/w==");
        assert_eq!(col("source_file").value(0), key);
        let ts = batch.column_by_name("kafka_ts").unwrap().as_any().downcast_ref::<TimestampMillisecondArray>().unwrap().clone();
        assert_eq!((ts.value(0), ts.is_null(1)), (1_768_471_200_000, true));

        let neither = r#"{"topic":"t","partition":0,"offset":1,"kafka_ts_ms":null,"reason":"x","detail":"y"}"#;
        assert!(quarantine_to_parquet(key, neither.as_bytes()).is_err());
        assert!(load_columns("nope").is_err());
        assert_eq!(load_columns("quarantine").unwrap().len(), 9);
    }
}
