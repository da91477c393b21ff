//! Deterministic simulation of Spotify listening events: the same [`SimConfig`] gives the same
//! records, byte for byte.
//!
//! Sessions arrive over simulated time following each user's local daily cycle ([`clock`]);
//! within a session songs play one after another, with song- and position-dependent skips,
//! pauses and playlist adds, and time moves on by what was listened to. Events come out in the
//! order they are delivered: in event-time order, except for injected faults ([`Faults`]): late
//! deliveries, duplicate deliveries and malformed records.

mod catalog;
mod clock;
mod config;
mod faults;
pub mod reference;
mod rng;
mod run;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, Region, DEVICES, REGIONS};
pub use clock::{activity, local_hour_weekday};
pub use reference::{publish_reference, reference_batches, ReferenceSummary};
pub use rng::Rng;

pub use config::SimConfig;
pub use faults::{Faults, MALFORMED_CLASSES};
pub use run::{measure, records, start_ending_at, write_jsonl, write_truth, TruthSummary};

use crate::event::{format_rfc3339_ms, push_hex, Event, Reason, SCHEMA_VERSION};
use crate::Result;
use faults::corrupt;

/// What the simulator has emitted so far: the ground truth that downstream counts reconcile to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SimStats {
    pub records: u64,
    /// Records that meet the contract (duplicates included).
    pub valid: u64,
    /// Valid records that repeat an event_id already delivered.
    pub duplicates: u64,
    /// Records delivered out of event-time order by an injected delay.
    pub late: u64,
    pub malformed: u64,
    pub malformed_by_class: BTreeMap<String, u64>,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Delivery {
    Normal,
    Late,
    Duplicate,
    Malformed(usize),
}

/// One event waiting to be delivered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Pending {
    deliver_ms: i64,
    seq: u64,
    event_ms: i64,
    event_id: u128,
    kind: &'static str,
    user: u32,
    session: u64,
    device: u8,
    song: u32,
    position_ms: i64,
    playlist: Option<u32>,
    delivery: Delivery,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deliver_ms, self.seq).cmp(&(other.deliver_ms, other.seq))
    }
}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What kind of record [`Simulator::next_record`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Valid,
    Duplicate,
    Malformed(Reason),
}

/// New releases' weights for one simulated day: they trend upward for three weeks after release.
struct TrendTable {
    day: i64,
    songs: Vec<usize>,
    cdf: Vec<f64>,
}

/// Generates records one at a time, in delivery order.
pub struct Simulator {
    cfg: SimConfig,
    catalog: Catalog,
    rng: Rng,
    heap: BinaryHeap<Reverse<Pending>>,
    next_arrival_ms: i64,
    /// Mean simulated time between candidate session arrivals (thinned by local activity).
    arrival_mean_ms: f64,
    max_activity: f64,
    seq: u64,
    /// Delivery time of the last record: the simulated "now".
    now_ms: i64,
    trend: TrendTable,
    stats: SimStats,
    // Reused buffers: a valid event allocates nothing.
    event_id: String,
    session_id: String,
    event_ts: String,
    playlist: String,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Result<Self> {
        cfg.validate()?;
        let catalog = Catalog::generate(cfg.catalog_seed, cfg.songs, cfg.users, cfg.zipf_s);
        let mut rng = Rng::new(cfg.seed).fork(3);
        let max_activity = clock::max_activity();
        let sessions_per_ms = cfg.users as f64 * cfg.sessions_per_user_per_day / 86_400_000.0;
        let arrival_mean_ms = clock::mean_activity() / (sessions_per_ms * max_activity);
        let next_arrival_ms = cfg.start_ms + rng.exp(arrival_mean_ms) as i64;
        Ok(Self {
            rng,
            catalog,
            heap: BinaryHeap::new(),
            next_arrival_ms,
            arrival_mean_ms,
            max_activity,
            seq: 0,
            now_ms: cfg.start_ms,
            trend: TrendTable { day: i64::MIN, songs: vec![], cdf: vec![] },
            stats: SimStats::default(),
            event_id: String::with_capacity(36),
            session_id: String::with_capacity(20),
            event_ts: String::with_capacity(24),
            playlist: String::with_capacity(8),
            cfg,
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The simulated time at which the last record was delivered.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// One candidate session arrival; accepted with the user's local activity, then planned.
    fn arrive(&mut self) {
        let t = self.next_arrival_ms;
        self.next_arrival_ms = t + 1 + self.rng.exp(self.arrival_mean_ms) as i64;
        let user = self.rng.below(self.catalog.users.len());
        let offset = REGIONS[self.catalog.users[user].region].utc_offset_min;
        if self.rng.chance(clock::activity(t, offset) / self.max_activity) {
            self.plan_session(user, t);
        }
    }

    fn pick_song(&mut self, t: i64) -> usize {
        let day = t.div_euclid(86_400_000);
        if self.rng.chance(self.cfg.new_release_share) {
            if self.trend.day != day {
                let released: Vec<usize> =
                    self.catalog.new_releases.iter().copied().filter(|&s| self.catalog.songs[s].release_day <= day).collect();
                let cdf = rng::cumulative(released.iter().map(|&s| (1 + day - self.catalog.songs[s].release_day).min(21) as f64));
                self.trend = TrendTable { day, songs: released, cdf };
            }
            if !self.trend.songs.is_empty() {
                return self.trend.songs[self.rng.pick_cumulative(&self.trend.cdf)];
            }
        }
        self.catalog.pick_song(&mut self.rng, day)
    }

    fn push(&mut self, mut p: Pending) {
        let f = &self.cfg.faults;
        let (late, dup, bad) = (f.late_rate, f.duplicate_rate, f.malformed_rate);
        self.seq += 1;
        p.seq = self.seq;
        p.event_id = (self.rng.next_u64() as u128) << 64 | self.rng.next_u64() as u128;
        p.deliver_ms = p.event_ms;
        if bad > 0.0 && self.rng.chance(bad) {
            p.delivery = Delivery::Malformed(self.rng.below(MALFORMED_CLASSES.len()));
            self.heap.push(Reverse(p));
            return;
        }
        if late > 0.0 && self.rng.chance(late) {
            p.delivery = Delivery::Late;
            p.deliver_ms += self.rng.range(60_000, self.cfg.faults.max_late_ms.max(60_001));
        }
        if dup > 0.0 && self.rng.chance(dup) {
            let mut copy = p;
            self.seq += 1;
            copy.seq = self.seq;
            copy.delivery = Delivery::Duplicate;
            copy.deliver_ms = p.deliver_ms + self.rng.range(1, 30_000);
            self.heap.push(Reverse(copy));
        }
        self.heap.push(Reverse(p));
    }

    fn plan_session(&mut self, user: usize, start: i64) {
        let device = self.catalog.pick_device(&mut self.rng, &self.catalog.users[user]) as u8;
        let session = self.rng.next_u64();
        let n_songs = (1 + (self.rng.f64().ln() / 0.85f64.ln()) as usize).min(60); // geometric, mean ~6.7
        let mut t = start;
        let base = Pending {
            deliver_ms: 0, seq: 0, event_ms: 0, event_id: 0, kind: "play", user: user as u32, session,
            device, song: 0, position_ms: 0, playlist: None, delivery: Delivery::Normal,
        };
        for i in 0..n_songs {
            let song = self.pick_song(t);
            let s = &self.catalog.songs[song];
            let (duration, skip_bias) = (s.duration_ms, s.skip_bias);
            let at = |kind, event_ms, position_ms| Pending { kind, event_ms, position_ms, song: song as u32, ..base };
            self.push(at("play", t, 0));
            // Listeners skip more as a session goes on; most skips come early in a song.
            let p_skip = (skip_bias * (1.0 + 0.04 * i as f64)).min(0.9);
            if self.rng.chance(p_skip) {
                let pos = (duration as f64 * self.rng.f64().powi(2) * 0.8) as i64 + 1_000;
                self.push(at("skip", t + pos, pos));
                t += pos + 500;
                continue;
            }
            if self.rng.chance(0.08) {
                let pos = self.rng.range(10_000, duration - 5_000);
                let pause = self.rng.range(2_000, 120_000);
                self.push(at("pause", t + pos, pos));
                self.push(at("resume", t + pos + pause, pos));
                t += pause;
            }
            if self.rng.chance(0.05) {
                let pos = self.rng.range(5_000, duration);
                let mut p = at("add_to_playlist", t + pos, pos);
                p.playlist = Some(self.rng.below(50_000) as u32);
                self.push(p);
            }
            self.push(at("complete", t + duration, duration));
            t += duration + 1_000;
        }
    }

    /// Writes the next record into `buf` (cleared first). Returns its Kafka key (the user id)
    /// and what kind of record it is.
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> Result<(&str, RecordKind)> {
        // Every session that starts before the next delivery must be planned first.
        while self.heap.peek().is_none_or(|Reverse(p)| p.deliver_ms >= self.next_arrival_ms) {
            self.arrive();
        }
        let Reverse(p) = self.heap.pop().expect("the loop above fills the heap");
        self.now_ms = p.deliver_ms;
        self.write_event(&p, buf)?;
        let st = &mut self.stats;
        st.records += 1;
        st.first_event_ms = Some(st.first_event_ms.map_or(p.event_ms, |f| f.min(p.event_ms)));
        st.last_event_ms = Some(st.last_event_ms.map_or(p.event_ms, |l| l.max(p.event_ms)));
        let kind = match p.delivery {
            Delivery::Malformed(c) => {
                corrupt(buf, c)?;
                st.malformed += 1;
                *st.malformed_by_class.entry(MALFORMED_CLASSES[c].to_string()).or_default() += 1;
                RecordKind::Malformed(MALFORMED_CLASSES[c])
            }
            Delivery::Duplicate => {
                st.valid += 1;
                st.duplicates += 1;
                RecordKind::Duplicate
            }
            Delivery::Late => {
                st.valid += 1;
                st.late += 1;
                RecordKind::Valid
            }
            Delivery::Normal => {
                st.valid += 1;
                RecordKind::Valid
            }
        };
        Ok((&self.catalog.users[p.user as usize].id, kind))
    }

    /// [`Self::next_record`] for callers that only want the bytes and the key.
    pub fn next_json(&mut self, buf: &mut Vec<u8>) -> Result<&str> {
        Ok(self.next_record(buf)?.0)
    }

    fn write_event(&mut self, p: &Pending, buf: &mut Vec<u8>) -> Result<()> {
        let (a, b) = ((p.event_id >> 64) as u64, p.event_id as u64);
        // A UUID v4 layout, from the seeded stream.
        let id = &mut self.event_id;
        id.clear();
        push_hex(id, a >> 32, 8);
        id.push('-');
        push_hex(id, a >> 16, 4);
        id.push_str("-4");
        push_hex(id, a, 3);
        id.push('-');
        push_hex(id, ((b >> 48) & 0x3fff) | 0x8000, 4);
        id.push('-');
        push_hex(id, b, 12);
        self.session_id.clear();
        self.session_id.push_str("se_");
        push_hex(&mut self.session_id, p.session, 16);
        self.event_ts.clear();
        format_rfc3339_ms(p.event_ms, &mut self.event_ts);
        self.playlist.clear();
        if let Some(n) = p.playlist {
            let _ = write!(self.playlist, "pl_{n:05}");
        }
        let song = &self.catalog.songs[p.song as usize];
        let artist = &self.catalog.artists[song.artist];
        let user = &self.catalog.users[p.user as usize];
        let region = &REGIONS[user.region];
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
            device_type: DEVICES[p.device as usize],
            country: region.country,
            city: region.city,
            timezone: region.timezone,
            subscription: if user.is_premium(p.event_ms) { "premium" } else { "free" },
            playlist_id: p.playlist.map(|_| self.playlist.as_str()),
            schema_version: SCHEMA_VERSION,
        };
        buf.clear();
        serde_json::to_writer(&mut *buf, &ev)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
