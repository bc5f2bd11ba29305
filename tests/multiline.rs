//! End-to-end: multi-line events (`REDTAIL_MULTILINE=java`) are published exactly once,
//! whole, across kill -9 of the watcher at several points of a drain.

mod support;

use std::io::Write;
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(120);

/// `n` generator-style lines, every other one followed by a Java stack trace of 1–6 lines;
/// returns how many lines each event (by seq) must hold.
fn write_events(path: &std::path::Path, n: u64) -> Vec<usize> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut lines = Vec::new();
    for seq in 0..n {
        writeln!(
            out,
            r#"{{"timestamp":"2026-11-25T12:00:00.000000Z","level":"ERROR","message":"request failed","seq":{seq},"service":"app","host":"test"}}"#
        )
        .unwrap();
        let trace = if seq % 2 == 0 {
            0
        } else {
            (seq % 6 + 1) as usize
        };
        if trace > 0 {
            writeln!(out, "java.lang.IllegalStateException: boom {seq}").unwrap();
            for k in 1..trace {
                if k == trace - 1 && trace > 3 {
                    writeln!(out, "\t... {k} more").unwrap();
                } else {
                    writeln!(out, "\tat com.example.Service.handle(Service.java:{k})").unwrap();
                }
            }
        }
        lines.push(1 + trace);
    }
    out.flush().unwrap();
    lines
}

#[test]
fn java_events_exactly_once_across_kill9() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    const N: u64 = 20_000;
    let expected = write_events(&scene.log(), N);
    let mut env = scene.watcher_env(&redis, "stream");
    env.push(("REDTAIL_MULTILINE", "java".into()));
    env.push(("REDTAIL_BATCH_MAX_LINES", "50".into()));
    let mut watcher = scene.start("watch", &env);
    for round in 1..=3u64 {
        let target = N * round / 4;
        wait_until(LONG, "part of the drain", || {
            redis.xlen("redtail:logs") >= target
        });
        watcher.kill9();
        watcher.restart();
    }
    wait_until(LONG, "every event", || redis.xlen("redtail:logs") >= N);
    std::thread::sleep(Duration::from_millis(1500)); // the last event closes at its timeout
    let entries = redis.stream_lines("redtail:logs");
    // An event's first line is the log line with its seq.
    let first = |line: &[u8]| -> Vec<u8> {
        line.split(|&b| b == b'\n')
            .next()
            .unwrap_or_default()
            .to_vec()
    };
    let firsts: Vec<Vec<u8>> = entries.iter().map(|e| first(&e.line)).collect();
    let counts = seq_counts(firsts.iter().map(Vec::as_slice));
    assert_exactly_once(&counts, N, "events");
    for (e, head) in entries.iter().zip(&firsts) {
        let seq = seq_of(head).expect("every event starts with a seq line") as usize;
        let lines = e.line.split(|&b| b == b'\n').count();
        assert_eq!(
            lines,
            expected[seq],
            "event of seq {seq}: {:?}",
            String::from_utf8_lossy(&e.line)
        );
    }
}
