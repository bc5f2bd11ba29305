//! Which paths the tailer follows: one path, or a glob in the last component.
//!
//! Only the last component may be a glob: the tailer watches one directory
//! (non-recursive), which is what sees rename and re-create rotation.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
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

    /// Regular files (symlinks followed) matching the pattern, sorted by path.
    /// A missing directory is no error: the files may appear later.
    pub fn list_matches(&self) -> io::Result<Vec<PathBuf>> {
        if let NameMatch::Exact(name) = &self.name {
            let path = self.dir.join(name);
            return Ok(match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => vec![path],
                _ => Vec::new(),
            });
        }
        let mut out: Vec<PathBuf> = self
            .regular_files()?
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| self.matches_name(n)))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Where a known file may have been rotated to while we were down, oldest first:
    /// for a path P every `P.<n>` (highest n first); for a glob every other file of
    /// the directory (highest numeric suffix first, then by name).
    pub fn list_siblings(&self) -> io::Result<Vec<PathBuf>> {
        let mut ranked: Vec<(u64, PathBuf)> = Vec::new();
        for path in self.regular_files()? {
            let Some(name) = path.file_name() else {
                continue;
            };
            match &self.name {
                NameMatch::Exact(exact) => {
                    let (Some(name), Some(exact)) = (name.to_str(), exact.to_str()) else {
                        continue;
                    };
                    let rank = name
                        .strip_prefix(exact)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .and_then(|n| n.parse::<u64>().ok());
                    if let Some(rank) = rank {
                        ranked.push((rank, path));
                    }
                }
                NameMatch::Glob(_) => {
                    if self.matches_name(name) {
                        continue;
                    }
                    let rank = name
                        .to_str()
                        .and_then(|n| n.rsplit('.').next())
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(0);
                    ranked.push((rank, path));
                }
            }
        }
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(ranked.into_iter().map(|(_, p)| p).collect())
    }

    fn regular_files(&self) -> io::Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            // Follows symlinks (Kubernetes log directories are full of them); a file
            // that vanished since read_dir is simply skipped.
            if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                out.push(path);
            }
        }
        Ok(out)
    }
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

    #[test]
    fn lists_matches_and_siblings_in_rotation_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "app.log",
            "app.log.1",
            "app.log.10",
            "app.log.2",
            "app.log.x",
            "b.log",
        ] {
            fs::write(dir.path().join(name), b"x\n").unwrap();
        }
        fs::create_dir(dir.path().join("sub.log")).unwrap();
        let plain = FilePattern::parse(&dir.path().join("app.log")).unwrap();
        assert_eq!(
            plain.list_matches().unwrap(),
            vec![dir.path().join("app.log")]
        );
        let names: Vec<_> = plain
            .list_siblings()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["app.log.10", "app.log.2", "app.log.1"]);

        let glob = FilePattern::parse(&dir.path().join("*.log")).unwrap();
        assert_eq!(
            glob.list_matches().unwrap(),
            vec![dir.path().join("app.log"), dir.path().join("b.log")]
        );
        let names: Vec<_> = glob
            .list_siblings()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["app.log.10", "app.log.2", "app.log.1", "app.log.x"]);

        let missing = FilePattern::parse(&dir.path().join("nope/*.log")).unwrap();
        assert!(missing.list_matches().unwrap().is_empty());
    }
}
