//! Scenario tests of the Tailer against real files in temporary directories: reading,
//! batching, the first line, `start_at`, patterns, waiting and waking. Also the harness
//! (event recorder, config, `drain`, `describe`) that `rotation_tests.rs` and
//! `paused_tests.rs` share.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{fnv1a64, FileId, KnownFile, StartAt, TailConfig, TailEvents, TailItem, Tailer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    Opened(PathBuf, FileId, u64),
    Rotated(PathBuf, FileId),
    Truncated(PathBuf, FileId, u64),
    Oversized(u64, u64),
    FoundRotated(PathBuf, PathBuf, FileId),
    Lost(PathBuf, FileId, u64, u64),
    ReadError(PathBuf, String),
    WatchFailed(PathBuf),
}

/// Records every event, for assertions.
#[derive(Default)]
pub(crate) struct Recorder(Mutex<Vec<Ev>>);

impl Recorder {
    pub fn take(&self) -> Vec<Ev> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn push(&self, ev: Ev) {
        self.0.lock().unwrap().push(ev);
    }
}

impl TailEvents for Recorder {
    fn file_opened(&self, path: &Path, id: &FileId, offset: u64) {
        self.push(Ev::Opened(path.into(), *id, offset));
    }
    fn rotated(&self, path: &Path, id: &FileId) {
        self.push(Ev::Rotated(path.into(), *id));
    }
    fn truncated(&self, path: &Path, id: &FileId, old_offset: u64) {
        self.push(Ev::Truncated(path.into(), *id, old_offset));
    }
    fn oversized_line(&self, _path: &Path, offset: u64, length_seen: u64) {
        self.push(Ev::Oversized(offset, length_seen));
    }
    fn found_rotated(&self, from: &Path, now_at: &Path, id: &FileId) {
        self.push(Ev::FoundRotated(from.into(), now_at.into(), *id));
    }
    fn file_lost(&self, path: &Path, id: &FileId, offset: u64, unread: u64, _: crate::LossReason) {
        self.push(Ev::Lost(path.into(), *id, offset, unread));
    }
    fn read_error(&self, path: &Path, error: &std::io::Error) {
        self.push(Ev::ReadError(path.into(), error.to_string()));
    }
    fn watch_failed(&self, dir: &Path, _error: &std::io::Error) {
        self.push(Ev::WatchFailed(dir.into()));
    }
}

pub(crate) fn test_config(pattern: &Path) -> TailConfig {
    TailConfig {
        max_line_bytes: 64,
        read_buffer_bytes: 16,
        poll_interval: Duration::ZERO,
        rotate_wait: Duration::ZERO,
        ..TailConfig::new(pattern)
    }
}

pub(crate) fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Everything the tailer has now, until it returns None.
pub(crate) fn drain(tailer: &mut Tailer) -> Vec<TailItem> {
    let mut out = Vec::new();
    while let Some(item) = tailer.next_item(1000, 1 << 20).unwrap() {
        out.push(item);
        assert!(out.len() < 100_000, "tailer never runs dry");
    }
    out
}

/// A compact view of items: "open <offset>", "<line>@<offset>", "end <end>", with the
/// file id replaced by a letter in order of appearance.
pub(crate) fn describe(items: &[TailItem], ids: &mut Vec<FileId>) -> Vec<String> {
    let mut name = |id: &FileId| {
        let i = ids.iter().position(|x| x == id).unwrap_or_else(|| {
            ids.push(*id);
            ids.len() - 1
        });
        char::from(b'A' + i as u8)
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            TailItem::Opened { id, offset, .. } => out.push(format!("{} open {offset}", name(id))),
            TailItem::Lines(batch) => {
                let n = name(&batch.id);
                for (i, line) in batch.lines.iter().enumerate() {
                    let text = String::from_utf8_lossy(batch.line(i));
                    let cut = if line.truncated { " cut" } else { "" };
                    out.push(format!("{n} {text}@{}-{}{cut}", line.offset, line.end));
                }
            }
            TailItem::Deleted { id } => out.push(format!("{} deleted", name(id))),
            TailItem::Finished { id, end, .. } => out.push(format!("{} end {end}", name(id))),
        }
    }
    out
}

pub(crate) fn tailer(config: TailConfig, known: Vec<KnownFile>) -> (Tailer, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let t = Tailer::new(config, known, rec.clone()).unwrap();
    (t, rec)
}

pub(crate) fn ino(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

pub(crate) fn birth(path: &Path) -> u64 {
    crate::discovery::birth_of(&fs::metadata(path).unwrap())
}

#[test]
fn reads_lines_and_waits_for_partial_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one\r\ntwo\n\nthr");
    let (mut t, _) = tailer(test_config(&log), vec![]);
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A open 0", "A one@0-5", "A two@5-9", "A @9-10"]
    );
    append(&log, b"ee\n\xff\n");
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A three@10-16", "A \u{fffd}@16-18"]
    );
    assert_eq!(t.files(), vec![(ids[0], Arc::from(log.as_path()), 18)]);
}

#[test]
fn batches_respect_max_lines_and_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"aaaa\nbbbb\ncccc\ndddd\n");
    let (mut t, _) = tailer(test_config(&log), vec![]);
    assert!(matches!(
        t.next_item(2, 100).unwrap(),
        Some(TailItem::Opened { .. })
    ));
    let Some(TailItem::Lines(b)) = t.next_item(3, 9).unwrap() else {
        panic!()
    };
    assert_eq!((b.len(), b.bytes(), b.end()), (2, 8, 10));
    let Some(TailItem::Lines(b)) = t.next_item(1, 100).unwrap() else {
        panic!()
    };
    assert_eq!((b.len(), b.line(0), b.end()), (1, &b"cccc"[..], 15));
    // A single line larger than max_bytes still goes out, alone.
    let Some(TailItem::Lines(b)) = t.next_item(10, 1).unwrap() else {
        panic!()
    };
    assert_eq!((b.len(), b.line(0)), (1, &b"dddd"[..]));
    assert_eq!(t.next_item(10, 1).unwrap(), None);
}

#[test]
fn long_lines_are_cut_reported_once_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut long = vec![b'x'; 1000];
    long.push(b'\n');
    append(&log, &long);
    append(&log, b"ok\n");
    let (mut t, rec) = tailer(test_config(&log), vec![]);
    let mut ids = Vec::new();
    let expected_cut = format!("A {}@0-1001 cut", "x".repeat(64));
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A open 0", expected_cut.as_str(), "A ok@1001-1004"]
    );
    let oversized: Vec<_> = rec
        .take()
        .into_iter()
        .filter(|e| matches!(e, Ev::Oversized(..)))
        .collect();
    assert_eq!(oversized, [Ev::Oversized(0, 1000)]);
}

#[test]
fn pending_identity_until_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"");
    let (mut t, _) = tailer(test_config(&log), vec![]);
    assert!(drain(&mut t).is_empty());
    assert!(t.files().is_empty());
    append(&log, b"abc");
    assert!(drain(&mut t).is_empty());
    append(&log, b"\n");
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A open 0", "A abc@0-4"]
    );
    assert_eq!(
        ids[0],
        FileId {
            ino: ino(&log),
            birth: birth(&log),
            fingerprint: fnv1a64(b"abc\n"),
            generation: 0
        }
    );
}

#[test]
fn start_at_end_never_starts_mid_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"old1\nold2\npart");
    let config = TailConfig {
        start_at: StartAt::End,
        ..test_config(&log)
    };
    let (mut t, _) = tailer(config.clone(), vec![]);
    let mut ids = Vec::new();
    assert_eq!(describe(&drain(&mut t), &mut ids), ["A open 10"]);
    append(&log, b"ial\nnew\n");
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A partial@10-18", "A new@18-22"]
    );

    // With a checkpoint, start_at no longer applies: an unknown file starts at 0.
    let other = dir.path().join("other.log");
    append(&other, b"x\ny\n");
    let known = vec![KnownFile {
        id: ids[0],
        path: log.clone(),
        offset: 22,
        size: None,
        check: None,
        deleted: false,
    }];
    let (mut t, _) = tailer(
        TailConfig {
            pattern: dir.path().join("*.log"),
            ..config
        },
        known,
    );
    let mut ids2 = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids2),
        ["A open 22", "B open 0", "B x@0-2", "B y@2-4"]
    );
}

#[test]
fn invalid_patterns_are_rejected() {
    let config = test_config(Path::new("/var/*/app.log"));
    let err = Tailer::new(config, vec![], Arc::new(Recorder::default()))
        .err()
        .unwrap();
    assert_eq!(err.reason(), "invalid_pattern");
}

#[test]
fn missing_directory_falls_back_to_polling() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later/app.log");
    let (mut t, rec) = tailer(test_config(&log), vec![]);
    assert!(rec
        .take()
        .contains(&Ev::WatchFailed(dir.path().join("later"))));
    assert!(drain(&mut t).is_empty());
    fs::create_dir(dir.path().join("later")).unwrap();
    append(&log, b"hi\n");
    let mut ids = Vec::new();
    assert_eq!(describe(&drain(&mut t), &mut ids), ["A open 0", "A hi@0-3"]);
}

#[test]
fn waker_interrupts_wait() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let config = TailConfig {
        poll_interval: Duration::from_secs(60),
        ..test_config(&log)
    };
    let (mut t, _) = tailer(config, vec![]);
    let waker = t.waker();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake();
    });
    let started = Instant::now();
    t.wait(Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(10));
    thread.join().unwrap();
}

#[test]
fn file_event_wakes_wait_before_the_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one\n");
    let config = TailConfig {
        poll_interval: Duration::from_secs(60),
        ..test_config(&log)
    };
    let (mut t, _) = tailer(config, vec![]);
    assert_eq!(drain(&mut t).len(), 2);
    let path = log.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        fs::rename(&path, path.with_extension("log.1")).unwrap();
        append(&path, b"two\n");
    });
    let started = Instant::now();
    let mut ids = Vec::new();
    let mut seen = Vec::new();
    while seen.len() < 2 && started.elapsed() < Duration::from_secs(10) {
        t.wait(Duration::from_secs(30));
        seen.extend(describe(&drain(&mut t), &mut ids));
    }
    assert!(started.elapsed() < Duration::from_secs(10), "{seen:?}");
    assert_eq!(seen, ["A open 0", "A two@0-4"]);
    thread.join().unwrap();
}

#[test]
fn tailer_can_move_to_its_thread_and_the_waker_is_shareable() {
    fn send<T: Send>() {}
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send::<Tailer>();
    send_sync_clone::<crate::TailWaker>();
    send_sync_clone::<TailItem>();
}
