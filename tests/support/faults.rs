//! Helpers for the fault, chaos and security tests: checkpoint and process
//! inspection, Redis admin commands, and a tmpfs mount that is always undone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::RedisServer;

/// Sum of the file offsets in a checkpoint file (0 when missing or unreadable:
/// a write may be in progress).
pub fn checkpoint_offset(path: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return 0;
    };
    v["files"]
        .as_array()
        .map(|files| files.iter().filter_map(|f| f["offset"].as_u64()).sum())
        .unwrap_or(0)
}

/// Current resident memory of a process, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// Peak resident memory of a process so far, in KiB (0 once it is gone).
pub fn hwm_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Seq counts of the `line` fields in a stream.
pub fn stream_seq_counts(redis: &RedisServer, key: &str) -> BTreeMap<u64, u32> {
    let entries = redis.stream_lines(key);
    super::seq_counts(entries.iter().map(|e| e.line.as_slice()))
}

/// Run one command on a fresh admin connection; the reply or the error text.
pub fn redis_admin(redis: &RedisServer, args: &[&str]) -> Result<redis::Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut redis.conn()).map_err(|e| e.to_string())
}

/// The `INFO <section>` field `name` as a number.
pub fn redis_info_u64(redis: &RedisServer, section: &str, name: &str) -> u64 {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut redis.conn())
        .expect("INFO");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {name}:\n{text}"))
}

/// Whether this process runs as root (tmpfs mounts possible, permission bits ignored).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        .unwrap_or(false)
}

/// A tmpfs mounted at `dir`, unmounted on drop (also when the test panics).
pub struct TmpfsMount {
    pub dir: PathBuf,
}

impl TmpfsMount {
    /// Mount a tmpfs of `size` (e.g. `"256k"`) at `dir`; None when not possible
    /// (not root, or no CAP_SYS_ADMIN in this container).
    pub fn mount(dir: &Path, size: &str) -> Option<TmpfsMount> {
        if !is_root() {
            return None;
        }
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| TmpfsMount {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there must not keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fill the file system holding `dir` with a filler file until writes fail
/// (ENOSPC). Returns the filler's path; remove it to make room again.
pub fn fill_filesystem(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = f.sync_all();
    path
}

/// Random numbers for the fault drivers without another dependency: a small
/// xorshift seeded from the clock (the seed is printed so a run can be replayed).
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_clock(var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{var}={seed}");
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in lo..hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}
