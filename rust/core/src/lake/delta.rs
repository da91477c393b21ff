//! Delta tables in the lake, through delta-rs: open (or create), read txn versions, commit files
//! under a txn check, and list what the commits after a version added.
//!
//! Exactly once rests on one rule, checked at every commit (docs/architecture.md): a writer
//! commits the rows of a topic-partition from offset `from` only if the table's txn version for
//! that partition is still the one it expected (`from`, or none). delta-rs then refuses the
//! commit if another writer set the same txn meanwhile (`ConcurrentTransaction`), and retries it
//! past commits of other partitions. The loser never makes its files visible.

use std::collections::{BTreeMap, HashMap};

use arrow_schema::{DataType, SchemaRef, TimeUnit};
use deltalake_core::kernel::transaction::{CommitBuilder, CommitConflictError, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, DataType as DeltaType, StructField, Transaction};
use deltalake_core::logstore::{default_logstore, LogStoreRef, StorageConfig};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use object_store::prefix::PrefixStore;
use serde::{Deserialize, Serialize};

use super::Lake;
use crate::{Error, Result};

/// Retries of a commit that other writers' commits (other partitions, compaction) got in
/// before: with three drains and a compaction committing about once a second each, a handful.
const COMMIT_RETRIES: usize = 100;

/// What a table is: where, its columns (as the files have them), and its partition columns
/// (which the files do not have: they are in the log).
pub struct TableSpec {
    pub path: String,
    pub schema: SchemaRef,
    pub partition_columns: Vec<(&'static str, DeltaType)>,
    /// Columns with file statistics (min, max, nulls): what readers prune on.
    pub stats_columns: &'static [&'static str],
}

/// One Delta table of the lake, loaded at some version.
pub struct Table {
    path: String,
    lake: Lake,
    table: DeltaTable,
}

/// The key of our part of a commit's info (`commitInfo`): the records a drain commit holds, and
/// what it records as lost to retention.
pub const COMMIT_INFO_KEY: &str = "spotify_pipeline";

fn delta_err(what: &str, e: DeltaTableError) -> Error {
    match e {
        DeltaTableError::ObjectStore { source } => Error::lake(format!("{what}: {source}")),
        e => Error::lake(format!("{what}: {e}")),
    }
}

fn delta_type(dt: &DataType) -> DeltaType {
    match dt {
        DataType::Utf8 => DeltaType::STRING,
        DataType::Int32 => DeltaType::INTEGER,
        DataType::Int64 => DeltaType::LONG,
        DataType::Date32 => DeltaType::DATE,
        DataType::Float64 => DeltaType::DOUBLE,
        DataType::Boolean => DeltaType::BOOLEAN,
        DataType::Binary => DeltaType::BINARY,
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => DeltaType::TIMESTAMP,
        other => unreachable!("no lake column is of type {other}"),
    }
}

/// The log store of the table at `path`: delta-rs's default one, which commits a version with a
/// create-if-absent put (S3 `If-None-Match`, MinIO too; an atomic link on a local disk).
fn log_store(lake: &Lake, path: &str) -> Result<LogStoreRef> {
    let (root, table_path) = lake.root_and_path(path);
    let url = url::Url::parse(&lake.url_of(path)).map_err(|e| Error::config(format!("table URL {}: {e}", lake.url_of(path))))?;
    let prefixed = std::sync::Arc::new(PrefixStore::new(root.clone(), table_path.as_str()));
    Ok(default_logstore(prefixed, root, &url, &StorageConfig::default()))
}

impl Table {
    /// Loads the table at its latest version, or None if it does not exist yet.
    pub async fn open(lake: &Lake, path: &str) -> Result<Option<Self>> {
        // No log, no table: asked first, because delta-rs reports a missing local directory as
        // an invalid location rather than as "not a table".
        let log = object_store::path::Path::from(format!("{path}/_delta_log"));
        let listed = lake.store().list_with_delimiter(Some(&log)).await.map_err(|e| Error::lake(format!("listing {}: {e}", lake.url_of(path))))?;
        if listed.objects.is_empty() {
            return Ok(None);
        }
        let mut table = DeltaTable::new(log_store(lake, path)?);
        match table.load().await {
            Ok(()) => Ok(Some(Self { path: path.to_string(), lake: lake.clone(), table })),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta_err(&format!("loading {}", lake.url_of(path)), e)),
        }
    }

    /// Loads the table, creating it first if it does not exist. Several writers may race to
    /// create it: whoever loses loads what the winner created.
    pub async fn open_or_create(lake: &Lake, spec: &TableSpec) -> Result<Self> {
        if let Some(t) = Self::open(lake, &spec.path).await? {
            return Ok(t);
        }
        let mut columns: Vec<StructField> =
            spec.schema.fields().iter().map(|f| StructField::new(f.name().clone(), delta_type(f.data_type()), f.is_nullable())).collect();
        columns.extend(spec.partition_columns.iter().map(|(name, dt)| StructField::new(name.to_string(), dt.clone(), false)));
        let created = DeltaTable::new(log_store(lake, &spec.path)?)
            .create()
            .with_columns(columns)
            .with_partition_columns(spec.partition_columns.iter().map(|(n, _)| n.to_string()))
            .with_configuration([("delta.dataSkippingStatsColumns", Some(spec.stats_columns.join(",")))])
            .with_save_mode(SaveMode::Ignore)
            // A creator that loses the race for version 0 must fail, not retry: delta-rs would
            // commit its metadata again as version 1, and every writer that read version 0 would
            // then conflict ("metadata changed").
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match created {
            Ok(table) => Ok(Self { path: spec.path.clone(), lake: lake.clone(), table }),
            Err(e) => Self::open(lake, &spec.path)
                .await?
                .ok_or_else(|| delta_err(&format!("creating {}", lake.url_of(&spec.path)), e)),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn version(&self) -> i64 {
        self.table.version().map_or(-1, |v| v as i64)
    }

    pub fn log_store(&self) -> LogStoreRef {
        self.table.log_store()
    }

    pub(crate) fn delta(&self) -> &DeltaTable {
        &self.table
    }

    /// Reads the commits made since this was loaded.
    pub async fn refresh(&mut self) -> Result<()> {
        self.table.update_incremental(None).await.map_err(|e| delta_err(&format!("refreshing {}", self.path), e))
    }

    /// The table's txn version of each app id (None where it has none).
    pub async fn txn_versions(&self, app_ids: &[String]) -> Result<BTreeMap<String, Option<i64>>> {
        let state = self.table.snapshot().map_err(|e| delta_err(&self.path, e))?;
        let store = self.table.log_store();
        let mut out = BTreeMap::new();
        for id in app_ids {
            let v = state.transaction_version(store.as_ref(), id).await.map_err(|e| delta_err(&self.path, e))?;
            out.insert(id.clone(), v);
        }
        Ok(out)
    }

    /// Commits `adds` and sets each txn in `txns` to its new version, but only if every txn is
    /// still at the version the caller expected (`expected`): otherwise nothing is committed and
    /// the app ids that moved are returned. Other writers' commits in between are retried past.
    /// `info`, if any, goes into the commit's info under [`COMMIT_INFO_KEY`].
    pub async fn commit_if_txns(
        &mut self,
        adds: Vec<Add>,
        txns: &BTreeMap<String, (Option<i64>, i64)>,
        operation: DeltaOperation,
        info: Option<serde_json::Value>,
    ) -> Result<std::result::Result<i64, Vec<String>>> {
        let app_metadata: HashMap<String, serde_json::Value> = info.into_iter().map(|v| (COMMIT_INFO_KEY.to_string(), v)).collect();
        loop {
            let ids: Vec<String> = txns.keys().cloned().collect();
            let now = self.txn_versions(&ids).await?;
            let moved: Vec<String> = txns.iter().filter(|(id, (expected, _))| now[*id] != *expected).map(|(id, _)| id.clone()).collect();
            if !moved.is_empty() {
                return Ok(Err(moved));
            }
            let mut actions: Vec<Action> = adds.iter().cloned().map(Action::Add).collect();
            let ms = chrono::Utc::now().timestamp_millis();
            actions.extend(txns.iter().map(|(id, (_, next))| Action::Txn(Transaction::new_with_last_update(id, *next, Some(ms)))));
            let committed = CommitBuilder::from(CommitProperties::default())
                .with_actions(actions)
                .with_app_metadata(app_metadata.clone())
                .with_max_retries(COMMIT_RETRIES)
                .build(Some(self.table.snapshot().map_err(|e| delta_err(&self.path, e))?), self.table.log_store(), operation.clone())
                .await;
            match committed {
                Ok(done) => {
                    let version = done.version();
                    self.refresh().await?;
                    return Ok(Ok(version as i64));
                }
                // Someone set one of our txns after we read them (look again, and give way), or
                // changed the table's metadata (look again, and commit on the new one).
                Err(DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction | CommitConflictError::MetadataChanged),
                }) => {
                    self.refresh().await?;
                }
                Err(e) => return Err(delta_err(&format!("committing to {}", self.lake.url_of(&self.path)), e)),
            }
        }
    }

    /// Commits `actions` as they are (compaction: removes and adds, neither changing data).
    pub async fn commit(&mut self, actions: Vec<Action>, operation: DeltaOperation) -> Result<i64> {
        let done = CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .with_max_retries(COMMIT_RETRIES)
            .build(Some(self.table.snapshot().map_err(|e| delta_err(&self.path, e))?), self.table.log_store(), operation)
            .await
            .map_err(|e| delta_err(&format!("committing to {}", self.lake.url_of(&self.path)), e))?;
        self.refresh().await?;
        Ok(done.version() as i64)
    }

    /// The active files: (path inside the table, its add action).
    pub async fn active_files(&self) -> Result<Vec<Add>> {
        use futures::TryStreamExt;
        let state = self.table.snapshot().map_err(|e| delta_err(&self.path, e))?;
        let views: Vec<_> = state.snapshot().file_views(self.table.log_store().as_ref(), None).try_collect().await.map_err(|e| delta_err(&self.path, e))?;
        // Deprecated in favour of Arrow arrays; an add per file is what compaction commits anyway.
        #[allow(deprecated)]
        Ok(views.into_iter().map(|f| f.add_action()).collect())
    }

    /// What each commit after `after` (up to this table's version) added with `dataChange`:
    /// the rows a warehouse has not loaded yet. Compaction commits add nothing here.
    pub async fn changes_after(&self, after: i64) -> Result<Vec<VersionChange>> {
        let store = self.table.log_store();
        let mut out = Vec::new();
        for version in (after + 1)..=self.version() {
            let bytes = store.read_commit_entry(version as u64).await.map_err(|e| delta_err(&self.path, e))?.ok_or_else(|| {
                Error::data(format!(
                    "version {version} of {} is no longer in its log (log retention) but was never loaded; \
                     load it from a backup, or restart the ledger (README, Operations)",
                    self.lake.url_of(&self.path)
                ))
            })?;
            let mut files = Vec::new();
            let mut lost = Vec::new();
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let action: serde_json::Value = serde_json::from_slice(line)?;
                if let Some(info) = action.get("commitInfo") {
                    lost.extend(LostRange::from_commit_info(info));
                }
                let Some(add) = action.get("add") else { continue };
                let add: Add = serde_json::from_value(add.clone())?;
                if add.data_change {
                    files.push(DataFile::of(&self.path, &add));
                }
            }
            out.push(VersionChange { version, files, lost });
        }
        Ok(out)
    }
}

/// A data file a commit added, as a warehouse loads it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFile {
    /// The lake key: `<table>/<path in the table>`.
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub partition_values: BTreeMap<String, Option<String>>,
    /// The Kafka partition and offsets of its rows, from its statistics (a drain's file holds
    /// one partition's range).
    pub kafka_partition: Option<i64>,
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
}

impl DataFile {
    fn of(table: &str, add: &Add) -> Self {
        let stats = add.stats.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()).unwrap_or_default();
        let path = percent_decode(&add.path);
        let single_partition = stats["minValues"]["kafka_partition"] == stats["maxValues"]["kafka_partition"];
        Self {
            key: format!("{table}/{path}"),
            rows: stats["numRecords"].as_u64().unwrap_or(0),
            bytes: add.size as u64,
            partition_values: add.partition_values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            kafka_partition: stats["minValues"]["kafka_partition"].as_i64().filter(|_| single_partition),
            first_offset: stats["minValues"]["kafka_offset"].as_i64(),
            last_offset: stats["maxValues"]["kafka_offset"].as_i64(),
        }
    }
}

/// The data-changing files of one commit, and the records it records as lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionChange {
    pub version: i64,
    pub files: Vec<DataFile>,
    pub lost: Vec<LostRange>,
}

/// Records Kafka's retention deleted before a drain read them, skipped with `allow_data_loss`:
/// the drain writes them into its commit's info (`spotify_pipeline.lost_to_retention`), so
/// that the warehouse counts them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LostRange {
    pub kafka_partition: i64,
    pub from_offset: Option<i64>,
    pub to_offset: i64,
    pub records: i64,
}

impl LostRange {
    fn from_commit_info(info: &serde_json::Value) -> Vec<Self> {
        let Some(lost) = info[COMMIT_INFO_KEY]["lost_to_retention"].as_object() else { return Vec::new() };
        lost.iter()
            .filter_map(|(p, r)| {
                Some(Self {
                    kafka_partition: p.parse().ok()?,
                    from_offset: r["from_offset"].as_i64(),
                    to_offset: r["to_offset"].as_i64()?,
                    records: r["records"].as_i64()?,
                })
            })
            .collect()
    }
}

/// Delta paths in the log are URI-encoded (`date=2026-01-15` stays as it is; a space would not).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An add action for a new data file, with its statistics JSON.
pub fn new_add(path: String, bytes: u64, partition_values: &[(&str, String)], stats: serde_json::Value, data_change: bool) -> Add {
    Add {
        path,
        partition_values: partition_values.iter().map(|(k, v)| (k.to_string(), Some(v.clone()))).collect(),
        size: bytes as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change,
        stats: Some(stats.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn percent_decoding_of_log_paths() {
        assert_eq!(percent_decode("date=2026-01-15/hour=7/a%20b.parquet"), "date=2026-01-15/hour=7/a b.parquet");
        assert_eq!(percent_decode("x%2"), "x%2");
    }

    fn spec() -> TableSpec {
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new("v", DataType::Int64, false)]));
        TableSpec { path: "bronze/t".into(), schema, partition_columns: vec![("hour", DeltaType::INTEGER)], stats_columns: &["v"] }
    }

    #[test]
    fn a_txn_commit_happens_only_at_the_expected_version() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&super::super::LakeConfig { url: format!("file://{}", dir.path().display()), options: Default::default() }).unwrap();
        let rt = crate::runtime::runtime().unwrap();
        rt.block_on(async {
            let mut a = Table::open_or_create(&lake, &spec()).await.unwrap();
            let mut b = Table::open_or_create(&lake, &spec()).await.unwrap();
            let op = || DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
            let add = |n: &str| new_add(format!("hour=1/{n}.parquet"), 10, &[("hour", "1".into())], serde_json::json!({"numRecords": 5}), true);
            let txns = |from: Option<i64>, to: i64| BTreeMap::from([("t/0".to_string(), (from, to))]);
            assert_eq!(a.commit_if_txns(vec![add("a")], &txns(None, 100), op(), None).await.unwrap(), Ok(1));
            // b still thinks partition 0 starts at nothing: it must give way, committing nothing.
            assert_eq!(b.commit_if_txns(vec![add("b")], &txns(None, 50), op(), None).await.unwrap(), Err(vec!["t/0".to_string()]));
            // Another partition's txn goes through past a's commit.
            let other = BTreeMap::from([("t/1".to_string(), (None, 7))]);
            assert_eq!(b.commit_if_txns(vec![add("c")], &other, op(), None).await.unwrap(), Ok(2));
            a.refresh().await.unwrap();
            assert_eq!(a.txn_versions(&["t/0".into(), "t/1".into(), "t/2".into()]).await.unwrap().into_values().collect::<Vec<_>>(), vec![Some(100), Some(7), None]);
            let changes = a.changes_after(0).await.unwrap();
            assert_eq!(changes.iter().map(|c| (c.version, c.files.len())).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
            assert_eq!(changes[0].files[0].key, "bronze/t/hour=1/a.parquet");
            assert_eq!(changes[0].files[0].rows, 5);
            assert_eq!(a.active_files().await.unwrap().len(), 2);
        });
    }
}
