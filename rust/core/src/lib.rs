//! The data engine of spotify-pipeline. Pure Rust, no Python: the pyo3 bindings live in
//! `rust/python` and only translate types and errors.
//!
//! Follow one event through the modules in the order it travels:
//! [`simulate`] makes it, [`produce`] sends it to Kafka (or [`stream`], with no end) ([`kafka`]: the clients' settings),
//! [`drain`] writes it to the bronze Delta table ([`lake`]: the tables, their commits and
//! their maintenance; [`parquet`]: the files), and [`stage`] prepares the committed versions
//! for the warehouse. [`event`] holds the data contract every step agrees on, [`quarantine`]
//! the shape of a refused record, and [`lag`] how far the lake is behind Kafka.

pub mod drain;
pub mod error;
pub mod event;
pub mod kafka;
pub mod lag;
pub mod lake;
pub mod parquet;
pub mod produce;
pub mod progress;
pub mod quarantine;
pub mod runtime;
pub mod simulate;
pub mod stream;
pub mod time;
pub mod stage;

pub use error::{Error, Result};
