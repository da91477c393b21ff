//! The world the simulator draws from: songs and artists with Zipf-like popularity, and users
//! placed in real cities and time zones.

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

/// (country, city, IANA time zone, weight of users there)
pub const CITIES: [(&str, &str, &str, f64); 14] = [
    ("US", "New York", "America/New_York", 12.0),
    ("US", "Los Angeles", "America/Los_Angeles", 8.0),
    ("GB", "London", "Europe/London", 8.0),
    ("DE", "Berlin", "Europe/Berlin", 6.0),
    ("FR", "Paris", "Europe/Paris", 5.0),
    ("BR", "São Paulo", "America/Sao_Paulo", 7.0),
    ("MX", "Mexico City", "America/Mexico_City", 5.0),
    ("IN", "Mumbai", "Asia/Kolkata", 6.0),
    ("JP", "Tokyo", "Asia/Tokyo", 5.0),
    ("AU", "Sydney", "Australia/Sydney", 3.0),
    ("SE", "Stockholm", "Europe/Stockholm", 2.0),
    ("NG", "Lagos", "Africa/Lagos", 2.0),
    ("ES", "Madrid", "Europe/Madrid", 3.0),
    ("CA", "Toronto", "America/Toronto", 4.0),
];
pub const DEVICES: [&str; 5] = ["mobile", "desktop", "web", "smart_speaker", "tv"];
const DEVICE_WEIGHTS: [f64; 5] = [55.0, 20.0, 12.0, 8.0, 5.0];

pub struct Artist {
    pub id: String,
    pub name: String,
}

pub struct Song {
    pub id: String,
    pub name: String,
    pub artist: usize,
    pub album: String,
    pub genre: &'static str,
    pub release_date: String,
    pub duration_ms: i64,
    /// How likely a listener skips this song, before position effects.
    pub skip_bias: f64,
}

pub struct User {
    pub id: String,
    pub city: usize,
    pub device: &'static str,
    pub premium: bool,
}

pub struct Catalog {
    pub artists: Vec<Artist>,
    pub songs: Vec<Song>,
    pub users: Vec<User>,
    /// Cumulative Zipf weights over `songs` (rank = index).
    song_cdf: Vec<f64>,
}

impl Catalog {
    pub fn generate(rng: &Rng, n_songs: usize, n_users: usize, zipf_s: f64, today_days: i64) -> Self {
        let mut r = rng.fork(1);
        let n_artists = (n_songs / 8).max(1);
        let artists = (0..n_artists)
            .map(|i| Artist {
                id: format!("ar_{i:05}"),
                name: format!(
                    "The {} {}",
                    WORDS_A[r.range(0, 16) as usize],
                    ARTIST_B[r.range(0, 8) as usize]
                ),
            })
            .collect::<Vec<_>>();
        let songs = (0..n_songs)
            .map(|i| {
                let artist = r.range(0, n_artists as i64) as usize;
                Song {
                    id: format!("so_{i:06}"),
                    name: format!("{} {}", WORDS_A[r.range(0, 16) as usize], WORDS_B[r.range(0, 16) as usize]),
                    artist,
                    album: format!("{} {}", WORDS_B[r.range(0, 16) as usize], ["EP", "LP", "Sessions", "Vol. 1"][r.range(0, 4) as usize]),
                    genre: GENRES[r.range(0, GENRES.len() as i64) as usize],
                    release_date: format_date(today_days - r.range(0, 3650)),
                    duration_ms: r.range(120_000, 360_000),
                    skip_bias: 0.1 + 0.3 * r.f64(),
                }
            })
            .collect::<Vec<_>>();
        let song_cdf = cumulative((1..=n_songs).map(|rank| 1.0 / (rank as f64).powf(zipf_s)));
        let mut u = rng.fork(2);
        let city_cdf = cumulative(CITIES.iter().map(|c| c.3));
        let device_cdf = cumulative(DEVICE_WEIGHTS);
        let users = (0..n_users)
            .map(|i| User {
                id: format!("us_{i:07}"),
                city: u.pick_cumulative(&city_cdf),
                device: DEVICES[u.pick_cumulative(&device_cdf)],
                premium: u.chance(0.4),
            })
            .collect();
        Self { artists, songs, users, song_cdf }
    }

    pub fn pick_song(&self, rng: &mut Rng) -> usize {
        rng.pick_cumulative(&self.song_cdf)
    }
}
