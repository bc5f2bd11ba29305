//! Scenario tests of the Tailer against real files in temporary directories.

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

fn ino(path: &Path) -> u64 {
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
fn rename_rotation_drains_old_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"1\n2\n");
    let (mut t, rec) = tailer(test_config(&log), vec![]);
    let mut ids = Vec::new();
    assert_eq!(describe(&drain(&mut t), &mut ids).len(), 3);
    append(&log, b"3\n4");
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, b"5\n");
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A 3@4-6", "A 4@6-7", "B open 0", "B 5@0-2"]
    );
    assert!(rec.take().contains(&Ev::Rotated(log.clone(), ids[0])));
}

#[test]
fn rotated_pending_file_is_delivered_with_its_final_identity() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"no newline");
    let (mut t, _) = tailer(test_config(&log), vec![]);
    assert!(drain(&mut t).is_empty());
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A open 0", "A no newline@0-10"]
    );
    assert_eq!(ids[0].fingerprint, fnv1a64(b"no newline"));
}

#[test]
fn delete_and_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"a\n");
    let (mut t, _) = tailer(test_config(&log), vec![]);
    let mut ids = Vec::new();
    drain(&mut t);
    append(&log, b"b");
    fs::remove_file(&log).unwrap();
    append(&log, b"c\n");
    let items = describe(&drain(&mut t), &mut ids);
    assert_eq!(
        items,
        ["A deleted", "A b@2-3", "A end 3", "B open 0", "B c@0-2"]
    );
}

#[test]
fn copy_truncate_restarts_at_zero_with_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"x1\nx2\npart");
    let (mut t, rec) = tailer(test_config(&log), vec![]);
    let mut ids = Vec::new();
    drain(&mut t);
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let items = describe(&drain(&mut t), &mut ids);
    // The copy continues where the original ended: its unterminated rest comes from
    // there, nothing is read twice.
    assert_eq!(items, ["A end 6", "B open 6", "B part@6-10"]);
    assert!(rec.take().contains(&Ev::Truncated(log.clone(), ids[0], 6)));
    // Same first line again: same inode and fingerprint, so a new generation.
    append(&log, b"x1\ny2\n");
    let items = describe(&drain(&mut t), &mut ids);
    assert_eq!(items, ["C open 0", "C x1@0-3", "C y2@3-6"]);
    assert!(ids[2].same_content(&ids[0]));
    assert!(ids[2].generation > ids[0].generation);
}

#[test]
fn truncate_then_regrow_is_seen_through_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"aaa\nbbb\n");
    let (mut t, _) = tailer(test_config(&log), vec![]);
    let mut ids = Vec::new();
    drain(&mut t);
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, b"cccccccc\ndd\n");
    let items = describe(&drain(&mut t), &mut ids);
    assert_eq!(
        items,
        ["A end 8", "B open 0", "B cccccccc@0-9", "B dd@9-12"]
    );
    assert_eq!(ids[1].generation, 0);
}

#[test]
fn identical_first_lines_in_two_files_are_two_files() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), b"same\n1\n");
    append(&dir.path().join("b.log"), b"same\n2\n");
    let (mut t, _) = tailer(test_config(&dir.path().join("*.log")), vec![]);
    let mut ids = Vec::new();
    let items = describe(&drain(&mut t), &mut ids);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].fingerprint, ids[1].fingerprint);
    assert_ne!(ids[0], ids[1]);
    for expected in ["A same@0-5", "A 1@5-7", "B same@0-5", "B 2@5-7"] {
        assert!(items.iter().any(|i| i == expected), "{items:?}");
    }
}

#[test]
fn glob_picks_up_new_files_and_follows_renames_within_it() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("a.log"), b"a1\n");
    let (mut t, _) = tailer(test_config(&dir.path().join("*.log")), vec![]);
    let mut ids = Vec::new();
    assert_eq!(describe(&drain(&mut t), &mut ids), ["A open 0", "A a1@0-3"]);
    append(&dir.path().join("b.log"), b"b1\n");
    append(&dir.path().join("ignored.txt"), b"no\n");
    assert_eq!(describe(&drain(&mut t), &mut ids), ["B open 0", "B b1@0-3"]);
    // Renamed to another matching name: the same file, not re-read.
    fs::rename(dir.path().join("a.log"), dir.path().join("c.log")).unwrap();
    append(&dir.path().join("c.log"), b"a2\n");
    let items = drain(&mut t);
    assert_eq!(describe(&items, &mut ids), ["A a2@3-6"]);
    let TailItem::Lines(batch) = &items[0] else {
        panic!()
    };
    assert_eq!(&*batch.path, dir.path().join("c.log").as_path());
    // A match that vanishes is finished.
    fs::rename(dir.path().join("b.log"), dir.path().join("b.old")).unwrap();
    assert_eq!(describe(&drain(&mut t), &mut ids), ["B end 3"]);
}

#[test]
fn resumes_from_checkpoint_and_detects_truncation_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"first\nsecond\nthird\n");
    let id = FileId {
        ino: ino(&log),
        birth: birth(&log),
        fingerprint: fnv1a64(b"first\n"),
        generation: 5,
    };
    let known = vec![KnownFile {
        id,
        path: log.clone(),
        offset: 13,
        size: None,
        check: None,
        deleted: false,
    }];
    let (mut t, _) = tailer(test_config(&log), known.clone());
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A open 13", "A third@13-19"]
    );
    assert_eq!(t.files(), vec![(id, Arc::from(log.as_path()), 19)]);
    assert_eq!(ids[0], id, "the generation is kept");

    // Shorter than the checkpoint: truncated while down.
    fs::write(&log, b"first\n").unwrap();
    let (mut t, rec) = tailer(test_config(&log), known);
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A end 13", "B open 0", "B first@0-6"]
    );
    assert!(ids[1].same_content(&id));
    assert!(ids[1].generation > 5);
    assert!(rec.take().contains(&Ev::Truncated(log.clone(), id, 13)));
}

#[test]
fn rotated_while_down_found_among_siblings_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"a1\na2\n");
    let known = vec![KnownFile {
        id: FileId {
            ino: ino(&log),
            birth: birth(&log),
            fingerprint: fnv1a64(b"a1\n"),
            generation: 0,
        },
        path: log.clone(),
        offset: 3,
        size: None,
        check: None,
        deleted: false,
    }];
    // While down: two rotations.
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, b"b1\nb2");
    fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).unwrap();
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, b"c1\n");
    append(&dir.path().join("app.log.3"), b"older, never known\n");
    let (mut t, rec) = tailer(test_config(&log), known.clone());
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        [
            "A open 3",
            "A a2@3-6",
            "B open 0",
            "B b1@0-3",
            "B b2@3-5",
            // A sibling the tailer never knew, after a start with knowledge: read from 0.
            "C open 0",
            "C older, never known@0-19",
            "D open 0",
            "D c1@0-3"
        ]
    );
    assert!(rec.take().contains(&Ev::FoundRotated(
        log.clone(),
        dir.path().join("app.log.2"),
        known[0].id
    )));
}

#[test]
fn lost_file_is_reported_and_finished() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"new\n");
    let gone = FileId {
        ino: ino(&log) + 1_000_000,
        birth: 0,
        fingerprint: 1,
        generation: 0,
    };
    let known = vec![KnownFile {
        id: gone,
        path: log.clone(),
        offset: 7,
        size: Some(20),
        check: None,
        deleted: false,
    }];
    let (mut t, rec) = tailer(test_config(&log), known);
    let mut ids = Vec::new();
    assert_eq!(
        describe(&drain(&mut t), &mut ids),
        ["A end 7", "B open 0", "B new@0-4"]
    );
    assert!(rec.take().contains(&Ev::Lost(log.clone(), gone, 7, 13)));
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
