//! What to simulate: the world (catalog, users), the pace, the faults, and checks on them.

use serde::{Deserialize, Serialize};

use super::Faults;
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Drives behaviour: sessions, songs, skips, faults.
    pub seed: u64,
    /// Drives the catalog (songs, artists, users), which stays the same across event seeds.
    pub catalog_seed: u64,
    /// Simulated time of the start, in milliseconds since the epoch.
    pub start_ms: i64,
    pub users: usize,
    pub songs: usize,
    /// Exponent of the Zipf law of song popularity (1.0 is classic Zipf).
    pub zipf_s: f64,
    pub sessions_per_user_per_day: f64,
    /// Share of plays that go to new releases (which trend upward after release).
    pub new_release_share: f64,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            catalog_seed: 2026,
            start_ms: 1_768_435_200_000, // 2026-01-15T00:00:00Z
            users: 500,
            songs: 2_000,
            zipf_s: 1.1,
            sessions_per_user_per_day: 3.0,
            new_release_share: 0.1,
            faults: Faults { max_late_ms: 2 * 3_600_000, ..Default::default() },
        }
    }
}

fn check_rate(name: &str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::config(format!("{name} must be within [0, 1], got {p}")));
    }
    Ok(())
}

impl SimConfig {
    pub fn validate(&self) -> Result<()> {
        if self.users == 0 || self.songs == 0 {
            return Err(Error::config("users and songs must be at least 1"));
        }
        if !(self.zipf_s.is_finite() && self.zipf_s >= 0.0) {
            return Err(Error::config("zipf_s must be a non-negative number"));
        }
        if !(self.sessions_per_user_per_day.is_finite() && self.sessions_per_user_per_day > 0.0) {
            return Err(Error::config("sessions_per_user_per_day must be positive"));
        }
        check_rate("new_release_share", self.new_release_share)?;
        check_rate("faults.late_rate", self.faults.late_rate)?;
        check_rate("faults.duplicate_rate", self.faults.duplicate_rate)?;
        check_rate("faults.malformed_rate", self.faults.malformed_rate)?;
        if self.faults.late_rate > 0.0 && self.faults.max_late_ms < 60_000 {
            return Err(Error::config("faults.max_late_ms must be at least 60000 when late_rate > 0"));
        }
        Ok(())
    }

    /// Roughly how much simulated time `count` events span, a little more rather than less (a
    /// run that should end "now" must not make events in the future): sessions average about
    /// 14 events, so 13 per session here (checked in `tests.rs`).
    pub fn estimated_span_ms(&self, count: u64) -> i64 {
        let events_per_day = self.users as f64 * self.sessions_per_user_per_day * 13.0;
        (count as f64 / events_per_day * 86_400_000.0) as i64
    }
}

