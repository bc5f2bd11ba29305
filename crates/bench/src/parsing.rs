//! CPU-µs per line of the subscriber's parse → classify → UDM → serialise path, per format,
//! in this process on the realistic mix of `redtail_parse::samples`. CPU time is this
//! thread's time on a CPU (`/proc/thread-self/schedstat`), so other load on the machine does
//! not inflate it. `redtail-bench --parse-only` prints just this table.

use std::io::Write;

use anyhow::{Context as _, Result};

use crate::broker::Broker;
use crate::drain::{self, Drain};
use crate::roles::{Mode, Roles};
use redtail_parse::samples::{sample, SHAPES, TRACE_EVERY};
use redtail_parse::{render, Context, Format, Options, ParseMode, Parser};

/// Lines rendered per format (the mix gives each format several shapes).
const LINES_PER_FORMAT: usize = 200_000;

fn thread_cpu_ns() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .context("parsing schedstat")
}

/// `(format, CPU-µs per line, lines/s of one core)` for each format of the mix, then `mixed`.
pub fn measure() -> Result<Vec<(String, f64, f64)>> {
    let parser = Parser::new(ParseMode::Auto, None).map_err(anyhow::Error::msg)?;
    let opts = Options::default();
    let now = chrono::Utc::now();
    let lines: Vec<_> = (0..SHAPES * TRACE_EVERY)
        .map(|n| sample(n, now, "web-1", true))
        .collect();
    let ctx = Context {
        source: Some("pod-1"),
        path: Some("/var/log/app/app.log"),
        offset: Some(123_456),
        file_id: Some("98c0af-f5bab914c35fb11c"),
        stream_id: Some("1795608869853-0"),
        collected: Some(now),
        ..Context::default()
    };
    let mut buf = Vec::with_capacity(1 << 20);
    let mut out = Vec::new();
    let formats: Vec<Option<Format>> = [
        Format::Json,
        Format::Text,
        Format::Combined,
        Format::Logfmt,
        Format::Syslog,
    ]
    .into_iter()
    .map(Some)
    .chain([None])
    .collect();
    for format in formats {
        let picked: Vec<&[u8]> = lines
            .iter()
            .filter(|s| format.is_none_or(|f| s.format == f))
            .map(|s| s.text.as_bytes())
            .collect();
        let cpu_before = thread_cpu_ns()?;
        for i in 0..LINES_PER_FORMAT {
            buf.clear();
            let line = picked[i % picked.len()];
            std::hint::black_box(render(&parser, Some(line), ctx, &opts, now, &mut buf));
        }
        let cpu = (thread_cpu_ns()? - cpu_before) as f64 / 1e3;
        let per_line = cpu / LINES_PER_FORMAT as f64;
        let name = format.map_or("mixed".to_string(), |f| f.as_str().to_string());
        out.push((name, per_line, 1e6 / per_line));
    }
    Ok(out)
}

/// The mixed-format drain: `lines` lines of the sample mix (stack traces included, one
/// entry per physical line) are drained to the stream by a watcher, then the subscriber
/// (udm output, `REDTAIL_PARSE=auto`) drains the stream, timed as in step 4.
pub fn mixed_drain(broker: &Broker, roles: &Roles, lines: u64, keep: bool) -> Result<Drain> {
    let backlog = roles.work.join("mixed.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&backlog)?);
    let now = chrono::Utc::now();
    let mut physical = 0u64;
    let mut n = 0u64;
    while physical < lines {
        let s = sample(n, now, "web-1", true);
        physical += 1 + s.text.matches('\n').count() as u64;
        file.write_all(s.text.as_bytes())?;
        file.write_all(b"\n")?;
        n += 1;
    }
    file.flush()?;
    drop(file);
    // A fresh start: the stream drain's offsets and checkpoint (same source, another file)
    // would otherwise be recorded again and count in the committed offset.
    broker.flush()?;
    let _ = std::fs::remove_file(roles.work.join("bench-stream.checkpoint.json"));
    drain::watcher_drain(broker, roles, &backlog, physical, Mode::Stream)?;
    let d = drain::subscriber_drain(broker, roles, "bench:logs")?;
    broker.flush()?;
    if !keep {
        let _ = std::fs::remove_file(&backlog);
        let _ = std::fs::remove_file(roles.work.join("subscriber-drain.udm"));
    }
    Ok(d)
}

pub fn table(rows: &[(String, f64, f64)], mixed: Option<(&Drain, f64)>) -> String {
    let mut s = String::new();
    if let Some((d, xadd)) = mixed {
        s.push_str(&format!(
            "\nSubscriber drain, udm, mixed formats ({} entries): {:.0} entries/s = {:.2}× the XADD ceiling (target ≥ 0.5×); {:.2} CPU-µs per entry for the whole process\n",
            d.lines,
            d.lines_per_s(),
            d.lines_per_s() / xadd,
            d.cpu_per_million()
        ));
    }
    s.push_str("\nSubscriber parse → UDM, CPU per line (one thread, in process)\n");
    for (name, us, rate) in rows {
        s.push_str(&format!(
            "  {name:<9} {us:6.2} CPU-µs/line  ({rate:>9.0} lines/s per core)\n"
        ));
    }
    s
}
