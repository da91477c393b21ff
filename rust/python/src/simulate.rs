//! `simulate`: the simulator and its ground truth, and the catalog's reference tables.

use pyo3::types::PyBytes;
use pyo3::prelude::*;

use crate::convert::{from_py, to_py, to_pyerr};
use spotify_pipeline_core as core;

/// Simulates `count` records (no Kafka involved) and returns `(kind, bytes)` pairs, kind one of
/// `valid`, `duplicate` or `malformed:<reason>`: the ground truth for reconciling. Valid events
/// are UTF-8 JSON; malformed records may not be.
#[pyfunction]
fn simulate<'py>(py: Python<'py>, sim: &Bound<'py, PyAny>, count: usize) -> PyResult<Vec<(String, Bound<'py, PyBytes>)>> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    let records = py.detach(|| core::simulate::records(cfg, count)).map_err(to_pyerr)?;
    Ok(records.into_iter().map(|(k, r)| (k, PyBytes::new(py, &r))).collect())
}

/// The simulator's defaults, written once in the core: every Python entry point starts from them.
#[pyfunction]
fn default_sim_config(py: Python<'_>) -> PyResult<Py<PyAny>> {
    to_py(py, &core::simulate::SimConfig::default())
}

/// Roughly how much simulated time `count` events span, in milliseconds.
#[pyfunction]
fn estimated_span_ms(sim: &Bound<'_, PyAny>, count: u64) -> PyResult<i64> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    Ok(cfg.estimated_span_ms(count))
}

/// A simulated start such that `count` events end at or just before `end_ms` (see the core).
#[pyfunction]
fn start_ending_at(py: Python<'_>, sim: &Bound<'_, PyAny>, count: u64, end_ms: i64) -> PyResult<i64> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    py.detach(|| core::simulate::start_ending_at(&cfg, count, end_ms)).map_err(to_pyerr)
}

/// Writes the catalog (songs, artists, users, subscriptions) to the lake as Parquet.
#[pyfunction]
fn publish_reference(py: Python<'_>, sim: &Bound<'_, PyAny>, lake: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let summary = py.detach(|| core::simulate::publish_reference(&cfg, &lake)).map_err(to_pyerr)?;
    to_py(py, &summary)
}

/// Measures simulation + JSON serialization alone on one thread.
#[pyfunction]
fn simulate_throughput(py: Python<'_>, sim: &Bound<'_, PyAny>, count: u64) -> PyResult<Py<PyAny>> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    let (bytes, secs) = py.detach(|| core::simulate::measure(&cfg, count)).map_err(to_pyerr)?;
    to_py(py, &serde_json::json!({
        "events": count, "bytes": bytes, "elapsed_s": secs,
        "events_per_s": count as f64 / secs.max(1e-9), "mb_per_s": bytes as f64 / 1e6 / secs.max(1e-9),
    }))
}

/// Writes `count` simulated records as lines to `path`; returns the simulator's ground truth.
#[pyfunction]
fn simulate_to_file(py: Python<'_>, sim: &Bound<'_, PyAny>, count: u64, path: std::path::PathBuf) -> PyResult<Py<PyAny>> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    let stats = py.detach(|| core::simulate::write_jsonl(&cfg, count, &path)).map_err(to_pyerr)?;
    to_py(py, &stats)
}

/// The ground truth of records `first..end` of a simulation less `not_sent`, as CSV at `path`
/// (`index,kind,event_id,event_ts`): what a stream's segment log regenerates.
#[pyfunction]
fn write_truth(py: Python<'_>, sim: &Bound<'_, PyAny>, first: u64, end: u64, not_sent: Vec<u64>, path: std::path::PathBuf) -> PyResult<Py<PyAny>> {
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    let summary = py.detach(|| core::simulate::write_truth(&cfg, first, end, &not_sent, &path)).map_err(to_pyerr)?;
    to_py(py, &summary)
}

/// Every reason a record can be refused for, as the quarantine's `reason` column writes it.
#[pyfunction]
fn reject_reasons() -> Vec<&'static str> {
    core::event::Reason::ALL.iter().map(|r| r.as_str()).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(default_sim_config, m)?)?;
    m.add_function(wrap_pyfunction!(estimated_span_ms, m)?)?;
    m.add_function(wrap_pyfunction!(publish_reference, m)?)?;
    m.add_function(wrap_pyfunction!(start_ending_at, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_throughput, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_to_file, m)?)?;
    m.add_function(wrap_pyfunction!(write_truth, m)?)?;
    m.add_function(wrap_pyfunction!(reject_reasons, m)?)?;
    Ok(())
}
