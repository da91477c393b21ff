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
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::event::{bronze_schema, BRONZE_STATS_COLUMNS};
use crate::kafka::{topic_partitions, ClientErrors, KafkaConfig, KafkaConsumer};
use crate::lake::delta::{Table, TableSpec};
use deltalake_core::protocol::{DeltaOperation, OutputMode};
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

/// librdkafka settings the drain brings unless the connection sets them. Fetches are large (with
/// the 1 MiB default per partition a backlog drains at half speed), the prefetch queue is capped
/// (it is most of the memory), and a full queue delays the next fetch by milliseconds, not by
/// librdkafka's default second, during which a fast consumer would sit idle.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("max.partition.fetch.bytes", "2097152"),
    ("fetch.max.bytes", "8388608"),
    ("queued.max.messages.kbytes", "4096"),
    ("fetch.queue.backoff.ms", "5"),
];

/// Where each drained partition starts, from both tables' txns.
struct Start {
    /// Per partition: (first offset to read, the events table's txn, the quarantine table's txn).
    partitions: BTreeMap<i32, (i64, Option<i64>, Option<i64>)>,
    /// Per partition: refused records below this offset are in the quarantine table already.
    quarantine_from: BTreeMap<i32, i64>,
}

/// The error for a partition whose lake offset is above its high watermark: the topic was deleted
/// and created again (or its records were deleted), and its new offsets mean other records.
pub(crate) fn topic_recreated(topic: &str, p: i32, lake_offset: i64, high: i64) -> Error {
    Error::data(format!(
        "partition {p} of {topic}: the lake has drained it up to offset {lake_offset}, but its high watermark is {high}: was the topic \
         deleted and created again? Nothing was drained. To drain the new topic from its start, re-run the drain with reset_offsets"
    ))
}

/// Records records lost to retention (allowed): one commit moves each partition's txn past the
/// gap, so that the loss is skipped and counted once, not again by every later drain, and its
/// commit says what was lost (`spotify_pipeline.lost_to_retention` in the commit's info). A
/// partition another drain moved meanwhile is left to that drain.
async fn record_loss(bronze: &mut Table, topic: &str, summary: &mut DrainSummary, start: &mut Start) -> Result<()> {
    let lost: Vec<(i32, i64)> = summary.partitions.iter().filter(|pd| pd.lost_to_retention > 0).map(|pd| (pd.partition, pd.lost_to_retention)).collect();
    let mut left: Vec<i32> = lost.iter().map(|&(p, _)| p).collect();
    let operation = DeltaOperation::StreamingUpdate { output_mode: OutputMode::Append, query_id: format!("spotify-pipeline-drain/{topic}"), epoch_id: 0 };
    while !left.is_empty() {
        let mut txns = BTreeMap::new();
        let mut what = serde_json::Map::new();
        for &(p, records) in lost.iter().filter(|(p, _)| left.contains(p)) {
            let (from, vb, _) = start.partitions[&p];
            txns.insert(lake::txn_app_id(topic, p), (vb, from));
            what.insert(p.to_string(), serde_json::json!({"from_offset": vb, "to_offset": from - 1, "records": records}));
        }
        let meta = HashMap::from([("spotify_pipeline".to_string(), serde_json::json!({"records": 0, "lost_to_retention": what}))]);
        match bronze.commit_if_txns(Vec::new(), &txns, operation.clone(), meta).await? {
            Ok(_) => {
                summary.commits += 1;
                for p in left.drain(..) {
                    let entry = start.partitions.get_mut(&p).expect("drained");
                    entry.1 = Some(entry.0);
                }
            }
            Err(moved) => {
                for pd in summary.partitions.iter_mut().filter(|pd| moved.contains(&lake::txn_app_id(topic, pd.partition))) {
                    pd.left_to_other_drain = true;
                    left.retain(|&p| p != pd.partition);
                }
            }
        }
    }
    Ok(())
}

/// Drains `kafka.topic` into the lake. See the module documentation for the guarantees.
pub fn drain(kafka: &KafkaConfig, lake_cfg: &LakeConfig, opts: &DrainOptions, progress: &mut ProgressFn<'_>) -> Result<DrainSummary> {
    if opts.batch_max_records == 0 || opts.batch_max_bytes == 0 || opts.buffer_max_bytes == 0 {
        return Err(Error::config("batch_max_records, batch_max_bytes and buffer_max_bytes must be positive"));
    }
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(lake.check())?;

    let mut cc = kafka.client_config()?;
    cc.set("group.id", &opts.group_id).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false").set("auto.offset.reset", "earliest");
    for (k, v) in CONSUMER_DEFAULTS {
        if !kafka.client.contains_key(*k) {
            cc.set(*k, *v);
        }
    }
    let consumer: KafkaConsumer = cc.create_with_context(ClientErrors::default())?;
    let all = topic_partitions(consumer.client(), kafka, &|| drop(consumer.poll(Duration::from_millis(200))))?
        .ok_or_else(|| Error::kafka(format!("topic {} does not exist on {}", kafka.topic, kafka.bootstrap())))?;
    let partitions = if opts.partitions.is_empty() { all.clone() } else { opts.partitions.clone() };
    if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
        return Err(Error::config(format!("topic {} has no partition {p} (it has {all:?})", kafka.topic)));
    }

    let (mut bronze, quarantine) = rt.block_on(async {
        let b = Table::open_or_create(&lake, &bronze_spec(&opts.dataset)).await?;
        let q = Table::open_or_create(&lake, &quarantine_spec(&opts.dataset)).await?;
        Ok::<_, Error>((b, q))
    })?;
    let ids: Vec<String> = partitions.iter().map(|&p| lake::txn_app_id(&kafka.topic, p)).collect();
    let (txn_b, txn_q) = rt.block_on(async { Ok::<_, Error>((bronze.txn_versions(&ids).await?, quarantine.txn_versions(&ids).await?)) })?;

    let started = Instant::now();
    let mut summary = DrainSummary {
        topic: kafka.topic.clone(),
        table: lake.url_of(bronze.path()),
        quarantine_table: lake.url_of(quarantine.path()),
        ..Default::default()
    };
    let mut start = Start { partitions: BTreeMap::new(), quarantine_from: BTreeMap::new() };
    let mut highs = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    let mut total = 0u64;
    let mut gaps = Vec::new();
    for (&p, id) in partitions.iter().zip(&ids) {
        let (vb, vq) = (txn_b[id], txn_q[id]);
        let (low, high) = consumer.fetch_watermarks(&kafka.topic, p, kafka.timeout()).map_err(|e| {
            Error::BrokerUnavailable(format!("watermarks of {}/{p} from {}: {e}", kafka.topic, kafka.bootstrap()))
        })?;
        let resume = match vb {
            Some(v) if v > high && opts.reset_offsets => {
                summary.warnings.push(format!("partition {p}: the lake was at offset {v}, above the high watermark {high}; drained again from {low} (reset_offsets)"));
                None
            }
            Some(v) if v > high => return Err(topic_recreated(&kafka.topic, p, v, high)),
            v => v,
        };
        let from = resume.unwrap_or(low).max(low);
        let lost = resume.map(|r| (low - r).max(0)).unwrap_or(0);
        if lost > 0 {
            gaps.push(format!("partition {p}: offsets {}..{} ({lost} records)", resume.unwrap_or(0), low - 1));
        }
        summary.partitions.push(PartitionDrain { partition: p, from_offset: from, next_offset: from, high_watermark: high, lag: high - from, lost_to_retention: lost, left_to_other_drain: false });
        start.partitions.insert(p, (from, vb, vq));
        // After a reset the quarantine table's txn belongs to the old topic: nothing is skipped.
        start.quarantine_from.insert(p, if resume.is_none() && vb.is_some() { i64::MIN } else { vq.unwrap_or(i64::MIN) });
        if from < high {
            tpl.add_partition_offset(&kafka.topic, p, Offset::Offset(from))?;
            highs.insert(p, high);
            total += (high - from) as u64;
        }
    }
    if !gaps.is_empty() {
        let what = format!("Kafka's retention deleted records of {} before they were drained: {}", kafka.topic, gaps.join("; "));
        if !opts.allow_data_loss {
            return Err(Error::data(format!("{what}. Nothing was drained. Re-run with allow_data_loss to skip them (they are counted)")));
        }
        summary.warnings.push(format!("{what}: skipped (allow_data_loss)"));
    }
    summary.lost_to_retention = summary.partitions.iter().map(|p| p.lost_to_retention).sum();
    if summary.lost_to_retention > 0 {
        rt.block_on(record_loss(&mut bronze, &kafka.topic, &mut summary, &mut start))?;
    }
    let total = opts.max_records.map_or(total, |m| m.min(total));
    consumer.assign(&tpl)?;

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
        offsets.add_partition_offset(&kafka.topic, pd.partition, Offset::Offset(pd.next_offset))?;
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
    // The committer's error is the cause; the consumer only saw that it stopped.
    if let Some(e) = commit_error {
        return Err(e);
    }
    consumed?;
    meter.tick(summary.rows + summary.quarantined, summary.bytes, true, progress)?;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.records_per_s = (summary.rows + summary.quarantined) as f64 / summary.elapsed_s.max(1e-9);
    summary.commits_per_s = summary.commits as f64 / summary.elapsed_s.max(1e-9);
    summary.batches.sort_by_key(|b| (b.partition, b.start_offset));
    Ok(summary)
}
