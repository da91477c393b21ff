//! The data engine of spotify-pipeline. Pure Rust, no Python: the pyo3 bindings live in
//! `rust/python` and only translate types and errors.
//!
//! Follow one event through the modules in the order it travels:
//! [`simulate`] makes it, [`produce`] sends it to Kafka, [`drain`] writes it to the bronze lake
//! (layout and commit manifests in [`lake`]), and [`stage`] prepares committed batches for the
//! warehouse. [`event`] holds the data contract every step agrees on.

pub mod drain;
pub mod error;
pub mod event;
pub mod lake;
pub mod produce;
pub mod progress;
pub mod runtime;
pub mod simulate;
pub mod stage;

pub use error::{Error, Result};
