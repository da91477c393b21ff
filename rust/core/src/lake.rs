//! The lake: where bronze files, quarantine files and commit manifests live, and how they are
//! named. Everything goes through `object_store`, so S3, MinIO and a local directory all work.
//!
//! Layout (DESIGN.md):
//! ```text
//! bronze/<dataset>/date=YYYY-MM-DD/hour=HH/<topic>+<partition>+<start offset, 20 digits>.parquet (or .ndjson)
//! bronze/_manifests/<topic>/<partition>/<start offset>.json       the commit log
//! quarantine/<dataset>/date=YYYY-MM-DD/hour=HH/<topic>+<partition>+<start>.jsonl
//! ```
//! A batch exists for readers only once its manifest exists. Data files are written first and
//! named by the batch's start offset, so a batch redone after a crash overwrites the same keys.
//! A manifest is created only if absent, and its key is its start offset alone: two drains
//! racing on one partition pick the same key, and only the first commit wins.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

use crate::event::format_date;
use crate::{Error, Result};

/// Where the lake is: `s3://bucket[/prefix]` or `file:///abs/dir`, and object_store options
/// (`aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`, `aws_region`,
/// `aws_allow_http`, `connect_timeout`, `timeout`, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LakeConfig {
    pub url: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Cheap to clone: clones share the store and its connections.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl Lake {
    pub fn open(cfg: &LakeConfig) -> Result<Self> {
        let url = cfg.url.trim_end_matches('/').to_string();
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::config(format!("lake URL {url:?} names no bucket")));
            }
            // Bounded retries: a wrong endpoint must fail in seconds, not object_store's
            // default of three minutes.
            let retry = RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(15),
                ..Default::default()
            };
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_config(AmazonS3ConfigKey::Client(object_store::ClientConfigKey::ConnectTimeout), "5s")
                .with_config(AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout), "60s");
            for (k, v) in &cfg.options {
                let key: AmazonS3ConfigKey = k
                    .parse()
                    .map_err(|e| Error::config(format!("lake option {k:?}: {e}")))?;
                b = b.with_config(key, v.clone());
            }
            let s3 = b.build().map_err(|e| Error::config(format!("lake {url}: {e}")))?;
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(&url);
            if dir.is_empty() || !dir.starts_with('/') {
                return Err(Error::config(format!(
                    "lake URL {url:?} must be s3://bucket[/prefix] or file:///absolute/dir"
                )));
            }
            std::fs::create_dir_all(dir).map_err(|e| Error::lake(format!("cannot create {dir}: {e}")))?;
            Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(|e| Error::lake(format!("{dir}: {e}")))?)
        };
        Ok(Self { store, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fails fast, with the lake's URL in the message, if the store cannot be reached.
    pub async fn check(&self) -> Result<()> {
        self.store
            .list_with_delimiter(Some(&Path::from("bronze")))
            .await
            .map(|_| ())
            .map_err(|e| Error::lake(format!("cannot reach the lake at {}: {e}", self.url)))
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&Path::from(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| Error::lake(format!("writing {key} to {}: {e}", self.url)))
    }

    /// Writes `key` only if it does not exist yet (S3 `If-None-Match: *`, an atomic create on a
    /// local disk). Returns false, writing nothing, if it exists.
    pub async fn put_if_absent(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&Path::from(key), PutPayload::from(bytes), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(Error::lake(format!("writing {key} to {}: {e}", self.url))),
        }
    }

    /// `put` for owned arguments, so several can run at once.
    pub async fn put_owned(&self, key: String, bytes: Vec<u8>) -> Result<()> {
        self.put(&key, bytes).await
    }

    pub async fn get(&self, key: &str) -> Result<bytes::Bytes> {
        let r = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|e| Error::lake(format!("reading {key} from {}: {e}", self.url)))?;
        Ok(r.bytes().await?)
    }

    /// Keys under a prefix, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys: Vec<String> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(|e| Error::lake(format!("listing {prefix} in {}: {e}", self.url)))?;
        keys.sort();
        Ok(keys)
    }

    /// Every committed manifest of a topic (optionally one partition), in offset order.
    pub async fn manifests(&self, topic: &str, partition: Option<i32>) -> Result<Vec<Manifest>> {
        let prefix = match partition {
            Some(p) => format!("{MANIFEST_ROOT}/{topic}/{p}"),
            None => format!("{MANIFEST_ROOT}/{topic}"),
        };
        let keys: Vec<String> = self.list(&prefix).await?.into_iter().filter(|k| k.ends_with(".json")).collect();
        let bodies = futures::future::try_join_all(keys.iter().map(|k| self.get(k))).await?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, bytes) in keys.iter().zip(bodies) {
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| Error::data(format!("manifest {key} is not valid: {e}")))?;
            out.push(m);
        }
        out.sort_by_key(|m| (m.partition, m.start_offset));
        Ok(out)
    }

    /// The first offset of `partition` that no manifest covers.
    pub async fn next_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        Ok(self.manifests(topic, Some(partition)).await?.iter().map(|m| m.end_offset + 1).max())
    }
}

pub const MANIFEST_ROOT: &str = "bronze/_manifests";

/// (day since the epoch, hour) of a UTC time: a bronze partition, cheap to compare.
pub fn day_hour(ts_ms: i64) -> (i64, u32) {
    (ts_ms.div_euclid(86_400_000), (ts_ms.rem_euclid(86_400_000) / 3_600_000) as u32)
}

/// `(YYYY-MM-DD, HH)` of a UTC time: the `date=`/`hour=` of its bronze partition.
pub fn hour_partition(ts_ms: i64) -> (String, u32) {
    let (day, hour) = day_hour(ts_ms);
    (format_date(day), hour)
}

pub fn batch_id(topic: &str, partition: i32, start: i64) -> String {
    format!("{topic}+{partition}+{start:020}")
}

pub fn bronze_key(dataset: &str, date: &str, hour: u32, batch: &str, extension: &str) -> String {
    format!("bronze/{dataset}/date={date}/hour={hour:02}/{batch}.{extension}")
}

pub fn quarantine_key(dataset: &str, date: &str, hour: u32, batch: &str) -> String {
    format!("quarantine/{dataset}/date={date}/hour={hour:02}/{batch}.jsonl")
}

pub fn manifest_key(topic: &str, partition: i32, start: i64) -> String {
    format!("{MANIFEST_ROOT}/{topic}/{partition}/{start:020}.json")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
}

/// The commit record of one drained batch: one partition, one contiguous offset range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub batch_id: String,
    pub topic: String,
    pub partition: i32,
    /// First and last offset covered (inclusive). Every offset in between is either in a bronze
    /// file, in a quarantine file, or was never a record (a compacted or control offset).
    pub start_offset: i64,
    pub end_offset: i64,
    pub rows: u64,
    pub quarantined: u64,
    pub files: Vec<FileEntry>,
    pub quarantine_files: Vec<FileEntry>,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub committed_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names() {
        let b = batch_id("spotify_events", 2, 1500);
        assert_eq!(b, "spotify_events+2+00000000000000001500");
        let (date, hour) = hour_partition(1_768_471_200_000);
        assert_eq!((date.as_str(), hour), ("2026-01-15", 10));
        assert_eq!(
            bronze_key("spotify_events", &date, hour, &b, "parquet"),
            "bronze/spotify_events/date=2026-01-15/hour=10/spotify_events+2+00000000000000001500.parquet"
        );
        assert_eq!(manifest_key("t", 0, 9), "bronze/_manifests/t/0/00000000000000000009.json");
    }

    #[test]
    fn local_lake_round_trip_and_resume_point() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig { url: format!("file://{}", dir.path().display()), options: Default::default() }).unwrap();
        let rt = crate::runtime::runtime().unwrap();
        rt.block_on(async {
            lake.check().await.unwrap();
            assert_eq!(lake.next_offset("t", 0).await.unwrap(), None);
            for (s, e) in [(0, 99), (100, 149)] {
                let m = Manifest {
                    batch_id: batch_id("t", 0, s), topic: "t".into(), partition: 0, start_offset: s,
                    end_offset: e, rows: (e - s + 1) as u64, quarantined: 0, files: vec![],
                    quarantine_files: vec![], quarantined_by_reason: Default::default(), committed_at_ms: 0,
                };
                assert!(lake.put_if_absent(&manifest_key("t", 0, s), serde_json::to_vec(&m).unwrap()).await.unwrap());
            }
            // A second commit of the same start offset loses, and changes nothing.
            assert!(!lake.put_if_absent(&manifest_key("t", 0, 100), b"{}".to_vec()).await.unwrap());
            assert_eq!(lake.next_offset("t", 0).await.unwrap(), Some(150));
            assert_eq!(lake.next_offset("t", 1).await.unwrap(), None);
            assert_eq!(lake.manifests("t", None).await.unwrap().len(), 2);
        });
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in ["relative/dir", "s3://", ""] {
            assert!(matches!(Lake::open(&LakeConfig { url: url.into(), ..Default::default() }), Err(Error::Config(_))), "{url}");
        }
    }
}
