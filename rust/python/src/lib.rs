//! `spotify_pipeline._core`: the pyo3 face of the Rust core, and nothing more. Each module
//! binds one domain of the core, converting types and releasing the GIL around long work
//! ([`convert`]); this file only declares and registers them.

mod convert;
mod drain;
mod kafka;
mod lake;
mod simulate;
mod stream;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    convert::register(m)?;
    simulate::register(m)?;
    kafka::register(m)?;
    stream::register(m)?;
    drain::register(m)?;
    lake::register(m)?;
    Ok(())
}
