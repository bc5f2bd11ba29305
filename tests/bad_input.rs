//! Bad input loses nothing and stops nothing: huge lines, invalid UTF-8,
//! empty and unterminated lines, corrupt or unwritable checkpoints, wrong
//! environment variables.

mod support;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(60);

fn append(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// A 5 MiB line is cut at REDTAIL_MAX_LINE_BYTES, flagged and counted; the
/// lines around it arrive intact; memory stays bounded.
#[test]
fn huge_line_is_cut_flagged_and_bounded() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let mut content = b"before\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 5 * 1024 * 1024));
    content.extend_from_slice(b"\nafter\n");
    append(&scene.log(), &content);
    let mut env = scene.watcher_env(&redis, "stream");
    env.push(("REDTAIL_MAX_LINE_BYTES", "65536".to_string()));
    let watcher = scene.start("watch", &env);
    wait_until(T, "three entries", || redis.xlen("redtail:logs") == 3);
    let entries = redis.stream_lines("redtail:logs");
    assert_eq!(entries[0].line, b"before");
    assert!(!entries[0].trunc);
    assert_eq!(entries[1].line.len(), 65536);
    assert!(entries[1].trunc, "the cut line is flagged");
    assert_eq!(entries[1].off, 7);
    assert_eq!(entries[2].line, b"after");
    assert_eq!(entries[2].off, 7 + 5 * 1024 * 1024 + 1);
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_oversized_lines_total"), 1.0);
    assert!(
        watcher.peak_rss_kib() < 64 * 1024,
        "peak RSS {} KiB for a 5 MiB line",
        watcher.peak_rss_kib()
    );
}

/// Invalid UTF-8, empty lines and CRLF pass through byte for byte (one \r
/// before \n stripped); a final line without \n waits for its \n.
#[test]
fn bytes_pass_through_and_partial_line_waits() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    append(
        &scene.log(),
        b"caf\xe9 latin-1\n\nwindows\r\n\xff\xfe\x00binary\npartial",
    );
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(T, "four entries", || redis.xlen("redtail:logs") == 4);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        redis.xlen("redtail:logs"),
        4,
        "the unterminated line must wait"
    );
    append(&scene.log(), b" line\n");
    wait_until(T, "the completed line", || redis.xlen("redtail:logs") == 5);
    let lines: Vec<Vec<u8>> = redis
        .stream_lines("redtail:logs")
        .into_iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(
        lines,
        vec![
            b"caf\xe9 latin-1".to_vec(),
            b"".to_vec(),
            b"windows".to_vec(),
            b"\xff\xfe\x00binary".to_vec(),
            b"partial line".to_vec()
        ]
    );
    drop(watcher);
}

/// A corrupt checkpoint is set aside with a warning; the watcher starts and,
/// thanks to the Redis-side offsets, re-sends nothing.
#[test]
fn corrupt_checkpoint_is_set_aside() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 1000);
    let mut watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(T, "published", || redis.xlen("redtail:logs") == 1000);
    assert!(watcher.terminate(Duration::from_secs(15)).success());
    std::fs::write(scene.checkpoint(), b"{\"version\":1,\"files\":[{\"fid\":").unwrap();
    prewrite_lines(&scene.log(), 1000, 500);
    watcher.restart();
    wait_until(T, "new lines published", || {
        redis.xlen("redtail:logs") >= 1500
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(watcher.is_running());
    assert!(
        watcher.stderr().contains("set aside"),
        "warning expected:\n{}",
        watcher.stderr()
    );
    let aside = std::fs::read_dir(scene.checkpoint().parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("checkpoint.json.corrupt-")
        });
    assert!(aside, "corrupt file kept aside for inspection");
    let entries = redis.stream_lines("redtail:logs");
    assert_exactly_once(
        &seq_counts(entries.iter().map(|e| e.line.as_slice())),
        1500,
        "stream",
    );
    assert_eq!(watcher.http_get("/readyz").0, 200);
}

/// A checkpoint directory that cannot be written: a clear start-up error
/// naming it, exit status 1 (no crash loop of panics, no silent run).
#[test]
fn unwritable_checkpoint_directory_is_a_clear_error() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 10);
    let ro = scene.path("ro");
    std::fs::create_dir_all(&ro).unwrap();
    // Root ignores permission bits: use a read-only mount where we can, else chmod.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&ro)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let mut env = scene.watcher_env(&redis, "stream");
    env.retain(|(k, _)| *k != "REDTAIL_CHECKPOINT_PATH");
    env.push((
        "REDTAIL_CHECKPOINT_PATH",
        ro.join("checkpoint.json").display().to_string(),
    ));
    let mut watcher = scene.start("watch", &env);
    let status = watcher.wait_exit(T);
    if mounted {
        let _ = Command::new("umount").arg(&ro).status();
    }
    assert_eq!(status.code(), Some(1), "stderr:\n{}", watcher.stderr());
    let err = watcher.stderr();
    assert!(
        err.contains(&ro.display().to_string()),
        "the message names the directory:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(redis.xlen("redtail:logs"), 0);
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Wrong values exit 2 with one line naming the variable, before anything is opened.
#[test]
fn invalid_environment_exits_2_naming_the_variable() {
    let (code, err) = run_with(&["watch"], &[("REDTAIL_MODE", "kafka")]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "REDTAIL_MODE: expected stream or pubsub, got \"kafka\""
    );
    let (code, err) = run_with(&["generate"], &[("REDTAIL_RATE", "fast")]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "REDTAIL_RATE: expected a non-negative integer, got \"fast\""
    );
    let (code, err) = run_with(
        &["subscribe"],
        &[("REDTAIL_REDIS_URL", "redis://u:s3cret@host:notaport")],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("REDTAIL_REDIS_URL:") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains("s3cret"), "password leaked: {err}");
    let (code, err) = run_with(&["watch"], &[("REDTAIL_METRICS_ADDR", "everywhere")]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("REDTAIL_METRICS_ADDR:"), "{err}");
    // Nothing was created for the rejected watcher.
    let (code, _) = run_with(&["bogus"], &[]);
    assert_eq!(code, Some(2));
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("redtail "));
    for (cmd, must) in [
        (
            "watch",
            &[
                "REDTAIL_LOG_PATH",
                "REDTAIL_CHECKPOINT_PATH",
                "REDTAIL_STREAM_MAXLEN",
                "REDTAIL_REDIS_URL",
                "REDTAIL_SHUTDOWN_TIMEOUT_MS",
            ][..],
        ),
        (
            "generate",
            &[
                "REDTAIL_RATE",
                "REDTAIL_ROTATE_KEEP",
                "REDTAIL_METRICS_ADDR",
            ][..],
        ),
        (
            "subscribe",
            &[
                "REDTAIL_GROUP",
                "REDTAIL_CLAIM_IDLE_MS",
                "REDTAIL_OUTPUT_FORMAT",
            ][..],
        ),
    ] {
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for var in must {
            assert!(text.contains(var), "{cmd} --help lacks {var}:\n{text}");
        }
        assert!(text.contains("default"), "{text}");
    }
}

/// A multi-line setting that cannot work stops the watcher before it opens anything.
#[test]
fn invalid_multiline_settings_exit_2_naming_the_variable() {
    for (vars, name) in [
        (&[("REDTAIL_MULTILINE", "cobol")][..], "REDTAIL_MULTILINE:"),
        (
            &[("REDTAIL_MULTILINE", "regex")][..],
            "REDTAIL_MULTILINE_START:",
        ),
        (
            &[
                ("REDTAIL_MULTILINE", "regex"),
                ("REDTAIL_MULTILINE_START", "[a-"),
            ][..],
            "REDTAIL_MULTILINE_START:",
        ),
        (
            &[("REDTAIL_MULTILINE_MAX_LINES", "0")][..],
            "REDTAIL_MULTILINE_MAX_LINES:",
        ),
    ] {
        let (code, err) = run_with(&["watch"], vars);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.starts_with(name) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
