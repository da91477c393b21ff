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

/// The load table's columns as (name, type, nullable), type one of string, int32, int64, date,
/// timestamp_ms_utc: what a warehouse needs to write its DDL.
pub fn load_columns() -> Vec<(String, &'static str, bool)> {
    load_schema()
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
        .collect()
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
pub fn prepare(lake_cfg: &LakeConfig, batches: &[Manifest], out_dir: &Path, progress: &mut ProgressFn<'_>) -> Result<Vec<PreparedBatch>> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    std::fs::create_dir_all(out_dir)?;
    let total: u64 = batches.iter().map(|m| m.rows).sum();
    let mut meter = ProgressMeter::new("stage", Some(total));
    let mut done = 0u64;
    let mut out = Vec::with_capacity(batches.len());
    // Every file of these batches at once: the transfer, not the loop, sets the pace.
    let keys: Vec<&str> = batches.iter().flat_map(|m| m.files.iter().map(|f| f.key.as_str())).collect();
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
            std::fs::write(&local, &bytes)?;
            local_paths.push(local.to_string_lossy().into_owned());
        }
        let rows: u64 = m.files.iter().map(|f| f.rows).sum();
        if rows != m.rows {
            return Err(Error::data(format!("batch {} lists files of {rows} rows but says {}", m.batch_id, m.rows)));
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
        });
    }
    meter.tick(done, 0, true, progress)?;
    Ok(out)
}
