//! File identity: inode + fingerprint of the first line (+ truncation generation).
//!
//! Not `st_dev`: a volume re-mounted in a new pod or node can get another device
//! number, which would make every file look new and be shipped again. The inode
//! alone is reused by the kernel after a delete, so the first line's fingerprint
//! tells a new file on a reused inode from the old one.

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
    pub fingerprint: u64,
    /// 0 normally; set when a truncated file's new content has the same inode and
    /// fingerprint as before, so the old content's committed offsets do not hide it.
    pub generation: u64,
}

impl FileId {
    /// Whether a file with this inode and fingerprint is the file this id names.
    /// The generation is not compared: it is not visible in the file.
    pub fn matches(&self, ino: u64, fingerprint: u64) -> bool {
        self.ino == ino && self.fingerprint == fingerprint
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{:016x}", self.ino, self.fingerprint)?;
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
        let ino = parts.next().ok_or_else(invalid)?;
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
        Ok(FileId {
            ino: hex(ino).ok_or_else(invalid)?,
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
            fingerprint: u64::MAX,
            generation: u64::MAX,
        };
        assert_eq!(max.to_string().parse::<FileId>().unwrap(), max);
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
            fingerprint: fnv1a64(b"first\n"),
            generation: 3,
        };
        // Same inode, different first line: a new file on a reused inode.
        assert!(!known.matches(7, fnv1a64(b"other\n")));
        // Same first line, different inode: another file.
        assert!(!known.matches(8, fnv1a64(b"first\n")));
        // Both equal: the same file, whatever the generation.
        assert!(known.matches(7, fnv1a64(b"first\n")));
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
