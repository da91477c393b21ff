//! Kafka clients: the connection settings every stage shares, and the topic's partitions.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
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
        // Error-level logs reach ClientErrors (the crate derives the level from the `log` crate's,
        // which is off inside the Python extension): they say why a broker could not be used.
        c.set_log_level(RDKafkaLogLevel::Error);
        Ok(c)
    }

    pub fn bootstrap(&self) -> &str {
        self.client.get("bootstrap.servers").map(String::as_str).unwrap_or("?")
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_s.max(1))
    }
}

/// The first error librdkafka reported for a client, outside any one call: what makes "no
/// broker answered" say why (a refused SASL login, a TLS handshake) instead of only "transport
/// failure". The first, because what follows it is its consequence ("all brokers are down").
#[derive(Default)]
pub struct ClientErrors {
    first: Mutex<Option<String>>,
}

impl ClientErrors {
    pub fn record(&self, error: &KafkaError, reason: &str) {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| format!("{error}: {reason}"));
    }

    pub fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ClientErrors {
    /// librdkafka logs why a connection failed (a refused SASL login, say) at error level from
    /// its own threads, while the call that fails only says "transport failure".
    pub fn record_log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            self.first.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| format!("{fac}: {message}"));
        }
        DefaultClientContext.log(level, fac, message);
    }
}

impl ClientContext for ClientErrors {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.record_log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.record(&error, reason);
    }
}

impl ConsumerContext for ClientErrors {}

/// The consumer every reader of Kafka here uses.
pub type KafkaConsumer = BaseConsumer<ClientErrors>;

/// A client context that keeps librdkafka's first error (see [`ClientErrors`]).
pub trait KeepsErrors: ClientContext {
    fn client_error(&self) -> Option<String>;
}

impl KeepsErrors for ClientErrors {
    fn client_error(&self) -> Option<String> {
        self.first()
    }
}

/// Asks the cluster for the topic's partitions, turning silence into a clear error. `serve`
/// polls the client's queue: librdkafka queues its logs there (rust-rdkafka sets `log.queue`),
/// so after a failure one poll brings the reason to [`ClientErrors`].
pub fn topic_partitions<C: KeepsErrors>(client: &rdkafka::client::Client<C>, cfg: &KafkaConfig, serve: &dyn Fn()) -> Result<Option<Vec<i32>>> {
    let md = client.fetch_metadata(Some(&cfg.topic), cfg.timeout()).map_err(|e| {
        serve();
        let why = client.context().client_error().map(|w| format!("; librdkafka said: {w}")).unwrap_or_default();
        Error::BrokerUnavailable(format!(
            "no Kafka broker at {} answered within {}s ({e}){why}",
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

/// A client for metadata only, whose queue can be polled (an admin client's cannot), so that a
/// failure says why.
struct Probe(BaseProducer<ClientErrors>);

impl Probe {
    fn new(cfg: &KafkaConfig) -> Result<Self> {
        Ok(Self(cfg.client_config()?.create_with_context(ClientErrors::default())?))
    }

    fn partitions(&self, cfg: &KafkaConfig) -> Result<Option<Vec<i32>>> {
        topic_partitions(self.0.client(), cfg, &|| self.0.poll(Duration::from_millis(200)))
    }
}

impl ProducerContext for ClientErrors {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// The brokers the cluster names (`host:port`), asked of the bootstrap servers: whether the
/// connection's settings reach a cluster and are accepted (a connection's "Test" button). The
/// config's topic is not used.
pub fn cluster_brokers(cfg: &KafkaConfig) -> Result<Vec<String>> {
    let cfg = KafkaConfig { topic: "-".into(), ..cfg.clone() };
    let probe = Probe::new(&cfg)?;
    let md = probe.0.client().fetch_metadata(None, cfg.timeout()).map_err(|e| {
        probe.0.poll(Duration::from_millis(200));
        let why = probe.0.context().first().map(|w| format!("; librdkafka said: {w}")).unwrap_or_default();
        Error::BrokerUnavailable(format!("no Kafka broker at {} answered within {}s ({e}){why}", cfg.bootstrap(), cfg.timeout_s))
    })?;
    Ok(md.brokers().iter().map(|b| format!("{}:{}", b.host(), b.port())).collect())
}

/// The partition ids of an existing topic; a clear error if it does not exist.
pub fn existing_partitions(cfg: &KafkaConfig) -> Result<Vec<i32>> {
    let probe = Probe::new(cfg)?;
    probe.partitions(cfg)?
        .ok_or_else(|| Error::kafka(format!("topic {} does not exist on {}", cfg.topic, cfg.bootstrap())))
}

/// Creates the topic if it does not exist. Returns its partition ids.
pub fn ensure_topic(cfg: &KafkaConfig, partitions: i32, replication: i32) -> Result<Vec<i32>> {
    let probe = Probe::new(cfg)?;
    if let Some(p) = probe.partitions(cfg)? {
        return Ok(p);
    }
    let admin: AdminClient<ClientErrors> = cfg.client_config()?.create_with_context(ClientErrors::default())?;
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
        if let Some(p) = probe.partitions(cfg)? {
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

