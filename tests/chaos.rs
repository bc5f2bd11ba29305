//! Chaos soak: for REDTAIL_CHAOS_SECS (default 60) the generator writes at a
//! steady rate with rotation on while a driver randomly kills (-9) or
//! terminates the watcher, the subscriber and Redis (AOF `always`), and
//! rotates or copy-truncates the file. At the end every seq reached the
//! subscriber (loss 0) and the stream holds each once (duplicates in Redis 0).
//!
//! Longer local run: `REDTAIL_CHAOS_SECS=600 scripts/chaos.sh`. A failing run
//! is replayed with the `REDTAIL_FAULT_SEED` it printed (timing still varies).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

const STREAM: &str = "redtail:logs";
const TERM_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    WatcherKill9,
    WatcherTerm,
    SubscriberKill9,
    SubscriberTerm,
    RedisKill9,
    Rotate,
    CopyTruncate,
}

impl Fault {
    const ALL: [Fault; 7] = [
        Fault::WatcherKill9,
        Fault::WatcherTerm,
        Fault::SubscriberKill9,
        Fault::SubscriberTerm,
        Fault::RedisKill9,
        Fault::Rotate,
        Fault::CopyTruncate,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::WatcherKill9 => "watcher kill -9",
            Fault::WatcherTerm => "watcher SIGTERM",
            Fault::SubscriberKill9 => "subscriber kill -9",
            Fault::SubscriberTerm => "subscriber SIGTERM",
            Fault::RedisKill9 => "redis kill -9 (AOF always)",
            Fault::Rotate => "rotate by rename",
            Fault::CopyTruncate => "copy-truncate",
        }
    }
}

/// Everything the soak runs, and what it measured.
struct Soak {
    redis: RedisServer,
    scene: Scene,
    generator: Redtail,
    watcher: Redtail,
    subscriber: Redtail,
    rng: Rng,
    faults: BTreeMap<Fault, u32>,
    max_watcher_rss_kib: u64,
    copies: u32,
}

impl Soak {
    fn start(rate: u64) -> Soak {
        let redis = RedisServer::start_durable();
        let scene = Scene::new();
        let mut gen_env = scene.generator_env(rate, 0);
        // ~5 000 lines per file: the generator rotates by itself every few seconds.
        gen_env.push(("REDTAIL_ROTATE_BYTES", "1000000".to_string()));
        gen_env.push(("REDTAIL_ROTATE_KEEP", "1000".to_string()));
        let generator = scene.start("generate", &gen_env);
        let mut wenv = scene.watcher_env(&redis, "stream");
        wenv.push(("REDTAIL_CHECKPOINT_INTERVAL_MS", "300".to_string()));
        let watcher = scene.start("watch", &wenv);
        let mut senv = scene.subscriber_env(&redis, "stream");
        // A killed subscriber comes back under the same name and re-reads its own
        // pending entries; claiming from other (dead) consumers is not exercised here.
        senv.push(("REDTAIL_CLAIM_IDLE_MS", "5000".to_string()));
        let subscriber = scene.start("subscribe", &senv);
        Soak {
            redis,
            scene,
            generator,
            watcher,
            subscriber,
            rng: Rng::from_env_or_clock("REDTAIL_FAULT_SEED"),
            faults: BTreeMap::new(),
            max_watcher_rss_kib: 0,
            copies: 0,
        }
    }

    fn sample_rss(&mut self) {
        if let Some(pid) = self.watcher.pid() {
            self.max_watcher_rss_kib = self.max_watcher_rss_kib.max(hwm_kib(pid));
        }
    }

    /// Sleep, sampling the watcher's memory on the way.
    fn pause(&mut self, total: Duration) {
        let end = Instant::now() + total;
        while Instant::now() < end {
            self.sample_rss();
            std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
        }
    }

    fn inject(&mut self, fault: Fault) {
        *self.faults.entry(fault).or_default() += 1;
        self.sample_rss();
        match fault {
            Fault::WatcherKill9 => {
                self.watcher.kill9();
                let down = self.rng.millis(0, 1500);
                self.pause(down);
                self.watcher.restart();
            }
            Fault::WatcherTerm => {
                let status = self.watcher.terminate(TERM_WAIT);
                assert!(
                    status.success(),
                    "watcher SIGTERM exit {status:?}:\n{}",
                    self.watcher.stderr()
                );
                self.watcher.restart();
            }
            Fault::SubscriberKill9 => {
                self.subscriber.kill9();
                let down = self.rng.millis(0, 1500);
                self.pause(down);
                self.subscriber.restart();
            }
            Fault::SubscriberTerm => {
                let status = self.subscriber.terminate(TERM_WAIT);
                assert!(
                    status.success(),
                    "subscriber SIGTERM exit {status:?}:\n{}",
                    self.subscriber.stderr()
                );
                self.subscriber.restart();
            }
            Fault::RedisKill9 => {
                self.redis.kill();
                let down = self.rng.millis(0, 2000);
                self.pause(down);
                self.redis.restart();
            }
            Fault::Rotate => self.rotate(),
            Fault::CopyTruncate => self.copy_truncate(),
        }
    }

    /// logrotate `create` style: stop the writer, shift `app.log.N` up, move
    /// `app.log` to `.1`, start the writer again (it continues the sequence
    /// from `.1`).
    fn rotate(&mut self) {
        let status = self.generator.terminate(TERM_WAIT);
        assert!(status.success(), "generator: {}", self.generator.stderr());
        let log = self.scene.log();
        let max = (1..)
            .take_while(|n| sibling(&log, *n).exists())
            .last()
            .unwrap_or(0);
        for n in (1..=max).rev() {
            std::fs::rename(sibling(&log, n), sibling(&log, n + 1)).unwrap();
        }
        std::fs::rename(&log, sibling(&log, 1)).unwrap();
        self.generator.restart();
        self.wait_log_not_empty();
    }

    /// logrotate `copytruncate`: the writer keeps its file open. Lines written
    /// between the copy and the truncation are lost by design of copytruncate
    /// (not of redtail), and so are lines not yet read at the truncation; the
    /// driver freezes the writer and lets the watcher catch up first, so any
    /// loss counted below is redtail's.
    fn copy_truncate(&mut self) {
        self.generator.signal("STOP");
        let log = self.scene.log();
        let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let caught_up = Instant::now() + Duration::from_secs(60);
        while size > 0 && !self.published_up_to(&log, size) {
            if Instant::now() > caught_up {
                self.generator.signal("CONT");
                panic!(
                    "watcher did not catch up with app.log ({size} bytes) before copy-truncate:\n{}",
                    self.watcher.stderr()
                );
            }
            self.pause(Duration::from_millis(50));
        }
        self.copies += 1;
        let copy = self
            .scene
            .path(&format!("copy-{}-app.log.bak", self.copies));
        std::fs::copy(&log, copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(0))
            .unwrap();
        self.generator.signal("CONT");
        self.wait_log_not_empty();
    }

    /// The newest stream entry is the last line of `log` (lines go in file order).
    fn published_up_to(&self, log: &Path, size: u64) -> bool {
        let mut conn = match self.redis_conn() {
            Some(c) => c,
            None => return false,
        };
        let reply: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XREVRANGE")
            .arg(STREAM)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(&mut conn);
        let Ok(reply) = reply else { return false };
        let Some(last) = reply.ids.first() else {
            return false;
        };
        let field = |f: &str| match last.map.get(f) {
            Some(redis::Value::BulkString(b)) => b.clone(),
            _ => Vec::new(),
        };
        let off: u64 = String::from_utf8_lossy(&field("off")).parse().unwrap_or(0);
        let path = String::from_utf8_lossy(&field("path")).into_owned();
        path == log.display().to_string() && off + field("line").len() as u64 + 1 == size
    }

    fn redis_conn(&self) -> Option<redis::Connection> {
        redis::Client::open(self.redis.url())
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()
    }

    /// Let the restarted or resumed generator write its first line, so that the
    /// next rotation never moves an empty file (its restart would then read the
    /// sequence from the wrong sibling).
    fn wait_log_not_empty(&self) {
        let log = self.scene.log();
        wait_until(Duration::from_secs(20), "generator writing again", || {
            std::fs::metadata(&log)
                .map(|m| m.len() > 0)
                .unwrap_or(false)
        });
    }

    /// Every line the generator wrote, from app.log, its siblings and the
    /// copy-truncate copies: the reference for the end check.
    fn written_seqs(&self) -> BTreeMap<u64, u32> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(self.scene.dir.path()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("app.log") || name.starts_with("copy-") {
                all.extend(std::fs::read(entry.path()).unwrap());
                all.push(b'\n');
            }
        }
        seq_counts(output_lines(&all))
    }
}

fn sibling(log: &Path, n: u32) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}.{n}", log.display()))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn chaos_soak() {
    let secs = env_u64("REDTAIL_CHAOS_SECS", 60);
    let rate = env_u64("REDTAIL_CHAOS_RATE", 1000);
    let started = Instant::now();
    let mut soak = Soak::start(rate);
    wait_until(Duration::from_secs(30), "lines flowing", || {
        !output_lines(&soak.scene.output_bytes()).is_empty()
    });
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let gap = soak.rng.millis(700, 2500);
        soak.pause(gap);
        let fault = Fault::ALL[soak.rng.range(0, Fault::ALL.len() as u64) as usize];
        soak.inject(fault);
    }
    // Stop writing; wait for everything to come through.
    assert!(soak.generator.terminate(TERM_WAIT).success());
    let written = soak.written_seqs();
    let total = written.keys().next_back().map_or(0, |s| s + 1);
    // The reference itself must be sound: the generator kept one unbroken sequence.
    assert_exactly_once(&written, total, "generator files (test driver sanity)");
    let drain = Instant::now() + Duration::from_secs(120);
    while seq_counts(output_lines(&soak.scene.output_bytes())).len() < total as usize
        && Instant::now() < drain
    {
        soak.pause(Duration::from_millis(200));
    }
    soak.sample_rss();

    let out = seq_counts(output_lines(&soak.scene.output_bytes()));
    let (lost, out_dups) = loss_and_dups(&out, total);
    let stream = stream_seq_counts(&soak.redis, STREAM);
    let (stream_missing, stream_dups) = loss_and_dups(&stream, total);
    let m = soak.watcher.metrics();

    let mut table = String::new();
    writeln!(
        table,
        "\nchaos soak: {secs} s of faults at {rate} lines/s, {:.0} s in all",
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    writeln!(table, "| fault | injected |\n|---|---|").unwrap();
    for fault in Fault::ALL {
        writeln!(
            table,
            "| {} | {} |",
            fault.name(),
            soak.faults.get(&fault).copied().unwrap_or(0)
        )
        .unwrap();
    }
    let rotations = m.get("redtail_watcher_rotations_total", &[]).unwrap_or(0.0);
    let truncations = m
        .get("redtail_watcher_truncations_total", &[])
        .unwrap_or(0.0);
    writeln!(
        table,
        "| **total** | {} |\n\n| measure | value |\n|---|---|",
        soak.faults.values().sum::<u32>()
    )
    .unwrap();
    for (k, v) in [
        ("lines written", total.to_string()),
        ("lost (not at the subscriber)", lost.len().to_string()),
        ("duplicated in Redis", stream_dups.len().to_string()),
        ("missing from the stream", stream_missing.len().to_string()),
        (
            "written twice by the subscriber (at-least-once)",
            out_dups.len().to_string(),
        ),
        (
            "max watcher RSS",
            format!("{:.1} MiB", soak.max_watcher_rss_kib as f64 / 1024.0),
        ),
        (
            "rotations / truncations seen by the last watcher",
            format!("{rotations} / {truncations}"),
        ),
    ] {
        writeln!(table, "| {k} | {v} |").unwrap();
    }
    eprintln!("{table}");
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-summary.md");
    let _ = std::fs::write(&report, &table);

    assert!(
        soak.faults.values().sum::<u32>() as u64 >= secs / 5,
        "too few faults"
    );
    assert!(total > rate * secs / 3, "the generator barely ran: {total}");
    assert!(
        lost.is_empty(),
        "{} lines lost (first {:?})",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        stream_dups.is_empty(),
        "{} lines duplicated in Redis (first {:?})",
        stream_dups.len(),
        &stream_dups[..stream_dups.len().min(10)]
    );
    assert!(
        soak.max_watcher_rss_kib < 128 * 1024,
        "watcher RSS {} KiB",
        soak.max_watcher_rss_kib
    );
}
