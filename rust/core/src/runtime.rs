//! The tokio runtime, created lazily once per process.
//!
//! Airflow's executors fork. A runtime built before a fork has worker threads that do not exist
//! in the child, and using it there deadlocks. So the runtime is keyed by process id: a child
//! that finds its parent's runtime builds its own, and deliberately leaks the inherited one
//! (dropping it would try to join threads that are gone).

use std::sync::{Arc, Mutex};

use tokio::runtime::Runtime;

use crate::{Error, Result};

static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The runtime of the current process.
pub fn runtime() -> Result<Arc<Runtime>> {
    let pid = std::process::id();
    // A poisoned lock only means another thread panicked while holding it; the slot is still valid.
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spotify-pipeline")
            .enable_all()
            .build()
            .map_err(|e| Error::config(format!("cannot start the tokio runtime: {e}")))?,
    );
    if let Some(inherited) = slot.replace((pid, rt.clone())) {
        std::mem::forget(inherited);
    }
    Ok(rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_process_reuses_the_runtime() {
        let a = runtime().unwrap();
        let b = runtime().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.block_on(async { 40 + 2 }), 42);
    }
}
