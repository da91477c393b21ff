//! Statistical tests: what the simulator's settings promise, measured on its output.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;
use crate::event::{parse_event, parse_rfc3339_ms};

fn run(cfg: &SimConfig, n: usize) -> (Vec<Vec<u8>>, Vec<RecordKind>, SimStats) {
    let mut sim = Simulator::new(cfg.clone()).unwrap();
    let mut buf = Vec::new();
    let (mut out, mut kinds) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let (_, kind) = sim.next_record(&mut buf).unwrap();
        out.push(buf.clone());
        kinds.push(kind);
    }
    (out, kinds, sim.stats().clone())
}

fn valid_events(records: &[Vec<u8>]) -> Vec<Value> {
    records.iter().filter_map(|r| serde_json::from_slice::<Value>(r).ok()).filter(|v| parse_event(&serde_json::to_vec(v).unwrap()).is_ok()).collect()
}

fn ts(v: &Value) -> i64 {
    parse_rfc3339_ms(v["event_ts"].as_str().unwrap()).unwrap()
}

fn faulty() -> SimConfig {
    SimConfig { faults: Faults { late_rate: 0.02, max_late_ms: 3_600_000, duplicate_rate: 0.03, malformed_rate: 0.01 }, ..Default::default() }
}

#[test]
fn same_settings_same_bytes_other_seed_other_bytes() {
    let cfg = faulty();
    assert_eq!(run(&cfg, 5_000).0, run(&cfg, 5_000).0);
    assert_ne!(run(&SimConfig { seed: 43, ..cfg.clone() }, 100).0, run(&cfg, 100).0);
    // The catalog has its own seed: changing the event seed keeps the songs.
    let a = Simulator::new(cfg.clone()).unwrap();
    let b = Simulator::new(SimConfig { seed: 43, ..cfg }).unwrap();
    assert_eq!(a.catalog().songs[7].name, b.catalog().songs[7].name);
}

#[test]
fn without_faults_every_record_is_valid_unique_and_in_time_order() {
    let cfg = SimConfig::default();
    let (records, kinds, stats) = run(&cfg, 30_000);
    assert!(kinds.iter().all(|k| *k == RecordKind::Valid));
    assert_eq!((stats.records, stats.valid, stats.duplicates, stats.malformed, stats.late), (30_000, 30_000, 0, 0, 0));
    let events = valid_events(&records);
    assert_eq!(events.len(), 30_000);
    let ids: HashSet<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 30_000);
    let times: Vec<i64> = events.iter().map(ts).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "events come out in event-time order");
    assert!(times[0] >= cfg.start_ms);
}

#[test]
fn fault_rates_and_ground_truth() {
    let n = 100_000;
    let cfg = faulty();
    let (records, kinds, stats) = run(&cfg, n);
    assert_eq!(stats.records, n as u64);
    assert_eq!(stats.valid + stats.malformed, stats.records);
    // Each parsed record agrees with what the simulator said it was.
    let mut seen = HashSet::new();
    let mut dups = 0;
    for (r, k) in records.iter().zip(&kinds) {
        match (parse_event(r), k) {
            (Err(rej), RecordKind::Malformed(class)) => assert_eq!(rej.class, *class),
            (Ok(_), RecordKind::Valid | RecordKind::Duplicate) => {
                let id = serde_json::from_slice::<Value>(r).unwrap()["event_id"].as_str().unwrap().to_string();
                if !seen.insert(id) {
                    dups += 1;
                }
            }
            (r, k) => panic!("simulator said {k:?}, the contract says {r:?}"),
        }
    }
    assert_eq!(dups, stats.duplicates);
    // Rates within four standard deviations of the settings.
    let within = |count: u64, p: f64, trials: f64| {
        let sd = (trials * p * (1.0 - p)).sqrt();
        (count as f64 - trials * p).abs() < 4.0 * sd + 1.0
    };
    let events = stats.valid as f64 - stats.duplicates as f64 + stats.malformed as f64;
    assert!(within(stats.malformed, 0.01, events), "malformed {}", stats.malformed);
    assert!(within(stats.duplicates, 0.03, stats.valid as f64 - stats.duplicates as f64), "duplicates {}", stats.duplicates);
    assert!(within(stats.late, 0.02, stats.valid as f64 - stats.duplicates as f64), "late {}", stats.late);
    assert_eq!(stats.malformed_by_class.len(), MALFORMED_CLASSES.len(), "{:?}", stats.malformed_by_class);
    // Late deliveries arrive after events that happened later than they did.
    let times: Vec<i64> = valid_events(&records).iter().map(ts).collect();
    let out_of_order = times.windows(2).filter(|w| w[1] < w[0]).count() as u64;
    assert!(out_of_order > stats.late / 2, "{out_of_order} out of order for {} late", stats.late);
}

#[test]
fn popularity_follows_the_zipf_setting() {
    let cfg = SimConfig { new_release_share: 0.0, ..Default::default() };
    let events = valid_events(&run(&cfg, 100_000).0);
    let mut plays: HashMap<&str, u64> = HashMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "play") {
        *plays.entry(e["song_id"].as_str().unwrap()).or_default() += 1;
    }
    let mut counts: Vec<u64> = plays.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = counts.iter().sum();
    let top = cfg.songs / 100;
    let observed = counts.iter().take(top).sum::<u64>() as f64 / total as f64;
    let h = |n: usize| (1..=n).map(|k| (k as f64).powf(-cfg.zipf_s)).sum::<f64>();
    let expected = h(top) / h(cfg.songs);
    assert!((observed - expected).abs() < 0.03, "top 1% share {observed:.3}, Zipf({}) says {expected:.3}", cfg.zipf_s);
}

#[test]
fn skip_rate_is_in_a_realistic_range_and_grows_along_a_session() {
    let events = valid_events(&run(&SimConfig::default(), 100_000).0);
    let count = |t: &str| events.iter().filter(|e| e["event_type"] == t).count() as f64;
    let rate = count("skip") / count("play");
    assert!((0.15..0.40).contains(&rate), "skip rate {rate}");
    // Skips come early in songs.
    let early = events.iter().filter(|e| e["event_type"] == "skip" && e["position_ms"].as_i64().unwrap() * 2 < e["duration_ms"].as_i64().unwrap()).count() as f64;
    assert!(early / count("skip") > 0.6);
}

#[test]
fn listening_peaks_in_the_local_evening_and_is_quieter_at_weekends() {
    let cfg = SimConfig { users: 300, start_ms: 1_772_323_200_000, ..Default::default() }; // 2026-03-01 (a Sunday)
    let events = valid_events(&run(&cfg, 250_000).0);
    let offsets: HashMap<&str, i64> = REGIONS.iter().map(|r| (r.timezone, r.utc_offset_min)).collect();
    let (mut by_hour, mut by_weekday) = ([0f64; 24], [0f64; 7]);
    let mut sessions = HashSet::new();
    for e in &events {
        if sessions.insert(e["session_id"].as_str().unwrap().to_string()) {
            let (h, wd) = local_hour_weekday(ts(e), offsets[e["timezone"].as_str().unwrap()]);
            by_hour[h] += 1.0;
            by_weekday[wd as usize] += 1.0;
        }
    }
    let peak = (0..24).max_by(|&a, &b| by_hour[a].total_cmp(&by_hour[b])).unwrap();
    assert!((18..=22).contains(&peak), "peak local hour {peak}: {by_hour:?}");
    let evening: f64 = by_hour[18..23].iter().sum();
    let night: f64 = by_hour[2..7].iter().sum();
    assert!(evening > 5.0 * night, "evening {evening} night {night}");
    // Whole weeks only, so every weekday is counted equally often.
    let days = ts(events.last().unwrap()).saturating_sub(cfg.start_ms) / 86_400_000;
    assert!(days >= 14, "only {days} days simulated");
    let weekend = (by_weekday[5] + by_weekday[6]) / 2.0;
    let weekday = by_weekday[..5].iter().sum::<f64>() / 5.0;
    assert!((0.65..0.95).contains(&(weekend / weekday)), "weekend/weekday {}", weekend / weekday);
}

#[test]
fn new_releases_trend_upward_after_release_and_never_play_before() {
    let cfg = SimConfig { songs: 6_000, users: 300, start_ms: 1_772_323_200_000, ..Default::default() };
    let sim = Simulator::new(cfg.clone()).unwrap();
    let release: HashMap<String, (i64, bool)> =
        sim.catalog().songs.iter().map(|s| (s.id.clone(), (s.release_day, s.new_release))).collect();
    let events = valid_events(&run(&cfg, 300_000).0);
    let (mut early, mut later) = (0u64, 0u64);
    let start_day = cfg.start_ms / 86_400_000;
    for e in events.iter().filter(|e| e["event_type"] == "play") {
        let (day, is_new) = release[e["song_id"].as_str().unwrap()];
        let played = ts(e).div_euclid(86_400_000);
        assert!(played >= day, "played before release");
        if is_new && day > start_day {
            match played - day {
                0..=2 => early += 1,
                10..=12 => later += 1,
                _ => {}
            }
        }
    }
    assert!(early > 0 && later as f64 > 1.5 * early as f64, "early {early} later {later}");
}

#[test]
fn devices_differ_by_region_and_subscriptions_change() {
    let events = valid_events(&run(&SimConfig { users: 2_000, ..Default::default() }, 150_000).0);
    let mobile_share = |countries: &[&str]| {
        let sel: Vec<&Value> = events.iter().filter(|e| countries.contains(&e["country"].as_str().unwrap())).collect();
        sel.iter().filter(|e| e["device_type"] == "mobile").count() as f64 / sel.len() as f64
    };
    let (south, north) = (mobile_share(&["IN", "NG", "BR", "MX"]), mobile_share(&["US", "DE", "GB"]));
    assert!(south > north + 0.15, "mobile share {south:.2} vs {north:.2}");
    let mut subs: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in &events {
        subs.entry(e["user_id"].as_str().unwrap()).or_default().insert(e["subscription"].as_str().unwrap());
    }
    assert!(subs.values().filter(|s| s.len() == 2).count() > 10, "users whose subscription changed");
}

#[test]
fn reference_data_covers_the_catalog() {
    let cfg = SimConfig::default();
    let sim = Simulator::new(cfg.clone()).unwrap();
    let tables = reference_batches(sim.catalog(), cfg.catalog_seed).unwrap();
    let rows: HashMap<&str, usize> = tables.iter().map(|(n, b)| (*n, b.num_rows())).collect();
    assert_eq!(rows["songs"], cfg.songs);
    assert_eq!(rows["users"], cfg.users);
    assert!(rows["subscriptions"] > cfg.users);
    assert_eq!(super::reference::catalog_id(&cfg), "2026-2000-500");
}

#[test]
fn bad_config_is_refused() {
    assert!(Simulator::new(SimConfig { users: 0, ..Default::default() }).is_err());
    assert!(Simulator::new(SimConfig { sessions_per_user_per_day: 0.0, ..Default::default() }).is_err());
    let bad = SimConfig { faults: Faults { duplicate_rate: 1.5, ..Default::default() }, ..Default::default() };
    assert!(Simulator::new(bad).is_err());
}

#[test]
fn estimated_span_covers_the_events_without_much_to_spare() {
    // A run without a start ends "now" by this estimate: under it, events would be in the future.
    for (users, n) in [(100, 60_000), (500, 100_000), (2_000, 100_000)] {
        let cfg = SimConfig { users, ..Default::default() };
        let (records, _, _) = run(&cfg, n);
        let times: Vec<i64> = valid_events(&records).iter().map(ts).collect();
        let actual = (times.iter().max().unwrap() - times.iter().min().unwrap()) as f64;
        let ratio = cfg.estimated_span_ms(n as u64) as f64 / actual;
        assert!((1.0..1.3).contains(&ratio), "{users} users, {n} events: estimate / actual span = {ratio:.3}");
    }
}

#[test]
fn a_run_ending_now_has_no_event_after_now() {
    let end = 1_779_000_000_000; // any "now"
    for (users, n) in [(500, 20), (500, 6_000), (100, 30_000), (2_000, 60_000)] {
        let cfg = SimConfig { users, ..Default::default() };
        let start = start_ending_at(&cfg, n as u64, end).unwrap();
        let (records, _, stats) = run(&SimConfig { start_ms: start, ..cfg }, n);
        let last = valid_events(&records).iter().map(ts).max().unwrap();
        assert!(last <= end && end - last < 3_600_000, "{users} users, {n} events: last event {} ms before the end", end - last);
        assert_eq!(stats.last_event_ms, Some(last));
    }
}
