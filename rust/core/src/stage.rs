//! Staging: the commits of the bronze Delta tables that a warehouse has not loaded yet, their
//! files fetched and checked as load-ready Parquet on local disk. The warehouse side (Python)
//! loads a range of versions and writes its ledger rows in one transaction.

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::event::bronze_schema;
use crate::lake::delta::{DataFile, Table, VersionChange};
use crate::lake::{bronze_table, quarantine_table, Lake, LakeConfig};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::quarantine::quarantine_schema;
use crate::{Error, Result};

/// The columns of a table's files: `events` (bronze) or `quarantine`.
fn file_schema(table: &str) -> Result<SchemaRef> {
    match table {
        "events" => Ok(bronze_schema()),
        "quarantine" => Ok(quarantine_schema()),
        other => Err(Error::config(format!("no load table {other:?}: events or quarantine"))),
    }
}

/// A warehouse load table: the file's columns plus the lake file each row came from.
pub fn load_schema(table: &str) -> Result<SchemaRef> {
    let mut fields: Vec<Field> = file_schema(table)?.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("source_file", DataType::Utf8, false));
    Ok(Arc::new(Schema::new(fields)))
}

/// The columns of a load table (`events` or `quarantine`) as (name, type, nullable), type one of
/// string, binary, int32, int64, date, timestamp_utc: what a warehouse needs to write its DDL.
pub fn load_columns(table: &str) -> Result<Vec<(String, &'static str, bool)>> {
    Ok(load_schema(table)?
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Utf8 => "string",
                DataType::Binary => "binary",
                DataType::Int32 => "int32",
                DataType::Int64 => "int64",
                DataType::Date32 => "date",
                DataType::Timestamp(TimeUnit::Microsecond, _) => "timestamp_utc",
                other => unreachable!("bronze has no {other} column"),
            };
            (f.name().clone(), t, f.is_nullable())
        })
        .collect())
}

/// A file's rows plus a constant `source_file` column: the load table's schema.
fn with_source_file(key: &str, file: bytes::Bytes, schema: SchemaRef) -> Result<Vec<u8>> {
    let mut out = parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None)?;
    for batch in ParquetRecordBatchReaderBuilder::try_new(file)?.build()? {
        let batch = batch?;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(arrow_array::StringArray::from(vec![key; batch.num_rows()])));
        out.write(&arrow_array::RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    Ok(out.into_inner()?)
}

/// The active files of a reference table (`reference/<name>`), fetched into `out_dir`: (key,
/// local path, partition values). Empty if the table does not exist.
pub fn fetch_reference(lake_cfg: &LakeConfig, name: &str, out_dir: &Path) -> Result<Vec<(String, String)>> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(async {
        lake.check().await?;
        let path = crate::simulate::reference::reference_table(name);
        let Some(table) = Table::open(&lake, &path).await? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for add in table.active_files().await? {
            let key = format!("{path}/{}", add.path);
            let body = lake.get(&key).await?;
            let local = out_dir.join(&key);
            if let Some(dir) = local.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&local, &body)?;
            out.push((key, local.to_string_lossy().into_owned()));
        }
        out.sort();
        Ok(out)
    })
}

/// A lake file, fetched and checked, on local disk, ready to load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedFile {
    /// Its lake key (`<table>/date=…/hour=…/….parquet`): each row's `source_file`.
    pub key: String,
    /// `<out_dir>/<key>`, so the key is the local path less `out_dir/`.
    pub local_path: String,
    pub rows: u64,
}

/// What a warehouse has not loaded yet: each table's data-changing commits after the versions
/// its ledger holds, up to the versions read now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pending {
    pub events_version: i64,
    pub quarantine_version: i64,
    pub events: Vec<VersionChange>,
    pub quarantine: Vec<VersionChange>,
}

/// The commits of `dataset`'s events and quarantine tables after `after_events` and
/// `after_quarantine` (-1: from the start). Compaction commits (no data change) carry no files.
pub fn pending(lake_cfg: &LakeConfig, dataset: &str, after_events: i64, after_quarantine: i64) -> Result<Pending> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(async {
        lake.check().await?;
        let mut out = Pending { events_version: -1, quarantine_version: -1, ..Default::default() };
        if let Some(t) = Table::open(&lake, &bronze_table(dataset)).await? {
            out.events_version = t.version();
            out.events = t.changes_after(after_events).await?;
        }
        if let Some(t) = Table::open(&lake, &quarantine_table(dataset)).await? {
            out.quarantine_version = t.version();
            out.quarantine = t.changes_after(after_quarantine).await?;
        }
        Ok(out)
    })
}

/// Fetches `files` of `table` (`events` or `quarantine`) into `out_dir` (at `<out_dir>/<key>`):
/// they are typed Parquet already, so they load as they are. Checks each file's footer (schema
/// and row count, nothing decoded) against the table's schema and its commit first. A file
/// missing from the lake fails the whole call, naming every missing file: nothing is half-loaded.
///
/// With `source_file_column`, each file is rewritten with the load table's `source_file` column,
/// for warehouses that load by column name and cannot derive it from the path (Snowflake's
/// `COPY INTO … MATCH_BY_COLUMN_NAME`). DuckDB derives it, so skips the rewrite.
pub fn prepare(
    lake_cfg: &LakeConfig,
    table: &str,
    files: &[DataFile],
    out_dir: &Path,
    source_file_column: bool,
    progress: &mut ProgressFn<'_>,
) -> Result<Vec<PreparedFile>> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    let expected = file_schema(table)?;
    std::fs::create_dir_all(out_dir)?;
    let total: u64 = files.iter().map(|f| f.rows).sum();
    let mut meter = ProgressMeter::new("stage", Some(total));
    // Every file at once: the transfer, not the loop, sets the pace.
    let fetched = rt.block_on(futures::future::join_all(files.iter().map(|f| lake.get(&f.key))));
    let missing: Vec<&str> = files.iter().zip(&fetched).filter(|(_, r)| r.is_err()).map(|(f, _)| f.key.as_str()).collect();
    if !missing.is_empty() {
        let first = fetched.into_iter().find_map(|r| r.err()).expect("one failed");
        return Err(match first {
            Error::Data(_) => Error::data(format!(
                "{} file(s) that committed versions add are missing from the lake (removed by hand, or by a VACUUM \
                 with too short a retention); nothing was loaded. Missing: {}. See README, Operations: \"A missing bronze file\"",
                missing.len(),
                missing.join(", ")
            )),
            other => other,
        });
    }
    let mut out = Vec::with_capacity(files.len());
    let mut done = 0u64;
    for (f, body) in files.iter().zip(fetched) {
        let bytes = body?;
        let footer = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?;
        if footer.schema().fields() != expected.fields() {
            return Err(Error::data(format!("{} does not have the {table} table's schema", f.key)));
        }
        let rows = footer.metadata().file_metadata().num_rows() as u64;
        if rows != f.rows {
            return Err(Error::data(format!("{} has {rows} rows but its commit says {}", f.key, f.rows)));
        }
        let local = out_dir.join(&f.key);
        if let Some(dir) = local.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if source_file_column {
            std::fs::write(&local, with_source_file(&f.key, bytes, load_schema(table)?)?)?;
        } else {
            std::fs::write(&local, &bytes)?;
        }
        done += rows;
        meter.tick(done, 0, false, progress)?;
        out.push(PreparedFile { key: f.key.clone(), local_path: local.to_string_lossy().into_owned(), rows });
    }
    meter.tick(done, 0, true, progress)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_tables_are_the_files_columns_and_their_source() {
        let events = load_columns("events").unwrap();
        assert_eq!(events.last().unwrap(), &("source_file".to_string(), "string", false));
        assert!(events.iter().any(|(n, t, _)| n == "raw" && *t == "binary"));
        assert!(events.iter().any(|(n, t, _)| n == "event_ts" && *t == "timestamp_utc"));
        assert_eq!(load_columns("quarantine").unwrap().len(), 9);
        assert!(load_columns("nope").is_err());
    }
}
