//! The simulator as an always-on source: one simulation produced with no end, paced by its
//! clock, and acknowledged in checkpoints that the caller logs, so that a restart resumes it and
//! its ground truth can be regenerated.
//!
//! A simulation is deterministic, so its position is one number: the index of the next record.
//! Resuming generates the records before it again without sending them (~1.7 M records/s).
//! After a crash the log's last checkpoint is behind what reached Kafka; [`recover`] reads the
//! topic past the checkpoint's offsets and matches the records to the simulation. With an
//! idempotent producer each partition holds a prefix of what was sent to it, so the records
//! that made it are found exactly, and those that did not are named.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::kafka::{ensure_topic, existing_partitions, ClientErrors, KafkaConfig, KafkaConsumer};
use crate::produce::{check_compression, producer_config, send, wait_serving, Deliveries};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::simulate::{SimConfig, Simulator};
use crate::{Error, Result};

/// How a stream runs. The simulation itself (seed, start, rates, faults) is its [`SimConfig`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamOptions {
    /// Simulated time per wall-clock time after `anchor`. A record is never sent before the
    /// wall clock reaches its own delivery time, so a stream that catches up with now goes on
    /// in real time.
    pub speedup: f64,
    /// (simulated ms, wall-clock ms) at which pacing starts; None: the simulated clock is the
    /// wall clock (real time), so records of a time the stream was down are sent at once, as
    /// apps send what they buffered while offline.
    pub anchor: Option<(i64, i64)>,
    /// Records before this index are generated but not sent: they were sent before a restart,
    /// or are the warm-up.
    pub resume_at: u64,
    /// Records delivered (in simulated time) before this are generated but not sent either: a
    /// warm-up, so that a new stream starts with sessions already in progress.
    pub send_from_ms: Option<i64>,
    /// Every so often, wait for every record sent to be acknowledged and report a [`Checkpoint`].
    pub checkpoint_s: f64,
    /// Stop after this long (a stream is unbounded without it).
    pub duration_s: Option<f64>,
    /// How long a record may wait for the broker: long, so that a broker restart only delays.
    pub message_timeout_s: u64,
    pub create_topic: bool,
    pub partitions: i32,
    pub replication: i32,
    pub compression: String,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            speedup: 1.0,
            anchor: None,
            resume_at: 0,
            send_from_ms: None,
            checkpoint_s: 5.0,
            duration_s: None,
            message_timeout_s: 600,
            create_topic: true,
            partitions: 3,
            replication: 1,
            compression: "lz4".into(),
        }
    }
}

impl StreamOptions {
    fn validate(&self) -> Result<()> {
        check_compression(&self.compression)?;
        if !(self.speedup.is_finite() && self.speedup >= 1.0) {
            return Err(Error::config(format!("speedup must be at least 1 (real time), got {}", self.speedup)));
        }
        if !(self.checkpoint_s.is_finite() && self.checkpoint_s > 0.0) {
            return Err(Error::config("checkpoint_s must be a positive number"));
        }
        if self.duration_s.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
            return Err(Error::config("duration_s must be a positive number"));
        }
        Ok(())
    }
}

/// A partition's next offset.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionOffset {
    pub partition: i32,
    pub offset: i64,
}

/// Every record of the simulation before `next` is acknowledged by the broker, or was not to
/// be sent (before `first_sent`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub next: u64,
    /// The first record this run sent (where its replay and warm-up ended).
    pub first_sent: u64,
    /// Records this run sent, and their bytes.
    pub sent: u64,
    pub bytes: u64,
    /// The topic's next offsets once they were acknowledged: where [`recover`] starts reading.
    pub offsets: Vec<PartitionOffset>,
    /// The simulated clock: the delivery time of record `next - 1`.
    pub sim_now_ms: i64,
    /// The last checkpoint of a run that stops (asked to, or at its `duration_s`).
    pub last: bool,
}

pub type CheckpointFn<'a> = dyn FnMut(&Checkpoint) -> Result<()> + Send + 'a;

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

struct Sender {
    producer: BaseProducer<Deliveries>,
    kafka: KafkaConfig,
    partitions: Vec<i32>,
    message_timeout: Duration,
}

impl Sender {
    /// Waits until every record sent is acknowledged (or one failed), serving `progress` each
    /// second so that a stop request is seen even while the broker is away.
    fn flush(&self, meter: &mut ProgressMeter, done: u64, bytes: u64, progress: &mut ProgressFn<'_>) -> Result<()> {
        let deadline = Instant::now() + self.message_timeout + Duration::from_secs(5);
        while self.producer.in_flight_count() > 0 {
            let _ = self.producer.flush(Duration::from_secs(1));
            self.producer.context().check()?;
            if Instant::now() > deadline {
                return Err(Error::kafka(format!("{} records still unacknowledged after {:?}", self.producer.in_flight_count(), self.message_timeout)));
            }
            meter.tick(done, bytes, false, progress)?;
        }
        self.producer.context().check()
    }

    fn offsets(&self) -> Result<Vec<PartitionOffset>> {
        self.partitions
            .iter()
            .map(|&p| {
                let (_, high) = self.producer.client().fetch_watermarks(&self.kafka.topic, p, self.kafka.timeout()).map_err(|e| {
                    Error::BrokerUnavailable(format!("watermarks of {}/{p} from {}: {e}", self.kafka.topic, self.kafka.bootstrap()))
                })?;
                Ok(PartitionOffset { partition: p, offset: high })
            })
            .collect()
    }
}

/// Runs the simulation from its start, sends the records from `opts.resume_at` on, paced by
/// the simulated clock, and reports a [`Checkpoint`] every `opts.checkpoint_s`. It ends at
/// `opts.duration_s` (with a last checkpoint), or when `progress` returns an error (a stop
/// request): then it waits up to 10 s for what is in flight, reports a last checkpoint if all
/// of it was acknowledged, and returns that error. Nothing is lost either way: the next run
/// resumes from the last checkpoint and [`recover`] finds what reached Kafka after it.
pub fn stream(kafka: &KafkaConfig, sim_cfg: &SimConfig, opts: &StreamOptions, progress: &mut ProgressFn<'_>, checkpoint: &mut CheckpointFn<'_>) -> Result<Checkpoint> {
    opts.validate()?;
    let mut sim = Simulator::new(sim_cfg.clone())?;
    let partitions = if opts.create_topic { ensure_topic(kafka, opts.partitions, opts.replication)? } else { existing_partitions(kafka)? };
    let (cc, timeout_ms) = producer_config(kafka, &opts.compression, opts.message_timeout_s * 1000)?;
    let n = partitions.iter().copied().max().unwrap_or(0) as usize + 1;
    let sender = Sender {
        producer: cc.create_with_context(Deliveries::new(n))?,
        kafka: kafka.clone(),
        partitions,
        message_timeout: Duration::from_millis(timeout_ms),
    };

    let (mut buf, mut key) = (Vec::with_capacity(1024), String::with_capacity(16));
    // Replay and warm-up: generate, do not send.
    let mut next = 0u64;
    loop {
        let before_ms = sim.now_ms();
        if next >= opts.resume_at && opts.send_from_ms.is_none_or(|t| before_ms >= t) {
            break;
        }
        sim.next_json(&mut buf)?;
        next += 1;
        if next >= opts.resume_at && opts.send_from_ms.is_none_or(|t| sim.now_ms() >= t) {
            break;
        }
    }
    let first_sent = next;
    let pace = |deliver_ms: i64| -> i64 {
        match opts.anchor {
            None => deliver_ms,
            Some((sim0, wall0)) => (wall0 + ((deliver_ms - sim0) as f64 / opts.speedup) as i64).max(deliver_ms),
        }
    };
    let started = Instant::now();
    let deadline = opts.duration_s.map(|d| started + Duration::from_secs_f64(d));
    let mut meter = ProgressMeter::new("stream", None);
    let mut last_checkpoint = Instant::now();
    let (mut sent, mut bytes) = (0u64, 0u64);
    let mut sim_now_ms = sim.now_ms();
    let report = |sender: &Sender, next: u64, sent: u64, bytes: u64, sim_now_ms: i64, last: bool, checkpoint: &mut CheckpointFn<'_>| -> Result<Checkpoint> {
        let c = Checkpoint { next, first_sent, sent, bytes, offsets: sender.offsets()?, sim_now_ms, last };
        checkpoint(&c)?;
        Ok(c)
    };

    // Where this run starts, before anything is sent: what recovery reads from if it dies
    // before its next checkpoint.
    report(&sender, next, 0, 0, sim_now_ms, false, checkpoint)?;
    let outcome: Result<()> = (|| loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        key.clear();
        key.push_str(sim.next_json(&mut buf)?);
        let due = pace(sim.now_ms());
        loop {
            let ahead = due - wall_ms();
            if ahead <= 0 {
                break;
            }
            wait_serving(&sender.producer, Duration::from_millis(ahead as u64));
            meter.tick(sent, bytes, false, progress)?;
        }
        send(&sender.producer, BaseRecord::to(&kafka.topic).key(key.as_str()).payload(&buf))?;
        next += 1;
        sent += 1;
        bytes += buf.len() as u64;
        sim_now_ms = sim.now_ms();
        if sent % 1024 == 0 {
            sender.producer.poll(Duration::ZERO);
            sender.producer.context().check()?;
            meter.tick(sent, bytes, false, progress)?;
        }
        if last_checkpoint.elapsed().as_secs_f64() >= opts.checkpoint_s {
            sender.flush(&mut meter, sent, bytes, progress)?;
            report(&sender, next, sent, bytes, sim_now_ms, false, checkpoint)?;
            last_checkpoint = Instant::now();
        }
    })();

    match outcome {
        Ok(()) => {
            sender.flush(&mut meter, sent, bytes, progress)?;
            meter.tick(sent, bytes, true, progress)?;
            report(&sender, next, sent, bytes, sim_now_ms, true, checkpoint)
        }
        Err(Error::Cancelled(why)) => {
            // Asked to stop: a last checkpoint if what is in flight is acknowledged soon.
            if sender.producer.flush(Duration::from_secs(10)).is_ok() && sender.producer.context().check().is_ok() {
                debug_assert_eq!(sender.producer.context().acknowledged(), sent);
                report(&sender, next, sent, bytes, sim_now_ms, true, checkpoint)?;
            }
            Err(Error::Cancelled(why))
        }
        Err(e) => Err(e),
    }
}

/// What [`recover`] found past a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recovered {
    /// Every record before it is in the topic or named in `not_sent`.
    pub next: u64,
    /// Records found in the topic past the checkpoint.
    pub found: u64,
    /// Records between the checkpoint and `next` that never reached the topic (in flight in
    /// another partition when the stream died).
    pub not_sent: Vec<u64>,
    /// The simulated clock at `next` (unchanged if nothing was found).
    pub sim_now_ms: Option<i64>,
}

/// Reads the topic from `offsets` to its end and matches each record, in order, to the
/// simulation's records from index `from`. A record of the simulation that is the next one
/// waiting in some partition reached Kafka; one that is not did not. Records that match
/// nothing mean another producer writes to the topic: an error, since the stream's ground
/// truth would then be wrong.
pub fn recover(kafka: &KafkaConfig, sim_cfg: &SimConfig, from: u64, offsets: &[PartitionOffset]) -> Result<Recovered> {
    let mut sim = Simulator::new(sim_cfg.clone())?;
    let mut tails = read_tails(kafka, offsets)?;
    let total: u64 = tails.iter().map(|t| t.len() as u64).sum();
    let mut buf = Vec::with_capacity(1024);
    for _ in 0..from {
        sim.next_json(&mut buf)?;
    }
    let (mut i, mut found, mut not_sent, mut sim_now_ms) = (from, 0u64, Vec::new(), None);
    // Records in flight when a stream dies were sent within its message timeout; 2 M records
    // past the last match is far beyond that at any rate the stream reaches (~400 k/s).
    let mut misses_since_match = 0u64;
    while found < total {
        let key = sim.next_json(&mut buf)?.to_string();
        match tails.iter_mut().find(|t| t.front().is_some_and(|(k, v)| k.as_deref() == Some(key.as_bytes()) && *v == buf)) {
            Some(t) => {
                t.pop_front();
                found += 1;
                misses_since_match = 0;
                sim_now_ms = Some(sim.now_ms());
            }
            None => {
                not_sent.push(i);
                misses_since_match += 1;
                if misses_since_match > 2_000_000 {
                    return Err(Error::data(format!(
                        "{} records in {} past the stream's last checkpoint are not from its simulation \
                         (does another producer write to this topic?)",
                        total - found,
                        kafka.topic
                    )));
                }
            }
        }
        i += 1;
    }
    // Misses after the last match were never sent: the stream resumes at them.
    let next = if found == 0 { from } else { i };
    not_sent.retain(|&n| n < next);
    Ok(Recovered { next, found, not_sent, sim_now_ms })
}

type Tail = VecDeque<(Option<Vec<u8>>, Vec<u8>)>;

/// Each partition's records from `offsets` to its high watermark.
fn read_tails(kafka: &KafkaConfig, offsets: &[PartitionOffset]) -> Result<Vec<Tail>> {
    let mut cc = kafka.client_config()?;
    cc.set("group.id", "spotify-pipeline-stream-recover").set("enable.auto.commit", "false").set("enable.partition.eof", "false");
    let consumer: KafkaConsumer = cc.create_with_context(ClientErrors::default())?;
    let mut tails = Vec::new();
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for po in offsets {
        let (_, high) = consumer.fetch_watermarks(&kafka.topic, po.partition, kafka.timeout())?;
        if high > po.offset {
            tpl.add_partition_offset(&kafka.topic, po.partition, Offset::Offset(po.offset))?;
            ends.push((po.partition, high));
            tails.push(VecDeque::new());
        }
    }
    if ends.is_empty() {
        return Ok(tails);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + kafka.timeout() * 4;
    let mut left: usize = ends.len();
    let mut done = vec![false; ends.len()];
    while left > 0 {
        if Instant::now() > deadline {
            return Err(Error::kafka(format!("reading {} past the last checkpoint timed out", kafka.topic)));
        }
        let Some(m) = consumer.poll(Duration::from_millis(500)) else { continue };
        let m = m?;
        let Some(j) = ends.iter().position(|&(p, _)| p == m.partition()) else { continue };
        if done[j] {
            continue;
        }
        tails[j].push_back((m.key().map(<[u8]>::to_vec), m.payload().unwrap_or_default().to_vec()));
        if m.offset() + 1 >= ends[j].1 {
            done[j] = true;
            left -= 1;
        }
    }
    Ok(tails)
}
