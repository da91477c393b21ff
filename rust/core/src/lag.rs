//! How far the lake is behind a topic: the events table's txn versions (the drain's real,
//! committed progress) against the partitions' high watermarks. Consumer-group offsets are not
//! used: they are only a copy for Kafka tooling.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::kafka::{topic_partitions, ClientErrors, KafkaConfig, KafkaConsumer};
use crate::lake::delta::Table;
use crate::lake::{bronze_table, txn_app_id, Lake, LakeConfig};
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// The events table's txn version: where the next drain starts.
    pub next_offset: i64,
    pub high_watermark: i64,
    pub lag: i64,
    /// Kafka timestamp of the oldest record not drained yet.
    pub oldest_undrained_ms: Option<i64>,
    /// Kafka timestamps of the partition's newest record, and of the newest one in the lake
    /// (the last drained): the freshness of the two layers. Read by [`freshness`] only.
    #[serde(default)]
    pub newest_ms: Option<i64>,
    #[serde(default)]
    pub newest_drained_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LagReport {
    pub topic: String,
    pub lag: i64,
    pub oldest_undrained_ms: Option<i64>,
    /// The events table's version the report was read at (-1: the table does not exist yet).
    pub table_version: i64,
    pub partitions: Vec<PartitionLag>,
    /// The newest record's Kafka timestamp in the topic and in the lake ([`freshness`] only).
    #[serde(default)]
    pub newest_ms: Option<i64>,
    #[serde(default)]
    pub newest_drained_ms: Option<i64>,
}

/// The lag of `dataset`'s events table behind `kafka.topic`.
pub fn lag(kafka: &KafkaConfig, lake_cfg: &LakeConfig, dataset: &str) -> Result<LagReport> {
    report(kafka, lake_cfg, dataset, false)
}

/// [`lag`], and how fresh the topic and the lake are: the Kafka timestamps of each partition's
/// newest record and of the newest one drained (two more reads per partition, so not on the
/// watcher's every-2-s path).
pub fn freshness(kafka: &KafkaConfig, lake_cfg: &LakeConfig, dataset: &str) -> Result<LagReport> {
    report(kafka, lake_cfg, dataset, true)
}

fn report(kafka: &KafkaConfig, lake_cfg: &LakeConfig, dataset: &str, newest: bool) -> Result<LagReport> {
    let rt = crate::runtime::runtime()?;
    let lake = Lake::open(lake_cfg)?;
    let table = rt.block_on(async {
        lake.check().await?;
        Table::open(&lake, &bronze_table(dataset)).await
    })?;
    let mut cc = kafka.client_config()?;
    cc.set("group.id", "spotify-pipeline-lag-probe").set("enable.auto.commit", "false");
    let consumer: KafkaConsumer = cc.create_with_context(ClientErrors::default())?;
    let parts = topic_partitions(consumer.client(), kafka, &|| drop(consumer.poll(Duration::from_millis(200))))?
        .ok_or_else(|| Error::kafka(format!("topic {} does not exist on {}", kafka.topic, kafka.bootstrap())))?;
    let ids: Vec<String> = parts.iter().map(|&p| txn_app_id(&kafka.topic, p)).collect();
    let txns = match &table {
        Some(t) => rt.block_on(t.txn_versions(&ids))?,
        None => Default::default(),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (p, id) in parts.into_iter().zip(&ids) {
        let (low, high) = consumer
            .fetch_watermarks(&kafka.topic, p, kafka.timeout())
            .map_err(|e| Error::BrokerUnavailable(format!("watermarks of {}/{p} from {}: {e}", kafka.topic, kafka.bootstrap())))?;
        let drained = txns.get(id).copied().flatten();
        if let Some(v) = drained.filter(|&v| v > high) {
            return Err(crate::drain::topic_recreated(&kafka.topic, p, v, high));
        }
        let next = drained.unwrap_or(low).max(low);
        let at = |offset: i64| record_timestamp(&consumer, &kafka.topic, p, offset, kafka.timeout());
        let oldest = if next < high { at(next)? } else { None };
        let (newest_ms, newest_drained_ms) = if newest {
            (if high > low { at(high - 1)? } else { None }, if next > low { at(next - 1)? } else { None })
        } else {
            (None, None)
        };
        out.push(PartitionLag { partition: p, next_offset: next, high_watermark: high, lag: high - next, oldest_undrained_ms: oldest, newest_ms, newest_drained_ms });
    }
    Ok(LagReport {
        topic: kafka.topic.clone(),
        lag: out.iter().map(|p| p.lag).sum(),
        oldest_undrained_ms: out.iter().filter_map(|p| p.oldest_undrained_ms).min(),
        table_version: table.as_ref().map_or(-1, |t| t.version()),
        newest_ms: out.iter().filter_map(|p| p.newest_ms).max(),
        newest_drained_ms: out.iter().filter_map(|p| p.newest_drained_ms).max(),
        partitions: out,
    })
}

/// Timestamp of the record at `offset` (or the first one after it).
fn record_timestamp(consumer: &KafkaConsumer, topic: &str, partition: i32, offset: i64, timeout: Duration) -> Result<Option<i64>> {
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
