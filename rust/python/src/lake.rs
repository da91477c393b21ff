//! The lake: staging its versions into a warehouse, maintaining its tables, small writes.

use pyo3::prelude::*;

use crate::convert::{from_py, run_detached, to_py, to_pyerr};
use spotify_pipeline_core as core;

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
    py.detach(|| core::lake::put_object(&lake, &key, data)).map_err(to_pyerr)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pending_versions, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_files, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_reference, m)?)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_function(wrap_pyfunction!(vacuum, m)?)?;
    m.add_function(wrap_pyfunction!(load_columns, m)?)?;
    m.add_function(wrap_pyfunction!(put_object, m)?)?;
    Ok(())
}
