//! Randomized model test of the whole engine against real files: random writes, rename /
//! copy-truncate / create-with-late-writes / delete rotations, several rotations between
//! two looks (stalls), inode reuse with identical first lines, symlink retargets, and
//! kill -9 at random points with a restart from the (possibly stale) checkpoint or from
//! Redis alone. A small pipeline model stands in for the watcher: Redis's idempotent
//! script (skip lines at or below the committed offset, commit atomically per batch), a
//! checkpoint written now and then, and the stream.
//!
//! Property: every line written to a file that still exists at the end was published
//! exactly once; a line of a deleted file at most once; lines of one identity in order.
//!
//! Blind spots excluded on purpose (README "File identity" states them): a restart from
//! Redis alone cannot tell content truncated in place and regrown past the old offset
//! with the same first line (no check is kept in Redis), and without birth times a reused
//! inode with the same first line is only told apart by the checkpoint's check, so those
//! cases restart from the latest checkpoint. Seeds with bit 2 set make every look with
//! file events paused and no poll scans (the reader's linger): then only the paused look
//! itself (open files read, the directory's stamp) finds what changed.
//! Cases: PROPTEST_CASES (default 48). The disk and pipeline models are in `world.rs`.

mod world;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use crate::{TailConfig, Tailer};
use world::{look, Disk, Losses, Pipeline, HEADER};

const KEEP: u32 = 3;
const ROTATE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
enum Action {
    /// Append n lines to app.log (creating it).
    Write(u8),
    /// Append n lines to app.log.1 (logrotate `create`: the app writes on for a while).
    LateWrite(u8),
    /// app.log.N → N+1 (dropping beyond KEEP), app.log → app.log.1.
    Rename,
    /// Copy app.log to app.log.1 (after shifting), then truncate app.log.
    CopyTruncate,
    /// Delete app.log and create it again with the same first line (inode reuse).
    DeleteRecreate,
    /// The tailer and pipeline look now (otherwise the actions pile up: a stall).
    Look,
    /// Time passes (the rotate wait runs out).
    Wait,
    /// The watcher writes its checkpoint.
    Checkpoint,
    /// kill -9 and restart; `true`: from Redis alone (checkpoint lost).
    Kill(bool),
    /// The symlink `link.log` is pointed at the other target.
    Retarget,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => (1u8..6).prop_map(Action::Write),
        2 => (1u8..3).prop_map(Action::LateWrite),
        3 => Just(Action::Rename),
        1 => Just(Action::CopyTruncate),
        1 => Just(Action::DeleteRecreate),
        6 => Just(Action::Look),
        2 => Just(Action::Wait),
        2 => Just(Action::Checkpoint),
        2 => any::<bool>().prop_map(Action::Kill),
        1 => Just(Action::Retarget),
    ]
}

/// `paused`: no poll scans; every look is made with file events paused (as the reader
/// does while it lingers), so rotations must be found through the directory's stamp.
fn config(pattern: &Path, birth_time: bool, multiline: bool, paused: bool) -> TailConfig {
    let multiline = crate::MultilineConfig {
        mode: if multiline {
            crate::MultilineMode::Indented
        } else {
            crate::MultilineMode::Off
        },
        max_bytes: 256,
        max_lines: 4,
        ..crate::MultilineConfig::default()
    };
    TailConfig {
        multiline,
        max_line_bytes: 256,
        read_buffer_bytes: 64,
        poll_interval: if paused {
            Duration::from_secs(3600)
        } else {
            Duration::ZERO
        },
        rotate_wait: ROTATE_WAIT,
        birth_time,
        ..TailConfig::new(pattern)
    }
}

fn run(actions: Vec<Action>, birth_time: bool, symlink: bool, seed_partial: u8) {
    // Odd seeds group indented lines into multi-line events (at most 4 lines each).
    let multiline = seed_partial % 2 == 1;
    // Seeds with bit 2 set look with file events paused and no poll scans.
    let paused = seed_partial & 4 != 0;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // With a symlink, the pattern is `link.log` pointing into the directory's `data/`,
    // where the files (and their rotations) live; retargets flip it between two files.
    let (pattern, data) = if symlink {
        let data = dir.join("data");
        fs::create_dir(&data).unwrap();
        (dir.join("link.log"), data)
    } else {
        (dir.join("app.log"), dir.clone())
    };
    let mut disk = Disk {
        dir: data.clone(),
        next_line: 0,
        written: Vec::new(),
        contents: HashMap::new(),
        next_content: 0,
        freed: HashSet::new(),
        reused: 0,
        indent: multiline,
    };
    // Checkpoint restarts only where Redis alone has a blind spot (see the module doc).
    let redis_only_ok = birth_time && !symlink;
    let unique_truncation_header = redis_only_ok;
    let log = disk.log();
    disk.append(&log, 1 + seed_partial % 3, false);
    if symlink {
        std::os::unix::fs::symlink(&log, &pattern).unwrap();
    }
    let losses = Arc::new(Losses::default());
    // The watcher writes its (empty) checkpoint before it reads anything.
    let mut pipeline = Pipeline {
        durable: Some(BTreeMap::new()),
        ..Pipeline::default()
    };
    let mut tailer = Tailer::new(
        config(&pattern, birth_time, multiline, paused),
        vec![],
        losses.clone(),
    )
    .unwrap();
    // The first scan of a fresh start: what it finds in rotated siblings predates us.
    look(&mut tailer, &mut pipeline, 1000, paused);
    let mut generation = 0;
    let mut unlooked_redis_restart = false;
    let mut copied_unlooked = false;
    let mut unlooked_since_kill = false;
    for action in actions {
        // Blind spot without birth times: a file deleted while the watcher is down, whose
        // inode a new file gets with the same bytes up to where reading stopped (README,
        // "File identity"). Deleting actions wait for the first look after a restart.
        let deletes = matches!(
            action,
            Action::Rename | Action::CopyTruncate | Action::DeleteRecreate
        );
        if deletes && !birth_time && unlooked_since_kill {
            continue;
        }
        match action {
            Action::Write(n) => {
                let log = disk.log();
                disk.append(&log, n, false);
            }
            Action::LateWrite(n) => {
                let one = disk.rotated(1);
                if one.exists() {
                    disk.append(&one, n, false);
                }
            }
            Action::Rename | Action::CopyTruncate if symlink => {}
            Action::Rename => {
                disk.shift();
                let (log, one) = (disk.log(), disk.rotated(1));
                disk.rename(&log, &one);
            }
            Action::CopyTruncate => {
                let log = disk.log();
                // Blind spot: Redis keeps no check, so after a restart from Redis alone (or
                // from a checkpoint older than Redis) a copy whose original is gone before the
                // first look cannot be told from a new file with the same first line (README,
                // "File identity").
                if log.exists() && !unlooked_redis_restart {
                    copied_unlooked = true;
                    disk.shift();
                    let one = disk.rotated(1);
                    fs::copy(&log, &one).unwrap();
                    let c = disk.contents[&log];
                    disk.next_content += 1;
                    let copy = disk.next_content;
                    disk.contents.insert(one.clone(), copy);
                    // The copy holds the same lines: they count for the copy's content.
                    for w in disk.written.iter_mut().filter(|w| w.1 == c) {
                        w.1 = copy;
                    }
                    let header: Vec<u8> = if unique_truncation_header {
                        format!("== truncated {} ==\n", disk.next_content).into_bytes()
                    } else {
                        HEADER.to_vec()
                    };
                    let f = OpenOptions::new().write(true).open(&log).unwrap();
                    f.set_len(0).unwrap();
                    drop(f);
                    fs::write(&log, &header).unwrap();
                    disk.next_content += 1;
                    disk.contents.insert(log, disk.next_content);
                }
            }
            Action::DeleteRecreate => {
                let log = disk.log();
                disk.remove(&log);
                disk.create(&log, HEADER);
            }
            Action::Retarget if symlink => {
                // Kubelet's way: a new file in a new directory, the link swapped atomically.
                // A target the link left before any look is in no directory the tailer
                // lists (a documented limit), so the tailer has seen the current one.
                look(&mut tailer, &mut pipeline, 1000, paused);
                generation += 1;
                disk.dir = data.join(format!("gen{generation}"));
                fs::create_dir_all(&disk.dir).unwrap();
                let log = disk.log();
                disk.create(&log, HEADER);
                let tmp_link = dir.join("link.tmp");
                std::os::unix::fs::symlink(&log, &tmp_link).unwrap();
                fs::rename(&tmp_link, &pattern).unwrap();
            }
            Action::Look => {
                look(&mut tailer, &mut pipeline, 50, paused);
                unlooked_redis_restart = false;
                copied_unlooked = false;
                unlooked_since_kill = false;
            }
            Action::Wait => {
                tailer.advance_clock(ROTATE_WAIT + Duration::from_millis(1));
                if paused {
                    // Real time too, so the directory's stamp settles: the next looks
                    // must see changes in its fields, not just distrust a fresh stamp.
                    std::thread::sleep(Duration::from_millis(12));
                }
            }
            Action::Checkpoint => pipeline.durable = Some(pipeline.checkpoint.clone()),
            Action::Kill(redis_only) => {
                let redis_only = redis_only && redis_only_ok && !copied_unlooked;
                if !redis_only_ok || copied_unlooked {
                    // The blind spot: restart from the latest checkpoint only.
                    pipeline.durable = Some(pipeline.checkpoint.clone());
                }
                drop(tailer);
                // Known without a check (Redis alone, a checkpoint older than Redis, or
                // one written from such knowledge): the blind spot below applies.
                unlooked_redis_restart = pipeline
                    .known(redis_only)
                    .0
                    .iter()
                    .any(|k| k.check.is_none() && k.offset > 0);
                unlooked_since_kill = true;
                let (known, fresh) = pipeline.known(redis_only);
                pipeline.checkpoint = known
                    .iter()
                    .map(|k| (k.id.to_string(), k.clone()))
                    .collect();
                let config = TailConfig {
                    fresh_start: fresh,
                    ..config(&pattern, birth_time, multiline, paused)
                };
                tailer = Tailer::new(config, known, losses.clone()).unwrap();
            }
            _ => {}
        }
    }
    // The end: let every rotate wait run out and read everything.
    for _ in 0..4 {
        tailer.request_scan();
        look(&mut tailer, &mut pipeline, 100_000, paused);
        tailer.advance_clock(ROTATE_WAIT + Duration::from_millis(1));
    }
    tailer.request_scan();
    look(&mut tailer, &mut pipeline, 100_000, paused);

    if std::env::var("MODEL_DEBUG").is_ok() {
        for (fid, off, line) in &pipeline.stream {
            eprintln!("{fid} @{off}: {}", String::from_utf8_lossy(line));
        }
    }
    let mut count: HashMap<&[u8], u32> = HashMap::new();
    for (_, _, entry) in &pipeline.stream {
        // A multi-line event holds its lines joined by '\n'.
        for line in entry.split(|&b| b == b'\n') {
            *count.entry(line).or_default() += 1;
        }
    }
    let alive: HashSet<u64> = disk.contents.values().copied().collect();
    let mut missing_deleted = 0;
    for (line, content) in &disk.written {
        let n = count.get(line.as_slice()).copied().unwrap_or(0);
        let text = String::from_utf8_lossy(line);
        if alive.contains(content) {
            assert_eq!(n, 1, "{text}: published {n} times (file still exists)");
        } else {
            assert!(n <= 1, "{text}: published {n} times (file deleted)");
            missing_deleted += u32::from(n == 0);
        }
    }
    // Within one identity, lines come in file order.
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (fid, offset, _) in &pipeline.stream {
        if let Some(prev) = last.insert(fid.as_str(), *offset) {
            assert!(*offset > prev, "{fid}: offset {offset} after {prev}");
        }
    }
    let _ = (missing_deleted, disk.reused);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_line_of_every_surviving_file_exactly_once(
        actions in prop::collection::vec(action(), 1..60),
        birth_time in any::<bool>(),
        symlink in prop::bool::weighted(0.2),
        seed in any::<u8>(),
    ) {
        run(actions, birth_time, symlink, seed);
    }
}

/// The nastiest histories, spelled out (they must not depend on the generator finding them).
#[test]
fn several_rotations_between_looks_with_identical_headers() {
    use Action::*;
    for birth_time in [true, false] {
        run(
            vec![
                Write(3),
                Look,
                Write(2),
                Rename,
                Write(4),
                Rename,
                Write(1),
                Rename,
                Write(2),
                LateWrite(2),
                DeleteRecreate,
                Write(3),
                Look,
                Wait,
                Look,
                Kill(false),
                Write(1),
                Rename,
                Rename,
                Rename,
                Write(2),
                Look,
            ],
            birth_time,
            false,
            0,
        );
    }
}

#[test]
fn copy_truncate_and_kill_at_every_step() {
    use Action::*;
    let base = vec![
        Write(3),
        Look,
        Write(2),
        Checkpoint,
        CopyTruncate,
        Write(2),
        Look,
        Write(2),
        CopyTruncate,
        Write(1),
        Look,
        Checkpoint,
        Write(2),
    ];
    for at in 0..=base.len() {
        for redis_only in [false, true] {
            let mut actions = base.clone();
            actions.insert(at, Kill(redis_only));
            run(actions, true, false, 1);
        }
    }
}

/// Histories the randomized test once failed on (its minimal failing inputs, in the
/// short notation below), replayed every run; `MODEL_CASE` replays one more, for
/// debugging. Notation: b0/b1 birth times off/on, s1 symlink, m<seed> the seed (odd: multi-line events;
/// bit 2: paused looks), then W<n> LW<n> R CT DR L
/// WT CP K0 K1 RT.
const REGRESSIONS: &[&str] = &[
    "b0 R",
    "b0 CT K0 W1",
    "b0 R L R WT R L R W1 L",
    "s1 RT W1 RT",
    "b0 CT L CT LW1",
    "b1 CT K0",
    "b0 R R K0 W1 R R L W1",
    "b0 CT W2",
    "b1 K0 R R R W1 CT",
    "b0 R R R W1 L K0 CT W1",
    "b0 DR K0 L DR K0",
    "b0 DR R W1 L CT",
    "b0 CT W1 R L W1 R R K0 W3 L",
    "b0 CT DR K0 L",
    "b1 CT R L K0",
    "b1 CT K0 R W3 R",
    "b1 K0 CT DR",
    "b1 CT DR K0",
    "b0 W1 W1 CT R R CT R L W1 WT L CT",
    "b1 W1 W1 CT W1 DR L K0",
    "b0 CT DR W1 L K0 CT",
    "b0 m43 W2 L W1",
    "b0 m47 K0 L W1",
    "b1 m10 CP W1 L K0 CT DR",
    "b0 m9 CT W1 DR",
    "b1 m19 K0 DR L R K0 LW1",
    "b1 m2 K0 CP K0 CT DR",
    // Paused looks: a delete-recreate in a symlink's target directory (no watch there)
    // between two paused spells.
    "b0 s1 m68 WT L DR W1 RT",
    "b0 s1 m52 WT L DR WT W1 RT",
];

#[test]
fn regressions_and_model_case() {
    let extra = std::env::var("MODEL_CASE").ok();
    for case in REGRESSIONS.iter().copied().chain(extra.as_deref()) {
        if std::env::var("MODEL_DEBUG").is_ok() {
            eprintln!("== replaying {case}");
        }
        replay(case);
    }
}

fn replay(case: &str) {
    let (mut birth, mut symlink, mut seed, mut actions) = (true, false, 0, Vec::new());
    for word in case.split_whitespace() {
        let n = |p: &str| word[p.len()..].parse::<u8>().unwrap_or(1);
        actions.push(match word {
            "b0" => {
                birth = false;
                continue;
            }
            "b1" => {
                birth = true;
                continue;
            }
            "s1" => {
                symlink = true;
                continue;
            }
            w if w.starts_with('m') => {
                seed = n("m");
                continue;
            }
            "R" => Action::Rename,
            "CT" => Action::CopyTruncate,
            "DR" => Action::DeleteRecreate,
            "L" => Action::Look,
            "WT" => Action::Wait,
            "CP" => Action::Checkpoint,
            "K0" => Action::Kill(false),
            "K1" => Action::Kill(true),
            "RT" => Action::Retarget,
            w if w.starts_with("LW") => Action::LateWrite(n("LW")),
            w if w.starts_with('W') => Action::Write(n("W")),
            w => panic!("unknown step {w}"),
        });
    }
    run(actions, birth, symlink, seed);
}
