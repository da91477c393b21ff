//! The lake: an object store (S3, MinIO, a local directory) holding Delta tables, and how they
//! are named. Everything goes through `object_store`.
//!
//! Layout (docs/architecture.md):
//! ```text
//! bronze/<dataset>/                          Delta table of valid events
//!     _delta_log/000…0N.json                 the commit log (txn "<topic>/<partition>" = next offset)
//!     date=YYYY-MM-DD/hour=H/<topic>+<partition>+<from offset>-<uuid>.parquet
//! bronze/<dataset>_quarantine/               Delta table of refused records, same partitioning
//! reference/<table>/catalog=<seed>-<songs>-<users>/part-0.parquet   Delta tables of the catalog
//! ```
//! Partitions are the record's arrival (its Kafka timestamp, UTC), so a drain writes one or two
//! hours whatever the events' own times. Data files have unique names and are never overwritten:
//! a file exists for readers only once a commit in `_delta_log` adds it.

pub mod compact;
pub mod delta;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

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
    /// The bucket (or the file system's root): Delta resolves table URLs against it.
    root: Arc<dyn ObjectStore>,
    /// The lake's prefix inside `root`, e.g. `lake` of `s3://bucket/lake`.
    base: String,
    /// `root` seen from `base`: every lake key is relative to it.
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl Lake {
    pub fn open(cfg: &LakeConfig) -> Result<Self> {
        let url = cfg.url.trim_end_matches('/').to_string();
        let (root, base): (Arc<dyn ObjectStore>, String) = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::config(format!("lake URL {url:?} names no bucket")));
            }
            // Bounded retries: a wrong endpoint must fail in seconds, not object_store's
            // default of three minutes.
            let retry = RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(15), ..Default::default() };
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_config(AmazonS3ConfigKey::Client(object_store::ClientConfigKey::ConnectTimeout), "5s")
                .with_config(AmazonS3ConfigKey::Client(object_store::ClientConfigKey::Timeout), "60s");
            for (k, v) in &cfg.options {
                let key: AmazonS3ConfigKey = k.parse().map_err(|e| Error::config(format!("lake option {k:?}: {e}")))?;
                b = b.with_config(key, v.clone());
            }
            let s3 = b.build().map_err(|e| Error::config(format!("lake {url}: {e}")))?;
            (Arc::new(s3), prefix.trim_matches('/').to_string())
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(&url);
            if dir.is_empty() || !dir.starts_with('/') {
                return Err(Error::config(format!("lake URL {url:?} must be s3://bucket[/prefix] or file:///absolute/dir")));
            }
            std::fs::create_dir_all(dir).map_err(|e| Error::lake(format!("cannot create {dir}: {e}")))?;
            (Arc::new(LocalFileSystem::new()), dir.trim_matches('/').to_string())
        };
        let store: Arc<dyn ObjectStore> =
            if base.is_empty() { root.clone() } else { Arc::new(PrefixStore::new(root.clone(), base.as_str())) };
        let url = if url.starts_with("s3://") { url } else { format!("file:///{base}") };
        Ok(Self { root, base, store, url })
    }

    /// The store seen from the lake's root: lake keys such as `bronze/spotify_events/...`.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The bucket or file-system root, and the path of `key` inside it.
    pub fn root_and_path(&self, key: &str) -> (Arc<dyn ObjectStore>, String) {
        let path = if self.base.is_empty() { key.to_string() } else { format!("{}/{key}", self.base) };
        (self.root.clone(), path)
    }

    /// The URL of `key`, e.g. `s3://bucket/lake/bronze/spotify_events`.
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{}", self.url, key.trim_matches('/'))
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

    pub async fn get(&self, key: &str) -> Result<bytes::Bytes> {
        let r = self.store.get(&Path::from(key)).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::data(format!("{key} is missing from the lake at {}", self.url)),
            e => Error::lake(format!("reading {key} from {}: {e}", self.url)),
        })?;
        Ok(r.bytes().await?)
    }

    /// Deletes `key`; a key that is already gone is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::lake(format!("deleting {key} from {}: {e}", self.url))),
        }
    }
}

/// Writes `data` to `key` in the lake at `cfg`, replacing it: small files such as an exported
/// dashboard, outside any table.
pub fn put_object(cfg: &LakeConfig, key: &str, data: Vec<u8>) -> Result<()> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(cfg)?;
    rt.block_on(lake.put(key, data))
}

/// The Delta table of a dataset's valid events.
pub fn bronze_table(dataset: &str) -> String {
    format!("bronze/{dataset}")
}

/// The Delta table of a dataset's refused records.
pub fn quarantine_table(dataset: &str) -> String {
    format!("bronze/{dataset}_quarantine")
}

/// The Delta application id under which a drain records how far it took a topic-partition:
/// `/` cannot occur in a Kafka topic name, so the id is unambiguous.
pub fn txn_app_id(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// (day since the epoch, hour) of a UTC time: a bronze partition, cheap to compare.
pub fn day_hour(ts_ms: i64) -> (i64, u32) {
    (ts_ms.div_euclid(86_400_000), (ts_ms.rem_euclid(86_400_000) / 3_600_000) as u32)
}

/// A data file's key inside its table: `date=YYYY-MM-DD/hour=H/<topic>+<partition>+<from>-<uuid>.parquet`.
/// The uuid makes it unique: two drains that cut the same range never write the same key.
pub fn data_file_path(date: &str, hour: u32, topic: &str, partition: i32, from: i64) -> String {
    format!("date={date}/hour={hour}/{topic}+{partition}+{from:020}-{}.parquet", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names() {
        assert_eq!(day_hour(1_768_471_200_000), (20_468, 10));
        let p = data_file_path("2026-01-15", 10, "spotify_events", 2, 1500);
        assert!(p.starts_with("date=2026-01-15/hour=10/spotify_events+2+00000000000000001500-") && p.ends_with(".parquet"), "{p}");
        assert_ne!(p, data_file_path("2026-01-15", 10, "spotify_events", 2, 1500), "never the same key twice");
        assert_eq!(txn_app_id("t", 3), "t/3");
        assert_eq!(quarantine_table("ds"), "bronze/ds_quarantine");
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in ["relative/dir", "s3://", ""] {
            assert!(matches!(Lake::open(&LakeConfig { url: url.into(), ..Default::default() }), Err(Error::Config(_))), "{url}");
        }
    }

    #[test]
    fn a_local_lake_names_keys_under_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig { url: format!("file://{}", dir.path().display()), options: Default::default() }).unwrap();
        let rt = crate::runtime::runtime().unwrap();
        rt.block_on(async {
            lake.check().await.unwrap();
            lake.put("bronze/x/a.bin", vec![1, 2]).await.unwrap();
            assert_eq!(lake.get("bronze/x/a.bin").await.unwrap().as_ref(), &[1, 2]);
            lake.delete("bronze/x/a.bin").await.unwrap();
            lake.delete("bronze/x/a.bin").await.unwrap();
            assert!(matches!(lake.get("bronze/x/a.bin").await, Err(Error::Data(_))));
        });
        assert!(dir.path().join("bronze/x").exists());
        assert_eq!(lake.url_of("bronze/t"), format!("file://{}/bronze/t", dir.path().display()));
    }
}
