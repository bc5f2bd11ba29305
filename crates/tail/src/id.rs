//! File identity: inode + birth time + fingerprint of the first line (+ generation).
//!
//! Not `st_dev`: a volume re-mounted in a new pod or node can get another device
//! number, which would make every file look new and be shipped again. The inode
//! alone is reused by the kernel after a delete; the birth time (`statx` btime, kept
//! on disk by ext4, xfs, btrfs and recent tmpfs, so it survives a re-mount) tells a
//! new file on a reused inode from the old one even when both start with the same
//! header line. Where the filesystem has no birth time, the first line's fingerprint
//! and the engine's memory of retired identities (a new generation for a collision)
//! do that job, with the limits the README states.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::TailError;

/// Most bytes a fingerprint covers: the first line, or this many bytes of a longer one.
pub const FINGERPRINT_MAX_BYTES: usize = 1024;

/// Identity of one file content, persisted in checkpoints and in Redis.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct FileId {
    pub ino: u64,
    /// Birth time in nanoseconds since the epoch; 0 when the filesystem has none (and
    /// for identities written before birth times were used).
    pub birth: u64,
    pub fingerprint: u64,
    /// 0 normally; set when a truncated file's new content has the same inode and
    /// fingerprint as before, so the old content's committed offsets do not hide it.
    pub generation: u64,
}

impl FileId {
    /// Whether a file with this inode, birth time and fingerprint is the file this id
    /// names. The generation is not compared: it is not visible in the file. A birth
    /// time of 0 on either side is "unknown" and does not contradict.
    pub fn matches(&self, ino: u64, birth: u64, fingerprint: u64) -> bool {
        self.ino == ino
            && self.fingerprint == fingerprint
            && (self.birth == 0 || birth == 0 || self.birth == birth)
    }

    /// The same identity but for the generation.
    pub fn same_content(&self, other: &FileId) -> bool {
        other.matches(self.ino, self.birth, self.fingerprint) && self.birth == other.birth
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.ino)?;
        if self.birth != 0 {
            write!(f, ".{:x}", self.birth)?;
        }
        write!(f, "-{:016x}", self.fingerprint)?;
        if self.generation != 0 {
            write!(f, "-{}", self.generation)?;
        }
        Ok(())
    }
}

impl FromStr for FileId {
    type Err = TailError;

    fn from_str(s: &str) -> Result<FileId, TailError> {
        let invalid = || TailError::InvalidFileId(s.to_string());
        let mut parts = s.split('-');
        let ino_birth = parts.next().ok_or_else(invalid)?;
        let (ino, birth) = match ino_birth.split_once('.') {
            Some((ino, birth)) if !birth.is_empty() => (ino, Some(birth)),
            Some(_) => return Err(invalid()),
            None => (ino_birth, None),
        };
        let fingerprint = parts.next().ok_or_else(invalid)?;
        let generation = parts.next();
        if parts.next().is_some() || ino.is_empty() || fingerprint.len() != 16 {
            return Err(invalid());
        }
        let generation = match generation {
            Some(g) if !g.starts_with('+') => match g.parse::<u64>() {
                Ok(g) if g != 0 => g,
                _ => return Err(invalid()),
            },
            Some(_) => return Err(invalid()),
            None => 0,
        };
        let hex = |p: &str| {
            if p.starts_with('+') {
                None
            } else {
                u64::from_str_radix(p, 16).ok()
            }
        };
        let birth = match birth {
            Some(b) => match hex(b) {
                Some(b) if b != 0 => b,
                _ => return Err(invalid()),
            },
            None => 0,
        };
        Ok(FileId {
            ino: hex(ino).ok_or_else(invalid)?,
            birth,
            fingerprint: hex(fingerprint).ok_or_else(invalid)?,
            generation,
        })
    }
}

/// FNV-1a, 64 bit. Hand-written because fingerprints are persisted: the value
/// must never change with a dependency upgrade.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Fingerprint of a file whose first bytes are `head` (up to [`FINGERPRINT_MAX_BYTES`]),
/// with the number of bytes it covers. `None` while the first line is incomplete and
/// shorter than the maximum. `complete` says the file will not grow any more (rotated
/// away): then a short unterminated content is fingerprinted whole.
pub fn fingerprint(head: &[u8], complete: bool) -> Option<(u64, usize)> {
    let head = &head[..head.len().min(FINGERPRINT_MAX_BYTES)];
    let covered = match memchr::memchr(b'\n', head) {
        Some(i) => i + 1,
        None if head.len() == FINGERPRINT_MAX_BYTES => head.len(),
        None if complete && !head.is_empty() => head.len(),
        None => return None,
    };
    Some((fnv1a64(&head[..covered]), covered))
}

/// The first bytes of `file`, up to [`FINGERPRINT_MAX_BYTES`], read without moving any cursor.
pub fn read_head(file: &File) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; FINGERPRINT_MAX_BYTES];
    let mut len = 0;
    while len < head.len() {
        match file.read_at(&mut head[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    head.truncate(len);
    Ok(head)
}

/// Bytes [`check_hash`] covers.
pub const CHECK_BYTES: u64 = 64;

/// FNV-1a of the up to [`CHECK_BYTES`] bytes of `file` just before `end`: a cheap
/// check that content already read is still there (0 for `end == 0`).
pub fn check_hash(file: &File, end: u64) -> io::Result<u64> {
    let start = end.saturating_sub(CHECK_BYTES);
    let mut buf = [0u8; CHECK_BYTES as usize];
    let buf = &mut buf[..(end - start) as usize];
    file.read_exact_at(buf, start)?;
    Ok(check_of(buf))
}

/// The check of bytes already in memory (the last up to [`CHECK_BYTES`] of `tail`).
pub fn check_of(tail: &[u8]) -> u64 {
    if tail.is_empty() {
        return 0;
    }
    let from = tail.len().saturating_sub(CHECK_BYTES as usize);
    fnv1a64(&tail[from..])
}

static LAST_GENERATION: AtomicU64 = AtomicU64::new(0);

/// A generation for new content replacing content of generation `previous`:
/// the current unix time in milliseconds (unique across restarts), but always
/// above `previous` and above any generation handed out by this process.
pub fn new_generation(previous: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut chosen = 0;
    // fetch_update's closure always returns Some, so the update cannot fail.
    let _ = LAST_GENERATION.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
        chosen = now
            .max(last.saturating_add(1))
            .max(previous.saturating_add(1));
        Some(chosen)
    });
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = FileId {
            ino: 0x1a2b,
            birth: 0,
            fingerprint: 0xdead_beef,
            generation: 0,
        };
        assert_eq!(id.to_string(), "1a2b-00000000deadbeef");
        assert_eq!("1a2b-00000000deadbeef".parse::<FileId>().unwrap(), id);
        let id = FileId {
            generation: 1_764_000_000_123,
            ..id
        };
        assert_eq!(id.to_string(), "1a2b-00000000deadbeef-1764000000123");
        assert_eq!(id.to_string().parse::<FileId>().unwrap(), id);
        let max = FileId {
            ino: u64::MAX,
            birth: u64::MAX,
            fingerprint: u64::MAX,
            generation: u64::MAX,
        };
        assert_eq!(max.to_string().parse::<FileId>().unwrap(), max);
        let born = FileId {
            birth: 0x17a0_0000_0000_0001,
            generation: 0,
            ..id
        };
        assert_eq!(born.to_string(), "1a2b.17a0000000000001-00000000deadbeef");
        assert_eq!(born.to_string().parse::<FileId>().unwrap(), born);
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            "1a2b",
            "1a2b-dead",
            "zz-00000000deadbeef",
            "1-00000000deadbeef-0",
            "1-00000000deadbeef-x",
            "1-00000000deadbeef-1-2",
            "+1-00000000deadbeef",
            "1.-00000000deadbeef",
            "1.0-00000000deadbeef",
            "1.x-00000000deadbeef",
        ] {
            assert!(bad.parse::<FileId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn fingerprint_is_stable() {
        // Pinned: changing these values would make every checkpointed file look new.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            fingerprint(b"hello world\nsecond line\n", false),
            Some((fnv1a64(b"hello world\n"), 12))
        );
        assert_eq!(fnv1a64(b"hello world\n"), 0x782e_1488_cd5a_68b7_u64);
    }

    #[test]
    fn fingerprint_waits_for_first_line_or_max_bytes() {
        assert_eq!(fingerprint(b"", false), None);
        assert_eq!(fingerprint(b"", true), None);
        assert_eq!(fingerprint(b"partial", false), None);
        assert_eq!(
            fingerprint(b"partial", true),
            Some((fnv1a64(b"partial"), 7))
        );
        let long = vec![b'x'; 2000];
        assert_eq!(
            fingerprint(&long, false),
            Some((fnv1a64(&long[..1024]), 1024))
        );
    }

    #[test]
    fn identity_matching() {
        let known = FileId {
            ino: 7,
            birth: 100,
            fingerprint: fnv1a64(b"first\n"),
            generation: 3,
        };
        // Same inode, different first line: a new file on a reused inode.
        assert!(!known.matches(7, 100, fnv1a64(b"other\n")));
        // Same first line, different inode: another file.
        assert!(!known.matches(8, 100, fnv1a64(b"first\n")));
        // Same inode and first line, born later: a new file on a reused inode.
        assert!(!known.matches(7, 200, fnv1a64(b"first\n")));
        // All equal: the same file, whatever the generation; unknown birth does not contradict.
        assert!(known.matches(7, 100, fnv1a64(b"first\n")));
        assert!(known.matches(7, 0, fnv1a64(b"first\n")));
    }

    #[test]
    fn generations_increase() {
        let a = new_generation(0);
        let b = new_generation(a);
        assert!(b > a);
        let far = b + 1_000_000;
        assert!(new_generation(far) > far);
    }
}
