//! Progress reports from long work, so the Airflow task log shows done/total, rate and ETA.

use std::time::Instant;

use serde::Serialize;

use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// What is being done: "produce", "drain", "stage".
    pub stage: &'static str,
    pub done: u64,
    /// None where the total is not known in advance.
    pub total: Option<u64>,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub rate_per_s: f64,
    pub eta_s: Option<f64>,
}

/// Called every so often with a report. Returning an error (for example, the user pressed
/// Ctrl-C) stops the work cleanly.
pub type ProgressFn<'a> = dyn FnMut(&Progress) -> Result<()> + Send + 'a;

/// Turns counters into a [`Progress`] and decides when one is due.
pub struct ProgressMeter {
    stage: &'static str,
    total: Option<u64>,
    started: Instant,
    last: Instant,
    every: std::time::Duration,
}

impl ProgressMeter {
    pub fn new(stage: &'static str, total: Option<u64>) -> Self {
        let now = Instant::now();
        Self { stage, total, started: now, last: now, every: std::time::Duration::from_secs(2) }
    }

    pub fn report(&self, done: u64, bytes: u64) -> Progress {
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let rate_per_s = if elapsed_s > 0.0 { done as f64 / elapsed_s } else { 0.0 };
        let eta_s = match self.total {
            Some(t) if rate_per_s > 0.0 && t >= done => Some((t - done) as f64 / rate_per_s),
            _ => None,
        };
        Progress { stage: self.stage, done, total: self.total, bytes, elapsed_s, rate_per_s, eta_s }
    }

    /// Calls `f` if a report is due (every two seconds), or always when `force` is set.
    pub fn tick(&mut self, done: u64, bytes: u64, force: bool, f: &mut ProgressFn<'_>) -> Result<()> {
        if force || self.last.elapsed() >= self.every {
            self.last = Instant::now();
            f(&self.report(done, bytes))?;
        }
        Ok(())
    }
}
