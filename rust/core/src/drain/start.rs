//! Where a drain starts: its consumer, each partition's first offset from both tables' txns
//! and the watermarks, records lost to retention (refused, or recorded once), and a topic
//! created again (refused, or drained from its start).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::{DrainOptions, DrainSummary, PartitionDrain};
use crate::kafka::{topic_partitions, ClientErrors, KafkaConfig, KafkaConsumer};
use crate::lake::delta::Table;
use crate::lake::{self, Lake};
use crate::{Error, Result};

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
pub(super) struct Start {
    /// Per partition: (first offset to read, the events table's txn, the quarantine table's txn).
    pub partitions: BTreeMap<i32, (i64, Option<i64>, Option<i64>)>,
    /// Per partition: refused records below this offset are in the quarantine table already.
    pub quarantine_from: BTreeMap<i32, i64>,
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
pub(super) async fn record_loss(bronze: &mut Table, topic: &str, summary: &mut DrainSummary, start: &mut Start) -> Result<()> {
    let lost: Vec<(i32, i64)> = summary.partitions.iter().filter(|pd| pd.lost_to_retention > 0).map(|pd| (pd.partition, pd.lost_to_retention)).collect();
    let mut left: Vec<i32> = lost.iter().map(|&(p, _)| p).collect();
    let operation = super::commit::streaming_update(topic, 0);
    while !left.is_empty() {
        let mut txns = BTreeMap::new();
        let mut what = serde_json::Map::new();
        for &(p, records) in lost.iter().filter(|(p, _)| left.contains(p)) {
            let (from, vb, _) = start.partitions[&p];
            txns.insert(lake::txn_app_id(topic, p), (vb, from));
            what.insert(p.to_string(), serde_json::json!({"from_offset": vb, "to_offset": from - 1, "records": records}));
        }
        let info = serde_json::json!({"records": 0, "lost_to_retention": what});
        match bronze.commit_if_txns(Vec::new(), &txns, operation.clone(), Some(info)).await? {
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


/// The dataset's events and quarantine tables (created if need be), and both tables' txn
/// versions of `partitions`.
pub(super) async fn open_tables(
    lake: &Lake,
    opts: &DrainOptions,
    topic: &str,
    partitions: &[i32],
) -> Result<(Table, Table, (BTreeMap<String, Option<i64>>, BTreeMap<String, Option<i64>>))> {
    let bronze = Table::open_or_create(lake, &super::bronze_spec(&opts.dataset)).await?;
    let quarantine = Table::open_or_create(lake, &super::quarantine_spec(&opts.dataset)).await?;
    let ids: Vec<String> = partitions.iter().map(|&p| lake::txn_app_id(topic, p)).collect();
    let txns = (bronze.txn_versions(&ids).await?, quarantine.txn_versions(&ids).await?);
    Ok((bronze, quarantine, txns))
}

/// The consumer of a drain, and the partitions it drains (all, or the options' own, checked).
pub(super) fn open_consumer(kafka: &KafkaConfig, opts: &DrainOptions) -> Result<(KafkaConsumer, Vec<i32>)> {
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
    Ok((consumer, partitions))
}

/// Where each partition starts and ends, what to assign, and how many records that is.
pub(super) struct Plan {
    pub start: Start,
    pub highs: BTreeMap<i32, i64>,
    pub assign: TopicPartitionList,
    pub total: u64,
}

/// Plans the drain of `partitions` from the tables' txns (`txns`: events, quarantine) and the
/// watermarks; fills the summary's partitions. Fails on a recreated topic and on records lost
/// to retention, unless the options allow them.
pub(super) fn plan(
    consumer: &KafkaConsumer,
    kafka: &KafkaConfig,
    opts: &DrainOptions,
    partitions: &[i32],
    (txn_b, txn_q): (&BTreeMap<String, Option<i64>>, &BTreeMap<String, Option<i64>>),
    summary: &mut DrainSummary,
) -> Result<Plan> {
    let ids: Vec<String> = partitions.iter().map(|&p| lake::txn_app_id(&kafka.topic, p)).collect();
    let mut start = Start { partitions: BTreeMap::new(), quarantine_from: BTreeMap::new() };
    let mut highs = BTreeMap::new();
    let mut assign = TopicPartitionList::new();
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
            assign.add_partition_offset(&kafka.topic, p, Offset::Offset(from))?;
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
    Ok(Plan { start, highs, assign, total })
}
