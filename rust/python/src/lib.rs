//! `spotify_pipeline._core`: the pyo3 face of the Rust core, and nothing more.
//!
//! Configs cross the boundary as plain dicts and summaries come back as plain dicts (through
//! JSON, which keeps this file free of per-struct conversion code). Long work runs with the GIL
//! released; progress callbacks take it back briefly and let Ctrl-C through.

use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use spotify_pipeline_core as core;
use core::progress::Progress;

create_exception!(_core, SpotifyPipelineError, PyException, "Base class of every error raised by the Rust core.");
create_exception!(_core, ConfigError, SpotifyPipelineError, "The configuration is invalid.");
create_exception!(_core, BrokerUnavailableError, SpotifyPipelineError, "No Kafka broker answered in time.");
create_exception!(_core, KafkaError, SpotifyPipelineError, "Kafka refused or failed an operation.");
create_exception!(_core, LakeError, SpotifyPipelineError, "The object store failed or is unreachable.");
create_exception!(_core, DataError, SpotifyPipelineError, "Data could not be encoded or decoded.");

fn to_pyerr(e: core::Error) -> PyErr {
    let msg = e.to_string();
    match e {
        core::Error::Config(_) => ConfigError::new_err(msg),
        core::Error::BrokerUnavailable(_) => BrokerUnavailableError::new_err(msg),
        core::Error::Kafka(_) => KafkaError::new_err(msg),
        core::Error::Lake(_) => LakeError::new_err(msg),
        core::Error::Data(_) => DataError::new_err(msg),
        core::Error::Cancelled(_) => SpotifyPipelineError::new_err(msg),
    }
}

fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let json = obj.py().import("json")?.call_method1("dumps", (obj,))?;
    let mut de = serde_json::Deserializer::from_str(json.extract::<&str>()?);
    serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string().as_str() {
        "." => ConfigError::new_err(format!("{what}: {}", e.inner())),
        path => ConfigError::new_err(format!("{what}.{path}: {}", e.inner())),
    })
}

fn to_py<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let json = serde_json::to_string(value).map_err(|e| DataError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
}

/// Runs `work` without the GIL, giving it a progress function that calls `callback`.
/// A Python exception raised by the callback (KeyboardInterrupt too) stops the work and is
/// re-raised as it was.
fn run_detached<T, F>(py: Python<'_>, callback: Option<Py<PyAny>>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&mut core::progress::ProgressFn<'_>) -> core::Result<T> + Send,
{
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let result = py.detach(|| {
        let mut report = |p: &Progress| -> core::Result<()> {
            Python::attach(|py| {
                let r = match &callback {
                    Some(cb) => to_py(py, p).and_then(|d| cb.call1(py, (d,)).map(|_| ())),
                    None => Ok(()),
                }
                .and_then(|_| py.check_signals());
                r.map_err(|e| {
                    let msg = e.to_string();
                    *raised.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    core::Error::Cancelled(msg)
                })
            })
        };
        work(&mut report)
    });
    if let Some(e) = raised.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    result.map_err(to_pyerr)
}

/// Simulates `count` records (no Kafka involved) and returns `(kind, bytes)` pairs, kind one of
/// `valid`, `duplicate` or `malformed:<class>`: the ground truth for reconciling. Valid events
/// are UTF-8 JSON; malformed records may not be.
#[pyfunction]
fn simulate<'py>(py: Python<'py>, sim: &Bound<'py, PyAny>, count: usize) -> PyResult<Vec<(String, Bound<'py, PyBytes>)>> {
    use core::simulate::RecordKind;
    let cfg: core::simulate::SimConfig = from_py(sim, "sim")?;
    let records = py
        .detach(|| {
            let mut s = core::simulate::Simulator::new(cfg)?;
            let mut buf = Vec::new();
            (0..count)
                .map(|_| {
                    let kind = match s.next_record(&mut buf)?.1 {
                        RecordKind::Valid => "valid".to_string(),
                        RecordKind::Duplicate => "duplicate".to_string(),
                        RecordKind::Malformed(class) => format!("malformed:{class}"),
                    };
                    Ok((kind, buf.clone()))
                })
                .collect::<core::Result<Vec<_>>>()
        })
        .map_err(to_pyerr)?;
    Ok(records.into_iter().map(|(k, r)| (k, PyBytes::new(py, &r))).collect())
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

/// Drains a topic into the bronze lake; returns the drain summary.
#[pyfunction]
#[pyo3(signature = (kafka, lake, options, progress=None))]
fn drain(py: Python<'_>, kafka: &Bound<'_, PyAny>, lake: &Bound<'_, PyAny>, options: &Bound<'_, PyAny>, progress: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let opts: core::drain::DrainOptions = from_py(options, "options")?;
    let summary = run_detached(py, progress, |p| core::drain::drain(&kafka, &lake, &opts, p))?;
    to_py(py, &summary)
}

/// The topic's partition ids; a clear error if the broker or the topic is missing.
#[pyfunction]
fn topic_partitions(py: Python<'_>, kafka: &Bound<'_, PyAny>) -> PyResult<Vec<i32>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    py.detach(|| core::kafka::existing_partitions(&kafka)).map_err(to_pyerr)
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

/// The commits of the dataset's events and quarantine tables after the given versions.
#[pyfunction]
#[pyo3(signature = (lake, dataset, after_events, after_quarantine))]
fn pending_versions(py: Python<'_>, lake: &Bound<'_, PyAny>, dataset: &str, after_events: i64, after_quarantine: i64) -> PyResult<Py<PyAny>> {
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let dataset = dataset.to_string();
    let pending = py.detach(|| core::stage::pending(&lake, &dataset, after_events, after_quarantine)).map_err(to_pyerr)?;
    to_py(py, &pending)
}

/// Fetches data files of a table (`events` or `quarantine`) into `out_dir`, checked and
/// load-ready; with `source_file_column`, rewritten with the `source_file` column.
#[pyfunction]
#[pyo3(signature = (lake, table, files, out_dir, progress=None, source_file_column=false))]
fn prepare_files(
    py: Python<'_>,
    lake: &Bound<'_, PyAny>,
    table: &str,
    files: &Bound<'_, PyAny>,
    out_dir: std::path::PathBuf,
    progress: Option<Py<PyAny>>,
    source_file_column: bool,
) -> PyResult<Py<PyAny>> {
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let files: Vec<core::lake::delta::DataFile> = from_py(files, "files")?;
    let table = table.to_string();
    let prepared = run_detached(py, progress, |p| core::stage::prepare(&lake, &table, &files, &out_dir, source_file_column, p))?;
    to_py(py, &prepared)
}

/// Fetches the active files of reference table `name` into `out_dir`: (key, local path) pairs.
#[pyfunction]
fn fetch_reference(py: Python<'_>, lake: &Bound<'_, PyAny>, name: &str, out_dir: std::path::PathBuf) -> PyResult<Vec<(String, String)>> {
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let name = name.to_string();
    py.detach(|| core::stage::fetch_reference(&lake, &name, &out_dir)).map_err(to_pyerr)
}

/// OPTIMIZE: compacts the closed hours of the dataset's tables; returns one summary per table.
#[pyfunction]
#[pyo3(signature = (lake, options, progress=None))]
fn compact(py: Python<'_>, lake: &Bound<'_, PyAny>, options: &Bound<'_, PyAny>, progress: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let opts: core::lake::compact::CompactOptions = from_py(options, "options")?;
    let summary = run_detached(py, progress, |p| core::lake::compact::compact(&lake, &opts, p))?;
    to_py(py, &summary)
}

/// VACUUM: deletes files that no version within the retention needs; one summary per table.
#[pyfunction]
fn vacuum(py: Python<'_>, lake: &Bound<'_, PyAny>, options: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let opts: core::lake::compact::VacuumOptions = from_py(options, "options")?;
    let summary = py.detach(|| core::lake::compact::vacuum(&lake, &opts)).map_err(to_pyerr)?;
    to_py(py, &summary)
}

/// The columns of a warehouse load table (`events` or `quarantine`): (name, type, nullable).
#[pyfunction]
#[pyo3(signature = (table = "events"))]
fn load_columns(table: &str) -> PyResult<Vec<(String, &'static str, bool)>> {
    core::stage::load_columns(table).map_err(to_pyerr)
}

/// Writes `data` to `key` in the lake (replacing it): small files such as exported dashboards.
#[pyfunction]
fn put_object(py: Python<'_>, lake: &Bound<'_, PyAny>, key: &str, data: &[u8]) -> PyResult<()> {
    let lake: core::lake::LakeConfig = from_py(lake, "lake")?;
    let (key, data) = (key.to_string(), data.to_vec());
    py.detach(|| {
        let rt = core::runtime::runtime()?;
        let lake = core::lake::Lake::open(&lake)?;
        rt.block_on(lake.put(&key, data))
    })
    .map_err(to_pyerr)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SpotifyPipelineError", py.get_type::<SpotifyPipelineError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("BrokerUnavailableError", py.get_type::<BrokerUnavailableError>())?;
    m.add("KafkaError", py.get_type::<KafkaError>())?;
    m.add("LakeError", py.get_type::<LakeError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(estimated_span_ms, m)?)?;
    m.add_function(wrap_pyfunction!(publish_reference, m)?)?;
    m.add_function(wrap_pyfunction!(start_ending_at, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_throughput, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_to_file, m)?)?;
    m.add_function(wrap_pyfunction!(produce, m)?)?;
    m.add_function(wrap_pyfunction!(drain, m)?)?;
    m.add_function(wrap_pyfunction!(lag, m)?)?;
    m.add_function(wrap_pyfunction!(topic_partitions, m)?)?;
    m.add_function(wrap_pyfunction!(pending_versions, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_files, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_reference, m)?)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_function(wrap_pyfunction!(vacuum, m)?)?;
    m.add_function(wrap_pyfunction!(put_object, m)?)?;
    m.add_function(wrap_pyfunction!(load_columns, m)?)?;
    Ok(())
}
