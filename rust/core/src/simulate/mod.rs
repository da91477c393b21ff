//! Deterministic simulation of Spotify listening events: the same [`SimConfig`] gives the same
//! events, byte for byte.

mod catalog;
mod rng;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, CITIES, DEVICES};
pub use rng::Rng;

use crate::event::{format_rfc3339_ms, Event, SCHEMA_VERSION};
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    pub seed: u64,
    /// Simulated time of the first session, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Sessions start uniformly over this many simulated milliseconds.
    pub span_ms: i64,
    pub users: usize,
    pub songs: usize,
    /// Exponent of the Zipf law of song popularity (1.0 is classic Zipf).
    pub zipf_s: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            start_ms: 1_768_435_200_000, // 2026-01-15T00:00:00Z
            span_ms: 3 * 3_600_000,
            users: 500,
            songs: 2_000,
            zipf_s: 1.1,
        }
    }
}

impl SimConfig {
    pub fn validate(&self) -> Result<()> {
        if self.users == 0 || self.songs == 0 {
            return Err(Error::config("users and songs must be at least 1"));
        }
        if self.span_ms <= 0 {
            return Err(Error::config("span_ms must be positive"));
        }
        if !(self.zipf_s.is_finite() && self.zipf_s >= 0.0) {
            return Err(Error::config("zipf_s must be a non-negative number"));
        }
        Ok(())
    }
}

/// One event waiting to be written, as indexes into the catalog.
struct Pending {
    kind: &'static str,
    ts_ms: i64,
    song: usize,
    position_ms: i64,
    playlist: Option<u32>,
}

/// Generates events one at a time, session by session.
pub struct Simulator {
    cfg: SimConfig,
    catalog: Catalog,
    rng: Rng,
    queue: VecDeque<Pending>,
    user: usize,
    session_seq: u64,
    // Reused buffers: making an event allocates nothing.
    session_id: String,
    event_id: String,
    event_ts: String,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Result<Self> {
        cfg.validate()?;
        let rng = Rng::new(cfg.seed);
        let catalog = Catalog::generate(&rng, cfg.songs, cfg.users, cfg.zipf_s, cfg.start_ms.div_euclid(86_400_000));
        Ok(Self {
            rng: rng.fork(3),
            catalog,
            cfg,
            queue: VecDeque::new(),
            user: 0,
            session_seq: 0,
            session_id: String::new(),
            event_id: String::new(),
            event_ts: String::new(),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn plan_session(&mut self) {
        let r = &mut self.rng;
        self.user = r.range(0, self.catalog.users.len() as i64) as usize;
        self.session_seq += 1;
        self.session_id.clear();
        self.session_id.push_str(&format!("se_{:016x}", r.next_u64()));
        let mut t = self.cfg.start_ms + r.range(0, self.cfg.span_ms);
        let songs = 1 + (r.f64().ln() / 0.85f64.ln()) as usize; // geometric, mean ~6.7
        for _ in 0..songs.min(60) {
            let song = self.catalog.pick_song(r);
            let s = &self.catalog.songs[song];
            self.queue.push_back(Pending { kind: "play", ts_ms: t, song, position_ms: 0, playlist: None });
            if r.chance(s.skip_bias) {
                // Most skips come early in a song.
                let pos = (s.duration_ms as f64 * r.f64().powi(2) * 0.8) as i64 + 1_000;
                self.queue.push_back(Pending { kind: "skip", ts_ms: t + pos, song, position_ms: pos, playlist: None });
                t += pos + 500;
                continue;
            }
            if r.chance(0.08) {
                let pos = r.range(10_000, s.duration_ms - 5_000);
                let pause = r.range(2_000, 120_000);
                self.queue.push_back(Pending { kind: "pause", ts_ms: t + pos, song, position_ms: pos, playlist: None });
                self.queue.push_back(Pending { kind: "resume", ts_ms: t + pos + pause, song, position_ms: pos, playlist: None });
                t += pause;
            }
            if r.chance(0.05) {
                let pos = r.range(5_000, s.duration_ms);
                let pl = r.range(0, 50_000) as u32;
                self.queue.push_back(Pending { kind: "add_to_playlist", ts_ms: t + pos, song, position_ms: pos, playlist: Some(pl) });
            }
            self.queue.push_back(Pending { kind: "complete", ts_ms: t + s.duration_ms, song, position_ms: s.duration_ms, playlist: None });
            t += s.duration_ms + 1_000;
        }
    }

    /// Writes the next event as one JSON object into `buf` (cleared first) and returns its
    /// Kafka key, the user id.
    pub fn next_json(&mut self, buf: &mut Vec<u8>) -> Result<&str> {
        if self.queue.is_empty() {
            self.plan_session();
        }
        let p = self.queue.pop_front().expect("a planned session has events");
        let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
        self.event_id.clear();
        // A UUID v4 layout, from the seeded stream.
        self.event_id.push_str(&format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        ));
        self.event_ts.clear();
        format_rfc3339_ms(p.ts_ms, &mut self.event_ts);
        let playlist = p.playlist.map(|n| format!("pl_{n:05}"));
        let song = &self.catalog.songs[p.song];
        let artist = &self.catalog.artists[song.artist];
        let user = &self.catalog.users[self.user];
        let (country, city, tz, _) = CITIES[user.city];
        let ev = Event {
            event_id: &self.event_id,
            event_type: p.kind,
            event_ts: &self.event_ts,
            user_id: &user.id,
            session_id: &self.session_id,
            song_id: &song.id,
            song_name: &song.name,
            artist_id: &artist.id,
            artist_name: &artist.name,
            album: &song.album,
            genre: song.genre,
            release_date: &song.release_date,
            duration_ms: song.duration_ms,
            position_ms: p.position_ms,
            device_type: user.device,
            country,
            city,
            timezone: tz,
            subscription: if user.premium { "premium" } else { "free" },
            playlist_id: playlist.as_deref(),
            schema_version: SCHEMA_VERSION,
        };
        buf.clear();
        serde_json::to_writer(&mut *buf, &ev)?;
        Ok(&user.id)
    }
}

/// Simulates `count` events into one reused buffer, on this thread: the cost of simulation and
/// JSON serialization alone. Returns (bytes, seconds).
pub fn measure(cfg: &SimConfig, count: u64) -> Result<(u64, f64)> {
    let mut sim = Simulator::new(cfg.clone())?;
    let mut buf = Vec::with_capacity(1024);
    let mut bytes = 0u64;
    let started = std::time::Instant::now();
    for _ in 0..count {
        sim.next_json(&mut buf)?;
        bytes += buf.len() as u64;
    }
    Ok((bytes, started.elapsed().as_secs_f64()))
}

/// Writes `count` events as JSON lines to `path`.
pub fn write_jsonl(cfg: &SimConfig, count: u64, path: &std::path::Path) -> Result<u64> {
    use std::io::Write;
    let mut sim = Simulator::new(cfg.clone())?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = Vec::with_capacity(1024);
    let mut bytes = 0u64;
    for _ in 0..count {
        sim.next_json(&mut buf)?;
        buf.push(b'\n');
        out.write_all(&buf)?;
        bytes += buf.len() as u64;
    }
    out.flush()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn run(cfg: &SimConfig, n: usize) -> Vec<Vec<u8>> {
        let mut sim = Simulator::new(cfg.clone()).unwrap();
        let mut buf = Vec::new();
        (0..n).map(|_| { sim.next_json(&mut buf).unwrap(); buf.clone() }).collect()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let cfg = SimConfig::default();
        assert_eq!(run(&cfg, 2_000), run(&cfg, 2_000));
        let other = SimConfig { seed: 43, ..cfg.clone() };
        assert_ne!(run(&cfg, 50), run(&other, 50));
    }

    #[test]
    fn every_event_meets_the_contract_and_ids_are_unique() {
        let cfg = SimConfig::default();
        let events = run(&cfg, 20_000);
        let mut ids = std::collections::HashSet::new();
        for e in &events {
            let v: serde_json::Value = serde_json::from_slice(e).unwrap();
            assert!(ids.insert(v["event_id"].as_str().unwrap().to_string()));
            let parsed = parse_event(e).unwrap_or_else(|r| panic!("{r:?}: {}", String::from_utf8_lossy(e)));
            assert!(parsed.extra.is_none());
            assert!(parsed.event_ts_ms >= cfg.start_ms);
        }
    }

    #[test]
    fn popularity_is_heavy_tailed() {
        let cfg = SimConfig::default();
        let mut plays = std::collections::HashMap::<String, u64>::new();
        for e in run(&cfg, 50_000) {
            let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
            if v["event_type"] == "play" {
                *plays.entry(v["song_id"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
        let mut counts: Vec<u64> = plays.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let total: u64 = counts.iter().sum();
        let top_1pct: u64 = counts.iter().take(cfg.songs / 100).sum();
        // Uniform popularity would give ~1%; Zipf(1.1) over 2000 songs gives far more.
        assert!(top_1pct as f64 / total as f64 > 0.25, "top 1% share {}", top_1pct as f64 / total as f64);
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(Simulator::new(SimConfig { users: 0, ..Default::default() }).is_err());
        assert!(Simulator::new(SimConfig { span_ms: 0, ..Default::default() }).is_err());
    }
}
