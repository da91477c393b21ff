//! Crossing the boundary: the core's errors as one Python exception hierarchy, configs in and
//! summaries out through JSON (no per-struct conversion code), and long work run without the GIL.

use std::sync::Mutex;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
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

pub fn to_pyerr(e: core::Error) -> PyErr {
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

pub fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let json = obj.py().import("json")?.call_method1("dumps", (obj,))?;
    let mut de = serde_json::Deserializer::from_str(json.extract::<&str>()?);
    serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string().as_str() {
        "." => ConfigError::new_err(format!("{what}: {}", e.inner())),
        path => ConfigError::new_err(format!("{what}.{path}: {}", e.inner())),
    })
}

pub fn to_py<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let json = serde_json::to_string(value).map_err(|e| DataError::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
}

/// Runs `work` without the GIL, giving it a progress function that calls `callback`.
/// A Python exception raised by the callback (KeyboardInterrupt too) stops the work and is
/// re-raised as it was.
pub fn run_detached<T, F>(py: Python<'_>, callback: Option<Py<PyAny>>, work: F) -> PyResult<T>
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


pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SpotifyPipelineError", py.get_type::<SpotifyPipelineError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("BrokerUnavailableError", py.get_type::<BrokerUnavailableError>())?;
    m.add("KafkaError", py.get_type::<KafkaError>())?;
    m.add("LakeError", py.get_type::<LakeError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    Ok(())
}
