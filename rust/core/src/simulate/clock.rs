//! When people listen: a daily cycle in each user's local time, with an evening peak, a quiet
//! night, and quieter weekends.

/// Relative listening activity by local hour (0-23).
pub const HOURLY: [f64; 24] = [
    0.50, 0.30, 0.20, 0.15, 0.15, 0.20, 0.40, 0.80, 1.00, 0.90, 0.80, 0.80, //
    0.90, 0.90, 0.85, 0.90, 1.00, 1.20, 1.50, 1.80, 1.90, 1.70, 1.30, 0.90,
];
pub const WEEKEND_FACTOR: f64 = 0.8;

/// Highest value [`activity`] takes.
pub fn max_activity() -> f64 {
    HOURLY.iter().copied().fold(0.0, f64::max)
}

/// Mean of [`activity`] over a week, so that rates can be set per day.
pub fn mean_activity() -> f64 {
    HOURLY.iter().sum::<f64>() / 24.0 * (5.0 + 2.0 * WEEKEND_FACTOR) / 7.0
}

/// (local hour, weekday with Monday = 0) of a UTC time at a fixed UTC offset.
pub fn local_hour_weekday(utc_ms: i64, offset_min: i64) -> (usize, i64) {
    let local = utc_ms + offset_min * 60_000;
    let days = local.div_euclid(86_400_000);
    let hour = (local.rem_euclid(86_400_000) / 3_600_000) as usize;
    // 1970-01-01 was a Thursday (weekday 3).
    (hour, (days + 3).rem_euclid(7))
}

/// Relative activity at a UTC time for someone living at the given offset.
pub fn activity(utc_ms: i64, offset_min: i64) -> f64 {
    let (hour, weekday) = local_hour_weekday(utc_ms, offset_min);
    HOURLY[hour] * if weekday >= 5 { WEEKEND_FACTOR } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_and_weekdays() {
        // 2026-01-15T00:30Z is a Thursday; in Tokyo (+9) it is 09:30 the same day.
        let t = 1_768_437_000_000;
        assert_eq!(local_hour_weekday(t, 0), (0, 3));
        assert_eq!(local_hour_weekday(t, 540), (9, 3));
        // In New York (-5) it is still Wednesday evening.
        assert_eq!(local_hour_weekday(t, -300), (19, 2));
        assert!(activity(t, -300) > 5.0 * activity(t + 8 * 3_600_000, -300));
    }
}
