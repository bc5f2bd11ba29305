//! The world the model test runs the tailer in: the disk (files, their rotations, and
//! which content every written line went to) and the pipeline standing in for the
//! watcher (Redis's idempotent script, the checkpoint, the stream), with the reader's
//! look that feeds one from the other. Kept apart from the test so each reads alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::KEEP;
use crate::{FileId, KnownFile, LossReason, TailEvents, TailItem, Tailer};

#[derive(Default)]
pub(super) struct Losses(pub(super) Mutex<u64>);

impl TailEvents for Losses {
    fn file_lost(&self, _: &Path, _: &FileId, _: u64, unread: u64, _: LossReason) {
        *self.0.lock().unwrap() += unread;
    }
}

/// The watcher side: Redis (offsets + stream) and the checkpoint.
#[derive(Default)]
pub(super) struct Pipeline {
    pub(super) redis: HashMap<String, u64>,
    pub(super) stream: Vec<(String, u64, Vec<u8>)>,
    pub(super) checkpoint: BTreeMap<String, KnownFile>,
    pub(super) durable: Option<BTreeMap<String, KnownFile>>,
}

impl Pipeline {
    pub(super) fn handle(&mut self, item: TailItem) {
        match item {
            TailItem::Opened {
                id,
                location,
                offset,
                check,
                ..
            } => {
                let e = self.checkpoint.entry(id.to_string()).or_insert(KnownFile {
                    id,
                    path: location.to_path_buf(),
                    offset,
                    size: None,
                    check: Some(check),
                    deleted: false,
                });
                // Where reading starts is recorded in Redis too (a copy continued,
                // a fresh start's skipped siblings): Redis alone must know it.
                if offset > 0 {
                    let r = self.redis.entry(id.to_string()).or_insert(0);
                    *r = (*r).max(offset);
                }
                if offset > e.offset || e.check.is_none() {
                    e.check = Some(check);
                }
                e.offset = e.offset.max(offset);
            }
            TailItem::Lines(b) => {
                let fid = b.id.to_string();
                let mut committed = self.redis.get(&fid).copied().unwrap_or(0);
                for (i, line) in b.lines.iter().enumerate() {
                    if line.end <= committed {
                        continue;
                    }
                    self.stream
                        .push((fid.clone(), line.offset, b.line(i).to_vec()));
                    committed = line.end;
                }
                self.redis.insert(fid.clone(), committed);
                let e = self.checkpoint.entry(fid).or_insert(KnownFile {
                    id: b.id,
                    path: b.location.to_path_buf(),
                    offset: 0,
                    size: None,
                    check: None,
                    deleted: false,
                });
                e.offset = committed;
                e.path = b.location.to_path_buf();
                e.size = Some(b.size.max(committed));
                e.check = (committed == b.end()).then_some(b.check);
            }
            TailItem::Deleted { id } => {
                if let Some(e) = self.checkpoint.get_mut(&id.to_string()) {
                    e.deleted = true;
                }
            }
            TailItem::Finished { id, gone, .. } => {
                let fid = id.to_string();
                self.checkpoint.remove(&fid);
                if gone {
                    self.redis.remove(&fid);
                }
            }
        }
    }

    /// What a restart knows: the durable checkpoint (unless lost) ∪ Redis.
    pub(super) fn known(&self, redis_only: bool) -> (Vec<KnownFile>, bool) {
        let mut known: BTreeMap<String, KnownFile> = if redis_only {
            BTreeMap::new()
        } else {
            self.durable.clone().unwrap_or_default()
        };
        for (fid, &offset) in &self.redis {
            match known.get_mut(fid) {
                Some(k) if offset > k.offset => {
                    k.offset = offset;
                    k.check = None;
                    k.size = k.size.map(|s| s.max(offset));
                }
                Some(_) => {}
                None => {
                    known.insert(
                        fid.clone(),
                        KnownFile::offset_only(fid.parse().unwrap(), offset),
                    );
                }
            }
        }
        let fresh = self.durable.is_none() && self.redis.is_empty();
        (known.into_values().collect(), fresh)
    }
}

pub(super) struct Disk {
    pub(super) dir: PathBuf,
    pub(super) next_line: u64,
    /// Every line written: (its text, the content it went to).
    pub(super) written: Vec<(Vec<u8>, u64)>,
    /// Content number of each path now; contents are renumbered when a file is truncated
    /// or created.
    pub(super) contents: HashMap<PathBuf, u64>,
    pub(super) next_content: u64,
    /// Inodes freed by deletes, and how often a new file got one of them.
    pub(super) freed: HashSet<u64>,
    pub(super) reused: u32,
    pub(super) indent: bool,
}

pub(super) const HEADER: &[u8] = b"== app started ==\n";

impl Disk {
    pub(super) fn log(&self) -> PathBuf {
        self.dir.join("app.log")
    }
    pub(super) fn rotated(&self, n: u32) -> PathBuf {
        self.dir.join(format!("app.log.{n}"))
    }
    pub(super) fn create(&mut self, path: &Path, header: &[u8]) {
        fs::write(path, header).unwrap();
        if self.freed.remove(&fs::metadata(path).unwrap().ino()) {
            self.reused += 1;
        }
        self.next_content += 1;
        self.contents.insert(path.to_path_buf(), self.next_content);
    }
    pub(super) fn append(&mut self, path: &Path, n: u8, unique_header: bool) {
        if !path.exists() {
            let header = if unique_header {
                format!("== app started {} ==\n", self.next_content).into_bytes()
            } else {
                HEADER.to_vec()
            };
            self.create(path, &header);
        }
        let content = self.contents[path];
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        for _ in 0..n {
            // With multi-line events on, some lines continue the one before (indented).
            let indent = if self.indent && self.next_line % 3 == 1 {
                "  "
            } else {
                ""
            };
            let line = format!("{indent}line {} of content {content}", self.next_line).into_bytes();
            self.next_line += 1;
            let mut bytes = line.clone();
            bytes.push(b'\n');
            f.write_all(&bytes).unwrap();
            self.written.push((line, content));
        }
    }
    pub(super) fn remove(&mut self, path: &Path) {
        if let Ok(meta) = fs::metadata(path) {
            self.freed.insert(meta.ino());
            fs::remove_file(path).unwrap();
            self.contents.remove(path);
        }
    }
    pub(super) fn rename(&mut self, from: &Path, to: &Path) {
        if from.exists() {
            fs::rename(from, to).unwrap();
            if let Some(c) = self.contents.remove(from) {
                self.contents.insert(to.to_path_buf(), c);
            }
        }
    }
    pub(super) fn shift(&mut self) {
        let last = self.rotated(KEEP);
        self.remove(&last);
        for n in (1..KEEP).rev() {
            let (from, to) = (self.rotated(n), self.rotated(n + 1));
            self.rename(&from, &to);
        }
    }
}

pub(super) fn look(tailer: &mut Tailer, pipeline: &mut Pipeline, budget: usize, paused: bool) {
    if paused {
        tailer.pause_events();
    }
    for _ in 0..budget {
        match tailer.next_item(7, 1 << 20).unwrap() {
            Some(item) => pipeline.handle(item),
            None => break,
        }
    }
    if paused {
        // As the reader does when a look found nothing: re-arm (returns at once).
        tailer.wait(Duration::ZERO);
    }
}
