//! Producing simulated events to Kafka with an idempotent, acks=all producer.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};

use crate::kafka::{ensure_topic, existing_partitions, ClientErrors, KafkaConfig, KeepsErrors};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::simulate::{SimConfig, SimStats, Simulator};
use crate::{Error, Result};

/// How much to produce and how fast. At least one of `count` and `duration_s` bounds the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProduceOptions {
    pub count: Option<u64>,
    pub duration_s: Option<f64>,
    /// Events per second of wall-clock time; none = as fast as the broker allows.
    pub rate_per_s: Option<f64>,
    /// Simulated seconds per wall-clock second (1 = real time); exclusive with `rate_per_s`.
    pub speedup: Option<f64>,
    /// Create the topic (with `partitions` and `replication`) if it does not exist; when
    /// false, a missing topic is an error.
    pub create_topic: bool,
    pub partitions: i32,
    pub replication: i32,
    /// none, gzip, snappy, lz4 or zstd.
    pub compression: String,
}

impl Default for ProduceOptions {
    fn default() -> Self {
        Self {
            count: Some(10_000),
            duration_s: None,
            rate_per_s: None,
            speedup: None,
            create_topic: true,
            partitions: 3,
            replication: 1,
            compression: "lz4".into(),
        }
    }
}

impl ProduceOptions {
    fn validate(&self) -> Result<()> {
        check_compression(&self.compression)?;
        if self.count.is_none() && self.duration_s.is_none() {
            return Err(Error::config("set a count, a duration_s, or both"));
        }
        if self.rate_per_s.is_some() && self.speedup.is_some() {
            return Err(Error::config("set rate_per_s or speedup, not both"));
        }
        for (name, v) in [("duration_s", self.duration_s), ("rate_per_s", self.rate_per_s), ("speedup", self.speedup)] {
            if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                return Err(Error::config(format!("{name} must be a positive number")));
            }
        }
        Ok(())
    }
}

pub(crate) fn check_compression(compression: &str) -> Result<()> {
    if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression) {
        return Err(Error::config(format!("unknown compression {compression:?}")));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProduceSummary {
    pub topic: String,
    /// Records produced (and acknowledged), faults included.
    pub events: u64,
    /// What the records were: valid, duplicates, late, malformed by class.
    pub sim: SimStats,
    pub bytes: u64,
    pub partitions: Vec<PartitionRange>,
    pub elapsed_s: f64,
    pub events_per_s: f64,
}

/// Counts delivery reports per partition. Lock-free: librdkafka calls it for every message.
pub(crate) struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    client_errors: ClientErrors,
    /// Per partition id: (lowest offset, highest offset, count).
    ranges: Vec<(AtomicI64, AtomicI64, AtomicU64)>,
}

impl Deliveries {
    pub(crate) fn new(partitions: usize) -> Self {
        Self {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            client_errors: ClientErrors::default(),
            ranges: (0..partitions).map(|_| (AtomicI64::new(i64::MAX), AtomicI64::new(i64::MIN), AtomicU64::new(0))).collect(),
        }
    }

    pub(crate) fn acknowledged(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) > 0 {
            let e = self.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(Error::kafka(format!(
                "{} events were not delivered: {}",
                self.failed.load(Ordering::Relaxed),
                e.unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn partition_ranges(&self) -> Vec<PartitionRange> {
        self.ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| r.2.load(Ordering::Relaxed) > 0)
            .map(|(p, r)| PartitionRange {
                partition: p as i32,
                first_offset: r.0.load(Ordering::Relaxed),
                last_offset: r.1.load(Ordering::Relaxed),
                count: r.2.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.client_errors.record_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client_errors.record(&error, reason);
    }
}

impl KeepsErrors for Deliveries {
    fn client_error(&self) -> Option<String> {
        self.client_errors.first()
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = self.ranges.get(m.partition() as usize) {
                    r.0.fetch_min(m.offset(), Ordering::Relaxed);
                    r.1.fetch_max(m.offset(), Ordering::Relaxed);
                    r.2.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// The producer's librdkafka settings (idempotent, acks=all), and how long an event may wait
/// for the broker before it counts as not delivered: the connection's `message.timeout.ms` if
/// it sets one, else `default_timeout_ms`.
pub(crate) fn producer_config(kafka: &KafkaConfig, compression: &str, default_timeout_ms: u64) -> Result<(ClientConfig, u64)> {
    let mut cc = kafka.client_config()?;
    cc.set("enable.idempotence", "true").set("acks", "all").set("compression.type", compression);
    let message_timeout_ms: u64 = match kafka.client.get("message.timeout.ms") {
        Some(v) => v.parse().map_err(|_| Error::config(format!("message.timeout.ms is not a number: {v:?}")))?,
        None => default_timeout_ms,
    };
    cc.set("message.timeout.ms", message_timeout_ms.to_string());
    // In-flight memory is bounded by bytes (64 MiB), not by a message count.
    for (k, v) in [
        ("linger.ms", "20"),
        ("batch.size", "1000000"),
        ("queue.buffering.max.kbytes", "65536"),
        ("queue.buffering.max.messages", "2000000"),
    ] {
        if !kafka.client.contains_key(k) {
            cc.set(k, v);
        }
    }
    Ok((cc, message_timeout_ms))
}

/// Serves the delivery reports, then sleeps `ahead` (at most 100 ms), for a paced producer
/// waiting until its next record is due. Not `poll(ahead)`: rust-rdkafka's poll loops until its
/// deadline, and with under 1 ms left librdkafka's wait rounds to 0, so at 2,000 records/s
/// (0.5 ms apart) the wait spun at ~60 % of a core (the stream's main thread, measured).
pub(crate) fn wait_serving(producer: &BaseProducer<Deliveries>, ahead: Duration) {
    producer.poll(Duration::ZERO);
    std::thread::sleep(ahead.min(Duration::from_millis(100)));
}

/// Hands one record to librdkafka; while its in-flight queue is full, serves delivery reports
/// until there is room.
pub(crate) fn send(producer: &BaseProducer<Deliveries>, mut record: BaseRecord<'_, str, Vec<u8>>) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
                producer.context().check()?;
            }
            Err((e, r)) => return Err(Error::kafka(format!("producing to {}: {e}", r.topic))),
        }
    }
}

/// Simulates `opts.count` events and produces them, keyed by user id. Returns once every event
/// is acknowledged by the broker, or fails with the first delivery error.
pub fn produce(kafka: &KafkaConfig, sim: &SimConfig, opts: &ProduceOptions, progress: &mut ProgressFn<'_>) -> Result<ProduceSummary> {
    opts.validate()?;
    let mut sim = Simulator::new(sim.clone())?;
    let partitions = if opts.create_topic {
        ensure_topic(kafka, opts.partitions, opts.replication)?
    } else {
        existing_partitions(kafka)?
    };
    let (cc, message_timeout_ms) = producer_config(kafka, &opts.compression, kafka.timeout_s * 1000)?;
    let n_partitions = partitions.iter().copied().max().unwrap_or(0) as usize + 1;
    let producer: BaseProducer<Deliveries> = cc.create_with_context(Deliveries::new(n_partitions))?;

    let started = Instant::now();
    let mut meter = ProgressMeter::new("produce", opts.count);
    let deadline = opts.duration_s.map(|d| started + Duration::from_secs_f64(d));
    let (mut buf, mut key) = (Vec::with_capacity(1024), String::with_capacity(16));
    let mut bytes = 0u64;
    let mut produced = 0u64;
    let first_ms = sim.now_ms();
    while opts.count.is_none_or(|c| produced < c) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        key.clear();
        key.push_str(sim.next_json(&mut buf)?);
        // Pacing: by a rate, or by simulated time at a speed-up.
        let due = match (opts.rate_per_s, opts.speedup) {
            (Some(r), _) => Some(produced as f64 / r),
            (_, Some(k)) => Some((sim.now_ms() - first_ms) as f64 / 1000.0 / k),
            _ => None,
        };
        if let Some(due) = due {
            loop {
                let ahead = due - started.elapsed().as_secs_f64();
                if ahead <= 0.0 {
                    break;
                }
                wait_serving(&producer, Duration::from_secs_f64(ahead));
                meter.tick(produced, bytes, false, progress)?;
            }
        }
        bytes += buf.len() as u64;
        send(&producer, BaseRecord::to(&kafka.topic).key(key.as_str()).payload(&buf))?;
        if produced % 1024 == 0 {
            producer.poll(Duration::ZERO);
            if produced % 16_384 == 0 {
                producer.context().check()?;
                meter.tick(produced, bytes, false, progress)?;
            }
        }
        produced += 1;
    }
    // Longer than the message timeout, so that every event is acknowledged or reported failed
    // (and counted) before the flush gives up.
    let flushed = producer.flush(Duration::from_millis(message_timeout_ms + 5_000));
    let ctx = producer.context();
    ctx.check()?;
    flushed.map_err(|e| Error::kafka(format!("{} events were not delivered: still unacknowledged after {} ms ({e})", producer.in_flight_count(), message_timeout_ms + 5_000)))?;
    let ok = ctx.ok.load(Ordering::Relaxed);
    if ok != produced {
        return Err(Error::kafka(format!("{ok} of {produced} events acknowledged")));
    }
    meter.tick(produced, bytes, true, progress)?;
    let elapsed_s = started.elapsed().as_secs_f64();
    Ok(ProduceSummary {
        topic: kafka.topic.clone(),
        events: produced,
        sim: sim.stats().clone(),
        bytes,
        partitions: ctx.partition_ranges(),
        elapsed_s,
        events_per_s: produced as f64 / elapsed_s.max(1e-9),
    })
}
