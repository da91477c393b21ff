//! `drain`: Kafka into the bronze Delta tables.

use pyo3::prelude::*;

use crate::convert::{from_py, run_detached, to_py};
use spotify_pipeline_core as core;

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(drain, m)?)?;
    Ok(())
}
