//! `stream` and `recover_stream`: the simulator as an always-on source (see the core's `stream`).

use std::sync::Mutex;

use pyo3::prelude::*;

use crate::convert::{from_py, run_detached, to_py, to_pyerr};
use spotify_pipeline_core as core;
use core::stream::Checkpoint;

/// Streams the simulation to Kafka until `options["duration_s"]` or a stop request (an
/// exception from `progress`, KeyboardInterrupt included), calling `checkpoint(dict)` each
/// time every record sent so far is acknowledged. Returns the last checkpoint.
#[pyfunction]
#[pyo3(signature = (kafka, sim, options, checkpoint, progress=None))]
fn stream(py: Python<'_>, kafka: &Bound<'_, PyAny>, sim: &Bound<'_, PyAny>, options: &Bound<'_, PyAny>, checkpoint: Py<PyAny>, progress: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    let sim: core::simulate::SimConfig = from_py(sim, "sim")?;
    let opts: core::stream::StreamOptions = from_py(options, "options")?;
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let result = run_detached(py, progress, |p| {
        let mut on_checkpoint = |c: &Checkpoint| -> core::Result<()> {
            Python::attach(|py| {
                to_py(py, c).and_then(|d| checkpoint.call1(py, (d,)).map(|_| ())).map_err(|e| {
                    let msg = e.to_string();
                    *raised.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    core::Error::Cancelled(msg)
                })
            })
        };
        core::stream::stream(&kafka, &sim, &opts, p, &mut on_checkpoint)
    });
    if let Some(e) = raised.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    to_py(py, &result?)
}

/// What reached the topic past a checkpoint (`from`, `offsets`) of the simulation `sim`.
#[pyfunction]
fn recover_stream(py: Python<'_>, kafka: &Bound<'_, PyAny>, sim: &Bound<'_, PyAny>, from: u64, offsets: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let kafka: core::kafka::KafkaConfig = from_py(kafka, "kafka")?;
    let sim: core::simulate::SimConfig = from_py(sim, "sim")?;
    let offsets: Vec<core::stream::PartitionOffset> = from_py(offsets, "offsets")?;
    let found = py.detach(|| core::stream::recover(&kafka, &sim, from, &offsets)).map_err(to_pyerr)?;
    to_py(py, &found)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(stream, m)?)?;
    m.add_function(wrap_pyfunction!(recover_stream, m)?)?;
    Ok(())
}
