//! The consumer side of a drain: the caller's thread reads records, copies them into one open
//! batch per partition, and cuts batches for the workers.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use super::batch::{RawBatch, RawRecord};
use super::fetch::Fetcher;
use super::{DrainOptions, Start};
use crate::kafka::{KafkaConfig, KafkaConsumer};
use crate::progress::{ProgressFn, ProgressMeter};
use crate::{Error, Result};

/// Records per fetch from librdkafka's queue: about 300 KB of our events, so the checks made once
/// a fetch (clock, reports, progress) stay cheap and still come often.
const FETCH_RECORDS: usize = 1024;

/// What workers and the committer tell the consumer thread.
pub(super) enum Report {
    /// A batch's record buffers, free once it is encoded: for the next batches.
    Buffers(Vec<u8>, Vec<RawRecord>),
    /// Another drain owns this partition now: stop reading it.
    Taken(i32),
    /// Nothing more will commit: stop.
    Failed(String),
}

/// One partition, as the consumer sees it.
#[derive(Default)]
struct Slot {
    /// The high watermark to drain up to; None once reached (or for partitions not drained).
    high: Option<i64>,
    open: Option<RawBatch>,
    /// Where the next batch's range starts.
    from: i64,
    next_seq: u64,
}

pub(super) struct Run<'a> {
    consumer: &'a KafkaConsumer,
    topic: &'a str,
    bootstrap: &'a str,
    opts: &'a DrainOptions,
    /// Indexed by partition id: a vector, because it is looked up once per record.
    slots: Vec<Slot>,
    /// Partitions still to drain.
    remaining: usize,
    /// Payload bytes in open batches, all partitions together.
    open_bytes: usize,
    /// Buffers of encoded batches, for the next ones.
    spare: Vec<(Vec<u8>, Vec<RawRecord>)>,
    jobs: Option<mpsc::SyncSender<RawBatch>>,
    reports: &'a mpsc::Receiver<Report>,
}

impl<'a> Run<'a> {
    pub fn new(
        consumer: &'a KafkaConsumer,
        kafka: &'a KafkaConfig,
        opts: &'a DrainOptions,
        start: &Start,
        highs: BTreeMap<i32, i64>,
        jobs: mpsc::SyncSender<RawBatch>,
        reports: &'a mpsc::Receiver<Report>,
    ) -> Self {
        let n = start.partitions.keys().copied().max().map_or(0, |m| m as usize + 1);
        let mut slots: Vec<Slot> = (0..n).map(|_| Slot::default()).collect();
        for (&p, &(from, _, _)) in &start.partitions {
            slots[p as usize].from = from;
            slots[p as usize].high = highs.get(&p).copied();
        }
        Self {
            consumer,
            topic: &kafka.topic,
            bootstrap: kafka.bootstrap(),
            opts,
            remaining: slots.iter().filter(|s| s.high.is_some()).count(),
            slots,
            open_bytes: 0,
            spare: Vec::new(),
            jobs: Some(jobs),
            reports,
        }
    }

    pub fn consume(&mut self, deadline: Option<Instant>, meter: &mut ProgressMeter, progress: &mut ProgressFn<'_>) -> Result<()> {
        let opts = self.opts;
        let consumer: &'a KafkaConsumer = self.consumer;
        let mut fetcher = Fetcher::new(consumer, FETCH_RECORDS);
        let mut consumed = 0u64;
        let mut idle_since: Option<Instant> = None;
        while self.remaining > 0 {
            // Clocks, reports and progress once a fetch: per record they would cost more than copying it.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.take_reports()?;
            meter.tick(consumed, 0, false, progress)?;
            let room = opts.max_records.map_or(u64::MAX, |m| m.saturating_sub(consumed));
            if room == 0 {
                break;
            }
            let n = fetcher.fetch();
            if n == 0 {
                // Nothing ready: wait in the consumer's poll, which also serves the queue's events.
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        idle_since = None;
                        let ts = match m.timestamp() {
                            Timestamp::NotAvailable => None,
                            t => t.to_millis(),
                        };
                        consumed += self.take(m.partition(), m.offset(), ts, m.payload().unwrap_or_default())? as u64;
                    }
                    Some(Err(e)) => return Err(Error::kafka(format!("consuming {}: {e}", self.topic))),
                    None => self.idle(idle_since.get_or_insert_with(Instant::now))?,
                }
                continue;
            }
            idle_since = None;
            let mut taken = 0u64;
            for i in 0..n {
                let r = fetcher.record(i);
                if let Some(e) = r.error {
                    return Err(Error::kafka(format!("consuming {}: {e}", self.topic)));
                }
                taken += self.take(r.partition, r.offset, r.timestamp_ms, r.payload)? as u64;
                // Records after these are not in any batch: the next drain reads them again.
                if taken >= room || self.remaining == 0 {
                    break;
                }
            }
            consumed += taken;
        }
        Ok(())
    }

    /// Copies one record into its partition's open batch, and cuts batches that are full or at
    /// their partition's end. False for a record this drain does not take (a partition it does
    /// not drain, or past the high watermark).
    fn take(&mut self, p: i32, off: i64, ts: Option<i64>, payload: &[u8]) -> Result<bool> {
        let opts = self.opts;
        let Some(slot) = self.slots.get_mut(p as usize) else { return Ok(false) };
        let Some(high) = slot.high.filter(|&h| off < h) else { return Ok(false) };
        let batch = slot.open.get_or_insert_with(|| {
            let (payloads, records) = self.spare.pop().unwrap_or_default();
            let seq = slot.next_seq;
            slot.next_seq += 1;
            RawBatch { partition: p, seq, from: slot.from, last: off, payloads, records }
        });
        batch.push(off, ts, payload);
        self.open_bytes += payload.len();
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
        Ok(true)
    }

    /// Nothing arrived in the last poll (since `since`): finishes the partitions whose position
    /// passed their end (offsets that hold no record, transaction markers, never arrive), and
    /// fails once nothing arrived for `idle_timeout_s` while records were still expected.
    fn idle(&mut self, since: &Instant) -> Result<()> {
        let pos = self.consumer.position()?;
        for el in pos.elements() {
            let high = self.slots.get(el.partition() as usize).and_then(|s| s.high);
            if let (Offset::Offset(o), Some(high)) = (el.offset(), high) {
                if o >= high {
                    self.finish_at(el.partition(), high)?;
                }
            }
        }
        if self.remaining > 0 && since.elapsed() > Duration::from_secs(self.opts.idle_timeout_s) {
            let waiting: Vec<usize> = (0..self.slots.len()).filter(|&p| self.slots[p].high.is_some()).collect();
            return Err(Error::BrokerUnavailable(format!(
                "no records from {} for {}s while partitions {waiting:?} of {} still had records to drain; \
                 what was committed so far is safe, re-run to resume",
                self.bootstrap, self.opts.idle_timeout_s, self.topic
            )));
        }
        Ok(())
    }

    /// The consumer's position passed `end` on partition `p` with offsets below it that never
    /// arrived: they hold no record a reader may see (transaction markers, aborted records). The
    /// last batch's range covers them, an empty batch if need be, so that the partition's txn
    /// moves to `end` and the lake's lag reaches 0 (a committed transaction's marker otherwise
    /// left a lag of 1 that no drain could remove).
    fn finish_at(&mut self, p: i32, end: i64) -> Result<()> {
        let slot = &mut self.slots[p as usize];
        if slot.from < end {
            let (payloads, records) = if slot.open.is_none() { self.spare.pop().unwrap_or_default() } else { Default::default() };
            let seq = slot.next_seq;
            let batch = slot.open.get_or_insert_with(|| {
                slot.next_seq += 1;
                RawBatch { partition: p, seq, from: slot.from, last: end - 1, payloads, records }
            });
            batch.last = end - 1;
        }
        self.finish_partition(p)
    }

    /// Partition `p` reached its high watermark: its last batch goes.
    fn finish_partition(&mut self, p: i32) -> Result<()> {
        if self.slots[p as usize].high.take().is_some() {
            self.remaining -= 1;
        }
        self.cut(p)
    }

    /// Hands partition `p`'s open batch, if any, to the workers. Waits while their queue is full
    /// (that is what bounds memory); they never wait on this thread.
    fn cut(&mut self, p: i32) -> Result<()> {
        let slot = &mut self.slots[p as usize];
        let Some(batch) = slot.open.take() else { return Ok(()) };
        slot.from = batch.last + 1;
        self.open_bytes -= batch.payloads.len();
        self.jobs.as_ref().expect("cut before close").send(batch).map_err(|_| Error::lake("the drain's workers stopped"))
    }

    pub fn cut_all(&mut self) -> Result<()> {
        (0..self.slots.len() as i32).try_for_each(|p| self.cut(p))
    }

    /// No more batches: the workers finish what they have and stop.
    pub fn close(&mut self) {
        self.jobs = None;
    }

    /// Recycles buffers, follows commits, stops on failures and on partitions taken by others.
    fn take_reports(&mut self) -> Result<()> {
        while let Ok(r) = self.reports.try_recv() {
            match r {
                Report::Buffers(payloads, records) => self.spare.push((payloads, records)),
                Report::Taken(p) => {
                    let slot = &mut self.slots[p as usize];
                    if let Some(batch) = slot.open.take() {
                        self.open_bytes -= batch.payloads.len();
                    }
                    if slot.high.take().is_some() {
                        self.remaining -= 1;
                    }
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(self.topic, p);
                    // Stop fetching it; records of it already queued are skipped (no high).
                    let _ = self.consumer.pause(&tpl);
                }
                Report::Failed(e) => return Err(Error::lake(format!("the drain stopped: {e}"))),
            }
        }
        Ok(())
    }
}
