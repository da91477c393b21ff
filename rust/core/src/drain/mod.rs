//! Draining a Kafka topic into the bronze Delta tables, exactly once.
//!
//! The lake, not Kafka, holds the drain's progress: each table's Delta log has a txn per
//! topic-partition (app id `<topic>/<partition>`) whose version is the next offset to drain. A
//! drain resumes from the events table's txn, and commits its files and the new txn versions in
//! one Delta commit, only if the txns are still where it expects them (see [`commit`]). Files
//! are written under unique names before their commit; a drain killed in between, or one that
//! loses a race on a partition to another drain, leaves files no commit names: no reader sees
//! them, and VACUUM removes them. Consumer-group offsets are committed afterwards only so that
//! lag shows in Kafka tooling.
//!
//! Threads ([`consumer`], [`worker`], [`commit`]): the caller's thread consumes and copies
//! records into one open batch per partition; worker threads parse and encode cut batches in
//! parallel; tasks upload the files; one committer task groups the uploaded batches of every
//! partition, in each partition's cut order, into a Delta commit about once a second.

mod batch;
mod commit;
mod consumer;
mod fetch;
mod start;
mod worker;

pub(crate) use start::topic_recreated;
use start::Start;

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::event::{bronze_schema, BRONZE_STATS_COLUMNS};
use crate::kafka::{KafkaConfig, KafkaConsumer};
use crate::lake::delta::TableSpec;
use crate::lake::{self, Lake, LakeConfig};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::quarantine::{quarantine_schema, QUARANTINE_STATS_COLUMNS};
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainOptions {
    /// Consumer group whose offsets show the lag (never used to resume).
    pub group_id: String,
    /// Partitions to drain; all of the topic's when empty.
    #[serde(default)]
    pub partitions: Vec<i32>,
    pub dataset: String,
    /// Keep each record's bytes, as they came, in the `raw` column (for audit and reprocessing).
    pub raw: bool,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    /// Stop after this many records (the default is to drain up to the high watermarks seen at
    /// the start).
    pub max_records: Option<u64>,
    pub max_seconds: Option<f64>,
    /// Give up when the broker sends nothing for this long while records remain.
    pub idle_timeout_s: u64,
    /// Threads that parse and encode batches (0: one per core, at most 4); uploads run beside them.
    pub workers: usize,
    /// Bound on the record bytes held in open batches, all partitions together: past it, the
    /// fullest batch is cut early. With batch_max_bytes and the workers, it bounds memory.
    pub buffer_max_bytes: usize,
    /// The uploaded batches of every partition are committed together at most this often.
    pub commit_interval_ms: u64,
    /// Records that Kafka's retention deleted before they were drained fail the drain, naming
    /// the partitions and offsets; with this set they are skipped and counted instead.
    pub allow_data_loss: bool,
    /// A partition whose lake offset is above its high watermark (the topic was deleted and
    /// created again) fails the drain; with this set it is drained again from its start.
    pub reset_offsets: bool,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            group_id: "spotify-pipeline-drain".into(),
            partitions: vec![],
            dataset: "spotify_events".into(),
            raw: false,
            batch_max_records: 100_000,
            batch_max_bytes: 8 << 20,
            max_records: None,
            max_seconds: None,
            idle_timeout_s: 60,
            workers: 0,
            buffer_max_bytes: 32 << 20,
            // One Delta commit a second at most: a drain at full speed cuts ~35 batches a second,
            // and a log of one commit per batch would make every reader slow.
            commit_interval_ms: 1_000,
            allow_data_loss: false,
            reset_offsets: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionDrain {
    pub partition: i32,
    pub from_offset: i64,
    pub next_offset: i64,
    pub high_watermark: i64,
    pub lag: i64,
    /// Offsets that Kafka's retention removed before they were drained.
    pub lost_to_retention: i64,
    /// Another drain committed this partition's next range first: this one left it to that one.
    pub left_to_other_drain: bool,
}

/// One committed range of one partition: a batch, as the consumer cut it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchCommitted {
    pub partition: i32,
    pub start_offset: i64,
    pub end_offset: i64,
    pub rows: u64,
    pub quarantined: u64,
    /// The events table's version that committed it.
    pub version: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DrainSummary {
    pub topic: String,
    pub table: String,
    pub quarantine_table: String,
    pub rows: u64,
    pub quarantined: u64,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub files: Vec<String>,
    pub batches: Vec<BatchCommitted>,
    pub partitions: Vec<PartitionDrain>,
    /// Delta commits made, to the events and the quarantine table together.
    pub commits: u64,
    pub commits_per_s: f64,
    pub bytes: u64,
    /// Records Kafka's retention deleted before they were drained (only with allow_data_loss).
    pub lost_to_retention: i64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub warnings: Vec<String>,
}

/// The events table of a dataset.
pub fn bronze_spec(dataset: &str) -> TableSpec {
    TableSpec {
        path: lake::bronze_table(dataset),
        schema: bronze_schema(),
        partition_columns: partition_columns(),
        stats_columns: BRONZE_STATS_COLUMNS,
    }
}

/// The quarantine table of a dataset.
pub fn quarantine_spec(dataset: &str) -> TableSpec {
    TableSpec {
        path: lake::quarantine_table(dataset),
        schema: quarantine_schema(),
        partition_columns: partition_columns(),
        stats_columns: QUARANTINE_STATS_COLUMNS,
    }
}

/// Arrival date and hour (UTC, from the Kafka timestamp): a drain writes one or two of them.
fn partition_columns() -> Vec<(&'static str, deltalake_core::kernel::DataType)> {
    vec![("date", deltalake_core::kernel::DataType::DATE), ("hour", deltalake_core::kernel::DataType::INTEGER)]
}

/// Drains `kafka.topic` into the lake. See the module documentation for the guarantees.
pub fn drain(kafka: &KafkaConfig, lake_cfg: &LakeConfig, opts: &DrainOptions, progress: &mut ProgressFn<'_>) -> Result<DrainSummary> {
    if opts.batch_max_records == 0 || opts.batch_max_bytes == 0 || opts.buffer_max_bytes == 0 {
        return Err(Error::config("batch_max_records, batch_max_bytes and buffer_max_bytes must be positive"));
    }
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(lake.check())?;

    let (consumer, partitions) = start::open_consumer(kafka, opts)?;

    let (mut bronze, quarantine, txns) = rt.block_on(start::open_tables(&lake, opts, &kafka.topic, &partitions))?;

    let started = Instant::now();
    let mut summary = DrainSummary {
        topic: kafka.topic.clone(),
        table: lake.url_of(bronze.path()),
        quarantine_table: lake.url_of(quarantine.path()),
        ..Default::default()
    };
    let start::Plan { mut start, highs, assign, total } = start::plan(&consumer, kafka, opts, &partitions, (&txns.0, &txns.1), &mut summary)?;
    if summary.lost_to_retention > 0 {
        rt.block_on(start::record_loss(&mut bronze, &kafka.topic, &mut summary, &mut start))?;
    }
    let total = opts.max_records.map_or(total, |m| m.min(total));
    consumer.assign(&assign)?;

    let workers = match opts.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()).min(4),
        n => n,
    };
    let deadline = opts.max_seconds.map(|s| started + Duration::from_secs_f64(s));
    let mut meter = ProgressMeter::new("drain", Some(total));
    // Cut batches wait here for a worker; a full queue holds the consumer back (bounded memory).
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<batch::RawBatch>(1);
    let jobs_rx = Mutex::new(jobs_rx);
    let (reports_tx, reports_rx) = mpsc::channel::<consumer::Report>();
    let (to_commit_tx, to_commit_rx) = tokio::sync::mpsc::unbounded_channel();
    let committer = commit::Committer::new(&kafka.topic, bronze, quarantine, &start, Duration::from_millis(opts.commit_interval_ms), reports_tx.clone());
    let committer = rt.spawn(committer.run(to_commit_rx));
    let uploads = Arc::new(tokio::sync::Semaphore::new(worker::UPLOADS_IN_FLIGHT));
    let ctx = worker::Context {
        lake: lake.clone(),
        topic: kafka.topic.clone(),
        bronze_path: lake::bronze_table(&opts.dataset),
        quarantine_path: lake::quarantine_table(&opts.dataset),
        keep_raw: opts.raw,
        quarantine_from: start.quarantine_from.clone(),
    };

    let consumed = std::thread::scope(|scope| -> Result<()> {
        for i in 0..workers {
            let (jobs_rx, reports, to_commit, uploads, ctx, rt) = (&jobs_rx, reports_tx.clone(), to_commit_tx.clone(), &uploads, &ctx, &rt);
            std::thread::Builder::new()
                .name(format!("drain-worker-{i}"))
                .spawn_scoped(scope, move || worker::work(jobs_rx, &reports, &to_commit, uploads, ctx, rt))
                .map_err(|e| Error::config(format!("cannot start a drain worker: {e}")))?;
        }
        let mut run = consumer::Run::new(&consumer, kafka, opts, &start, highs, jobs_tx, &reports_rx);
        let consumed = run.consume(deadline, &mut meter, progress);
        // Whatever stopped the loop, what was read is handed on (never left stuck) unless the
        // drain already failed; then the workers' queue closes and they finish.
        let flushed = consumed.and_then(|()| run.cut_all());
        run.close();
        flushed
    });
    drop(to_commit_tx);
    drop(reports_tx);
    let outcome = rt.block_on(committer).map_err(|e| Error::data(format!("the drain's committer stopped: {e}")))?;
    let (committed, commit_error) = outcome;
    report(&mut summary, committed, &consumer, &kafka.topic);
    // The committer's error is the cause; the consumer only saw that it stopped.
    if let Some(e) = commit_error {
        return Err(e);
    }
    consumed?;
    meter.tick(summary.rows + summary.quarantined, summary.bytes, true, progress)?;
    summary.timed(started);
    Ok(summary)
}

impl DrainSummary {
    /// The rates, over the drain's time; batches in Kafka order.
    fn timed(&mut self, started: Instant) {
        self.elapsed_s = started.elapsed().as_secs_f64();
        self.records_per_s = (self.rows + self.quarantined) as f64 / self.elapsed_s.max(1e-9);
        self.commits_per_s = self.commits as f64 / self.elapsed_s.max(1e-9);
        self.batches.sort_by_key(|b| (b.partition, b.start_offset));
    }
}

/// What the committer committed, into the summary; the consumer group's offsets follow it.
fn report(summary: &mut DrainSummary, committed: commit::Committed, consumer: &KafkaConsumer, topic: &str) {
    for c in &committed.partitions {
        if let Some(pd) = summary.partitions.iter_mut().find(|x| x.partition == c.0) {
            pd.next_offset = pd.next_offset.max(c.1);
            pd.lag = pd.high_watermark - pd.next_offset;
            pd.left_to_other_drain = committed.taken.contains(&c.0);
        }
    }
    for p in &committed.taken {
        if let Some(pd) = summary.partitions.iter_mut().find(|x| x.partition == *p) {
            pd.left_to_other_drain = true;
        }
    }
    // Group offsets only so that tooling shows the lag; the lake is the truth.
    let mut offsets = TopicPartitionList::new();
    for pd in summary.partitions.iter().filter(|pd| pd.next_offset > pd.from_offset) {
        // A partition id from the topic itself: adding it cannot fail.
        let _ = offsets.add_partition_offset(topic, pd.partition, Offset::Offset(pd.next_offset));
    }
    if offsets.count() > 0 {
        if let Err(e) = consumer.commit(&offsets, rdkafka::consumer::CommitMode::Sync) {
            summary.warnings.push(format!("group offset commit: {e}"));
        }
    }
    summary.rows = committed.rows;
    summary.quarantined = committed.quarantined;
    summary.quarantined_by_reason = committed.reasons;
    summary.files = committed.files;
    summary.bytes = committed.bytes;
    summary.batches = committed.batches;
    summary.commits += committed.commits;
}
