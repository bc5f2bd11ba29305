//! The tailer with file events paused ([`Tailer::pause_events`]): what the reader's linger
//! relies on. No poll scans here (an hour apart), so whatever is found, is found by the
//! paused look itself: the open files read at every look, the directory's stamp for new,
//! renamed and deleted entries, and the look owed after a resume.

use std::fs;
use std::time::{Duration, Instant};

use crate::tailer_tests::{append, describe, drain, tailer, test_config};
use crate::TailConfig;

/// Longer than the stamp's grain: a stamp read after this is trusted.
const SETTLE: Duration = Duration::from_millis(25);

fn config(pattern: &std::path::Path) -> TailConfig {
    TailConfig {
        poll_interval: Duration::from_secs(3600),
        ..test_config(pattern)
    }
}

fn lines(items: &[crate::TailItem], ids: &mut Vec<crate::FileId>) -> Vec<String> {
    describe(items, ids)
        .into_iter()
        .filter(|l| l.contains('@'))
        .map(|l| l.split('@').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn paused_looks_read_appends_and_follow_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one\ntwo\n");
    let (mut t, _rec) = tailer(config(&log), Vec::new());
    let mut ids = Vec::new();
    assert_eq!(lines(&drain(&mut t), &mut ids), ["A one", "A two"]);

    t.pause_events();
    append(&log, b"three\n");
    assert_eq!(lines(&drain(&mut t), &mut ids), ["A three"]);

    // Settled stamps, then a rename rotation with a late write and a new file: no event
    // is delivered while paused, the stamp must give it away.
    std::thread::sleep(SETTLE);
    drain(&mut t);
    std::thread::sleep(SETTLE);
    assert!(drain(&mut t).is_empty());
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), b"late\n");
    append(&log, b"new\n");
    let got = lines(&drain(&mut t), &mut ids);
    assert_eq!(got, ["A late", "B new"]);
}

#[test]
fn a_write_between_the_last_look_and_the_resume_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one\n");
    let (mut t, _rec) = tailer(config(&log), Vec::new());
    let mut ids = Vec::new();
    assert_eq!(lines(&drain(&mut t), &mut ids), ["A one"]);
    t.pause_events();
    assert!(drain(&mut t).is_empty());
    // Written while paused, after the last look: no event will ever say so.
    append(&log, b"two\n");
    let started = Instant::now();
    t.wait(Duration::from_secs(3600));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a paused wait re-arms and returns"
    );
    assert_eq!(lines(&drain(&mut t), &mut ids), ["A two"]);
    // Armed again: an append wakes the wait.
    append(&log, b"three\n");
    let started = Instant::now();
    t.wait(Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(lines(&drain(&mut t), &mut ids), ["A three"]);
}

#[test]
fn many_files_keep_their_events() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        append(&dir.path().join(format!("f{i}.log")), b"x\n");
    }
    let (mut t, _rec) = tailer(config(&dir.path().join("*.log")), Vec::new());
    assert_eq!(lines(&drain(&mut t), &mut Vec::new()).len(), 20);
    t.pause_events();
    // Not paused (too many files): the wait sleeps until an event or the timeout.
    let started = Instant::now();
    t.wait(Duration::from_millis(300));
    assert!(started.elapsed() >= Duration::from_millis(250));
    append(&dir.path().join("f3.log"), b"y\n");
    let started = Instant::now();
    t.wait(Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(drain(&mut t).len(), 1);
}
