//! Running the simulator without Kafka: the records with their ground truth, a JSON-lines file,
//! its raw speed, and where to start so that a run ends now.


use super::{RecordKind, SimConfig, SimStats, Simulator};
use crate::Result;

/// `count` records with what each is: `valid`, `duplicate` or `malformed:<reason>` (the ground
/// truth a test reconciles against).
pub fn records(cfg: SimConfig, count: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let mut s = Simulator::new(cfg)?;
    let mut buf = Vec::new();
    (0..count)
        .map(|_| {
            let kind = match s.next_record(&mut buf)?.1 {
                RecordKind::Valid => "valid".to_string(),
                RecordKind::Duplicate => "duplicate".to_string(),
                RecordKind::Malformed(reason) => format!("malformed:{reason}"),
            };
            Ok((kind, buf.clone()))
        })
        .collect()
}

/// Simulates `count` records into one reused buffer, on this thread: the cost of simulation and
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

/// A start time such that `count` events end at or before `end_ms`, and close to it: what a run
/// "ending now" needs, since events stamped after their load would be invalid downstream. Up to
/// 1 M events the simulator is run (at ~1.7 M records/s) while the start is searched (secant
/// steps, then bisection) until the last event lands in the ten minutes before `end_ms`, or the
/// closest that ends before it after 12 tries; beyond, the estimate is used with a 30% margin.
pub fn start_ending_at(cfg: &SimConfig, count: u64, end_ms: i64) -> Result<i64> {
    const MINUTE: i64 = 60_000;
    let estimate = cfg.estimated_span_ms(count);
    if count > 1_000_000 {
        return Ok(end_ms - estimate * 13 / 10 - MINUTE);
    }
    let mut buf = Vec::with_capacity(1024);
    let mut last_event = |start: i64| -> Result<i64> {
        let mut sim = Simulator::new(SimConfig { start_ms: start, ..cfg.clone() })?;
        for _ in 0..count {
            sim.next_json(&mut buf)?;
        }
        Ok(sim.stats().last_event_ms.unwrap_or(start))
    };
    // The latest start that ends in time, and the earliest that does not. A later start ends
    // later, but not by the same amount: the daily cycle depends on the absolute time.
    let (mut fits, mut late): (Option<(i64, i64)>, Option<i64>) = (None, None);
    let mut start = end_ms - estimate;
    for _ in 0..12 {
        let last = last_event(start)?;
        if last <= end_ms {
            if fits.is_none_or(|(s, _)| start > s) {
                fits = Some((start, end_ms - last));
            }
            if end_ms - last < 10 * MINUTE {
                break;
            }
        } else if late.is_none_or(|l| start < l) {
            late = Some(start);
        }
        start = match (fits, late) {
            (Some((lo, _)), Some(hi)) if hi - lo > 1 => lo + (hi - lo) / 2,
            (Some(_), Some(_)) => break,
            _ => start + (end_ms - last) - MINUTE,
        };
    }
    Ok(fits.map_or(end_ms - estimate * 13 / 10 - MINUTE, |(start, _)| start))
}

/// Writes `count` records as lines to `path`; returns the ground truth of what was written.
pub fn write_jsonl(cfg: &SimConfig, count: u64, path: &std::path::Path) -> Result<SimStats> {
    use std::io::Write;
    let mut sim = Simulator::new(cfg.clone())?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = Vec::with_capacity(1024);
    for _ in 0..count {
        sim.next_json(&mut buf)?;
        buf.push(b'\n');
        out.write_all(&buf)?;
    }
    out.flush()?;
    Ok(sim.stats().clone())
}


/// What [`write_truth`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct TruthSummary {
    pub records: u64,
    pub valid: u64,
    pub duplicates: u64,
    pub malformed: u64,
}

/// The ground truth of the records `first..end` of a simulation, less `not_sent`, as CSV lines
/// `index,kind,event_id,event_ts` (kind as in [`records`]; a malformed record has no event id):
/// what a stream's segment log regenerates, for readers that reconcile without holding every
/// record in memory.
pub fn write_truth(cfg: &SimConfig, first: u64, end: u64, not_sent: &[u64], path: &std::path::Path) -> Result<TruthSummary> {
    use std::io::Write;
    let mut sim = Simulator::new(cfg.clone())?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "index,kind,event_id,event_ts")?;
    let skip: std::collections::HashSet<u64> = not_sent.iter().copied().collect();
    let mut buf = Vec::with_capacity(1024);
    let mut t = TruthSummary::default();
    for i in 0..end {
        let kind = sim.next_record(&mut buf)?.1;
        if i < first || skip.contains(&i) {
            continue;
        }
        t.records += 1;
        let kind = match kind {
            RecordKind::Malformed(reason) => {
                t.malformed += 1;
                writeln!(out, "{i},malformed:{reason},,")?;
                continue;
            }
            RecordKind::Duplicate => {
                t.duplicates += 1;
                "duplicate"
            }
            RecordKind::Valid => "valid",
        };
        t.valid += 1;
        let v: serde_json::Value = serde_json::from_slice(&buf)?;
        writeln!(out, "{i},{kind},{},{}", v["event_id"].as_str().unwrap_or_default(), v["event_ts"].as_str().unwrap_or_default())?;
    }
    out.flush()?;
    Ok(t)
}
