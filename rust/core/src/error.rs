//! One error type for the core. Each variant maps to one Python exception class in the
//! bindings, so callers can tell "the broker is down" from "your config is wrong".

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something impossible: a bad URL, a missing option, a zero batch.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// No broker answered within the bounded timeout.
    #[error("Kafka is unreachable: {0}")]
    BrokerUnavailable(String),

    /// The broker answered but refused or failed an operation.
    #[error("Kafka error: {0}")]
    Kafka(String),

    /// The object store (S3, MinIO, local directory) failed or is unreachable.
    #[error("lake error: {0}")]
    Lake(String),

    /// Data that cannot be encoded or decoded (Parquet, Arrow, manifest JSON).
    #[error("data error: {0}")]
    Data(String),

    /// The caller (for example Ctrl-C in Python) asked us to stop.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(msg: impl fmt::Display) -> Self {
        Error::Config(msg.to_string())
    }
    pub fn lake(msg: impl fmt::Display) -> Self {
        Error::Lake(msg.to_string())
    }
    pub fn data(msg: impl fmt::Display) -> Self {
        Error::Data(msg.to_string())
    }
    pub fn kafka(msg: impl fmt::Display) -> Self {
        Error::Kafka(msg.to_string())
    }
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Error::Kafka(e.to_string())
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Lake(e.to_string())
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Data(format!("parquet: {e}"))
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Data(format!("arrow: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Data(format!("json: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Data(format!("io: {e}"))
    }
}
