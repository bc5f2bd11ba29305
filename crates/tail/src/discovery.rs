//! Which files the tailer follows: one path, or a glob in the last component, and the
//! rotation set of every match (its rotated siblings), listed fresh at every scan.
//!
//! Only the last component may be a glob: the tailer watches one directory
//! (non-recursive), which is what sees rename and re-create rotation.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::TailError;

const GLOB_CHARS: [char; 3] = ['*', '?', '['];

#[derive(Debug, Clone)]
enum NameMatch {
    Exact(OsString),
    Glob(glob::Pattern),
}

#[derive(Debug, Clone)]
pub(crate) struct FilePattern {
    dir: PathBuf,
    name: NameMatch,
}

impl FilePattern {
    pub fn parse(pattern: &Path) -> Result<FilePattern, TailError> {
        let invalid =
            |why: &str| TailError::InvalidPattern(format!("{}: {why}", pattern.display()));
        let name = pattern.file_name().ok_or_else(|| invalid("no file name"))?;
        let dir = match pattern.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dir.to_string_lossy().contains(GLOB_CHARS) {
            return Err(invalid(
                "glob characters are only allowed in the last path component",
            ));
        }
        let name = match name.to_str() {
            Some(s) if s.contains(GLOB_CHARS) => {
                NameMatch::Glob(glob::Pattern::new(s).map_err(|e| invalid(&e.to_string()))?)
            }
            _ => NameMatch::Exact(name.to_os_string()),
        };
        Ok(FilePattern { dir, name })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    #[cfg(test)]
    pub fn is_glob(&self) -> bool {
        matches!(self.name, NameMatch::Glob(_))
    }

    pub fn matches_name(&self, name: &OsStr) -> bool {
        match &self.name {
            NameMatch::Exact(exact) => name == exact,
            NameMatch::Glob(glob) => name.to_str().is_some_and(|n| {
                glob.matches_with(
                    n,
                    glob::MatchOptions {
                        case_sensitive: true,
                        require_literal_separator: true,
                        // `*.log` must not pick up hidden files such as editors' swap files.
                        require_literal_leading_dot: true,
                    },
                )
            }),
        }
    }

    /// Every file of the directory that belongs to a rotation set of the pattern: the
    /// matches themselves and their rotated siblings (see [`rotation_bases`]), each stat'ed
    /// (symlinks followed). Oldest first (modification time, then name). A missing
    /// directory is no error: the files may appear later.
    pub fn scan(&self, birth_time: bool) -> io::Result<Vec<Candidate>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(place) = self.classify(&name) else {
                continue;
            };
            let path = entry.path();
            // A file that vanished since read_dir, or is no regular file, is skipped.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let symlink = entry.file_type().is_ok_and(|t| t.is_symlink());
            let real = if symlink {
                fs::canonicalize(&path).ok()
            } else {
                None
            };
            out.push(Candidate::new(path, real, place, &meta, birth_time));
        }
        out.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.path.cmp(&b.path)));
        Ok(out)
    }

    /// The match a rotated file `name` was rotated from (`app.log` for `app.log.1`).
    pub fn home_of(&self, name: &OsStr) -> Option<PathBuf> {
        if self.matches_name(name) {
            return Some(self.dir.join(name));
        }
        let name = name.to_str()?;
        let base = strip_compression(name).unwrap_or(name);
        rotation_bases(base)
            .find(|b| self.matches_name(OsStr::new(b)))
            .map(|b| self.dir.join(b))
    }

    /// The pattern itself, for a plain path.
    pub fn plain_path(&self) -> Option<PathBuf> {
        match &self.name {
            NameMatch::Exact(name) => Some(self.dir.join(name)),
            NameMatch::Glob(_) => None,
        }
    }

    /// Where a directory entry stands: a match, a rotated (readable) sibling of one, a
    /// compressed one, or none of these.
    pub fn classify(&self, name: &OsStr) -> Option<Place> {
        if self.matches_name(name) {
            return Some(Place::Match);
        }
        let name = name.to_str()?;
        let (base, compressed) = match strip_compression(name) {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        let belongs = (compressed && self.matches_name(OsStr::new(base)))
            || rotation_bases(base).any(|b| self.matches_name(OsStr::new(&b)));
        match (belongs, compressed) {
            (false, _) => None,
            (true, true) => Some(Place::Compressed),
            (true, false) => Some(Place::Rotated),
        }
    }
}

/// Where a file was found by the last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// At a path matching the pattern: the file the application writes.
    Match,
    /// A rotated sibling of a match (`app.log.1`, `app.log-20261202`, `app.2026-12-02.log`).
    Rotated,
    /// A compressed rotation (`app.log.2.gz`): not readable, only counted.
    Compressed,
    /// Not in the directory listing any more (deleted, moved away, or an old symlink
    /// target): read through the handle still held, until the rotate wait is over.
    Outside,
}

/// One directory entry of a rotation set, as stat'ed by a scan.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub path: PathBuf,
    /// The symlink's target, when the entry is a symlink.
    pub real: Option<PathBuf>,
    pub place: Place,
    pub dev: u64,
    pub ino: u64,
    pub birth: u64,
    pub len: u64,
    pub mtime: i128,
}

impl Candidate {
    pub fn new(
        path: PathBuf,
        real: Option<PathBuf>,
        place: Place,
        meta: &fs::Metadata,
        birth_time: bool,
    ) -> Candidate {
        Candidate {
            path,
            real,
            place,
            dev: meta.dev(),
            ino: meta.ino(),
            birth: if birth_time { birth_of(meta) } else { 0 },
            len: meta.len(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// The birth time in nanoseconds since the epoch (`statx` btime, which std reads where
/// the kernel and filesystem have it), 0 where there is none.
pub(crate) fn birth_of(meta: &fs::Metadata) -> u64 {
    meta.created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

/// Suffixes of compressed rotations.
const COMPRESSED: [&str; 7] = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip"];

fn strip_compression(name: &str) -> Option<&str> {
    COMPRESSED
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .filter(|rest| !rest.is_empty())
}

/// Whether `s` is a rotation suffix: one or more groups of a separator (`.`, `-`, `_`)
/// followed by digits (and `T`/`:` inside dates): `.1`, `-20261202`, `.2026-12-02`,
/// `-20261202-1764633600`, `.2026-12-02T10:00.3`.
fn is_rotation_suffix(s: &str) -> bool {
    let mut chars = s.chars().peekable();
    let mut groups = 0;
    while let Some(c) = chars.next() {
        if !matches!(c, '.' | '-' | '_') {
            return false;
        }
        let mut digits = 0;
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() {
                digits += 1;
            } else if !(matches!(d, 'T' | ':') && digits > 0) {
                break;
            }
            chars.next();
        }
        if digits == 0 {
            return false;
        }
        groups += 1;
    }
    groups > 0
}

/// The names a rotated file may have been rotated from: `<base><suffix>` (logrotate,
/// the generator, most libraries) and `<stem><suffix>.<ext>` (logback/log4j style
/// `app.2026-12-02.log` for `app.log`).
fn rotation_bases(name: &str) -> impl Iterator<Item = String> + '_ {
    let appended = name
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '-' | '_'))
        .map(|(i, _)| i)
        .filter(move |&i| i > 0 && is_rotation_suffix(&name[i..]))
        .map(move |i| name[..i].to_string());
    let inserted = name.rfind('.').into_iter().flat_map(move |dot| {
        let (stem, ext) = name.split_at(dot);
        stem.char_indices()
            .filter(|(_, c)| matches!(c, '.' | '-' | '_'))
            .map(|(i, _)| i)
            .filter(move |&i| i > 0 && is_rotation_suffix(&stem[i..]))
            .map(move |i| format!("{}{ext}", &stem[..i]))
    });
    appended.chain(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_only_in_last_component() {
        assert!(FilePattern::parse(Path::new("/var/log/*/app.log")).is_err());
        assert!(FilePattern::parse(Path::new("/var/l?g/app.log")).is_err());
        assert!(FilePattern::parse(Path::new("/")).is_err());
        let p = FilePattern::parse(Path::new("/var/log/app/*.log")).unwrap();
        assert!(p.is_glob());
        assert_eq!(p.dir(), Path::new("/var/log/app"));
        assert!(p.matches_name(OsStr::new("a.log")));
        assert!(!p.matches_name(OsStr::new(".a.log")));
        assert!(!p.matches_name(OsStr::new("a.log.1")));
        let p = FilePattern::parse(Path::new("app.log")).unwrap();
        assert!(!p.is_glob());
        assert_eq!(p.dir(), Path::new("."));
        assert!(FilePattern::parse(Path::new("/x/[.log")).is_err());
    }

    fn names(p: &FilePattern) -> Vec<(String, Place)> {
        let mut v: Vec<_> = p
            .scan(true)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.path.file_name().unwrap().to_string_lossy().into_owned(),
                    c.place,
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn scans_matches_and_their_rotation_sets() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "app.log",
            "app.log.1",
            "app.log.10",
            "app.log-20261202",
            "app.log.2026-12-02.3",
            "app.2026-12-02.log",
            "app.log.2.gz",
            "app.log.x",
            "app.log.",
            "other.log.1",
            "b.log",
            "b.log.1",
        ] {
            fs::write(dir.path().join(name), b"x\n").unwrap();
        }
        fs::create_dir(dir.path().join("sub.log")).unwrap();
        let plain = FilePattern::parse(&dir.path().join("app.log")).unwrap();
        use Place::*;
        let expect = |v: &[(&str, Place)]| -> Vec<(String, Place)> {
            v.iter().map(|(n, p)| (n.to_string(), *p)).collect()
        };
        assert_eq!(
            names(&plain),
            expect(&[
                ("app.2026-12-02.log", Rotated),
                ("app.log", Match),
                ("app.log-20261202", Rotated),
                ("app.log.1", Rotated),
                ("app.log.10", Rotated),
                ("app.log.2.gz", Compressed),
                ("app.log.2026-12-02.3", Rotated),
            ])
        );
        let glob = FilePattern::parse(&dir.path().join("*.log")).unwrap();
        let got = names(&glob);
        assert!(got.contains(&("b.log".into(), Match)));
        assert!(got.contains(&("b.log.1".into(), Rotated)));
        assert!(got.contains(&("other.log.1".into(), Rotated)));
        assert!(got.contains(&("app.log.2.gz".into(), Compressed)));
        assert!(!got.iter().any(|(n, _)| n == "app.log.x" || n == "sub.log"));
        let missing = FilePattern::parse(&dir.path().join("nope/*.log")).unwrap();
        assert!(missing.scan(true).unwrap().is_empty());
    }

    #[test]
    fn rotation_suffixes() {
        for ok in [
            ".1",
            "-20261202",
            ".2026-12-02",
            "-20261202-1764633600",
            "_1.2",
        ] {
            assert!(is_rotation_suffix(ok), "{ok}");
        }
        for bad in ["", ".", ".x", "1", ".1a", "-T1", ".old"] {
            assert!(!is_rotation_suffix(bad), "{bad}");
        }
    }
}
