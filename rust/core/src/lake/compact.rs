//! Table maintenance: OPTIMIZE (bin-packing the small files of closed hours into files of a
//! target size) and VACUUM (deleting files no version within the retention needs).
//!
//! OPTIMIZE is ours, on delta-rs's commit API, because delta-rs's own needs its datafusion
//! feature (minutes more to build on 2 cores, for one operation). Like Delta's, it removes and
//! adds files with `dataChange = false`: readers see the same rows, a warehouse that loads by
//! version skips the commit, and concurrent drains (which only append) never conflict with it.

use std::collections::BTreeMap;
use std::time::Instant;

use deltalake_core::kernel::{Action, Add, Remove};
use deltalake_core::operations::vacuum::VacuumMode;
use deltalake_core::protocol::DeltaOperation;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
#[allow(deprecated)]
use parquet::arrow::async_writer::{AsyncArrowWriter, ParquetObjectWriter};
use serde::{Deserialize, Serialize};

use super::delta::{new_add, Table};
use super::{Lake, LakeConfig};
use crate::event::BRONZE_STATS_COLUMNS;
use crate::parquet::{writer_properties, FileStats};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::quarantine::QUARANTINE_STATS_COLUMNS;
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CompactOptions {
    pub dataset: String,
    /// Size of the files OPTIMIZE writes (compressed bytes).
    pub target_file_bytes: u64,
    /// An hour is closed, and compacted, this long after it ends: records reach an hour
    /// partition by their Kafka timestamp, so after its end only a lagging drain adds to it.
    pub closed_after_s: i64,
}

impl Default for CompactOptions {
    fn default() -> Self {
        // 128 MB: Delta's and Snowflake's recommended file size for scans and COPY.
        Self { dataset: "spotify_events".into(), target_file_bytes: 128 << 20, closed_after_s: 600 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CompactSummary {
    pub table: String,
    pub partitions_compacted: u64,
    pub files_removed: u64,
    pub files_added: u64,
    pub bytes_removed: u64,
    pub bytes_added: u64,
    pub rows: u64,
    /// The table's version after the last compaction commit (-1: none made).
    pub version: i64,
    pub elapsed_s: f64,
    pub warnings: Vec<String>,
}

/// Rows per row group of compacted files: bounds the writer's memory (a row group is held in
/// memory, encoded, until it is flushed) at a few tens of MB.
const COMPACT_ROW_GROUP_ROWS: usize = 262_144;

/// Compacts the closed hours of `dataset`'s events and quarantine tables.
pub fn compact(lake_cfg: &LakeConfig, opts: &CompactOptions, progress: &mut ProgressFn<'_>) -> Result<Vec<CompactSummary>> {
    if opts.target_file_bytes < 1 << 20 {
        return Err(Error::config("target_file_bytes must be at least 1 MiB"));
    }
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    let mut out = Vec::new();
    for (path, stats_columns) in [(super::bronze_table(&opts.dataset), BRONZE_STATS_COLUMNS), (super::quarantine_table(&opts.dataset), QUARANTINE_STATS_COLUMNS)] {
        let summary = rt.block_on(async {
            lake.check().await?;
            match Table::open(&lake, &path).await? {
                Some(mut t) => compact_table(&lake, &mut t, opts, stats_columns, progress).await,
                None => Ok(CompactSummary { table: lake.url_of(&path), version: -1, ..Default::default() }),
            }
        })?;
        out.push(summary);
    }
    Ok(out)
}

/// Files to rewrite together: consecutive small files up to the target, the last bin merged into
/// the one before it when it would be under half the target (so no small file is left behind).
fn bins(mut files: Vec<Add>, target: u64) -> Vec<Vec<Add>> {
    files.retain(|f| (f.size as u64) < target);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bins: Vec<Vec<Add>> = Vec::new();
    let mut size = 0u64;
    for f in files {
        if bins.is_empty() || size + f.size as u64 > target {
            bins.push(Vec::new());
            size = 0;
        }
        size += f.size as u64;
        bins.last_mut().expect("pushed").push(f);
    }
    if bins.len() >= 2 && bins.last().expect("two").iter().map(|f| f.size as u64).sum::<u64>() < target / 2 {
        let last = bins.pop().expect("two");
        bins.last_mut().expect("one").extend(last);
    }
    bins.retain(|b| b.len() >= 2);
    bins
}

/// (date, hour) of a file's partition values, if it has both.
fn hour_of(add: &Add) -> Option<(String, u32)> {
    let date = add.partition_values.get("date")?.clone()?;
    let hour = add.partition_values.get("hour")?.as_deref()?.parse().ok()?;
    Some((date, hour))
}

/// Whether the hour `(date, hour)` ended at least `closed_after_s` before `now_ms`.
fn is_closed(date: &str, hour: u32, closed_after_s: i64, now_ms: i64) -> bool {
    let Some(ms) = crate::event::parse_rfc3339_ms(&format!("{date}T00:00:00Z")) else { return false };
    ms + (hour as i64 + 1) * 3_600_000 + closed_after_s * 1000 <= now_ms
}

async fn compact_table(lake: &Lake, table: &mut Table, opts: &CompactOptions, stats_columns: &[&str], progress: &mut ProgressFn<'_>) -> Result<CompactSummary> {
    let started = Instant::now();
    let mut summary = CompactSummary { table: lake.url_of(table.path()), version: -1, ..Default::default() };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut by_hour: BTreeMap<(String, u32), Vec<Add>> = BTreeMap::new();
    for add in table.active_files().await? {
        if let Some((date, hour)) = hour_of(&add) {
            if is_closed(&date, hour, opts.closed_after_s, now_ms) {
                by_hour.entry((date, hour)).or_default().push(add);
            }
        }
    }
    let plan: Vec<((String, u32), Vec<Vec<Add>>)> =
        by_hour.into_iter().map(|(h, files)| (h, bins(files, opts.target_file_bytes))).filter(|(_, b)| !b.is_empty()).collect();
    let total: u64 = plan.iter().flat_map(|(_, bins)| bins.iter().flatten()).map(|f| f.size as u64).sum();
    let mut meter = ProgressMeter::new("compact", Some(total));
    let mut done = 0u64;
    for ((date, hour), bins) in plan {
        let mut actions = Vec::new();
        let mut written = Vec::new();
        for bin in bins {
            let (add, stats) = rewrite(lake, table.path(), &date, hour, &bin, stats_columns).await?;
            let removed: u64 = bin.iter().map(|f| f.size as u64).sum();
            summary.files_removed += bin.len() as u64;
            summary.bytes_removed += removed;
            summary.files_added += 1;
            summary.bytes_added += add.size as u64;
            summary.rows += stats.rows;
            written.push(format!("{}/{}", table.path(), add.path));
            let ts = chrono::Utc::now().timestamp_millis();
            actions.extend(bin.into_iter().map(|f| {
                Action::Remove(Remove {
                    path: f.path,
                    data_change: false,
                    deletion_timestamp: Some(ts),
                    extended_file_metadata: Some(true),
                    partition_values: Some(f.partition_values),
                    size: Some(f.size),
                    ..Default::default()
                })
            }));
            actions.push(Action::Add(add));
            done += removed;
            meter.tick(done, done, false, progress)?;
        }
        let op = DeltaOperation::Optimize { predicate: Some(format!("date = '{date}' AND hour = {hour}")), target_size: opts.target_file_bytes as i64 };
        match table.commit(actions, op).await {
            Ok(v) => {
                summary.version = v;
                summary.partitions_compacted += 1;
            }
            // Another compaction removed some of the same files first: its result stands, ours goes.
            Err(e) => {
                for key in written {
                    lake.delete(&key).await?;
                }
                summary.warnings.push(format!("date={date}/hour={hour} not compacted: {e}"));
            }
        }
    }
    meter.tick(done, done, true, progress)?;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Streams the files of `bin` into one new file of the same hour partition.
// parquet 59 deprecates its object_store reader and writer for hand-written ones; they are
// what delta-rs 1.1 itself uses, so they stay until the pins move.
#[allow(deprecated)]
async fn rewrite(lake: &Lake, table: &str, date: &str, hour: u32, bin: &[Add], stats_columns: &[&str]) -> Result<(Add, FileStats)> {
    let first = bin.first().expect("a bin has files");
    let store = lake.store().clone();
    let reader = |f: &Add| ParquetObjectReader::new(store.clone(), Path::from(format!("{table}/{}", f.path))).with_file_size(f.size as u64);
    let schema = ParquetRecordBatchStreamBuilder::new(reader(first)).await?.schema().clone();
    let path = format!("date={date}/hour={hour}/compacted-{}.parquet", uuid::Uuid::new_v4().simple());
    let writer = ParquetObjectWriter::new(store.clone(), Path::from(format!("{table}/{path}")));
    let props = writer_properties(stats_columns, COMPACT_ROW_GROUP_ROWS)?;
    let mut w = AsyncArrowWriter::try_new(writer, schema.clone(), Some(props))?;
    let mut stats = FileStats::default();
    for f in bin {
        let mut stream = ParquetRecordBatchStreamBuilder::new(reader(f)).await?.with_batch_size(65_536).build()?;
        while let Some(batch) = stream.try_next().await? {
            if batch.schema().fields() != schema.fields() {
                return Err(Error::data(format!("{table}/{} has another schema than the rest of its hour", f.path)));
            }
            stats.merge(&FileStats::of(&batch, stats_columns));
            w.write(&batch).await?;
        }
    }
    w.close().await?;
    let size = store.head(&Path::from(format!("{table}/{path}"))).await?.size;
    let partition_values: Vec<(&str, String)> = vec![("date", date.to_string()), ("hour", hour.to_string())];
    Ok((new_add(path, size, &partition_values, stats.to_delta_json(), false), stats))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct VacuumOptions {
    pub dataset: String,
    /// Files removed from the table longer ago than this are deleted; so are files no commit
    /// ever added (a killed drain's, or a losing one's) once this old.
    pub retention_hours: u64,
    pub dry_run: bool,
    /// Refuse a retention under [`MIN_RETENTION_HOURS`]. Turn off only while no drain runs on
    /// the tables (a test, or a maintenance window): a drain's uploaded, not yet committed
    /// files are referenced by no version, and would go.
    pub enforce_retention_guard: bool,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        // Delta's own default: a week, longer than any load or reader should lag.
        Self { dataset: "spotify_events".into(), retention_hours: 168, dry_run: false, enforce_retention_guard: true }
    }
}

/// The shortest retention VACUUM accepts: a file a drain has just uploaded but not committed yet
/// is not referenced by any version, and must not be deleted under it.
pub const MIN_RETENTION_HOURS: u64 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VacuumSummary {
    pub table: String,
    pub files_deleted: u64,
    pub deleted: Vec<String>,
    pub dry_run: bool,
    pub elapsed_s: f64,
}

/// VACUUMs `dataset`'s events and quarantine tables (full mode: unreferenced files too).
pub fn vacuum(lake_cfg: &LakeConfig, opts: &VacuumOptions) -> Result<Vec<VacuumSummary>> {
    if opts.enforce_retention_guard && opts.retention_hours < MIN_RETENTION_HOURS {
        return Err(Error::config(format!(
            "retention_hours {} is below the guard of {MIN_RETENTION_HOURS} h: a drain's uploaded, not yet committed files would be deleted",
            opts.retention_hours
        )));
    }
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    let mut out = Vec::new();
    for path in [super::bronze_table(&opts.dataset), super::quarantine_table(&opts.dataset)] {
        let started = Instant::now();
        let summary = rt.block_on(async {
            lake.check().await?;
            let Some(table) = Table::open(&lake, &path).await? else {
                return Ok::<_, Error>(VacuumSummary { table: lake.url_of(&path), dry_run: opts.dry_run, ..Default::default() });
            };
            let (_, metrics) = table
                .delta()
                .clone()
                .vacuum()
                .with_mode(VacuumMode::Full)
                .with_retention_period(chrono::Duration::hours(opts.retention_hours as i64))
                // The guard above is ours (1 h); Delta's (7 days) would refuse a shorter setting.
                .with_enforce_retention_duration(false)
                .with_dry_run(opts.dry_run)
                .await
                .map_err(|e| Error::lake(format!("vacuum of {}: {e}", lake.url_of(&path))))?;
            Ok(VacuumSummary {
                table: lake.url_of(&path),
                files_deleted: metrics.files_deleted.len() as u64,
                deleted: metrics.files_deleted.into_iter().take(50).collect(),
                dry_run: opts.dry_run,
                elapsed_s: started.elapsed().as_secs_f64(),
            })
        })?;
        out.push(summary);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(path: &str, size: i64) -> Add {
        Add { path: path.into(), size, ..Default::default() }
    }

    #[test]
    fn bins_pack_small_files_and_leave_no_small_remainder() {
        let files: Vec<Add> = (0..10).map(|i| add(&format!("f{i}"), 30)).chain([add("big", 200)]).collect();
        let b = bins(files, 100);
        // 3 + 3 + 3 files of 30, then 1 left (30 < 50) merged into the third bin; "big" stays.
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![3, 3, 4]);
        assert!(b.iter().flatten().all(|f| f.path != "big"));
        assert!(bins(vec![add("a", 10)], 100).is_empty(), "a single file is left as it is");
    }

    #[test]
    fn an_hour_closes_after_its_end_and_the_grace() {
        let end_of_10 = 1_768_474_800_000; // 2026-01-15T11:00Z
        assert!(!is_closed("2026-01-15", 10, 600, end_of_10 + 599_000));
        assert!(is_closed("2026-01-15", 10, 600, end_of_10 + 600_000));
    }
}
