//! The on-disk format, versioned.
//!
//! ```json
//! {"version":1,"files":[{"fid":"1a2b-00ff00ff00ff00ff","path":"/var/log/app/app.log","offset":12345,"updated":"2026-11-25T12:00:00.000000Z"}]}
//! ```
//!
//! Reading dispatches on the integer `version` first, so a future v2 adds a variant to
//! [`Versioned`] and a migration in [`Versioned::into_current`]; old files keep loading. Writing
//! always produces [`CURRENT_VERSION`]. Compact, one line plus `\n`, files sorted by fid: the same
//! state always yields the same bytes, which is what lets the store skip unchanged writes.

use std::collections::btree_map::Entry;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::state::{Checkpoint, FileEntry};

/// The version this build writes.
pub const CURRENT_VERSION: u64 = 2;

/// A checkpoint larger than this is not a checkpoint (about a million tracked files): refuse it
/// rather than allocate without bound on a corrupted or misconfigured path.
pub(crate) const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Every format this build can read.
#[derive(Debug)]
enum Versioned {
    V1(DocV1),
    V2(DocV2),
}

impl Versioned {
    /// Turn any known version into today's in-memory state (the place for migrations).
    fn into_current(self) -> Checkpoint {
        match self {
            Versioned::V1(doc) => doc.into_checkpoint(),
            Versioned::V2(doc) => doc.into_checkpoint(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocV1 {
    version: u64,
    files: Vec<EntryV1>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    fid: String,
    /// Stored as UTF-8 text; a non-UTF-8 path is written lossily. The path is only a hint (files
    /// are matched by fid), and refusing to write would lose every other file's offset.
    path: String,
    offset: u64,
    #[serde(serialize_with = "ser_micros", deserialize_with = "de_rfc3339")]
    updated: DateTime<Utc>,
}

/// Version 2: version 1 plus, per file, its size and the check at the offset (both
/// optional, so a file recorded before they were known still loads).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocV2 {
    version: u64,
    files: Vec<EntryV2>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV2 {
    fid: String,
    path: String,
    offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    #[serde(serialize_with = "ser_micros", deserialize_with = "de_rfc3339")]
    updated: DateTime<Utc>,
}

impl DocV2 {
    fn from_checkpoint(cp: &Checkpoint) -> Self {
        DocV2 {
            version: 2,
            files: cp
                .files
                .iter()
                .map(|(fid, e)| EntryV2 {
                    fid: fid.clone(),
                    path: e.path.to_string_lossy().into_owned(),
                    offset: e.offset,
                    size: e.size,
                    check: e.check,
                    deleted: e.deleted,
                    updated: e.updated,
                })
                .collect(),
        }
    }

    fn into_checkpoint(self) -> Checkpoint {
        merge(self.files.into_iter().map(|e| {
            (
                e.fid,
                FileEntry {
                    path: PathBuf::from(e.path),
                    offset: e.offset,
                    size: e.size,
                    check: e.check,
                    deleted: e.deleted,
                    updated: e.updated,
                },
            )
        }))
    }
}

impl DocV1 {
    fn into_checkpoint(self) -> Checkpoint {
        let entries = self.files.into_iter().map(|e| {
            (
                e.fid,
                FileEntry {
                    path: PathBuf::from(e.path),
                    offset: e.offset,
                    size: None,
                    check: None,
                    deleted: false,
                    updated: e.updated,
                },
            )
        });
        merge(entries)
    }
}

/// A fid listed twice (never written by us; a hand edit) keeps its largest offset, the same rule
/// as [`Checkpoint::commit`]: one odd entry is no reason to drop every other file's offset.
fn merge(entries: impl Iterator<Item = (String, FileEntry)>) -> Checkpoint {
    let mut cp = Checkpoint::default();
    for (fid, entry) in entries {
        match cp.files.entry(fid) {
            Entry::Vacant(v) => {
                v.insert(entry);
            }
            Entry::Occupied(mut o) if o.get().offset < entry.offset => {
                o.insert(entry);
            }
            Entry::Occupied(_) => {}
        }
    }
    cp
}

fn ser_micros<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn de_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| serde::de::Error::custom(format!("invalid timestamp {text:?}: {e}")))
}

/// Serialise `cp` in the current format: one compact JSON line ending in `\n`.
pub(crate) fn encode(cp: &Checkpoint) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = serde_json::to_vec(&DocV2::from_checkpoint(cp))?;
    out.push(b'\n');
    Ok(out)
}

/// Parse any known version. The error is a human sentence for the set-aside note.
pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let version = match value.get("version") {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("\"version\" is not a non-negative integer: {v}"))?,
        None if value.is_object() => return Err("missing \"version\" field".to_owned()),
        None => return Err("not a JSON object".to_owned()),
    };
    let versioned = match version {
        1 => Versioned::V1(
            serde_json::from_value(value)
                .map_err(|e| format!("invalid version 1 checkpoint: {e}"))?,
        ),
        2 => Versioned::V2(
            serde_json::from_value(value)
                .map_err(|e| format!("invalid version 2 checkpoint: {e}"))?,
        ),
        other => {
            return Err(format!(
            "unsupported checkpoint version {other} (this build reads version {CURRENT_VERSION})"
        ))
        }
    };
    Ok(versioned.into_current())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::Path;

    fn known_state() -> Checkpoint {
        let noon = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut cp = Checkpoint::default();
        // Inserted out of order on purpose: the output must be sorted by fid.
        cp.commit_at(
            "9f00-0000000000000001-2",
            Path::new("/var/log/app/app.log.1"),
            7,
            noon + chrono::Duration::microseconds(1_500_250),
        );
        cp.commit_at(
            "1a2b-00ff00ff00ff00ff",
            Path::new("/var/log/app/app.log"),
            12345,
            noon,
        );
        cp
    }

    /// Pins the exact bytes: changing them breaks every deployed checkpoint, so it needs a new version.
    #[test]
    fn golden_v2_text() {
        let mut state = known_state();
        let noon = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        state.record_at(
            "1a2b-00ff00ff00ff00ff",
            Path::new("/var/log/app/app.log"),
            12345,
            Some(20000),
            Some(0xabc),
            noon,
        );
        let text = String::from_utf8(encode(&state).unwrap()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"version":2,"files":["#,
                r#"{"fid":"1a2b-00ff00ff00ff00ff","path":"/var/log/app/app.log","offset":12345,"size":20000,"check":2748,"updated":"2026-11-25T12:00:00.000000Z"},"#,
                r#"{"fid":"9f00-0000000000000001-2","path":"/var/log/app/app.log.1","offset":7,"updated":"2026-11-25T12:00:01.500250Z"}"#,
                "]}\n"
            )
        );
        assert_eq!(decode(text.as_bytes()).unwrap(), state);
        assert_eq!(
            encode(&Checkpoint::default()).unwrap(),
            b"{\"version\":2,\"files\":[]}\n"
        );
    }

    /// Version 1 (written before sizes and checks were kept) still loads.
    #[test]
    fn reads_v1() {
        let v1 = concat!(
            r#"{"version":1,"files":["#,
            r#"{"fid":"1a2b-00ff00ff00ff00ff","path":"/var/log/app/app.log","offset":12345,"updated":"2026-11-25T12:00:00.000000Z"},"#,
            r#"{"fid":"9f00-0000000000000001-2","path":"/var/log/app/app.log.1","offset":7,"updated":"2026-11-25T12:00:01.500250Z"}"#,
            "]}\n"
        );
        assert_eq!(decode(v1.as_bytes()).unwrap(), known_state());
    }

    #[test]
    fn decode_round_trips_encode() {
        let cp = known_state();
        assert_eq!(decode(&encode(&cp).unwrap()).unwrap(), cp);
    }

    #[test]
    fn decode_accepts_whitespace_and_other_zones() {
        let text = br#" { "files" : [ {"fid":"x","path":"/p","offset":3,"updated":"2026-11-25T13:00:00+01:00"} ], "version" : 1 } "#;
        let cp = decode(text).unwrap();
        let e = cp.get("x").unwrap();
        assert_eq!(e.offset, 3);
        assert_eq!(
            e.updated,
            Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn duplicate_fid_keeps_largest_offset() {
        let text = br#"{"version":1,"files":[
            {"fid":"x","path":"/a","offset":9,"updated":"2026-11-25T12:00:00Z"},
            {"fid":"x","path":"/b","offset":4,"updated":"2026-11-25T12:00:00Z"}]}"#;
        let cp = decode(text).unwrap();
        assert_eq!(cp.get("x").unwrap().offset, 9);
        assert_eq!(cp.get("x").unwrap().path, Path::new("/a"));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "invalid JSON"),
            (b"{\"version\":1,\"files\":[", "invalid JSON"),
            (b"\xff\xfe", "invalid JSON"),
            (b"[1,2]", "not a JSON object"),
            (b"{\"files\":[]}", "missing \"version\""),
            (b"{\"version\":\"1\",\"files\":[]}", "not a non-negative integer"),
            (b"{\"version\":3,\"files\":[]}", "unsupported checkpoint version 3"),
            (b"{\"version\":1}", "invalid version 1"),
            (b"{\"version\":1,\"files\":{}}", "invalid version 1"),
            (
                b"{\"version\":1,\"files\":[{\"fid\":\"x\",\"path\":\"/p\",\"offset\":-1,\"updated\":\"2026-11-25T12:00:00Z\"}]}",
                "invalid version 1",
            ),
            (
                b"{\"version\":1,\"files\":[{\"fid\":\"x\",\"path\":\"/p\",\"offset\":1,\"updated\":\"yesterday\"}]}",
                "invalid timestamp",
            ),
            (
                b"{\"version\":1,\"files\":[],\"extra\":true}",
                "invalid version 1",
            ),
        ];
        for (input, want) in cases {
            let err = decode(input).unwrap_err();
            assert!(
                err.contains(want),
                "{:?}: expected {want:?} in {err:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn large_offsets_survive() {
        let mut cp = Checkpoint::default();
        cp.commit("x", Path::new("/p"), u64::MAX);
        assert_eq!(
            decode(&encode(&cp).unwrap())
                .unwrap()
                .get("x")
                .unwrap()
                .offset,
            u64::MAX
        );
    }
}
