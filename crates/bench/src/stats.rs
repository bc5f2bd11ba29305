//! Turning raw observations into figures: end-to-end latency from the subscriber's UDM
//! output, percentiles, and whether the watcher's lag grows.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};

/// Microseconds since the Unix epoch of an RFC 3339 timestamp in UTC
/// (`2026-11-23T23:10:01.123456Z` or `...+00:00`); `None` for anything else.
/// Hand-written because both sides of the latency use this one format.
pub fn rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> { s.get(from..to)?.parse().ok() };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, min, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Scale any number of digits to microseconds (extra digits are truncated).
        for (i, c) in frac[..digits].bytes().enumerate().take(6) {
            micros += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
        }
        rest = &frac[digits..];
    }
    if rest != "Z" && rest != "+00:00" {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + min) * 60_000_000 + sec * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Latencies read from a UDM output file, microseconds.
#[derive(Debug, Default, PartialEq)]
pub struct UdmLatencies {
    /// End to end: `ingested_timestamp − event_timestamp`.
    pub total: Vec<i64>,
    /// The watcher's share: `collected_timestamp − event_timestamp` (when the watcher read
    /// the line), for events that carry it. Splits a slow tail between watcher and the rest.
    pub collect: Vec<i64>,
    /// Lines that were not events with both timestamps.
    pub unreadable: u64,
}

/// Reads every event of a UDM file.
pub fn udm_latencies(path: &Path) -> Result<UdmLatencies> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = UdmLatencies::default();
    for line in BufReader::with_capacity(1 << 20, file).lines() {
        let line = line?;
        let parsed = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|event| {
                let meta = event.get("metadata")?;
                let event_ts = rfc3339_micros(meta.get("event_timestamp")?.as_str()?)?;
                let ingested = rfc3339_micros(meta.get("ingested_timestamp")?.as_str()?)?;
                let collected = meta
                    .get("collected_timestamp")
                    .and_then(|v| rfc3339_micros(v.as_str()?));
                Some((ingested - event_ts, collected.map(|c| c - event_ts)))
            });
        match parsed {
            Some((total, collect)) => {
                out.total.push(total);
                out.collect.extend(collect);
            }
            None => out.unreadable += 1,
        }
    }
    Ok(out)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    // The epsilon keeps binary rounding (0.999 × 1000 = 999.0000000000001) from moving
    // an exact rank up by one.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Lines in a file (counting `\n`), read in large blocks.
pub fn count_lines(path: &Path) -> Result<u64> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let read = file.read(&mut buf)?;
        if read == 0 {
            return Ok(n);
        }
        n += buf[..read].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// Verdict on the watcher's lag while the generator ran at a constant rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagTrend {
    /// Least-squares slope of lag over time, bytes per second.
    pub slope_bytes_per_s: f64,
    pub max_bytes: f64,
    /// Lag in the last sample.
    pub last_bytes: f64,
    /// The slope is more than 2 % of the input rate and the lag ended above a few batches:
    /// the watcher falls behind. A bounded sawtooth (lag filled and emptied once per batch)
    /// has a slope near zero.
    pub growing: bool,
}

/// `samples` are (seconds since start, lag bytes); `input_bytes_per_s` is the write rate.
pub fn lag_trend(samples: &[(f64, f64)], input_bytes_per_s: f64) -> Option<LagTrend> {
    if samples.len() < 3 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_l = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let cov: f64 = samples
        .iter()
        .map(|s| (s.0 - mean_t) * (s.1 - mean_l))
        .sum();
    let var: f64 = samples.iter().map(|s| (s.0 - mean_t).powi(2)).sum();
    let slope = if var > 0.0 { cov / var } else { 0.0 };
    let max = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let last = samples.last().map_or(0.0, |s| s.1);
    const FEW_BATCHES: f64 = 4.0 * 1024.0 * 1024.0;
    Some(LagTrend {
        slope_bytes_per_s: slope,
        max_bytes: max,
        last_bytes: last,
        growing: slope > 0.02 * input_bytes_per_s && last > FEW_BATCHES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_utc_with_and_without_fraction() {
        assert_eq!(rfc3339_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_micros("2024-01-01T00:00:00.000001Z"),
            Some(1_704_067_200_000_001)
        );
        assert_eq!(
            rfc3339_micros("2024-02-29T12:30:15.5+00:00"),
            Some(1_709_209_815_500_000)
        );
        assert_eq!(
            rfc3339_micros("2024-01-01T00:00:00.123456789Z"),
            Some(1_704_067_200_123_456)
        );
        assert_eq!(rfc3339_micros("2024-01-01T00:00:00+02:00"), None);
        assert_eq!(rfc3339_micros("yesterday"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), Some(500));
        assert_eq!(percentile(&v, 99.0), Some(990));
        assert_eq!(percentile(&v, 99.9), Some(999));
        assert_eq!(percentile(&v, 100.0), Some(1000));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn sawtooth_lag_is_bounded_and_a_ramp_grows() {
        let saw: Vec<(f64, f64)> = (0..200)
            .map(|i| (i as f64 * 0.1, ((i % 5) * 100_000) as f64))
            .collect();
        let t = lag_trend(&saw, 9_000_000.0).expect("enough samples");
        assert!(!t.growing, "{t:?}");
        let ramp: Vec<(f64, f64)> = (0..200)
            .map(|i| (i as f64 * 0.1, i as f64 * 100_000.0))
            .collect();
        let t = lag_trend(&ramp, 9_000_000.0).expect("enough samples");
        assert!(t.growing, "{t:?}");
        assert!((t.slope_bytes_per_s - 1_000_000.0).abs() < 1.0);
    }

    #[test]
    fn reads_latency_from_udm_events() {
        let dir = std::env::temp_dir().join(format!("redtail-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("out.udm");
        std::fs::write(
            &path,
            "{\"metadata\":{\"event_timestamp\":\"2024-01-01T00:00:00.000100Z\",\
             \"collected_timestamp\":\"2024-01-01T00:00:00.000300Z\",\
             \"ingested_timestamp\":\"2024-01-01T00:00:00.001600Z\"}}\nnot json\n",
        )
        .expect("write");
        let lat = udm_latencies(&path).expect("read");
        assert_eq!(
            (lat.total, lat.collect, lat.unreadable),
            (vec![1500], vec![200], 1)
        );
        assert_eq!(count_lines(&path).expect("count"), 2);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
