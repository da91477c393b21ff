//! Workers: threads that parse and encode cut batches, and hand the files to tasks that upload
//! them, so that no worker waits on the store.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};

use deltalake_core::kernel::Add;
use futures::FutureExt;
use tokio::sync::Semaphore;

use super::batch::{encode, EncodedBatch, RawBatch, Target};
use super::commit::{ToCommitter, Uploaded};
use super::consumer::Report;
use crate::lake::delta::new_add;
use crate::lake::Lake;
use crate::{Error, Result};

/// Batches between a worker and their upload's end at once (encoded, and small: Parquet is an
/// eighth of the records or less).
pub(super) const UPLOADS_IN_FLIGHT: usize = 8;

/// What every worker needs, the same for all.
pub(super) struct Context {
    pub lake: Lake,
    pub topic: String,
    pub bronze_path: String,
    pub quarantine_path: String,
    pub keep_raw: bool,
    /// Per partition: refused records below this offset are already in the quarantine table.
    pub quarantine_from: BTreeMap<i32, i64>,
}

/// Takes cut batches, encodes them, and leaves the uploading to a task, so that it is free for
/// the next batch while the store works; `uploads` bounds the batches in flight.
pub(super) fn work(
    jobs: &Mutex<mpsc::Receiver<RawBatch>>,
    reports: &mpsc::Sender<Report>,
    to_commit: &tokio::sync::mpsc::UnboundedSender<ToCommitter>,
    uploads: &Arc<Semaphore>,
    ctx: &Context,
    rt: &tokio::runtime::Runtime,
) {
    loop {
        let (raw, permit) = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(raw) = jobs.recv() else { return };
            (raw, rt.block_on(uploads.clone().acquire_owned()).expect("the semaphore is never closed"))
        };
        let quarantine_from = ctx.quarantine_from.get(&raw.partition).copied().unwrap_or(i64::MIN);
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| encode(&raw, &ctx.topic, ctx.keep_raw, quarantine_from)))
            .unwrap_or_else(|_| Err(Error::data(format!("encoding the batch of partition {} from offset {} panicked", raw.partition, raw.from))));
        let RawBatch { partition, seq, mut payloads, mut records, .. } = raw;
        payloads.clear();
        records.clear();
        let _ = reports.send(Report::Buffers(payloads, records));
        let (lake, to_commit) = (ctx.lake.clone(), to_commit.clone());
        let paths = (ctx.bronze_path.clone(), ctx.quarantine_path.clone());
        rt.spawn(async move {
            // Exactly one message per batch reaches the committer, even if something panics.
            let result = match encoded {
                Ok(batch) => std::panic::AssertUnwindSafe(upload(lake, batch, paths))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(Error::data(format!("uploading a batch of partition {partition} panicked")))),
                Err(e) => Err(e),
            };
            drop(permit);
            let _ = to_commit.send(match result {
                Ok(up) => ToCommitter::Uploaded(up),
                Err(error) => ToCommitter::Failed { partition, seq, error },
            });
        });
    }
}

/// Writes a batch's files (all at once), and describes them as add actions for its commit.
async fn upload(lake: Lake, batch: EncodedBatch, (bronze_path, quarantine_path): (String, String)) -> Result<Uploaded> {
    let EncodedBatch { partition, seq, from, last, files, rows, quarantined, reasons } = batch;
    let mut events: Vec<Add> = Vec::new();
    let mut quarantine: Vec<Add> = Vec::new();
    let mut puts = Vec::new();
    let mut keys = Vec::new();
    for f in files {
        let table = if f.target == Target::Events { &bronze_path } else { &quarantine_path };
        let key = format!("{table}/{}", f.path);
        let add = new_add(f.path, f.bytes.len() as u64, &[("date", f.date), ("hour", f.hour.to_string())], f.stats.to_delta_json(), true);
        if f.target == Target::Events { events.push(add) } else { quarantine.push(add) }
        keys.push(key.clone());
        let lake = lake.clone();
        puts.push(async move { lake.put(&key, f.bytes).await });
    }
    futures::future::try_join_all(puts).await?;
    Ok(Uploaded { partition, seq, from, last, events, quarantine, rows, quarantined, reasons, keys })
}
