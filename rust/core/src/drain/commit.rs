//! The committer: one task that groups the uploaded batches of every partition, in each
//! partition's cut order, into Delta commits, at most one per `interval`.
//!
//! A commit adds a group's quarantine files to the quarantine table, then its event files to the
//! events table, each with the txn `<topic>/<partition>` moved to the group's last offset + 1,
//! and each only if that txn is still where this drain left it (docs/architecture.md, "Exactly
//! once"). If another drain moved it, that drain owns the range: this one leaves the partition
//! to it, and its own files for it never become visible. Quarantine goes first, so that every
//! refused record below the events table's txn is in the quarantine table; a drain that resumes
//! skips refused records below the quarantine table's txn, so none is written twice.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use deltalake_core::kernel::Add;
use deltalake_core::protocol::{DeltaOperation, OutputMode};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::consumer::Report;
use super::{BatchCommitted, Start};
use crate::lake::delta::Table;
use crate::lake::txn_app_id;
use crate::{Error, Result};

/// A batch whose files are in the store, waiting for its commit.
pub(super) struct Uploaded {
    pub partition: i32,
    pub seq: u64,
    pub from: i64,
    pub last: i64,
    pub events: Vec<Add>,
    pub quarantine: Vec<Add>,
    pub rows: u64,
    pub quarantined: u64,
    pub reasons: BTreeMap<String, u64>,
    /// Lake keys of its files (deleted if the batch is never committed).
    pub keys: Vec<String>,
}

pub(super) enum ToCommitter {
    Uploaded(Uploaded),
    Failed { partition: i32, seq: u64, error: Error },
}

/// What the drain committed, all partitions together.
#[derive(Default)]
pub(super) struct Committed {
    pub rows: u64,
    pub quarantined: u64,
    pub reasons: BTreeMap<String, u64>,
    pub files: Vec<String>,
    pub bytes: u64,
    pub batches: Vec<BatchCommitted>,
    pub commits: u64,
    /// (partition, next offset) after the last commit of each.
    pub partitions: Vec<(i32, i64)>,
    /// Partitions left to another drain.
    pub taken: Vec<i32>,
}

/// One partition, as the committer sees it.
struct Partition {
    /// The next batch to commit, in cut order.
    next_seq: u64,
    /// Where this drain left each table's txn (None: the table has none for it).
    events_txn: Option<i64>,
    quarantine_txn: Option<i64>,
    /// Uploaded batches waiting for their turn, by seq.
    ready: BTreeMap<u64, Uploaded>,
    /// No batch of it commits any more: it failed, or another drain owns it.
    stopped: bool,
}

pub(super) struct Committer {
    topic: String,
    events: Table,
    quarantine: Table,
    partitions: BTreeMap<i32, Partition>,
    interval: Duration,
    reports: mpsc::Sender<Report>,
    committed: Committed,
    error: Option<Error>,
    /// Ids the committed txns carry: a stream's query id, for readers of the commit info.
    epoch: i64,
}

impl Committer {
    pub fn new(topic: &str, events: Table, quarantine: Table, start: &Start, interval: Duration, reports: mpsc::Sender<Report>) -> Self {
        let partitions = start
            .partitions
            .iter()
            .map(|(&p, &(_, vb, vq))| (p, Partition { next_seq: 0, events_txn: vb, quarantine_txn: vq, ready: BTreeMap::new(), stopped: false }))
            .collect();
        Self { topic: topic.to_string(), events, quarantine, partitions, interval, reports, committed: Committed::default(), error: None, epoch: 0 }
    }

    /// Runs until every worker's sender is gone and the last group is committed. Returns what
    /// was committed, and the first error, if any.
    pub async fn run(mut self, mut rx: UnboundedReceiver<ToCommitter>) -> (Committed, Option<Error>) {
        let mut last_commit: Option<Instant> = None;
        let mut open = true;
        while open || self.has_ready() {
            let due = last_commit.map_or(Instant::now(), |t| t + self.interval);
            if open {
                let wait = if self.has_ready() { tokio::time::sleep_until(due) } else { tokio::time::sleep(Duration::from_secs(3600)) };
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(m) => self.accept(m),
                        None => open = false,
                    },
                    _ = wait => {}
                }
                while let Ok(m) = rx.try_recv() {
                    self.accept(m);
                }
            }
            if self.has_ready() && (!open || Instant::now() >= due) && self.error.is_none() {
                if let Err(e) = self.commit_group().await {
                    let _ = self.reports.send(Report::Failed(e.to_string()));
                    self.error.get_or_insert(e);
                }
                last_commit = Some(Instant::now());
            }
            if self.error.is_some() {
                // Nothing more commits: what is waiting is dropped (its files are orphans).
                self.drop_all_ready();
                if !open {
                    break;
                }
            }
        }
        // Batches whose predecessor never came (it failed) never commit.
        self.drop_all_ready();
        for (&p, part) in &self.partitions {
            if let Some(next) = part.events_txn {
                self.committed.partitions.push((p, next));
            }
        }
        (self.committed, self.error)
    }

    fn accept(&mut self, msg: ToCommitter) {
        match msg {
            ToCommitter::Uploaded(up) => {
                let part = self.partitions.get_mut(&up.partition).expect("a drained partition");
                if part.stopped {
                    self.discard(vec![up]);
                } else {
                    part.ready.insert(up.seq, up);
                }
            }
            ToCommitter::Failed { partition, seq, error } => {
                let part = self.partitions.get_mut(&partition).expect("a drained partition");
                part.stopped = true;
                let later: Vec<Uploaded> = std::mem::take(&mut part.ready).into_values().collect();
                self.discard(later);
                let _ = self.reports.send(Report::Failed(error.to_string()));
                self.error.get_or_insert(Error::lake(format!("batch {seq} of partition {partition}: {error}")));
            }
        }
    }

    /// Whether some partition's next batch is uploaded.
    fn has_ready(&self) -> bool {
        self.partitions.values().any(|p| !p.stopped && p.ready.contains_key(&p.next_seq))
    }

    fn drop_all_ready(&mut self) {
        let all: Vec<Uploaded> = self.partitions.values_mut().flat_map(|p| std::mem::take(&mut p.ready).into_values()).collect();
        self.discard(all);
    }

    /// Deletes the files of batches that will never commit, in the background: they are
    /// invisible anyway, so this only saves VACUUM the work.
    fn discard(&self, batches: Vec<Uploaded>) {
        let keys: Vec<String> = batches.into_iter().flat_map(|b| b.keys).collect();
        if keys.is_empty() {
            return;
        }
        let lake = self.events_lake();
        tokio::spawn(async move {
            for k in keys {
                let _ = lake.delete(&k).await;
            }
        });
    }

    fn events_lake(&self) -> crate::lake::Lake {
        self.events.lake().clone()
    }

    /// Takes each partition's uploaded batches that are next in its cut order.
    fn take_group(&mut self) -> BTreeMap<i32, Vec<Uploaded>> {
        let mut group = BTreeMap::new();
        for (&p, part) in self.partitions.iter_mut().filter(|(_, part)| !part.stopped) {
            let mut run = Vec::new();
            while let Some(b) = part.ready.remove(&part.next_seq) {
                part.next_seq += 1;
                run.push(b);
            }
            if !run.is_empty() {
                group.insert(p, run);
            }
        }
        group
    }

    /// Commits one group: quarantine first, then events. Partitions another drain has moved on
    /// are left to it.
    async fn commit_group(&mut self) -> Result<()> {
        let mut group = self.take_group();
        self.epoch += 1;
        let operation = streaming_update(&self.topic, self.epoch);

        // Quarantine: only partitions whose batches refused records.
        let mut quarantine_committed = Vec::new();
        let mut txns = BTreeMap::new();
        let mut adds = Vec::new();
        for (&p, run) in &group {
            if run.iter().any(|b| !b.quarantine.is_empty()) {
                let last = run.last().expect("non-empty").last;
                txns.insert(txn_app_id(&self.topic, p), (self.partitions[&p].quarantine_txn, last + 1));
                adds.extend(run.iter().flat_map(|b| b.quarantine.iter().cloned()));
            }
        }
        if !txns.is_empty() {
            let quarantined: u64 = group.values().flatten().map(|b| b.quarantined).sum();
            let info = serde_json::json!({"records": quarantined});
            let moved = commit_until_done(&mut self.quarantine, adds, txns, &group, |b| &b.quarantine, operation.clone(), info).await?;
            for (p, next) in moved.committed {
                self.partitions.get_mut(&p).expect("drained").quarantine_txn = Some(next);
                quarantine_committed.push(p);
            }
            self.commits_done(moved.commits);
            for p in moved.taken {
                self.leave(p, &mut group);
            }
        }

        // Events: every partition of the group, even one without valid rows, so that its txn
        // moves past what it read.
        let txns: BTreeMap<String, (Option<i64>, i64)> =
            group.iter().map(|(&p, run)| (txn_app_id(&self.topic, p), (self.partitions[&p].events_txn, run.last().expect("non-empty").last + 1))).collect();
        if txns.is_empty() {
            return Ok(());
        }
        let adds: Vec<Add> = group.values().flatten().flat_map(|b| b.events.iter().cloned()).collect();
        let rows: u64 = group.values().flatten().map(|b| b.rows).sum();
        let info = serde_json::json!({"records": rows});
        let done = commit_until_done(&mut self.events, adds, txns, &group, |b| &b.events, operation, info).await?;
        self.commits_done(done.commits);
        for p in done.taken {
            if quarantine_committed.contains(&p) {
                // Another drain committed these offsets' events first, with no refused record in
                // its batches: its quarantine txn had not moved, so ours went in. Those files are
                // now the quarantine table's (the next drain skips refused records below its txn):
                // they stay, and count as ours. Only the event files are dropped.
                self.keep_quarantine(p, &mut group);
            }
            self.leave(p, &mut group);
        }
        let version = self.events.version();
        for (p, next) in done.committed {
            self.partitions.get_mut(&p).expect("drained").events_txn = Some(next);
            for b in group.remove(&p).unwrap_or_default() {
                let c = &mut self.committed;
                c.rows += b.rows;
                c.quarantined += b.quarantined;
                for (r, n) in &b.reasons {
                    *c.reasons.entry(r.clone()).or_default() += n;
                }
                c.bytes += b.events.iter().map(|a| a.size as u64).sum::<u64>();
                c.files.extend(b.keys.iter().cloned());
                c.batches.push(BatchCommitted { partition: p, start_offset: b.from, end_offset: b.last, rows: b.rows, quarantined: b.quarantined, version });
            }
        }
        Ok(())
    }

    fn commits_done(&mut self, n: u64) {
        self.committed.commits += n;
    }

    /// Partition `p`'s batches in `group` had their quarantine files committed, not their event
    /// files: the quarantine files become committed ones, kept out of what `leave` deletes.
    fn keep_quarantine(&mut self, p: i32, group: &mut BTreeMap<i32, Vec<Uploaded>>) {
        for b in group.get_mut(&p).into_iter().flatten() {
            let kept: Vec<String> = b.keys.iter().filter(|k| b.quarantine.iter().any(|a| k.ends_with(&format!("/{}", a.path)))).cloned().collect();
            b.keys.retain(|k| !kept.contains(k));
            let c = &mut self.committed;
            c.quarantined += b.quarantined;
            for (r, n) in &b.reasons {
                *c.reasons.entry(r.clone()).or_default() += n;
            }
            c.files.extend(kept);
        }
    }

    /// Another drain owns partition `p` from here: stop it, and drop its batches.
    fn leave(&mut self, p: i32, group: &mut BTreeMap<i32, Vec<Uploaded>>) {
        let part = self.partitions.get_mut(&p).expect("drained");
        part.stopped = true;
        let mut dropped: Vec<Uploaded> = std::mem::take(&mut part.ready).into_values().collect();
        dropped.extend(group.remove(&p).unwrap_or_default());
        self.discard(dropped);
        if !self.committed.taken.contains(&p) {
            self.committed.taken.push(p);
        }
        let _ = self.reports.send(Report::Taken(p));
    }
}

struct Outcome {
    /// (partition, its txn's new version)
    committed: Vec<(i32, i64)>,
    taken: Vec<i32>,
    commits: u64,
}

/// Commits the group's files for `table`; when some txns moved, commits again without those
/// partitions, until the rest is in (or nothing is left).
/// The Delta operation of a drain's commits (one streaming query per topic).
pub(super) fn streaming_update(topic: &str, epoch: i64) -> DeltaOperation {
    DeltaOperation::StreamingUpdate { output_mode: OutputMode::Append, query_id: format!("spotify-pipeline-drain/{topic}"), epoch_id: epoch }
}

async fn commit_until_done(
    table: &mut Table,
    mut adds: Vec<Add>,
    mut txns: BTreeMap<String, (Option<i64>, i64)>,
    group: &BTreeMap<i32, Vec<Uploaded>>,
    files_of: impl Fn(&Uploaded) -> &Vec<Add>,
    operation: DeltaOperation,
    info: serde_json::Value,
) -> Result<Outcome> {
    let mut out = Outcome { committed: Vec::new(), taken: Vec::new(), commits: 0 };
    let partition_of = |id: &str| id.rsplit_once('/').and_then(|(_, p)| p.parse::<i32>().ok()).expect("our app id");
    while !txns.is_empty() {
        match table.commit_if_txns(adds.clone(), &txns, operation.clone(), Some(info.clone())).await? {
            Ok(_) => {
                out.commits += 1;
                out.committed.extend(txns.iter().map(|(id, (_, next))| (partition_of(id), *next)));
                return Ok(out);
            }
            Err(moved) => {
                for id in moved {
                    let p = partition_of(&id);
                    txns.remove(&id);
                    let theirs: Vec<&str> = group.get(&p).into_iter().flatten().flat_map(|b| files_of(b).iter().map(|a| a.path.as_str())).collect();
                    adds.retain(|a| !theirs.contains(&a.path.as_str()));
                    out.taken.push(p);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::delta::new_add;
    use crate::lake::{Lake, LakeConfig};

    /// Drain B commits offsets 0-499 of partition 0 with no refused record (its quarantine txn
    /// stays unset); drain A, which started before, then commits 0-1999: its quarantine files go
    /// in (the txn is where A left it), its event files do not. A leaves the partition, and the
    /// quarantine file it committed stays in the lake, counted as A's.
    #[test]
    fn a_drain_that_loses_the_events_race_keeps_the_quarantine_file_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig { url: format!("file://{}", dir.path().display()), options: Default::default() }).unwrap();
        let rt = crate::runtime::runtime().unwrap();
        rt.block_on(async {
            let (events_spec, quarantine_spec) = (super::super::bronze_spec("t"), super::super::quarantine_spec("t"));
            let mut b_events = Table::open_or_create(&lake, &events_spec).await.unwrap();
            let events = Table::open_or_create(&lake, &events_spec).await.unwrap();
            let quarantine = Table::open_or_create(&lake, &quarantine_spec).await.unwrap();
            let add = |path: &str| new_add(path.to_string(), 3, &[("date", "2026-12-04".into()), ("hour", "15".into())], serde_json::json!({"numRecords": 1}), true);
            let txn = BTreeMap::from([(txn_app_id("topic", 0), (None, 500))]);
            b_events.commit_if_txns(vec![add("date=2026-12-04/hour=15/b.parquet")], &txn, streaming_update("topic", 1), None).await.unwrap().unwrap();

            let (e_key, q_key) = (format!("{}/date=2026-12-04/hour=15/a.parquet", events_spec.path), format!("{}/date=2026-12-04/hour=15/aq.parquet", quarantine_spec.path));
            lake.put(&e_key, b"abc".to_vec()).await.unwrap();
            lake.put(&q_key, b"abc".to_vec()).await.unwrap();
            let start = Start { partitions: BTreeMap::from([(0, (0, None, None))]), quarantine_from: BTreeMap::new() };
            let (reports, _reports_rx) = mpsc::channel();
            let committer = Committer::new("topic", events, quarantine, &start, Duration::ZERO, reports);
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tx.send(ToCommitter::Uploaded(Uploaded {
                partition: 0, seq: 0, from: 0, last: 1999,
                events: vec![add("date=2026-12-04/hour=15/a.parquet")], quarantine: vec![add("date=2026-12-04/hour=15/aq.parquet")],
                rows: 1990, quarantined: 10, reasons: BTreeMap::from([("invalid_json".to_string(), 10)]), keys: vec![e_key.clone(), q_key.clone()],
            })).unwrap();
            drop(tx);
            let (committed, error) = committer.run(rx).await;
            assert!(error.is_none());
            tokio::time::sleep(Duration::from_millis(300)).await; // discard deletes in the background
            assert_eq!(committed.taken, vec![0]);
            assert_eq!((committed.rows, committed.quarantined, committed.files.clone()), (0, 10, vec![q_key.clone()]));
            let mut q = Table::open(&lake, &quarantine_spec.path).await.unwrap().unwrap();
            q.refresh().await.unwrap();
            assert_eq!(q.txn_versions(&[txn_app_id("topic", 0)]).await.unwrap().into_values().collect::<Vec<_>>(), vec![Some(2000)]);
            assert_eq!(q.active_files().await.unwrap().len(), 1);
            assert!(lake.get(&q_key).await.is_ok(), "the committed quarantine file was deleted");
            assert!(lake.get(&e_key).await.is_err(), "the uncommitted event file is deleted");
        });
    }
}
