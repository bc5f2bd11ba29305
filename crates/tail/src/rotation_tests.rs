//! Scenario tests of how an identity is followed through rotation and ended: renames,
//! delete and recreate, copy-truncate, truncate and regrow, identical first lines, a
//! restart from a checkpoint, rotations while down, lost files (`tailer/scan.rs`,
//! `identity.rs`, `endings.rs`). The harness is `tailer_tests.rs`'s.

use std::fs::{self, OpenOptions};
use std::sync::Arc;

use crate::tailer_tests::{append, birth, describe, drain, ino, tailer, test_config, Ev};
use crate::{fnv1a64, FileId, KnownFile, TailItem};

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
