//! Property tests: for any line sequence, any timing and every mode,
//! - every input line is in exactly one event, in order, and the events' byte
//!   ranges are contiguous (an event's data is exactly its lines joined by `\n`);
//! - no event exceeds the line or byte cap, and the open event never holds more
//!   than `max_bytes`;
//! - replaying the input from any event's first line (what a restarted watcher
//!   does) yields exactly the remaining events.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

/// Lines that exercise every preset's rules, plus arbitrary bytes.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let shaped = prop::sample::select(vec![
        "2026-11-30 10:00:05,789 ERROR [main] failed",
        "plain log line",
        "\tat com.example.A.run(A.java:10)",
        "    at x.Y.z(Y.java:1)",
        "at bare.Frame(F.java:2)",
        "Caused by: java.io.IOException: gone",
        "\tSuppressed: java.lang.RuntimeException: close",
        "\t... 12 more",
        "... 3 common frames omitted",
        "java.lang.IllegalStateException: boom",
        "Traceback (most recent call last):",
        "  File \"x.py\", line 1, in <module>",
        "ValueError: bad",
        "KeyboardInterrupt",
        "",
        " ",
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
        "  + Exception Group Traceback (most recent call last):",
        "panic: boom",
        "fatal error: all goroutines are asleep - deadlock!",
        "goroutine 1 [running]:",
        "runtime: goroutine stack exceeds 1000000000-byte limit",
        "main.main()",
        "\t/app/main.go:12 +0x1d",
        "created by main.main in goroutine 1",
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x0]",
        "START of a regex event",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let arbitrary = prop::collection::vec(
        any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
        0..40,
    );
    prop_oneof![4 => shaped, 1 => arbitrary]
}

/// One step of the input: a line after `gap_ms`, or a timeout check after `gap_ms`.
#[derive(Debug, Clone)]
enum Step {
    Line { data: Vec<u8>, gap_ms: u64 },
    Tick { gap_ms: u64 },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (line(), 0u64..400).prop_map(|(data, gap_ms)| Step::Line { data, gap_ms }),
        1 => (0u64..1500).prop_map(|gap_ms| Step::Tick { gap_ms }),
    ];
    prop::collection::vec(step, 0..120)
}

fn mode() -> impl Strategy<Value = MultilineMode> {
    prop_oneof![
        Just(MultilineMode::Off),
        Just(MultilineMode::Java),
        Just(MultilineMode::Python),
        Just(MultilineMode::Go),
        Just(MultilineMode::Indented),
        Just(MultilineMode::Regex(
            regex::bytes::Regex::new("^START").expect("a valid pattern")
        )),
    ]
}

/// A line as the file holds it: its bytes and its range.
struct FileLine {
    offset: u64,
    end: u64,
    data: Vec<u8>,
}

/// Runs `steps` as the engine would (lines pushed, ticks flushing due events)
/// from the first line that starts at `from`: ticks and lines before it are skipped,
/// as a watcher restarted there would not see them. Finishes at the end.
fn run(config: &MultilineConfig, steps: &[Step], from: u64, t0: Instant) -> Vec<Event> {
    let mut agg = Aggregator::new(config.clone());
    let mut out = Vec::new();
    let mut now = t0;
    let mut offset = 0u64;
    let mut started = false;
    for step in steps {
        match step {
            Step::Line { data, gap_ms } => {
                now += Duration::from_millis(*gap_ms);
                let end = offset + data.len() as u64 + 1;
                started |= offset == from;
                if started {
                    let before = out.len();
                    let line = InLine {
                        offset,
                        end,
                        data,
                        truncated: false,
                    };
                    agg.push(line, now, &mut out);
                    assert!(out.len() - before <= 1, "at most one event per line");
                    assert!(agg.open_bytes() <= config.max_bytes);
                    if let Some(open) = agg.open_offset() {
                        assert!(open <= offset, "the open event holds this line");
                    }
                }
                offset = end;
            }
            Step::Tick { gap_ms } => {
                now += Duration::from_millis(*gap_ms);
                if started {
                    let deadline = agg.deadline();
                    let flushed = agg.flush_due(now);
                    assert_eq!(flushed.is_some(), deadline.is_some_and(|d| now >= d));
                    out.extend(flushed);
                }
            }
        }
    }
    out.extend(agg.finish());
    out
}

fn file_lines(steps: &[Step]) -> Vec<FileLine> {
    let mut offset = 0u64;
    let mut lines = Vec::new();
    for step in steps {
        if let Step::Line { data, .. } = step {
            let end = offset + data.len() as u64 + 1;
            lines.push(FileLine {
                offset,
                end,
                data: data.clone(),
            });
            offset = end;
        }
    }
    lines
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_line_once_in_order_within_caps_and_replayable(
        mode in mode(),
        steps in steps(),
        max_lines in 1usize..8,
        max_bytes in 80usize..240,
    ) {
        let config = MultilineConfig {
            mode,
            timeout: Duration::from_millis(1000),
            max_lines,
            max_bytes,
        };
        let t0 = Instant::now();
        let events = run(&config, &steps, 0, t0);
        let lines = file_lines(&steps);

        // Contiguous ranges covering every line, data = the lines joined by `\n`.
        let mut next = 0usize;
        for e in &events {
            prop_assert!(e.lines >= 1);
            prop_assert!(e.lines as usize <= max_lines);
            prop_assert!(e.data.len() <= max_bytes);
            prop_assert!(e.data.capacity() <= max_bytes, "memory, not just length");
            let held = &lines[next..next + e.lines as usize];
            prop_assert_eq!(e.offset, held[0].offset);
            prop_assert_eq!(e.end, held[held.len() - 1].end);
            let joined: Vec<u8> = held
                .iter()
                .map(|l| l.data.as_slice())
                .collect::<Vec<_>>()
                .join(&b'\n');
            // No generated line exceeds 72 bytes, so none is cut here.
            prop_assert_eq!(&e.data, &joined);
            next += e.lines as usize;
        }
        prop_assert_eq!(next, lines.len(), "every line is in an event");
        if config.mode.is_off() {
            prop_assert!(events.iter().all(|e| e.lines == 1));
        }

        // A restart at any event's first line rebuilds the same remaining events.
        for (i, e) in events.iter().enumerate() {
            let replayed = run(&config, &steps, e.offset, t0);
            prop_assert_eq!(&replayed[..], &events[i..], "replay from offset {}", e.offset);
        }
    }

    #[test]
    fn never_panics_and_never_holds_more_than_the_cap(
        mode in mode(),
        steps in steps(),
        max_bytes in 1usize..64,
    ) {
        let config = MultilineConfig {
            mode,
            timeout: Duration::from_millis(50),
            max_lines: 3,
            max_bytes,
        };
        let events = run(&config, &steps, 0, Instant::now());
        let lines = file_lines(&steps);
        for e in &events {
            prop_assert!(e.data.len() <= max_bytes);
            prop_assert!(e.lines >= 1 && e.lines <= 3);
            prop_assert!(e.offset < e.end);
        }
        for pair in events.windows(2) {
            prop_assert_eq!(pair[0].end, pair[1].offset);
        }
        // Lines longer than the cap are cut, never dropped: all are accounted for.
        let total: usize = events.iter().map(|e| e.lines as usize).sum();
        prop_assert_eq!(total, lines.len());
        prop_assert_eq!(events.last().map(|e| e.end), lines.last().map(|l| l.end));
    }
}

/// CPU cost per line of each mode on a mix of log lines and Java / Python / Go traces.
/// Prints figures, asserts nothing about speed (the machine is shared):
/// `cargo test --release -p redtail-tail multiline_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run on purpose, in release"]
fn multiline_cost_per_line() {
    let sample = concat!(
        "2026-11-30 10:00:05,789 INFO [main] c.e.Service request handled in 12 ms user=alice\n",
        "2026-11-30 10:00:05,790 ERROR [main] c.e.Service request failed\n",
        "java.lang.IllegalStateException: boom\n",
        "\tat com.example.Service.handle(Service.java:42)\n",
        "\tat com.example.Server.run(Server.java:7)\n",
        "Caused by: java.io.IOException: gone\n",
        "\t... 12 more\n",
        "Traceback (most recent call last):\n",
        "  File \"/app/x.py\", line 10, in <module>\n",
        "ValueError: bad\n",
        "panic: boom\n",
        "\n",
        "goroutine 1 [running]:\n",
        "main.main()\n",
        "\t/app/main.go:12 +0x1d\n",
    );
    let lines: Vec<&[u8]> = sample.lines().map(str::as_bytes).collect();
    let total = 2_000_000usize;
    let modes = [
        MultilineMode::Off,
        MultilineMode::Java,
        MultilineMode::Python,
        MultilineMode::Go,
        MultilineMode::Indented,
        MultilineMode::Regex(regex::bytes::Regex::new(r"^\d{4}-\d{2}-\d{2} ").expect("valid")),
    ];
    let now = Instant::now();
    for mode in modes {
        let name = mode.name();
        let mut agg = Aggregator::new(MultilineConfig {
            mode,
            ..MultilineConfig::default()
        });
        let mut out = Vec::with_capacity(1024);
        let (mut offset, mut events, mut bytes) = (0u64, 0usize, 0usize);
        let started = Instant::now();
        for i in 0..total {
            let data = lines[i % lines.len()];
            let end = offset + data.len() as u64 + 1;
            let line = InLine {
                offset,
                end,
                data,
                truncated: false,
            };
            agg.push(line, now, &mut out);
            offset = end;
            bytes += data.len() + 1;
            if out.len() >= 1024 {
                events += out.len();
                out.clear(); // the engine hands them to a batch
            }
        }
        events += out.len() + usize::from(agg.finish().is_some());
        let elapsed = started.elapsed();
        println!(
            "{name:>8}: {:6.1} ns/line, {:7.2} M lines/s, {:6.0} MB/s, {:.2} lines/event",
            elapsed.as_nanos() as f64 / total as f64,
            total as f64 / elapsed.as_secs_f64() / 1e6,
            bytes as f64 / elapsed.as_secs_f64() / 1e6,
            total as f64 / events as f64,
        );
    }
}
