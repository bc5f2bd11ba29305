//! `redtail-bench`: the whole benchmark of issue 8 in one run — broker ceiling, backlog
//! drains, subscriber drain, live latency, resources — against a private `redis-server`.
//!
//! It drives the release `redtail` binary through its documented interface only, so the
//! figures are what a user of the binary gets. `scripts/bench.sh` builds and runs it.
#![forbid(unsafe_code)]

mod broker;
mod drain;
mod files;
mod live;
mod options;
mod parsing;
mod procs;
mod report;
mod roles;
mod stats;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::broker::Broker;
use crate::options::{Options, USAGE};
use crate::roles::{Mode, Roles};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redtail-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--parse-only") {
        print!("{}", parsing::table(&parsing::measure()?, None));
        return Ok(());
    }
    let Some(opts) = Options::parse(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    if !opts.redtail.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release --bin redtail` or pass --redtail",
            opts.redtail.display()
        );
    }
    let load_before = loadavg();
    let started = Instant::now();
    let step = |n: u32, what: &str| {
        eprintln!(
            "==> [{:5.1} s] {n}/9 {what}",
            started.elapsed().as_secs_f64()
        )
    };

    let work = opts.work_dir.clone();
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let work = work.canonicalize()?;

    step(1, "starting redis-server (persistence off)");
    let broker = Broker::start(&work)?;
    let roles = Roles {
        redtail: opts.redtail.clone(),
        work: work.clone(),
        redis_url: broker.url.clone(),
    };

    step(
        3,
        &format!("pre-writing {} lines with `redtail generate`", opts.lines),
    );
    let backlog = roles.app_dir()?.join("backlog.log");
    let prewrite = roles.prewrite(&backlog, opts.lines)?;
    let backlog_bytes = std::fs::metadata(&backlog)?.len();
    let line_bytes = backlog_bytes as f64 / opts.lines as f64 - 1.0; // without the `\n`
    let payload = typical_line(&backlog, line_bytes)?;
    eprintln!(
        "    {backlog_bytes} bytes in {:.1} s; average line {line_bytes:.1} bytes, payload {} bytes",
        prewrite.as_secs_f64(),
        payload.len()
    );

    step(2, "broker ceiling with redis-benchmark -c 1 -P 128");
    let mut ceiling = drain::ceiling(&broker, &roles, opts.lines, &payload)?;
    eprintln!("    {ceiling:?}");
    broker.flush()?;

    step(3, "watcher backlog drain, stream mode");
    let stream = drain::watcher_drain(&broker, &roles, &backlog, opts.lines, Mode::Stream)?;
    eprintln!(
        "    {:.0} lines/s in {:.2} s",
        stream.lines_per_s(),
        stream.seconds
    );

    step(4, "subscriber drain (udm) of the stream");
    let subscriber = drain::subscriber_drain(&broker, &roles, "bench:logs")?;
    eprintln!(
        "    {:.0} entries/s in {:.2} s",
        subscriber.lines_per_s(),
        subscriber.seconds
    );
    broker.flush()?;
    remove_unless(&opts, &work.join("subscriber-drain.udm"));

    step(4, "subscriber drain (udm) of a mixed-format stream");
    let mixed = parsing::mixed_drain(&broker, &roles, opts.lines, opts.keep)?;
    eprintln!(
        "    {:.0} entries/s in {:.2} s",
        mixed.lines_per_s(),
        mixed.seconds
    );

    step(
        3,
        "watcher backlog drain, pubsub mode (subscriber connected)",
    );
    let pubsub = drain::watcher_drain(&broker, &roles, &backlog, opts.lines, Mode::PubSub)?;
    eprintln!(
        "    {:.0} lines/s in {:.2} s; {:?} delivered",
        pubsub.lines_per_s(),
        pubsub.seconds,
        pubsub.delivered
    );
    broker.flush()?;
    ceiling.add_publish_runs(&broker, drain::PUBLISH_RUNS_AFTER)?;
    eprintln!("    PUBLISH ceiling runs: {:?}", ceiling.publish_runs);
    remove_unless(&opts, &work.join("pubsub-drain.raw"));
    remove_unless(&opts, &backlog);

    let mut live = Vec::new();
    for &rate in &opts.rates {
        step(
            5,
            &format!("live latency at {rate} lines/s for {:?}", opts.live),
        );
        let l = live::live(&broker, &roles, rate, opts.live)?;
        eprintln!(
            "    p50 {} µs, p99 {} µs, p99.9 {} µs (watcher share p99 {} µs); lag {:?}",
            l.p50_us, l.p99_us, l.p999_us, l.collect_p99_us, l.lag
        );
        remove_unless(&opts, &work.join(format!("live-{rate}.udm")));
        live.push(l);
    }

    step(6, &format!("idle watcher for {:?}", opts.idle));
    let idle = live::idle(&broker, &roles, opts.idle)?;

    // The file-side figures report a failure in the table rather than end the run: the
    // tail engine is the part most likely to change under them.
    step(7, &format!("rotation storm for {:?}", opts.live));
    let storm =
        files::rotation_storm(&broker, &roles, line_bytes, opts.live).map_err(|e| format!("{e:#}"));
    eprintln!("    {storm:?}");
    step(8, &format!("glob over {MANY_FILES} files"));
    let many =
        files::many_files(&broker, &roles, &payload, MANY_FILES, 10).map_err(|e| format!("{e:#}"));
    eprintln!("    {many:?}");

    step(9, "results");
    let results = report::Results {
        machine: machine(&opts, &load_before)?,
        lines: opts.lines,
        line_bytes,
        prewrite_seconds: prewrite.as_secs_f64(),
        ceiling,
        stream,
        pubsub,
        subscriber,
        live,
        idle,
        storm,
        many,
    };
    println!(
        "redtail-bench on {} CPUs ({}), 1-min load {} before / {} after; backlog {} lines of {:.0} bytes",
        results.machine["cpus"],
        results.machine["cpu_model"].as_str().unwrap_or("?"),
        load_before,
        loadavg(),
        opts.lines,
        line_bytes
    );
    print!("{}", results.table());
    let rows = parsing::measure()?;
    print!(
        "{}",
        parsing::table(&rows, Some((&mixed, results.ceiling.xadd)))
    );
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&results.json())?;
    std::fs::write(&opts.out, text + "\n")
        .with_context(|| format!("writing {}", opts.out.display()))?;
    eprintln!(
        "==> [{:5.1} s] JSON written to {}",
        started.elapsed().as_secs_f64(),
        opts.out.display()
    );
    Ok(())
}

/// Files of the many-files step (issue 12 asks for the RSS at 1 000).
const MANY_FILES: u64 = 1_000;

/// A backlog line as close as possible to the average size: the ceiling's payload.
fn typical_line(backlog: &Path, average: f64) -> Result<String> {
    let file = std::fs::File::open(backlog)?;
    let mut best: Option<String> = None;
    for line in BufReader::new(file).lines().take(10_000) {
        let line = line?;
        let closer = best
            .as_ref()
            .is_none_or(|b| (line.len() as f64 - average).abs() < (b.len() as f64 - average).abs());
        if closer {
            best = Some(line);
        }
    }
    best.context("the backlog is empty")
}

/// The large scratch files go unless `--keep`: 2 M lines are ~0.4 GB, their UDM ~1 GB.
fn remove_unless(opts: &Options, path: &Path) {
    if !opts.keep {
        let _ = std::fs::remove_file(path);
    }
}

/// The 1-minute load average: the machine is shared, and a busy neighbour shows in every
/// figure, so each result carries the load it was measured under.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn machine(opts: &Options, load_before: &str) -> Result<serde_json::Value> {
    let out = |program: &str, args: &[&str]| -> String {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    Ok(json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": cpu_model,
        "kernel": out("uname", &["-r"]),
        "redis_server": out("redis-server", &["--version"]),
        "redtail": out(&opts.redtail.display().to_string(), &["--version"]),
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": loadavg(),
        "quick": opts.quick,
        "live_seconds": opts.live.as_secs_f64(),
        "idle_seconds": opts.idle.as_secs_f64(),
    }))
}
