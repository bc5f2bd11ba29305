//! No root needed: the roles run as an unprivileged user, and the checkpoint and its
//! temp files are private (0600) whatever the umask.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::T;

/// A `redtail` child run as another user (uid/gid), killed on drop.
struct AsUser {
    child: Child,
    stderr: PathBuf,
}

impl AsUser {
    fn start(command: &str, uid: Option<u32>, env: &[(&str, String)], dir: &Path) -> AsUser {
        use std::os::unix::process::CommandExt;
        let stderr = dir.join(format!("{command}-unprivileged.stderr"));
        let mut cmd = Command::new(BIN);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let child = cmd
            .arg(command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REDTAIL_METRICS_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn as user");
        AsUser { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn admin(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(i) = log.find("Metrics on http://") {
                let rest = &log[i + "Metrics on http://".len()..];
                if let Some(end) = rest.find('/') {
                    return rest[..end].to_string();
                }
            }
            assert!(Instant::now() < deadline, "no metrics address:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The three roles run as an unprivileged user (65534, "nobody") when the
/// tests run as root; the checkpoint and its temp files are 0600 whatever the
/// umask.
#[test]
fn runs_without_root_and_keeps_checkpoint_private() {
    use std::os::unix::fs::MetadataExt;
    const N: u64 = 1_000;
    let redis = RedisServer::start();
    let scene = Scene::new();
    // As root, drop to 65534 ("nobody"); otherwise we already are unprivileged.
    let uid = if is_root() { Some(65534) } else { None };
    let state = scene.path("state");
    std::fs::create_dir_all(&state).unwrap();
    if let Some(uid) = uid {
        for p in [scene.dir.path(), state.as_path()] {
            std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
        }
    }

    let mut generator = AsUser::start(
        "generate",
        uid,
        &scene.generator_env(0, N),
        scene.dir.path(),
    );
    let deadline = Instant::now() + T;
    while generator.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{}", generator.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut wenv = scene.watcher_env(&redis, "stream");
    wenv.push(("REDTAIL_CHECKPOINT_EVERY_LINES", "1".to_string()));
    wenv.push(("REDTAIL_CHECKPOINT_INTERVAL_MS", "10".to_string()));
    wenv.push(("REDTAIL_BATCH_MAX_LINES", "1".to_string()));
    let mut watcher = AsUser::start("watch", uid, &wenv, scene.dir.path());
    let mut subscriber = AsUser::start(
        "subscribe",
        uid,
        &scene.subscriber_env(&redis, "stream"),
        scene.dir.path(),
    );
    // Watch the checkpoint directory for temp files while one-line batches
    // force a checkpoint write per line.
    let mut temp_modes = Vec::new();
    let deadline = Instant::now() + T;
    while redis.xlen("redtail:logs") < N {
        assert!(
            Instant::now() < deadline,
            "watcher stuck:\n{}",
            watcher.log()
        );
        for entry in std::fs::read_dir(&state).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                if let Ok(meta) = entry.metadata() {
                    use std::os::unix::fs::PermissionsExt;
                    temp_modes.push(meta.permissions().mode() & 0o777);
                }
            }
        }
    }
    wait_until(T, "all at the subscriber", || {
        output_lines(&scene.output_bytes()).len() == N as usize
    });
    let (status, _) = http_get(&watcher.admin(), "/readyz");
    assert_eq!(status, 200);
    assert!(watcher.terminate().success(), "{}", watcher.log());
    assert!(subscriber.terminate().success(), "{}", subscriber.log());

    let checkpoint = scene.checkpoint();
    assert_eq!(mode_of(&checkpoint), 0o600, "checkpoint file mode");
    let me = current_uid();
    let expected_owner = uid.unwrap_or(me);
    assert_eq!(
        std::fs::metadata(&checkpoint).unwrap().uid(),
        expected_owner
    );
    assert_eq!(
        std::fs::metadata(scene.output()).unwrap().uid(),
        expected_owner,
        "the output was written by the unprivileged user"
    );
    eprintln!("observed {} checkpoint temp files", temp_modes.len());
    assert!(
        temp_modes.iter().all(|&m| m == 0o600),
        "temp file modes: {temp_modes:?}"
    );
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        N,
        "stream from the unprivileged watcher",
    );
}

fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(65534)
}
