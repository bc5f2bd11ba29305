//! `redtail demo`'s second log file: a realistic mix of formats (framework text logs,
//! access-log lines, logfmt, syslog, JSON with logins and logouts, an occasional Java stack
//! trace) from `redtail_parse::samples`, so a newcomer sees every parser and event type.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use redtail_telemetry::shutdown::Shutdown;

/// Appends one sample per `1 / rate` seconds (at least one a second) until shutdown. Each
/// sample is one `write`, so the watcher never sees half of a stack trace for long.
pub async fn write(path: PathBuf, rate: u64, shutdown: Shutdown) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("demo mix {}: {e}", path.display()))?;
    let host = crate::roles::host_name();
    let period = Duration::from_micros(1_000_000 / rate.clamp(1, 1000));
    let mut tick = tokio::time::interval(period);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return Ok(()),
        }
        let sample = redtail_parse::samples::sample(n, chrono::Utc::now(), &host, true);
        let mut bytes = sample.text.into_bytes();
        bytes.push(b'\n');
        file.write_all(&bytes)
            .map_err(|e| format!("demo mix {}: {e}", path.display()))?;
        n += 1;
    }
}
