//! Kafka clients: the connection settings every stage shares, and the topic's partitions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Kafka settings shared by the producer and the drain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaConfig {
    /// librdkafka properties, `bootstrap.servers` at least (from the Airflow connection's extra).
    pub client: BTreeMap<String, String>,
    pub topic: String,
    /// Bound on waiting for the broker: metadata, topic creation, delivery.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
}

fn default_timeout_s() -> u64 {
    30
}

impl KafkaConfig {
    pub fn client_config(&self) -> Result<ClientConfig> {
        if !self.client.contains_key("bootstrap.servers") {
            return Err(Error::config("the Kafka config has no bootstrap.servers"));
        }
        if self.topic.is_empty() {
            return Err(Error::config("the Kafka topic is empty"));
        }
        let mut c = ClientConfig::new();
        for (k, v) in &self.client {
            c.set(k, v);
        }
        // librdkafka retries an unreachable broker forever; these make it give up in time.
        c.set("socket.connection.setup.timeout.ms", (self.timeout_s * 1000).min(30_000).to_string());
        Ok(c)
    }

    pub fn bootstrap(&self) -> &str {
        self.client.get("bootstrap.servers").map(String::as_str).unwrap_or("?")
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_s.max(1))
    }
}

/// Asks the cluster for the topic's partitions, turning silence into a clear error.
pub fn topic_partitions<C: ClientContext>(client: &rdkafka::client::Client<C>, cfg: &KafkaConfig) -> Result<Option<Vec<i32>>> {
    let md = client.fetch_metadata(Some(&cfg.topic), cfg.timeout()).map_err(|e| {
        Error::BrokerUnavailable(format!(
            "no Kafka broker at {} answered within {}s ({e})",
            cfg.bootstrap(),
            cfg.timeout_s
        ))
    })?;
    let Some(t) = md.topics().iter().find(|t| t.name() == cfg.topic) else { return Ok(None) };
    match t.error() {
        None => Ok(Some(t.partitions().iter().map(|p| p.id()).collect())),
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
        Some(e) => Err(Error::kafka(format!("topic {}: {:?}", cfg.topic, RDKafkaErrorCode::from(e)))),
    }
}

/// The partition ids of an existing topic; a clear error if it does not exist.
pub fn existing_partitions(cfg: &KafkaConfig) -> Result<Vec<i32>> {
    let admin: AdminClient<DefaultClientContext> = cfg.client_config()?.create()?;
    topic_partitions(admin.inner(), cfg)?
        .ok_or_else(|| Error::kafka(format!("topic {} does not exist on {}", cfg.topic, cfg.bootstrap())))
}

/// Creates the topic if it does not exist. Returns its partition ids.
pub fn ensure_topic(cfg: &KafkaConfig, partitions: i32, replication: i32) -> Result<Vec<i32>> {
    let admin: AdminClient<DefaultClientContext> = cfg.client_config()?.create()?;
    if let Some(p) = topic_partitions(admin.inner(), cfg)? {
        return Ok(p);
    }
    let topic = NewTopic::new(&cfg.topic, partitions, TopicReplication::Fixed(replication));
    let opts = AdminOptions::new().operation_timeout(Some(cfg.timeout()));
    let rt = crate::runtime::runtime()?;
    let results = rt.block_on(admin.create_topics([&topic], &opts))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(Error::kafka(format!("cannot create topic {name}: {code:?}"))),
        }
    }
    // Metadata can lag creation by a moment.
    let deadline = Instant::now() + cfg.timeout();
    loop {
        if let Some(p) = topic_partitions(admin.inner(), cfg)? {
            if !p.is_empty() {
                return Ok(p);
            }
        }
        if Instant::now() > deadline {
            return Err(Error::kafka(format!("topic {} was created but never became visible", cfg.topic)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

