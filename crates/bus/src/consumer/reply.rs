//! Decoding of stream replies (`XREADGROUP`, `XAUTOCLAIM`, `XINFO GROUPS`) from raw [`Value`]s.
//!
//! We decode by hand instead of through redis-rs' `StreamReadReply`: entries whose content was
//! trimmed away come back as `[id, nil]` in a pending re-read and must be recognised (they are
//! acknowledged, never retried forever), field values must stay raw bytes (a log line is not
//! necessarily UTF-8), and both RESP2 arrays and RESP3 maps must be accepted.

use redis::Value;

use crate::BusError;

/// One stream entry as the watcher wrote it (or as a foreign producer did).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry id, `<ms>-<seq>`.
    pub id: String,
    /// The millisecond part of the id: when Redis appended the entry.
    pub id_ms: u64,
    /// The `line` field, byte for byte. `None` marks a foreign entry (someone else's XADD):
    /// it is still handed out, so the caller can report and acknowledge it.
    pub line: Option<Vec<u8>>,
    /// `src`: the watcher's source id (pod name).
    pub src: Option<String>,
    /// `path`: the file the line came from.
    pub path: Option<String>,
    /// `off`: byte offset of the line start in that file.
    pub off: Option<u64>,
    /// `fid`: the file identity.
    pub fid: Option<String>,
    /// `trunc 1`: the watcher cut the line at its maximum length.
    pub truncated: bool,
    /// `ct`: when the watcher read the line, microseconds since the Unix epoch.
    pub collected_us: Option<i64>,
    /// Fields this code does not know, kept so a foreign entry can still be shown.
    pub extra: Vec<(String, Vec<u8>)>,
    /// Delivered before: re-read from our own pending list or claimed from another consumer.
    pub redelivered: bool,
}

/// Entries of one read plus the ids of pending entries whose content no longer exists.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub entries: Vec<StreamEntry>,
    /// Pending ids whose entry was trimmed or deleted (`[id, nil]`).
    pub vanished: Vec<String>,
}

/// `XREADGROUP` reply: nil (timeout), or `[[key, [entry…]]]` (RESP2) / `{key: [entry…]}` (RESP3).
pub(crate) fn decode_read(value: Value) -> Result<Decoded, BusError> {
    let mut out = Decoded::default();
    let streams: Vec<(Value, Value)> = match value {
        Value::Nil => return Ok(out),
        Value::Map(pairs) => pairs,
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(mut pair) if pair.len() == 2 => {
                    let entries = pair.pop().unwrap_or(Value::Nil);
                    let key = pair.pop().unwrap_or(Value::Nil);
                    Ok((key, entries))
                }
                other => Err(protocol("XREADGROUP stream", &other)),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(protocol("XREADGROUP reply", &other)),
    };
    for (_key, entries) in streams {
        decode_entries(entries, &mut out)?;
    }
    Ok(out)
}

/// `XAUTOCLAIM` reply: `[next cursor, [entry…], [deleted id…]]` (the third part since Redis 7).
pub(crate) fn decode_autoclaim(value: Value) -> Result<(String, Decoded), BusError> {
    let Value::Array(parts) = value else {
        return Err(protocol("XAUTOCLAIM reply", &value));
    };
    let mut parts = parts.into_iter();
    let cursor = parts
        .next()
        .and_then(|v| text(&v))
        .ok_or_else(|| BusError::Protocol("XAUTOCLAIM reply without a cursor".to_string()))?;
    let mut out = Decoded::default();
    if let Some(entries) = parts.next() {
        decode_entries(entries, &mut out)?;
    }
    // Ids listed here were deleted from the stream; Redis 7 already dropped them from the
    // pending list, so they are only logged by the caller, never acknowledged.
    let _deleted = parts.next();
    Ok((cursor, out))
}

/// `XRANGE` reply: the entries in stream order (used to rebuild a recorded batch).
pub fn decode_range(value: Value) -> Result<Vec<StreamEntry>, BusError> {
    let mut out = Decoded::default();
    decode_entries(value, &mut out)?;
    Ok(out.entries)
}

fn decode_entries(entries: Value, out: &mut Decoded) -> Result<(), BusError> {
    let entries = match entries {
        Value::Array(entries) => entries,
        Value::Nil => return Ok(()),
        other => return Err(protocol("stream entries", &other)),
    };
    for entry in entries {
        let Value::Array(mut pair) = entry else {
            return Err(protocol("stream entry", &entry));
        };
        if pair.len() != 2 {
            return Err(BusError::Protocol(format!(
                "stream entry with {} parts",
                pair.len()
            )));
        }
        let fields = pair.pop().unwrap_or(Value::Nil);
        let id_value = pair.pop().unwrap_or(Value::Nil);
        let id = owned_text(id_value)?;
        match fields {
            Value::Nil => out.vanished.push(id),
            Value::Array(flat) => {
                // Straight from the flat `[k, v, k, v…]` list: no pair list per entry.
                let mut entry = StreamEntry::new(id);
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entry.set_field(bytes(k), bytes(v));
                }
                out.entries.push(entry);
            }
            Value::Map(pairs) => {
                let mut entry = StreamEntry::new(id);
                for (k, v) in pairs {
                    entry.set_field(bytes(k), bytes(v));
                }
                out.entries.push(entry);
            }
            other => return Err(protocol("stream entry fields", &other)),
        }
    }
    Ok(())
}

/// An id taken over without a copy (Redis sends ids as bulk strings).
fn owned_text(value: Value) -> Result<String, BusError> {
    match value {
        Value::BulkString(b) => Ok(lossy(b)),
        Value::SimpleString(s) => Ok(s),
        other => text(&other).ok_or_else(|| protocol("stream entry id", &other)),
    }
}

impl StreamEntry {
    pub(crate) fn new(id: String) -> Self {
        StreamEntry {
            id_ms: id_millis(&id),
            id,
            ..StreamEntry::default()
        }
    }

    fn set_field(&mut self, name: Vec<u8>, value: Vec<u8>) {
        match name.as_slice() {
            b"line" => self.line = Some(value),
            b"src" => self.src = Some(lossy(value)),
            b"path" => self.path = Some(lossy(value)),
            b"fid" => self.fid = Some(lossy(value)),
            b"off" => self.off = parse_num(&value),
            b"ct" => self.collected_us = parse_num(&value),
            b"trunc" => self.truncated = value != b"0" && !value.is_empty(),
            _ => self.extra.push((lossy(name), value)),
        }
    }

    /// [`StreamEntry::set_field`] from borrowed bytes: only what is kept is copied (the
    /// known names and the numbers are not).
    pub(crate) fn set_field_from(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b"line" => self.line = Some(value.to_vec()),
            b"src" => self.src = Some(lossy_ref(value)),
            b"path" => self.path = Some(lossy_ref(value)),
            b"fid" => self.fid = Some(lossy_ref(value)),
            b"off" => self.off = parse_num(value),
            b"ct" => self.collected_us = parse_num(value),
            b"trunc" => self.truncated = value != b"0" && !value.is_empty(),
            _ => self.extra.push((lossy_ref(name), value.to_vec())),
        }
    }
}

/// The millisecond part of `<ms>-<seq>`; 0 if the id is not in that form (never from Redis).
pub(crate) fn id_millis(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

fn parse_num<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::VerbatimString { text, .. } => text.into_bytes(),
        _ => Vec::new(),
    }
}

fn lossy_ref(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

fn lossy(value: Vec<u8>) -> String {
    String::from_utf8(value).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A string-ish value as text (ids, cursors, names).
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// An integer-ish value (`XINFO` answers integers, some proxies answer strings).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => parse_num(b),
        Value::SimpleString(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A flat `[k, v, k, v…]` array or a RESP3 map as key/value pairs.
pub(crate) fn pairs(value: Value) -> Option<Vec<(String, Value)>> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs,
        Value::Array(flat) => {
            let mut it = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        _ => return None,
    };
    Some(
        pairs
            .into_iter()
            .filter_map(|(k, v)| text(&k).map(|k| (k, v)))
            .collect(),
    )
}

/// A protocol error naming only the shape, never the content (it may be a log line).
fn protocol(what: &str, got: &Value) -> BusError {
    let shape = match got {
        Value::Nil => "nil",
        Value::Int(_) => "integer",
        Value::BulkString(_) => "string",
        Value::Array(_) => "array",
        Value::SimpleString(_) => "status",
        Value::Okay => "OK",
        Value::Map(_) => "map",
        Value::Set(_) => "set",
        Value::Double(_) => "double",
        Value::Boolean(_) => "boolean",
        Value::ServerError(_) => "error",
        _ => "other",
    };
    BusError::Protocol(format!("{what}: unexpected {shape}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    fn entry(id: &str, fields: &[(&[u8], &[u8])]) -> Value {
        let flat = fields
            .iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect();
        Value::Array(vec![bulk(id.as_bytes()), Value::Array(flat)])
    }

    #[test]
    fn decodes_watcher_entries_binary_safe() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"redtail:logs"),
            Value::Array(vec![
                entry(
                    "1700000000123-0",
                    &[
                        (b"line", b"\xff{\"a\":1}\x00"),
                        (b"src", b"pod-a"),
                        (b"path", b"/var/log/app.log"),
                        (b"off", b"42"),
                        (b"fid", b"2049:77"),
                        (b"trunc", b"1"),
                        (b"ct", b"1700000000100000"),
                    ],
                ),
                Value::Array(vec![bulk(b"1700000000124-0"), Value::Nil]),
                entry("1700000000125-3", &[(b"other", b"x")]),
            ]),
        ])]);
        let decoded = decode_read(reply).expect("decode");
        assert_eq!(decoded.vanished, vec!["1700000000124-0".to_string()]);
        assert_eq!(decoded.entries.len(), 2);
        let e = &decoded.entries[0];
        assert_eq!(e.id, "1700000000123-0");
        assert_eq!(e.id_ms, 1_700_000_000_123);
        assert_eq!(e.line.as_deref(), Some(&b"\xff{\"a\":1}\x00"[..]));
        assert_eq!(e.src.as_deref(), Some("pod-a"));
        assert_eq!(e.path.as_deref(), Some("/var/log/app.log"));
        assert_eq!(e.off, Some(42));
        assert_eq!(e.fid.as_deref(), Some("2049:77"));
        assert!(e.truncated);
        assert_eq!(e.collected_us, Some(1_700_000_000_100_000));
        let foreign = &decoded.entries[1];
        assert_eq!(foreign.line, None);
        assert!(!foreign.truncated);
        assert_eq!(foreign.extra, vec![("other".to_string(), b"x".to_vec())]);
    }

    #[test]
    fn decodes_xrange_replies() {
        let reply = Value::Array(vec![
            entry("5-0", &[(b"line", b"a"), (b"ct", b"7")]),
            entry("6-1", &[(b"line", b"b")]),
        ]);
        let entries = decode_range(reply).expect("decode");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].line.as_deref(), Some(&b"a"[..]));
        assert_eq!(entries[0].collected_us, Some(7));
        assert_eq!(entries[1].id, "6-1");
        assert!(decode_range(Value::Array(vec![]))
            .expect("empty")
            .is_empty());
    }

    #[test]
    fn nil_read_is_empty_and_resp3_maps_work() {
        assert!(decode_read(Value::Nil).expect("nil").entries.is_empty());
        let reply = Value::Map(vec![(
            bulk(b"k"),
            Value::Array(vec![entry("5-1", &[(b"line", b"x")])]),
        )]);
        let decoded = decode_read(reply).expect("map");
        assert_eq!(decoded.entries[0].id_ms, 5);
        assert!(decode_read(Value::Int(3)).is_err());
    }

    #[test]
    fn decodes_autoclaim() {
        let reply = Value::Array(vec![
            bulk(b"0-0"),
            Value::Array(vec![entry("9-0", &[(b"line", b"y"), (b"off", b"junk")])]),
            Value::Array(vec![bulk(b"8-0")]),
        ]);
        let (cursor, decoded) = decode_autoclaim(reply).expect("decode");
        assert_eq!(cursor, "0-0");
        assert_eq!(decoded.entries.len(), 1);
        assert_eq!(decoded.entries[0].off, None, "unparsable offset is dropped");
        assert!(decode_autoclaim(Value::Nil).is_err());
    }

    #[test]
    fn pairs_accepts_flat_arrays_and_maps() {
        let flat = Value::Array(vec![
            bulk(b"name"),
            bulk(b"g"),
            bulk(b"pending"),
            Value::Int(3),
        ]);
        let p = pairs(flat).expect("pairs");
        assert_eq!(p[0].0, "name");
        assert_eq!(int(&p[1].1), Some(3));
        assert_eq!(id_millis("notanid"), 0);
    }
}
