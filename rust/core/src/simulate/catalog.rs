//! The world the simulator draws from: artists, songs (Zipf-like popularity, new releases) and
//! users placed in real cities, with devices that differ by region and subscriptions that change
//! over time. Built from its own seed, so the catalog stays the same across event seeds.

use super::rng::{cumulative, Rng};
use crate::event::format_date;

const GENRES: [&str; 12] = [
    "pop", "rock", "hip_hop", "electronic", "latin", "indie", "r_and_b", "jazz", "classical",
    "country", "k_pop", "metal",
];
const WORDS_A: [&str; 16] = [
    "Midnight", "Golden", "Electric", "Silent", "Neon", "Broken", "Wild", "Velvet", "Crimson",
    "Endless", "Lonely", "Cosmic", "Paper", "Summer", "Frozen", "Hidden",
];
const WORDS_B: [&str; 16] = [
    "Echo", "Heart", "River", "Skyline", "Dream", "Fire", "Road", "Mirror", "Ocean", "Signal",
    "Garden", "Storm", "Shadow", "Light", "Train", "Letter",
];
const ARTIST_B: [&str; 8] =
    ["Foxes", "Collective", "Kids", "Orchestra", "Machines", "Sisters", "Project", "Club"];

pub const DEVICES: [&str; 5] = ["mobile", "desktop", "web", "smart_speaker", "tv"];

/// A city users live in. The offset is the zone's standard UTC offset: the simulator keeps no
/// daylight-saving rules (the event still carries the IANA zone name).
pub struct Region {
    pub country: &'static str,
    pub city: &'static str,
    pub timezone: &'static str,
    pub utc_offset_min: i64,
    pub weight: f64,
    /// Weights over [`DEVICES`]: devices differ by region.
    pub devices: [f64; 5],
}

const fn r(country: &'static str, city: &'static str, timezone: &'static str, utc_offset_min: i64, weight: f64, devices: [f64; 5]) -> Region {
    Region { country, city, timezone, utc_offset_min, weight, devices }
}

pub const REGIONS: [Region; 14] = [
    r("US", "New York", "America/New_York", -300, 12.0, [48.0, 18.0, 9.0, 15.0, 10.0]),
    r("US", "Los Angeles", "America/Los_Angeles", -480, 8.0, [50.0, 17.0, 8.0, 14.0, 11.0]),
    r("GB", "London", "Europe/London", 0, 8.0, [52.0, 20.0, 10.0, 12.0, 6.0]),
    r("DE", "Berlin", "Europe/Berlin", 60, 6.0, [50.0, 26.0, 12.0, 7.0, 5.0]),
    r("FR", "Paris", "Europe/Paris", 60, 5.0, [55.0, 22.0, 12.0, 6.0, 5.0]),
    r("BR", "São Paulo", "America/Sao_Paulo", -180, 7.0, [72.0, 12.0, 8.0, 3.0, 5.0]),
    r("MX", "Mexico City", "America/Mexico_City", -360, 5.0, [74.0, 11.0, 8.0, 2.0, 5.0]),
    r("IN", "Mumbai", "Asia/Kolkata", 330, 6.0, [84.0, 8.0, 6.0, 1.0, 1.0]),
    r("JP", "Tokyo", "Asia/Tokyo", 540, 5.0, [60.0, 24.0, 8.0, 4.0, 4.0]),
    r("AU", "Sydney", "Australia/Sydney", 600, 3.0, [52.0, 18.0, 9.0, 13.0, 8.0]),
    r("SE", "Stockholm", "Europe/Stockholm", 60, 2.0, [50.0, 22.0, 10.0, 12.0, 6.0]),
    r("NG", "Lagos", "Africa/Lagos", 60, 2.0, [86.0, 6.0, 6.0, 1.0, 1.0]),
    r("ES", "Madrid", "Europe/Madrid", 60, 3.0, [58.0, 20.0, 12.0, 5.0, 5.0]),
    r("CA", "Toronto", "America/Toronto", -300, 4.0, [50.0, 18.0, 9.0, 13.0, 10.0]),
];

pub struct Artist {
    pub id: String,
    pub name: String,
    pub genre: &'static str,
}

pub struct Song {
    pub id: String,
    pub name: String,
    pub artist: usize,
    pub album: String,
    pub genre: &'static str,
    /// Days since 1970-01-01.
    pub release_day: i64,
    pub release_date: String,
    pub duration_ms: i64,
    /// How likely a listener skips this song, before position effects.
    pub skip_bias: f64,
    /// Released around the simulation's start: its plays trend upward after release.
    pub new_release: bool,
}

pub struct User {
    pub id: String,
    pub region: usize,
    /// Index into [`DEVICES`].
    pub primary_device: usize,
    /// Subscription at the catalog epoch.
    pub initially_premium: bool,
    /// Times (ms since the epoch, ascending) at which the user switches between free and
    /// premium: about every two months, so a warehouse can keep the history.
    pub subscription_changes: Vec<i64>,
}

impl User {
    pub fn is_premium(&self, at_ms: i64) -> bool {
        let switches = self.subscription_changes.partition_point(|&t| t <= at_ms);
        self.initially_premium ^ (switches % 2 == 1)
    }
}

/// The catalog lives on a fixed calendar, independent of any run's start: back catalog before
/// 2026-01-01, new releases (and subscription changes) spread over 2026-2027.
pub const CATALOG_EPOCH_DAY: i64 = 20_454; // 2026-01-01
pub const CATALOG_WINDOW_DAYS: i64 = 730;

pub struct Catalog {
    pub artists: Vec<Artist>,
    pub songs: Vec<Song>,
    pub users: Vec<User>,
    /// Cumulative Zipf weights over `songs` (popularity rank = index).
    song_cdf: Vec<f64>,
    pub new_releases: Vec<usize>,
    region_device_cdf: Vec<Vec<f64>>,
}

impl Catalog {
    pub fn generate(seed: u64, n_songs: usize, n_users: usize, zipf_s: f64) -> Self {
        let root = Rng::new(seed);
        let mut r = root.fork(1);
        let n_artists = (n_songs / 8).max(1);
        let artists = (0..n_artists)
            .map(|i| Artist {
                id: format!("ar_{i:05}"),
                name: format!("The {} {}", WORDS_A[r.below(16)], ARTIST_B[r.below(8)]),
                genre: GENRES[r.below(GENRES.len())],
            })
            .collect::<Vec<_>>();
        let songs = (0..n_songs)
            .map(|i| {
                let artist = r.below(n_artists);
                // One song in twenty is a new release, out some day in the catalog window.
                let new_release = r.chance(0.05);
                let release_day = if new_release {
                    CATALOG_EPOCH_DAY + r.range(0, CATALOG_WINDOW_DAYS)
                } else {
                    CATALOG_EPOCH_DAY - r.range(1, 3650)
                };
                Song {
                    id: format!("so_{i:06}"),
                    name: format!("{} {}", WORDS_A[r.below(16)], WORDS_B[r.below(16)]),
                    artist,
                    album: format!("{} {}", WORDS_B[r.below(16)], ["EP", "LP", "Sessions", "Vol. 1"][r.below(4)]),
                    genre: if r.chance(0.8) { artists[artist].genre } else { GENRES[r.below(GENRES.len())] },
                    release_day,
                    release_date: format_date(release_day),
                    duration_ms: r.range(120_000, 360_000),
                    skip_bias: 0.1 + 0.3 * r.f64(),
                    new_release,
                }
            })
            .collect::<Vec<_>>();
        let song_cdf = cumulative((1..=n_songs).map(|rank| 1.0 / (rank as f64).powf(zipf_s)));
        let new_releases = songs.iter().enumerate().filter(|(_, s)| s.new_release).map(|(i, _)| i).collect();

        let mut u = root.fork(2);
        let region_cdf = cumulative(REGIONS.iter().map(|c| c.weight));
        let region_device_cdf: Vec<Vec<f64>> = REGIONS.iter().map(|c| cumulative(c.devices)).collect();
        let users = (0..n_users)
            .map(|i| {
                let region = u.pick_cumulative(&region_cdf);
                let primary_device = u.pick_cumulative(&region_device_cdf[region]);
                let initially_premium = u.chance(0.4);
                let mut subscription_changes = Vec::new();
                let (mut t, end) = (CATALOG_EPOCH_DAY * 86_400_000, (CATALOG_EPOCH_DAY + CATALOG_WINDOW_DAYS) * 86_400_000);
                loop {
                    t += 1 + u.exp(60.0 * 86_400_000.0) as i64;
                    if t >= end {
                        break;
                    }
                    subscription_changes.push(t);
                }
                User { id: format!("us_{i:07}"), region, primary_device, initially_premium, subscription_changes }
            })
            .collect();
        Self { artists, songs, users, song_cdf, new_releases, region_device_cdf }
    }

    /// A song by Zipf popularity, among those released by `day`.
    pub fn pick_song(&self, rng: &mut Rng, day: i64) -> usize {
        loop {
            let s = rng.pick_cumulative(&self.song_cdf);
            if self.songs[s].release_day <= day {
                return s;
            }
        }
    }

    /// A device for one session: mostly the user's own, sometimes another common in the region.
    pub fn pick_device(&self, rng: &mut Rng, user: &User) -> usize {
        if rng.chance(0.8) {
            user.primary_device
        } else {
            rng.pick_cumulative(&self.region_device_cdf[user.region])
        }
    }
}
