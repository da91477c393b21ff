//! `produce`, and what the stages ask Kafka: a topic's partitions, the lake's lag behind it.

use pyo3::prelude::*;

use crate::convert::{from_py, run_detached, to_py, to_pyerr};
use spotify_pipeline_core as core;

/// Simulates and produces events to Kafka; returns the produce summary.
#[pyfunction]
#[pyo3(signature = (kafka, sim, options, progress=None))]
fn produce(py: Python<'_>, kafka: &Bound<'_, PyAny>, sim: &Bound<'_, PyAny>, options: &Bound<'_, PyAny>, progress: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    let sim: core::simulate::SimConfig = from_py(sim, "sim")?;
    let opts: core::produce::ProduceOptions = from_py(options, "options")?;
    let summary = run_detached(py, progress, |p| core::produce::produce(&kafka, &sim, &opts, p))?;
    to_py(py, &summary)
}

/// The topic's partition ids; a clear error if the broker or the topic is missing.
#[pyfunction]
fn topic_partitions(py: Python<'_>, kafka: &Bound<'_, PyAny>) -> PyResult<Vec<i32>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    py.detach(|| core::kafka::existing_partitions(&kafka)).map_err(to_pyerr)
}

/// The brokers of the cluster the config reaches (`host:port`); the config's topic is not used.
#[pyfunction]
fn kafka_brokers(py: Python<'_>, kafka: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    py.detach(|| core::kafka::cluster_brokers(&kafka)).map_err(to_pyerr)
}

/// How far the lake's events table is behind the topic, per partition, from its txn versions.
#[pyfunction]
#[pyo3(signature = (kafka, lake, dataset = "spotify_events"))]
fn lag(py: Python<'_>, kafka: &Bound<'_, PyAny>, lake: &Bound<'_, PyAny>, dataset: &str) -> PyResult<Py<PyAny>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let dataset = dataset.to_string();
    let report = py.detach(|| core::lag::lag(&kafka, &lake, &dataset)).map_err(to_pyerr)?;
    to_py(py, &report)
}

/// `lag`, with the Kafka timestamps of the newest record in the topic and in the lake.
#[pyfunction]
#[pyo3(signature = (kafka, lake, dataset = "spotify_events"))]
fn freshness(py: Python<'_>, kafka: &Bound<'_, PyAny>, lake: &Bound<'_, PyAny>, dataset: &str) -> PyResult<Py<PyAny>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let dataset = dataset.to_string();
    let report = py.detach(|| core::lag::freshness(&kafka, &lake, &dataset)).map_err(to_pyerr)?;
    to_py(py, &report)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(freshness, m)?)?;
    m.add_function(wrap_pyfunction!(produce, m)?)?;
    m.add_function(wrap_pyfunction!(topic_partitions, m)?)?;
    m.add_function(wrap_pyfunction!(kafka_brokers, m)?)?;
    m.add_function(wrap_pyfunction!(lag, m)?)?;
    Ok(())
}
