//! Draining a Kafka topic into the bronze lake, exactly once.
//!
//! The lake, not Kafka, is the source of truth for progress: each partition resumes after the
//! last offset that a manifest commits. A batch is cut by records or bytes, and at the end of
//! the drain; its data files are written first (named by the batch's start offset), then its
//! manifest. A crash before the manifest leaves files that no manifest lists: the re-run writes
//! the same keys again, and readers never see the orphans. Consumer-group offsets are committed
//! afterwards only so that lag shows in Kafka tooling.
//!
//! Threads: the caller's thread consumes and only copies record bytes into open batches; worker
//! threads parse and encode cut batches in parallel, and hand the encoded files (an eighth of
//! the records' size, or less) to tasks that upload them, so no worker waits on the store. Each
//! batch is a link of its partition's [`ChainLink`] chain: its manifest is committed only after
//! the batch before it, and not at all if that one failed, so the committed batches always form
//! an unbroken prefix of the partition, whatever is killed when.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Semaphore};

use crate::event::{format_date, parse_event, BronzeBuilder};
use crate::lake::{self, FileEntry, Lake, LakeConfig, Manifest};
use crate::produce::{topic_partitions, KafkaConfig};
use crate::progress::{ProgressFn, ProgressMeter};
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
    pub format: Format,
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
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            group_id: "spotify-pipeline-drain".into(),
            partitions: vec![],
            dataset: "spotify_events".into(),
            format: Format::Parquet,
            batch_max_records: 100_000,
            batch_max_bytes: 8 << 20,
            max_records: None,
            max_seconds: None,
            idle_timeout_s: 60,
            workers: 0,
            buffer_max_bytes: 32 << 20,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchCommitted {
    pub batch_id: String,
    pub partition: i32,
    pub start_offset: i64,
    pub end_offset: i64,
    pub rows: u64,
    pub quarantined: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DrainSummary {
    pub topic: String,
    pub rows: u64,
    pub quarantined: u64,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub files: Vec<String>,
    pub batches: Vec<BatchCommitted>,
    pub partitions: Vec<PartitionDrain>,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub warnings: Vec<String>,
}

/// How bronze files are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Typed columns (the bronze schema), zstd: the default.
    #[default]
    Parquet,
    /// One line per record: `{"kafka_topic", "kafka_partition", "kafka_offset", "event": <the
    /// record as it came>}`. The stager types it on the way into the warehouse.
    Ndjson,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
        }
    }
}

/// One record as it came from Kafka, its payload in its batch's buffer.
#[derive(Clone, Copy)]
struct RawRecord {
    offset: i64,
    kafka_ts_ms: Option<i64>,
    /// End of the payload in [`RawBatch::payloads`]; it starts where the previous one ends.
    end: usize,
}

/// The records of one partition since its last cut, as they came. The consumer thread only
/// copies bytes into it; a worker parses and encodes it, an upload task writes it.
struct RawBatch {
    partition: i32,
    link: ChainLink,
    start: i64,
    last: i64,
    payloads: Vec<u8>,
    records: Vec<RawRecord>,
}

impl RawBatch {
    fn push(&mut self, offset: i64, kafka_ts_ms: Option<i64>, payload: &[u8]) {
        self.payloads.extend_from_slice(payload);
        self.records.push(RawRecord { offset, kafka_ts_ms, end: self.payloads.len() });
        self.last = offset;
    }

    fn iter(&self) -> impl Iterator<Item = (RawRecord, &[u8])> {
        let mut begin = 0;
        self.records.iter().map(move |r| {
            let p = &self.payloads[begin..r.end];
            begin = r.end;
            (*r, p)
        })
    }
}

/// Typed rows of one batch, by UTC (day since the epoch, hour): the files' date=/hour= partitions.
struct OpenBatch {
    bronze: BTreeMap<(i64, u32), BronzeFile>,
    quarantine: BTreeMap<(i64, u32), Vec<u8>>,
    reasons: BTreeMap<String, u64>,
    format: Format,
}

/// The rows of one bronze file being built.
enum BronzeFile {
    Parquet(BronzeBuilder),
    Ndjson { lines: Vec<u8>, rows: u64 },
}

impl OpenBatch {
    /// Parses and validates the records of `raw` into files by hour, and quarantine.
    fn parse(raw: &RawBatch, topic: &str, format: Format) -> Result<Self> {
        let mut open = Self { bronze: BTreeMap::new(), quarantine: BTreeMap::new(), reasons: BTreeMap::new(), format };
        for (i, (r, payload)) in raw.iter().enumerate() {
            open.add(topic, raw.partition, r.offset, r.kafka_ts_ms, payload, raw.records.len() - i)?;
        }
        Ok(open)
    }

    /// Adds one record; at most `rows_left` more (this one included) will follow into the batch.
    fn add(&mut self, topic: &str, partition: i32, offset: i64, kafka_ts_ms: Option<i64>, payload: &[u8], rows_left: usize) -> Result<()> {
        match parse_event(payload) {
            Ok(ev) => {
                let format = self.format;
                let file = self.bronze.entry(lake::day_hour(ev.event_ts_ms)).or_insert_with(|| match format {
                    Format::Parquet => BronzeFile::Parquet(BronzeBuilder::with_capacity_like(rows_left, &ev)),
                    Format::Ndjson => BronzeFile::Ndjson { lines: Vec::new(), rows: 0 },
                });
                match file {
                    BronzeFile::Parquet(b) => b.append(&ev, topic, partition, offset),
                    BronzeFile::Ndjson { lines, rows } => {
                        // The payload is a valid JSON object: it embeds as it came.
                        serde_json::to_writer(&mut *lines, &serde_json::json!({"kafka_topic": topic, "kafka_partition": partition, "kafka_offset": offset}))?;
                        lines.pop();
                        lines.extend_from_slice(b",\"event\":");
                        lines.extend_from_slice(payload);
                        lines.extend_from_slice(b"}\n");
                        *rows += 1;
                    }
                }
            }
            Err(rej) => {
                *self.reasons.entry(rej.class.to_string()).or_default() += 1;
                let when = kafka_ts_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                let line = self.quarantine.entry(lake::day_hour(when)).or_default();
                let mut rec = serde_json::json!({
                    "topic": topic, "partition": partition, "offset": offset, "kafka_ts_ms": kafka_ts_ms,
                    "reason": rej.class, "detail": rej.detail,
                });
                match std::str::from_utf8(payload) {
                    Ok(s) => rec["payload"] = s.into(),
                    Err(_) => rec["payload_base64"] = base64(payload).into(),
                }
                serde_json::to_writer(&mut *line, &rec)?;
                line.push(b'\n');
            }
        }
        Ok(())
    }
}

/// A batch's place in its partition's chain of commits: its manifest is written once the batch
/// before it has committed (`after` says `true`), and it tells the next one how it went. A
/// later batch committed before an earlier one would make a crash in between skip the earlier
/// range on resume; after a failure, no later batch of the partition commits.
struct ChainLink {
    /// None for the partition's first batch in this drain.
    after: Option<oneshot::Receiver<bool>>,
    then: oneshot::Sender<bool>,
}

impl ChainLink {
    /// The next link of a chain whose last link's receiver is `tail`; `tail` becomes this one's.
    fn next(tail: &mut Option<oneshot::Receiver<bool>>) -> Self {
        let (then, rx) = oneshot::channel();
        Self { after: tail.replace(rx), then }
    }

    /// Runs `commit` in turn (after the batch before, unless that failed) and passes the turn on.
    /// A link dropped unused counts as a failure for the next.
    async fn in_turn<T>(self, commit: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let earlier_ok = match self.after {
            None => true,
            Some(rx) => rx.await.unwrap_or(false),
        };
        let result = if earlier_ok { commit.await } else { Err(Error::lake("not committed: an earlier batch of its partition failed")) };
        let _ = self.then.send(result.is_ok());
        result
    }
}

/// What the workers and upload tasks report to the consumer thread.
enum Report {
    /// A batch's record buffers, free once it is encoded: for the next batches.
    Buffers(Vec<u8>, Vec<RawRecord>),
    /// A batch's commit, or why it failed: one per batch handed to the workers.
    Committed { partition: i32, result: Result<Manifest> },
}

/// Parses and encodes one batch: its manifest-to-be and the files to write first.
fn encode(raw: &RawBatch, topic: &str, opts: &DrainOptions) -> Result<(Manifest, Vec<(String, Vec<u8>)>)> {
    let open = OpenBatch::parse(raw, topic, opts.format)?;
    encode_batch(raw, topic, open, &opts.dataset)
}

/// Writes a batch's files, then, in its partition's turn, its manifest: the manifest is the commit.
async fn commit(lake: Lake, link: ChainLink, encoded: Result<(Manifest, Vec<(String, Vec<u8>)>)>) -> Result<Manifest> {
    let written = match encoded {
        Ok((manifest, puts)) => futures::future::try_join_all(puts.into_iter().map(|(k, v)| lake.put_owned(k, v))).await.map(|_| manifest),
        Err(e) => Err(e),
    };
    link.in_turn(async {
        let manifest = written?;
        let key = lake::manifest_key(&manifest.topic, manifest.partition, manifest.start_offset);
        if !lake.put_if_absent(&key, serde_json::to_vec_pretty(&manifest)?).await? {
            return Err(Error::lake(format!(
                "{key} was committed by another drain of partition {} meanwhile; stopping so that no offset is \
                 written twice (re-run to continue from the lake's manifests)",
                manifest.partition
            )));
        }
        Ok(manifest)
    })
    .await
}

/// A worker: takes cut batches, encodes them, and leaves the writing to a task, so that it is
/// free for the next batch while the store works; `uploads` bounds the batches in flight
/// between being taken and being committed.
fn work(jobs: &Mutex<mpsc::Receiver<RawBatch>>, reports: &mpsc::Sender<Report>, uploads: &Arc<Semaphore>, lake: &Lake, rt: &tokio::runtime::Runtime, topic: &str, opts: &DrainOptions) {
    use futures::FutureExt;
    loop {
        // The permit is taken in the order the batches were cut (the queue stays locked until it
        // is): a batch waiting for the one before it never holds the permit that one needs.
        let (raw, permit) = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(raw) = jobs.recv() else { return };
            (raw, rt.block_on(uploads.clone().acquire_owned()).expect("the semaphore is never closed"))
        };
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| encode(&raw, topic, opts)))
            .unwrap_or_else(|_| Err(Error::data(format!("encoding the batch of partition {} from offset {} panicked", raw.partition, raw.start))));
        let RawBatch { partition, link, mut payloads, mut records, .. } = raw;
        payloads.clear();
        records.clear();
        let _ = reports.send(Report::Buffers(payloads, records));
        let (lake, reports) = (lake.clone(), reports.clone());
        rt.spawn(async move {
            // Exactly one report per batch, even if something in it panics (the main thread counts them).
            let result = std::panic::AssertUnwindSafe(commit(lake, link, encoded)).catch_unwind().await.unwrap_or_else(|_| {
                Err(Error::data(format!("writing a batch of partition {partition} panicked")))
            });
            drop(permit);
            let _ = reports.send(Report::Committed { partition, result });
        });
    }
}

/// Drains `kafka.topic` into the lake. See the module documentation for the guarantees.
///
/// The calling thread only consumes: it copies records into one open batch per partition and
/// cuts batches. Workers parse and encode the cut batches in parallel; upload tasks write them
/// and commit each partition's manifests in offset order.
pub fn drain(kafka: &KafkaConfig, lake_cfg: &LakeConfig, opts: &DrainOptions, progress: &mut ProgressFn<'_>) -> Result<DrainSummary> {
    if opts.batch_max_records == 0 || opts.batch_max_bytes == 0 || opts.buffer_max_bytes == 0 {
        return Err(Error::config("batch_max_records, batch_max_bytes and buffer_max_bytes must be positive"));
    }
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(lake.check())?;

    let mut cc = kafka.client_config()?;
    cc.set("group.id", &opts.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in CONSUMER_DEFAULTS {
        if !kafka.client.contains_key(*k) {
            cc.set(*k, *v);
        }
    }
    let consumer: BaseConsumer = cc.create()?;
    let all = topic_partitions(consumer.client(), kafka)?
        .ok_or_else(|| Error::kafka(format!("topic {} does not exist on {}", kafka.topic, kafka.bootstrap())))?;
    let partitions = if opts.partitions.is_empty() { all.clone() } else { opts.partitions.clone() };
    if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
        return Err(Error::config(format!("topic {} has no partition {p} (it has {all:?})", kafka.topic)));
    }

    let started = Instant::now();
    let mut summary = DrainSummary { topic: kafka.topic.clone(), ..Default::default() };
    let mut slots: Vec<Slot> = (0..=partitions.iter().copied().max().unwrap_or(0)).map(|_| Slot::default()).collect();
    let mut tpl = TopicPartitionList::new();
    let mut total = 0u64;
    for &p in &partitions {
        let resume = rt.block_on(lake.next_offset(&kafka.topic, p))?;
        let (low, high) = consumer.fetch_watermarks(&kafka.topic, p, kafka.timeout()).map_err(|e| {
            Error::BrokerUnavailable(format!("watermarks of {}/{p} from {}: {e}", kafka.topic, kafka.bootstrap()))
        })?;
        let from = resume.unwrap_or(low).max(low);
        let lost = resume.map(|r| (low - r).max(0)).unwrap_or(0);
        if lost > 0 {
            summary.warnings.push(format!("partition {p}: offsets {}..{low} were removed by retention before being drained", resume.unwrap_or(0)));
        }
        summary.partitions.push(PartitionDrain { partition: p, from_offset: from, next_offset: from, high_watermark: high, lag: high - from, lost_to_retention: lost });
        if from < high {
            tpl.add_partition_offset(&kafka.topic, p, Offset::Offset(from))?;
            slots[p as usize].high = Some(high);
            total += (high - from) as u64;
        }
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
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<RawBatch>(1);
    let jobs_rx = Mutex::new(jobs_rx);
    let (done_tx, done_rx) = mpsc::channel::<Report>();
    let uploads = Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT));

    let mut summary = std::thread::scope(|scope| -> Result<DrainSummary> {
        for i in 0..workers {
            let (jobs_rx, done_tx, uploads, lake, rt, topic) = (&jobs_rx, done_tx.clone(), &uploads, &lake, &rt, kafka.topic.as_str());
            std::thread::Builder::new()
                .name(format!("drain-writer-{i}"))
                .spawn_scoped(scope, move || work(jobs_rx, &done_tx, uploads, lake, rt, topic, opts))
                .map_err(|e| Error::config(format!("cannot start a drain worker: {e}")))?;
        }
        drop(done_tx);
        let mut run = Run {
            consumer: &consumer,
            topic: &kafka.topic,
            bootstrap: kafka.bootstrap(),
            opts,
            summary,
            remaining: slots.iter().filter(|s| s.high.is_some()).count(),
            slots,
            open_bytes: 0,
            spare: Vec::new(),
            in_flight: 0,
            jobs: Some(jobs_tx),
            done: &done_rx,
        };
        let consumed = run.consume(deadline, &mut meter, progress);
        // Whatever stopped the loop, what was read is flushed (never left stuck), and every
        // batch handed to the workers is accounted for before returning.
        let flushed = consumed.and_then(|()| run.cut_all());
        run.jobs = None;
        let settled = run.settle_all();
        flushed?;
        settled?;
        Ok(run.summary)
    })?;
    meter.tick(summary.rows + summary.quarantined, summary.bytes, true, progress)?;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.records_per_s = (summary.rows + summary.quarantined) as f64 / summary.elapsed_s.max(1e-9);
    summary.batches.sort_by_key(|b| (b.partition, b.start_offset));
    Ok(summary)
}

/// librdkafka settings the drain brings unless the connection sets them. Fetches are large (with
/// the 1 MiB default per partition a backlog drains at half speed), the prefetch queue is capped
/// (it is most of the memory), and a full queue delays the next fetch by milliseconds, not by
/// librdkafka's default second, during which a fast consumer would sit idle.
/// Batches between a worker and their commit at once (mostly encoded, and small: Parquet is an
/// eighth of the records or less).
const UPLOADS_IN_FLIGHT: usize = 8;

const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("max.partition.fetch.bytes", "2097152"),
    ("fetch.max.bytes", "8388608"),
    ("queued.max.messages.kbytes", "4096"),
    ("fetch.queue.backoff.ms", "5"),
];

/// One partition, as the consumer sees it.
#[derive(Default)]
struct Slot {
    /// The high watermark to drain up to; None once reached (or for partitions not drained).
    high: Option<i64>,
    open: Option<RawBatch>,
    /// Where the partition's next batch joins its commit chain.
    tail: Option<oneshot::Receiver<bool>>,
}

/// The consumer side of one drain: open batches, and batches handed to the workers.
struct Run<'a> {
    consumer: &'a BaseConsumer,
    topic: &'a str,
    bootstrap: &'a str,
    opts: &'a DrainOptions,
    summary: DrainSummary,
    /// Indexed by partition id: a vector, because it is looked up once per record.
    slots: Vec<Slot>,
    /// Partitions still to drain.
    remaining: usize,
    /// Payload bytes in open batches, all partitions together.
    open_bytes: usize,
    /// Buffers of written batches, for the next ones.
    spare: Vec<(Vec<u8>, Vec<RawRecord>)>,
    in_flight: usize,
    jobs: Option<mpsc::SyncSender<RawBatch>>,
    done: &'a mpsc::Receiver<Report>,
}

impl Run<'_> {
    fn consume(&mut self, deadline: Option<Instant>, meter: &mut ProgressMeter, progress: &mut ProgressFn<'_>) -> Result<()> {
        let opts = self.opts;
        let mut consumed = 0u64;
        let mut idle_since: Option<Instant> = None;
        while self.remaining > 0 {
            // Clocks and progress every thousand records: per record they would cost more than copying it.
            if consumed % 1024 == 0 || idle_since.is_some() {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                self.settle_ready()?;
                meter.tick(consumed, self.summary.bytes, false, progress)?;
            }
            if opts.max_records.is_some_and(|m| consumed >= m) {
                break;
            }
            // Without waiting first: a wait costs clock reads, and there is usually a record ready.
            let polled = match self.consumer.poll(Duration::ZERO) {
                None => self.consumer.poll(Duration::from_millis(200)),
                some => some,
            };
            match polled {
                Some(Ok(m)) => {
                    idle_since = None;
                    let (p, off) = (m.partition(), m.offset());
                    let Some(slot) = self.slots.get_mut(p as usize) else { continue };
                    let Some(high) = slot.high.filter(|&h| off < h) else { continue };
                    let ts = match m.timestamp() {
                        Timestamp::NotAvailable => None,
                        t => t.to_millis(),
                    };
                    let payload = m.payload().unwrap_or_default();
                    let batch = slot.open.get_or_insert_with(|| {
                        let (payloads, records) = self.spare.pop().unwrap_or_default();
                        RawBatch { partition: p, link: ChainLink::next(&mut slot.tail), start: off, last: off, payloads, records }
                    });
                    batch.push(off, ts, payload);
                    self.open_bytes += payload.len();
                    consumed += 1;
                    let full = batch.records.len() >= opts.batch_max_records || batch.payloads.len() >= opts.batch_max_bytes;
                    if off + 1 >= high {
                        self.finish_partition(p)?;
                    } else if full {
                        self.cut(p)?;
                    }
                    if self.open_bytes > opts.buffer_max_bytes {
                        // Many partitions at once: the fullest batch goes early, so memory stays bounded.
                        let fullest = self.slots.iter().filter_map(|s| s.open.as_ref()).max_by_key(|b| b.payloads.len()).map(|b| b.partition);
                        if let Some(p) = fullest {
                            self.cut(p)?;
                        }
                    }
                }
                Some(Err(e)) => return Err(Error::kafka(format!("consuming {}: {e}", self.topic))),
                None => {
                    // Offsets that hold no record (transaction markers) never arrive: the position
                    // tells when a partition is complete.
                    let pos = self.consumer.position()?;
                    for el in pos.elements() {
                        let high = self.slots.get(el.partition() as usize).and_then(|s| s.high);
                        if let (Offset::Offset(o), Some(high)) = (el.offset(), high) {
                            if o >= high {
                                self.finish_partition(el.partition())?;
                            }
                        }
                    }
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if self.remaining > 0 && since.elapsed() > Duration::from_secs(opts.idle_timeout_s) {
                        let waiting: Vec<usize> = (0..self.slots.len()).filter(|&p| self.slots[p].high.is_some()).collect();
                        return Err(Error::BrokerUnavailable(format!(
                            "no records from {} for {}s while partitions {waiting:?} of {} still had records to drain; \
                             the {} batches committed so far are safe, re-run to resume",
                            self.bootstrap, opts.idle_timeout_s, self.topic, self.summary.batches.len()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Partition `p` reached its high watermark: its last batch goes.
    fn finish_partition(&mut self, p: i32) -> Result<()> {
        self.slots[p as usize].high = None;
        self.remaining -= 1;
        self.cut(p)
    }

    /// Hands partition `p`'s open batch, if any, to the workers.
    fn cut(&mut self, p: i32) -> Result<()> {
        let Some(batch) = self.slots[p as usize].open.take() else { return Ok(()) };
        self.open_bytes -= batch.payloads.len();
        let mut batch = batch;
        loop {
            // A full queue: settle what the workers finished meanwhile (errors stop the drain).
            match self.jobs.as_ref().expect("cut before the workers stop").try_send(batch) {
                Ok(()) => break,
                Err(mpsc::TrySendError::Full(b)) => {
                    batch = b;
                    self.settle_one()?;
                }
                Err(mpsc::TrySendError::Disconnected(_)) => return Err(Error::lake("the drain's writers stopped")),
            }
        }
        self.in_flight += 1;
        Ok(())
    }

    fn cut_all(&mut self) -> Result<()> {
        (0..self.slots.len() as i32).try_for_each(|p| self.cut(p))
    }

    fn settle_ready(&mut self) -> Result<()> {
        while let Ok(w) = self.done.try_recv() {
            self.settle(w)?;
        }
        Ok(())
    }

    /// Waits for one written batch, if any is on its way.
    fn settle_one(&mut self) -> Result<()> {
        if self.in_flight == 0 {
            return Ok(());
        }
        let w = self.done.recv().map_err(|_| Error::lake("the drain's writers stopped"))?;
        self.settle(w)
    }

    /// Waits for every batch on its way; the first error, if any, once all have settled.
    fn settle_all(&mut self) -> Result<()> {
        let mut first_err = None;
        while self.in_flight > 0 {
            if let Err(e) = self.settle_one() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn settle(&mut self, report: Report) -> Result<()> {
        let (p, result) = match report {
            Report::Buffers(payloads, records) => {
                self.spare.push((payloads, records));
                return Ok(());
            }
            Report::Committed { partition, result } => (partition, result),
        };
        self.in_flight -= 1;
        let c = result?;
        let summary = &mut self.summary;
        // Reports of one partition can arrive out of order: the group offset only moves forward.
        let pd = summary.partitions.iter_mut().find(|x| x.partition == p).expect("a drained partition has a summary");
        if c.end_offset + 1 > pd.next_offset {
            pd.next_offset = c.end_offset + 1;
            pd.lag = pd.high_watermark - pd.next_offset;
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset(self.topic, p, Offset::Offset(pd.next_offset))?;
            if let Err(e) = self.consumer.commit(&offsets, CommitMode::Async) {
                summary.warnings.push(format!("group offset commit for partition {p}: {e}"));
            }
        }
        summary.rows += c.rows;
        summary.quarantined += c.quarantined;
        for (r, n) in &c.quarantined_by_reason {
            *summary.quarantined_by_reason.entry(r.clone()).or_default() += n;
        }
        summary.files.extend(c.files.iter().chain(&c.quarantine_files).map(|f| f.key.clone()));
        summary.bytes += c.files.iter().map(|f| f.bytes).sum::<u64>();
        summary.batches.push(BatchCommitted {
            batch_id: c.batch_id,
            partition: p,
            start_offset: c.start_offset,
            end_offset: c.end_offset,
            rows: c.rows,
            quarantined: c.quarantined,
        });
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// First offset no manifest covers: where the next drain starts.
    pub next_offset: i64,
    pub high_watermark: i64,
    pub lag: i64,
    /// Kafka timestamp of the oldest record not drained yet.
    pub oldest_undrained_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LagReport {
    pub topic: String,
    pub lag: i64,
    pub oldest_undrained_ms: Option<i64>,
    pub partitions: Vec<PartitionLag>,
}

/// How far the lake is behind the topic. Measured against the lake's manifests (the drain's
/// real progress), not against consumer-group offsets.
pub fn lag(kafka: &KafkaConfig, lake_cfg: &LakeConfig) -> Result<LagReport> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    rt.block_on(lake.check())?;
    let mut cc = kafka.client_config()?;
    cc.set("group.id", "spotify-pipeline-lag-probe").set("enable.auto.commit", "false");
    let consumer: BaseConsumer = cc.create()?;
    let parts = topic_partitions(consumer.client(), kafka)?
        .ok_or_else(|| Error::kafka(format!("topic {} does not exist on {}", kafka.topic, kafka.bootstrap())))?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let (low, high) = consumer
            .fetch_watermarks(&kafka.topic, p, kafka.timeout())
            .map_err(|e| Error::BrokerUnavailable(format!("watermarks of {}/{p} from {}: {e}", kafka.topic, kafka.bootstrap())))?;
        let next = rt.block_on(lake.next_offset(&kafka.topic, p))?.unwrap_or(low).max(low);
        let oldest = if next < high { oldest_timestamp(&consumer, &kafka.topic, p, next, kafka.timeout())? } else { None };
        out.push(PartitionLag { partition: p, next_offset: next, high_watermark: high, lag: high - next, oldest_undrained_ms: oldest });
    }
    Ok(LagReport {
        topic: kafka.topic.clone(),
        lag: out.iter().map(|p| p.lag).sum(),
        oldest_undrained_ms: out.iter().filter_map(|p| p.oldest_undrained_ms).min(),
        partitions: out,
    })
}

/// Timestamp of the record at `offset` (or the first one after it).
fn oldest_timestamp(consumer: &BaseConsumer, topic: &str, partition: i32, offset: i64, timeout: Duration) -> Result<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.partition() == partition => return Ok(m.timestamp().to_millis()),
            Some(Err(e)) => return Err(Error::kafka(format!("reading {topic}/{partition}@{offset}: {e}"))),
            _ => {}
        }
    }
    Ok(None)
}

/// Encodes a batch's files: the manifest that will commit them, and the (key, bytes) to write first.
fn encode_batch(raw: &RawBatch, topic: &str, b: OpenBatch, dataset: &str) -> Result<(Manifest, Vec<(String, Vec<u8>)>)> {
    let (partition, start) = (raw.partition, raw.start);
    let id = lake::batch_id(topic, partition, start);
    let mut files = Vec::new();
    let mut puts = Vec::new();
    for ((day, hour), file) in b.bronze {
        let (rows, bytes) = match file {
            BronzeFile::Parquet(mut builder) => (builder.rows() as u64, encode_parquet(&builder.finish()?)?),
            BronzeFile::Ndjson { lines, rows } => (rows, lines),
        };
        let key = lake::bronze_key(dataset, &format_date(day), hour, &id, b.format.extension());
        files.push(FileEntry { key: key.clone(), rows, bytes: bytes.len() as u64 });
        puts.push((key, bytes));
    }
    let mut quarantine_files = Vec::new();
    for ((day, hour), lines) in b.quarantine {
        let key = lake::quarantine_key(dataset, &format_date(day), hour, &id);
        let rows = lines.iter().filter(|&&c| c == b'\n').count() as u64;
        quarantine_files.push(FileEntry { key: key.clone(), rows, bytes: lines.len() as u64 });
        puts.push((key, lines));
    }
    let manifest = Manifest {
        batch_id: id,
        topic: topic.to_string(),
        partition,
        start_offset: start,
        end_offset: raw.last,
        rows: files.iter().map(|f| f.rows).sum(),
        quarantined: quarantine_files.iter().map(|f| f.rows).sum(),
        files,
        quarantine_files,
        quarantined_by_reason: b.reasons,
        committed_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    Ok((manifest, puts))
}

pub fn encode_parquet(batch: &arrow_array::RecordBatch) -> Result<Vec<u8>> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    // Unique per row: a dictionary would only cost time. Statistics only where readers prune
    // (time and Kafka position): min/max of every string column cost a fifth of the encoding.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_statistics_enabled(EnabledStatistics::None);
    for column in ["event_id", "session_id", "kafka_offset"] {
        props = props.set_column_dictionary_enabled(column.into(), false);
    }
    for column in ["event_ts", "kafka_partition", "kafka_offset"] {
        props = props.set_column_statistics_enabled(column.into(), EnabledStatistics::Chunk);
    }
    let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props.build()))?;
    w.write(batch)?;
    Ok(w.into_inner()?)
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn a_batch_splits_by_event_hour_and_quarantines_with_reasons() {
        let ok = |ts: &str| serde_json::json!({
            "event_id": "e", "event_type": "play", "event_ts": ts, "user_id": "u", "session_id": "s",
            "song_id": "so", "song_name": "n", "artist_id": "a", "artist_name": "an", "album": "al",
            "genre": "pop", "release_date": "2025-01-01", "duration_ms": 1, "position_ms": 0,
            "device_type": "mobile", "country": "US", "city": "c", "timezone": "UTC",
            "subscription": "free", "playlist_id": null, "schema_version": 1
        }).to_string();
        let mut raw = RawBatch { partition: 0, link: ChainLink::next(&mut None), start: 10, last: 10, payloads: vec![], records: vec![] };
        raw.push(10, Some(0), ok("2026-01-15T10:59:59Z").as_bytes());
        raw.push(11, Some(0), ok("2026-01-15T11:00:00Z").as_bytes());
        raw.push(13, None, b"\xff\xfe");
        let offsets: Vec<(i64, usize)> = raw.iter().map(|(r, p)| (r.offset, p.len())).collect();
        assert_eq!(offsets[2], (13, 2), "each payload comes back whole, with its offset");
        for format in [Format::Parquet, Format::Ndjson] {
            let b = OpenBatch::parse(&raw, "t", format).unwrap();
            assert_eq!(b.bronze.len(), 2);
            assert_eq!(b.reasons.get("not_utf8"), Some(&1));
            let q = String::from_utf8(b.quarantine.values().next().unwrap().clone()).unwrap();
            assert!(q.contains("\"payload_base64\":\"//4=\"") && q.contains("\"offset\":13"), "{q}");
            let (m, puts) = encode_batch(&raw, "t", b, "ds").unwrap();
            assert_eq!((m.start_offset, m.end_offset, m.rows, m.quarantined), (10, 13, 2, 1));
            assert_eq!(puts.len(), 3, "two hour files and one quarantine file");
            if format == Format::Ndjson {
                let line = String::from_utf8(puts[0].1.clone()).unwrap();
                let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
                assert_eq!((v["kafka_offset"].as_i64(), v["event"]["event_ts"].as_str()), (Some(10), Some("2026-01-15T10:59:59Z")));
            }
        }
    }

    #[test]
    fn manifests_commit_in_partition_order_whoever_finishes_first() {
        let rt = crate::runtime::runtime().unwrap();
        let committed = Arc::new(Mutex::new(Vec::new()));
        let mut tail = None;
        let links: Vec<ChainLink> = (0..6).map(|_| ChainLink::next(&mut tail)).collect();
        // Started last to first, the later ones readier: each must still wait for the one before.
        let tasks: Vec<_> = links.into_iter().enumerate().rev().map(|(seq, link)| {
            let committed = committed.clone();
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(5 * (6 - seq as u64))).await;
                link.in_turn(async { committed.lock().unwrap().push(seq); Ok(()) }).await
            })
        }).collect();
        for t in tasks {
            assert!(rt.block_on(t).unwrap().is_ok());
        }
        assert_eq!(*committed.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        // A partition's chain starts afresh.
        assert!(rt.block_on(ChainLink::next(&mut None).in_turn(async { Ok(()) })).is_ok());
    }

    #[test]
    fn after_a_failed_batch_no_later_one_of_its_partition_commits() {
        let rt = crate::runtime::runtime().unwrap();
        let mut tail = None;
        let (first, second, third, fourth) = (ChainLink::next(&mut tail), ChainLink::next(&mut tail), ChainLink::next(&mut tail), ChainLink::next(&mut tail));
        assert!(rt.block_on(first.in_turn(async { Ok(()) })).is_ok());
        assert!(rt.block_on(second.in_turn(async { Err::<(), _>(Error::lake("MinIO down")) })).is_err());
        let ran = std::sync::atomic::AtomicBool::new(false);
        let later = rt.block_on(third.in_turn(async {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }));
        assert!(later.is_err() && !ran.load(std::sync::atomic::Ordering::SeqCst), "a later batch must not commit past a gap");
        assert!(rt.block_on(fourth.in_turn(async { Ok(()) })).is_err(), "nor any after it");
        // A link dropped without running (its writer died) counts as failed.
        let mut tail = None;
        drop(ChainLink::next(&mut tail));
        assert!(rt.block_on(ChainLink::next(&mut tail).in_turn(async { Ok(()) })).is_err());
    }
}
