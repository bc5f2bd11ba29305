//! End-to-end: the file half of the promise, one test per way files were seen to lose
//! or duplicate lines (issue "Rotation-proof tailing"), against the real binary and a
//! real redis-server. Each checks every seq exactly once in the stream.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(120);

fn stream_seqs(redis: &RedisServer) -> std::collections::BTreeMap<u64, u32> {
    seq_counts(
        redis
            .stream_lines("redtail:logs")
            .iter()
            .map(|e| e.line.as_slice()),
    )
}

fn wait_for_seqs(redis: &RedisServer, n: u64, what: &str) {
    wait_until(LONG, what, || stream_seqs(redis).len() as u64 >= n);
    // Anything extra (a duplicate) would show up now.
    std::thread::sleep(Duration::from_millis(500));
}

fn watcher_env(
    scene: &Scene,
    redis: &RedisServer,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = scene.watcher_env(redis, "stream");
    env.push(("REDTAIL_ROTATE_WAIT_MS", "1000".into()));
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k, v.to_string()));
    }
    env
}

/// Rename rotation the way the generator does it: `.N` → `.N+1`, path → `.1`.
fn rotate(log: &Path, keep: u32) {
    let name = |n: u32| log.with_file_name(format!("app.log.{n}"));
    let _ = fs::remove_file(name(keep));
    for n in (1..keep).rev() {
        let _ = fs::rename(name(n), name(n + 1));
    }
    fs::rename(log, name(1)).expect("rotate");
}

/// The app rotates by size about once a second (5 kept) while Redis (AOF, fsync always)
/// is down for 4 s: every line still on disk when Redis is back reaches it, once.
#[test]
fn size_rotation_during_a_redis_outage() {
    let mut redis = RedisServer::start_durable();
    let scene = Scene::new();
    let watcher = scene.start("watch", &watcher_env(&scene, &redis, &[]));
    let mut gen_env = scene.generator_env(2500, 20_000);
    gen_env.push(("REDTAIL_ROTATE_BYTES", "300000".into()));
    gen_env.push(("REDTAIL_ROTATE_KEEP", "5".into()));
    let mut generator = scene.start("generate", &gen_env);
    std::thread::sleep(Duration::from_secs(2));
    redis.kill();
    std::thread::sleep(Duration::from_secs(4));
    redis.restart();
    assert!(
        generator.wait_exit(LONG).success(),
        "{}",
        generator.stderr()
    );
    wait_for_seqs(&redis, 20_000, "20 000 lines in the stream");
    assert_exactly_once(&stream_seqs(&redis), 20_000, "stream");
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_lost_bytes_total"), 0.0);
}

/// The same, harder: only one rotated file is kept, so during a 3 s outage about ten files
/// are rotated away *and deleted*. Only a watcher that keeps looking at the directory while
/// Redis is down — finding each new file and holding it open — can ship them afterwards.
/// (A live file's reads are made on the pipeline's thread while the reader lingers; a
/// publish that stalls must hand the files back to the reader, or nobody looks.)
#[test]
fn rotated_and_deleted_during_a_redis_outage() {
    let mut redis = RedisServer::start_durable();
    let scene = Scene::new();
    let watcher = scene.start("watch", &watcher_env(&scene, &redis, &[]));
    let mut gen_env = scene.generator_env(2500, 15_000);
    gen_env.push(("REDTAIL_ROTATE_BYTES", "100000".into()));
    gen_env.push(("REDTAIL_ROTATE_KEEP", "1".into()));
    let mut generator = scene.start("generate", &gen_env);
    std::thread::sleep(Duration::from_secs(2));
    redis.kill();
    std::thread::sleep(Duration::from_secs(3));
    redis.restart();
    assert!(
        generator.wait_exit(LONG).success(),
        "{}",
        generator.stderr()
    );
    wait_for_seqs(&redis, 15_000, "15 000 lines in the stream");
    assert_exactly_once(&stream_seqs(&redis), 15_000, "stream");
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_lost_bytes_total"), 0.0);
}

/// Two rename rotations between two looks (the watcher stopped with SIGSTOP): the middle
/// file is read too. Then logrotate's `create` mode: the app writes on to `app.log.1`
/// for a while before it reopens: the late lines are read during the rotate wait.
#[test]
fn rotations_between_looks_and_late_writes() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let log = scene.log();
    prewrite_lines(&log, 0, 100);
    let watcher = scene.start("watch", &watcher_env(&scene, &redis, &[]));
    wait_for_seqs(&redis, 100, "first file");
    watcher.signal("STOP");
    prewrite_lines(&log, 100, 100);
    rotate(&log, 5);
    prewrite_lines(&log, 200, 100);
    rotate(&log, 5);
    prewrite_lines(&log, 300, 100);
    watcher.signal("CONT");
    wait_for_seqs(&redis, 400, "400 lines after two rotations between looks");
    // create mode with late writes.
    rotate(&log, 5);
    prewrite_lines(&scene.path("app.log.1"), 400, 50);
    std::thread::sleep(Duration::from_millis(300));
    prewrite_lines(&scene.path("app.log.1"), 450, 50);
    prewrite_lines(&log, 500, 100);
    wait_for_seqs(&redis, 600, "600 lines with late writes");
    assert_exactly_once(&stream_seqs(&redis), 600, "stream");
    assert_eq!(
        watcher
            .metrics()
            .value("redtail_watcher_duplicates_skipped_total"),
        0.0
    );
}

/// A file deleted and a new one created on its inode with the same header line, while the
/// watcher runs: the new file's lines are new lines, not "duplicates".
#[test]
fn reused_inode_with_identical_header() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let log = scene.log();
    let header = b"=== service starting ===\n";
    fs::write(&log, header).unwrap();
    prewrite_lines(&log, 0, 50);
    let watcher = scene.start(
        "watch",
        &watcher_env(&scene, &redis, &[("REDTAIL_ROTATE_WAIT_MS", "200")]),
    );
    wait_for_seqs(&redis, 50, "first file");
    let mut reused = false;
    for round in 1..=3u64 {
        let old_ino = inode(&log);
        fs::remove_file(&log).unwrap();
        // Let the watcher finish and forget the deleted file (rotate wait), so its
        // inode is free for the kernel to hand out again.
        std::thread::sleep(Duration::from_millis(1500));
        fs::write(&log, header).unwrap();
        reused |= inode(&log) == old_ino;
        prewrite_lines(&log, round * 50, 50);
        wait_for_seqs(&redis, (round + 1) * 50, "lines of the re-created file");
    }
    eprintln!("inode reused at least once: {reused}");
    assert_exactly_once(&stream_seqs(&redis), 200, "stream");
    assert_eq!(
        watcher
            .metrics()
            .value("redtail_watcher_duplicates_skipped_total"),
        0.0
    );
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().ino()
}

/// Restart after the checkpointed file was rotated away and deleted while the watcher
/// was down: the surviving siblings are read, and nothing is reported lost (the deleted
/// file had been read to its end).
#[test]
fn restart_after_the_checkpointed_file_was_rotated_and_deleted() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let log = scene.log();
    prewrite_lines(&log, 0, 100);
    let mut watcher = scene.start("watch", &watcher_env(&scene, &redis, &[]));
    wait_for_seqs(&redis, 100, "first file");
    assert!(watcher.terminate(LONG).success());
    rotate(&log, 5);
    prewrite_lines(&log, 100, 100);
    rotate(&log, 5);
    prewrite_lines(&log, 200, 100);
    fs::remove_file(scene.path("app.log.2")).unwrap(); // the checkpointed one
    watcher.restart();
    wait_for_seqs(&redis, 300, "both surviving files");
    assert_exactly_once(&stream_seqs(&redis), 300, "stream");
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_lost_bytes_total"), 0.0);
    assert!(!watcher.stderr().contains("lost"), "{}", watcher.stderr());
}

/// Checkpoint corrupt, one rotation while down, `REDTAIL_START_AT=end`: Redis's offsets
/// say what was published; the rotated file's unread lines and the new file are read.
#[test]
fn corrupt_checkpoint_and_a_rotation_while_down_with_start_at_end() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let log = scene.log();
    prewrite_lines(&log, 0, 100);
    let env = watcher_env(&scene, &redis, &[("REDTAIL_START_AT", "end")]);
    // First start ever with START_AT=end skips what is there: begin from a known state.
    let mut watcher = scene.start("watch", &watcher_env(&scene, &redis, &[]));
    wait_for_seqs(&redis, 100, "first file");
    assert!(watcher.terminate(LONG).success());
    prewrite_lines(&log, 100, 100); // unread when the watcher comes back
    rotate(&log, 5);
    prewrite_lines(&log, 200, 100);
    fs::write(scene.checkpoint(), b"{\"version\":2,\"fi").unwrap();
    let watcher = scene.start("watch", &env);
    wait_for_seqs(&redis, 300, "all 300 lines");
    assert_exactly_once(&stream_seqs(&redis), 300, "stream");
    drop(watcher);
}

/// kill -9 within a second of a copy-truncate that kept the first line: the new
/// generation is known from Redis at the restart, nothing is appended twice.
#[test]
fn kill9_right_after_copytruncate() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let log = scene.log();
    let header = b"=== service starting ===\n";
    fs::write(&log, header).unwrap();
    prewrite_lines(&log, 0, 100);
    let mut watcher = scene.start(
        "watch",
        &watcher_env(
            &scene,
            &redis,
            &[
                ("REDTAIL_CHECKPOINT_INTERVAL_MS", "60000"),
                ("REDTAIL_CHECKPOINT_EVERY_LINES", "1000000"),
            ],
        ),
    );
    wait_for_seqs(&redis, 100, "first content");
    fs::copy(&log, scene.path("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    fs::write(&log, header).unwrap();
    prewrite_lines(&log, 100, 30);
    wait_for_seqs(&redis, 130, "the truncated file's new lines");
    watcher.kill9();
    watcher.restart();
    prewrite_lines(&log, 130, 10);
    wait_for_seqs(&redis, 140, "lines after the restart");
    assert_exactly_once(&stream_seqs(&redis), 140, "stream");
}

/// The log path is a symlink retargeted while the watcher is down (kubelet does this on a
/// container restart): the old target's last lines are read, not reported lost.
#[test]
fn symlink_retargeted_while_down() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let data = scene.path("pods");
    fs::create_dir(&data).unwrap();
    let first = data.join("0.log");
    prewrite_lines(&first, 0, 100);
    std::os::unix::fs::symlink(&first, scene.log()).unwrap();
    let mut watcher = scene.start("watch", &watcher_env(&scene, &redis, &[]));
    wait_for_seqs(&redis, 100, "first target");
    assert!(watcher.terminate(LONG).success());
    prewrite_lines(&first, 100, 50);
    let second = data.join("1.log");
    prewrite_lines(&second, 150, 50);
    fs::remove_file(scene.log()).unwrap();
    std::os::unix::fs::symlink(&second, scene.log()).unwrap();
    watcher.restart();
    wait_for_seqs(&redis, 200, "both targets");
    assert_exactly_once(&stream_seqs(&redis), 200, "stream");
    assert_eq!(
        watcher.metrics().value("redtail_watcher_lost_bytes_total"),
        0.0
    );
}

/// A glob over 1,200 files with the usual 1,024 open-file limit: everything is shipped,
/// the admin server answers throughout, and memory stays small.
#[test]
fn glob_over_1200_files_with_1024_descriptors() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let logs = scene.path("logs");
    fs::create_dir(&logs).unwrap();
    for i in 0..1200u64 {
        prewrite_lines(&logs.join(format!("app-{i:04}.log")), i * 2, 2);
    }
    let mut env = watcher_env(&scene, &redis, &[]);
    env.retain(|(k, _)| *k != "REDTAIL_LOG_PATH");
    env.push(("REDTAIL_LOG_PATH", logs.join("*.log").display().to_string()));
    let watcher = with_open_file_limit(1024, || scene.start("watch", &env));
    wait_until(LONG, "admin server up", || {
        watcher.http_get("/healthz").0 == 200
    });
    wait_for_seqs(&redis, 2400, "2 400 lines of 1 200 files");
    assert_exactly_once(&stream_seqs(&redis), 2400, "stream");
    assert_eq!(watcher.http_get("/healthz").0, 200);
    let rss_mib = watcher.peak_rss_kib() / 1024;
    eprintln!("peak RSS at 1 200 files: {rss_mib} MiB");
    assert!(rss_mib <= 64, "peak RSS {rss_mib} MiB at 1 200 files");
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_lost_bytes_total"), 0.0);
}

/// Spawn under a lower soft `RLIMIT_NOFILE` (children inherit it), then restore it.
fn with_open_file_limit<T>(limit: u64, spawn: impl FnOnce() -> T) -> T {
    let pid = std::process::id().to_string();
    let set = |soft: &str| {
        let ok = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={soft}:")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "prlimit (util-linux) is needed for this test");
    };
    let before = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .unwrap_or_else(|| "1024".into());
    set(&limit.to_string());
    let out = spawn();
    set(&before);
    out
}
