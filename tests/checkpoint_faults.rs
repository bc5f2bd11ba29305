//! The checkpoint directory fills up (or becomes unwritable) while the
//! watcher runs: publishing goes on, the Redis-side offsets keep it free of
//! duplicates, `/readyz` and the metrics say the checkpoint is failing, and
//! everything recovers once space returns.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(120);

/// How the test makes checkpoint writes fail, from the most to the least
/// realistic, depending on what this machine allows.
enum Obstruction {
    /// A 256 KiB tmpfs filled to the last block (root with CAP_SYS_ADMIN).
    FullTmpfs { _mount: TmpfsMount, filler: PathBuf },
    /// The directory made read-only (not root: permission bits apply).
    ReadOnlyDir { dir: PathBuf },
    /// Root without mount rights ignores permission bits: a directory squats
    /// the temp file's name, so every atomic write fails.
    SquattedTemp { tmp: PathBuf },
}

impl Obstruction {
    fn describe(&self) -> &'static str {
        match self {
            Obstruction::FullTmpfs { .. } => "full tmpfs (ENOSPC)",
            Obstruction::ReadOnlyDir { .. } => "read-only directory (EACCES)",
            Obstruction::SquattedTemp { .. } => "temp file name taken (EISDIR)",
        }
    }

    /// Start failing (the mount, if any, was made before the watcher started).
    fn apply(mount: Option<TmpfsMount>, dir: &Path, checkpoint: &Path) -> Obstruction {
        if let Some(mount) = mount {
            let filler = fill_filesystem(dir);
            return Obstruction::FullTmpfs {
                _mount: mount,
                filler,
            };
        }
        if !is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
            return Obstruction::ReadOnlyDir {
                dir: dir.to_path_buf(),
            };
        }
        let tmp = PathBuf::from(format!("{}.tmp", checkpoint.display()));
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("keep"), b"x").unwrap();
        Obstruction::SquattedTemp { tmp }
    }

    /// Make room again; the mount (if any) stays until the test ends.
    fn lift(self) -> Option<TmpfsMount> {
        match self {
            Obstruction::FullTmpfs { _mount, filler } => {
                std::fs::remove_file(filler).unwrap();
                Some(_mount)
            }
            Obstruction::ReadOnlyDir { dir } => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
                None
            }
            Obstruction::SquattedTemp { tmp } => {
                std::fs::remove_dir_all(tmp).unwrap();
                None
            }
        }
    }
}

#[test]
fn checkpoint_dir_full_then_space_returns() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let dir = scene.checkpoint().parent().unwrap().to_path_buf();
    let mount = TmpfsMount::mount(&dir, "256k");
    std::fs::create_dir_all(&dir).unwrap();
    prewrite_lines(&scene.log(), 0, 2_000);
    let mut env = scene.watcher_env(&redis, "stream");
    env.push(("REDTAIL_CHECKPOINT_INTERVAL_MS", "200".to_string()));
    let mut watcher = scene.start("watch", &env);
    let size = scene.log_bytes();
    wait_until(LONG, "first checkpoint", || {
        checkpoint_offset(&scene.checkpoint()) == size
    });
    assert_eq!(watcher.http_get("/readyz").0, 200);

    let obstruction = Obstruction::apply(mount, &dir, &scene.checkpoint());
    eprintln!("checkpoint obstruction: {}", obstruction.describe());
    prewrite_lines(&scene.log(), 2_000, 8_000);
    let size = scene.log_bytes();
    // Publishing goes on without the checkpoint.
    wait_until(LONG, "published while the checkpoint fails", || {
        redis_committed(&redis, &scene.source) == size
    });
    wait_until(Duration::from_secs(20), "not ready: checkpoint", || {
        let (status, body) = watcher.http_get("/readyz");
        status == 503 && body.contains("checkpoint")
    });
    let m = watcher.metrics();
    assert!(m.value("redtail_watcher_checkpoint_errors_total") > 0.0);
    wait_until(Duration::from_secs(10), "checkpoint age grows", || {
        watcher
            .metrics()
            .value("redtail_watcher_checkpoint_age_seconds")
            >= 2.0
    });
    assert!(
        checkpoint_offset(&scene.checkpoint()) < size,
        "the stale checkpoint was not overwritten"
    );
    assert!(watcher.is_running());
    assert_eq!(watcher.http_get("/healthz").0, 200, "alive meanwhile");

    let _mount = obstruction.lift();
    wait_until(Duration::from_secs(20), "checkpoint written again", || {
        checkpoint_offset(&scene.checkpoint()) == size
    });
    wait_until(Duration::from_secs(10), "ready again", || {
        watcher.http_get("/readyz").0 == 200
    });
    wait_until(
        Duration::from_secs(5),
        "checkpoint age back to fresh",
        || {
            watcher
                .metrics()
                .value("redtail_watcher_checkpoint_age_seconds")
                < 2.0
        },
    );
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        10_000,
        "stream while the checkpoint failed",
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(scene.checkpoint())
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600, "checkpoint file mode");
    drop(watcher);
}
