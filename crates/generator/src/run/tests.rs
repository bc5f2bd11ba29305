use std::path::{Path, PathBuf};

use prometheus::Registry;
use serde_json::Value;

use super::*;
use crate::file::rotated_path;

fn config(path: &Path) -> Config {
    Config {
        log_path: path.to_path_buf(),
        rate: 0,
        count: 10,
        seed: Some(1),
        rotate_bytes: 0,
        rotate_keep: 5,
        host: "node-1".to_string(),
        service: "app".to_string(),
    }
}

fn metrics() -> Metrics {
    Metrics::register(&Registry::new()).expect("register")
}

fn liveness() -> Liveness {
    Liveness::new(Duration::from_secs(60))
}

async fn run_to_end(config: Config) -> GeneratorSummary {
    let (_trigger, shutdown) = Shutdown::new();
    run(config, metrics(), liveness(), shutdown)
        .await
        .expect("run")
}

/// Every line in `path` and its rotated files, oldest first.
fn all_lines(path: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = (1..=1000)
        .map(|n| rotated_path(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends mid-line",
            file.display()
        );
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

fn parsed(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn seqs(lines: &[String]) -> Vec<u64> {
    parsed(lines)
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect()
}

#[test]
fn schedule_does_not_drift() {
    let origin = Instant::now();
    let s = Schedule::new(100, origin);
    assert_eq!(s.due_count(origin), 1);
    assert_eq!(s.due_count(origin + Duration::from_millis(9)), 1);
    assert_eq!(s.due_count(origin + Duration::from_millis(10)), 2);
    assert_eq!(s.due_count(origin + Duration::from_secs(1)), 101);
    assert_eq!(s.due_at(100), origin + Duration::from_secs(1));
    // 3 lines/s: due times stay exact fractions of the origin, no rounding accumulates.
    let s = Schedule::new(3, origin);
    assert_eq!(s.due_count(origin + Duration::from_secs(1000)), 3001);
    assert_eq!(
        s.behind(3000, origin + Duration::from_secs(1000)),
        Some(Duration::ZERO)
    );
    assert_eq!(s.behind(3001, origin + Duration::from_secs(1000)), None);
    let unpaced = Schedule::new(0, origin);
    assert_eq!(unpaced.due_count(origin), u64::MAX);
    assert_eq!(unpaced.behind(5, origin + Duration::from_secs(9)), None);
    let mut s = Schedule::new(10, origin);
    s.restart(50, origin + Duration::from_secs(60));
    assert_eq!(s.due_count(origin + Duration::from_secs(60)), 51);
}

#[tokio::test]
async fn lines_have_the_exact_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/app.log");
    let summary = run_to_end(Config {
        count: 200,
        ..config(&path)
    })
    .await;
    assert_eq!(
        summary,
        GeneratorSummary {
            lines: 200,
            next_seq: 200
        }
    );
    let lines = all_lines(&path);
    assert_eq!(lines.len(), 200);
    for (i, (raw, value)) in lines.iter().zip(parsed(&lines)).enumerate() {
        let keys = ["timestamp", "level", "message", "seq", "service", "host"];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| raw.find(&format!("\"{k}\":")).expect("key present"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "key order: {raw}"
        );
        assert_eq!(value.as_object().unwrap().len(), keys.len());
        let ts = value["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-11-23T23:10:01.123456Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.');
        chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
        assert!(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
            .contains(&value["level"].as_str().unwrap()));
        assert!(!value["message"].as_str().unwrap().is_empty());
        assert_eq!(value["seq"].as_u64(), Some(i as u64));
        assert_eq!(value["service"], "app");
        assert_eq!(value["host"], "node-1");
    }
}

#[tokio::test]
async fn same_seed_gives_the_same_levels_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let pick = |lines: &[String]| -> Vec<(String, String)> {
        parsed(lines)
            .iter()
            .map(|v| (v["level"].to_string(), v["message"].to_string()))
            .collect()
    };
    let mut outputs = Vec::new();
    for (name, seed) in [("a.log", 9), ("b.log", 9), ("c.log", 10)] {
        let path = dir.path().join(name);
        run_to_end(Config {
            count: 100,
            seed: Some(seed),
            ..config(&path)
        })
        .await;
        outputs.push(pick(&all_lines(&path)));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_ne!(outputs[0], outputs[2]);
}

#[tokio::test]
async fn seq_continues_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let first = run_to_end(Config {
        count: 5,
        ..config(&path)
    })
    .await;
    let second = run_to_end(Config {
        count: 5,
        ..config(&path)
    })
    .await;
    assert_eq!(first.next_seq, 5);
    assert_eq!(
        second,
        GeneratorSummary {
            lines: 5,
            next_seq: 10
        }
    );
    assert_eq!(seqs(&all_lines(&path)), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn seq_continues_from_the_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    run_to_end(Config {
        count: 5,
        ..config(&path)
    })
    .await;
    // An external rotation (or ours just before a crash): app.log.1 has the lines, app.log is empty.
    std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
    std::fs::write(&path, b"").unwrap();
    run_to_end(Config {
        count: 5,
        ..config(&path)
    })
    .await;
    assert_eq!(seqs(&all_lines(&path)), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn rotation_loses_and_splits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).unwrap();
    let (_trigger, shutdown) = Shutdown::new();
    let config = Config {
        count: 500,
        rotate_bytes: 4096,
        rotate_keep: 1000,
        ..config(&path)
    };
    run(config, metrics.clone(), liveness(), shutdown)
        .await
        .unwrap();
    let lines = all_lines(&path);
    assert_eq!(
        seqs(&lines),
        (0..500).collect::<Vec<_>>(),
        "no line lost or split"
    );
    let rotated = (1..=1000)
        .take_while(|n| rotated_path(&path, *n).exists())
        .count();
    assert!(rotated > 5, "rotated {rotated} times");
    assert_eq!(metrics.rotations.get(), rotated as u64);
    assert_eq!(metrics.lines_written.get(), 500);
    assert_eq!(metrics.seq.get(), 499);
    let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    assert_eq!(metrics.bytes_written.get(), bytes);
    for n in 0..=rotated {
        let file = if n == 0 {
            path.clone()
        } else {
            rotated_path(&path, n as u32)
        };
        assert!(std::fs::metadata(&file).unwrap().len() <= 4096);
    }
}

#[tokio::test]
async fn rotation_keeps_only_keep_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    run_to_end(Config {
        count: 500,
        rotate_bytes: 2048,
        rotate_keep: 3,
        ..config(&path)
    })
    .await;
    assert!(rotated_path(&path, 3).exists());
    assert!(!rotated_path(&path, 4).exists());
    let lines = all_lines(&path);
    // The newest lines survive, contiguous and ending at 499.
    let kept = seqs(&lines);
    assert_eq!(kept.last(), Some(&499));
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1));
    // A restart resumes after the newest line.
    let summary = run_to_end(Config {
        count: 1,
        rotate_bytes: 2048,
        rotate_keep: 3,
        ..config(&path)
    })
    .await;
    assert_eq!(summary.next_seq, 501);
}

#[tokio::test(start_paused = true)]
async fn rate_is_held_in_virtual_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(run(
        Config {
            rate: 100,
            count: 0,
            ..config(&path)
        },
        metrics(),
        liveness(),
        shutdown,
    ));
    // Step through one virtual second the way timers would fire.
    for _ in 0..100 {
        tokio::time::advance(Duration::from_millis(10)).await;
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let after_one_second = all_lines(&path).len();
    assert!(
        (99..=101).contains(&after_one_second),
        "{after_one_second} lines after 1 s at 100/s"
    );
    // One big jump (a late timer) catches up without drift.
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let after_three = all_lines(&path).len();
    assert!(
        (299..=301).contains(&after_three),
        "{after_three} lines after 3 s"
    );
    trigger.trigger();
    let summary = task.await.unwrap().unwrap();
    assert_eq!(summary.lines as usize, all_lines(&path).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_promptly_with_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(run(
        Config {
            rate: 0,
            count: 0,
            ..config(&path)
        },
        metrics(),
        liveness(),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    trigger.trigger();
    let summary = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("returned promptly")
        .unwrap()
        .unwrap();
    let lines = all_lines(&path);
    assert!(summary.lines > 100, "wrote {} lines", summary.lines);
    assert_eq!(lines.len() as u64, summary.lines);
    assert_eq!(seqs(&lines), (0..summary.lines).collect::<Vec<_>>());
}

#[tokio::test]
async fn shutdown_interrupts_a_slow_rate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(run(
        Config {
            rate: 1,
            count: 0,
            ..config(&path)
        },
        metrics(),
        liveness(),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    trigger.trigger();
    let summary = tokio::time::timeout(Duration::from_millis(500), task)
        .await
        .expect("not waiting for the next due line")
        .unwrap()
        .unwrap();
    assert_eq!(summary.lines, 1);
}

#[tokio::test]
async fn invalid_config_and_unusable_path_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (_trigger, shutdown) = Shutdown::new();
    let err = run(
        Config {
            rotate_bytes: 10,
            rotate_keep: 0,
            ..config(&dir.path().join("app.log"))
        },
        metrics(),
        liveness(),
        shutdown.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "invalid_config");
    // The log path is an existing directory.
    let err = run(config(dir.path()), metrics(), liveness(), shutdown)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "open");
}
