//! `XREADGROUP` replies decoded straight from the RESP bytes, without a `redis::Value` tree.
//!
//! Profiles of a backlog drain showed redis-rs' generic parser (one `Value`, one allocation per
//! bulk string and per array, then a second walk to turn the tree into entries and a free of
//! every node) as the largest single cost of the subscriber. For the one reply on the hot path
//! we know the shape, so [`frame_len`] first finds where the reply ends (headers only, bulk
//! contents are skipped by their length) and [`decode_read_frame`] then copies each field once,
//! from the socket buffer into its [`StreamEntry`].
//!
//! Both RESP2 and RESP3 are accepted (arrays or maps, `*-1`/`$-1` or `_` for nil), since the
//! decoder must not depend on what the connection negotiated. Anything malformed is an error,
//! never a panic: the bytes come from the network.

use redis::Value;

use super::reply::{Decoded, StreamEntry};
use crate::BusError;

/// Longest header line accepted (a status or error text included).
const MAX_HEADER_LINE: usize = 64 * 1024;
/// Longest bulk string accepted: 512 MiB plus room for an entry's other fields.
const MAX_BULK_BYTES: u64 = 512 * 1024 * 1024 + 64 * 1024;
/// Entries reserved up front, whatever the reply declares (it grows past this if real).
const MAX_RESERVE_ENTRIES: usize = 4096;

/// The length of the first complete RESP frame in `buf`, `Ok(None)` if it is still incomplete.
///
/// Iterative (a count of elements still to skip), so a deeply nested or hostile reply cannot
/// exhaust the stack.
pub(crate) fn frame_len(buf: &[u8]) -> Result<Option<usize>, BusError> {
    let mut pos = 0usize;
    let mut remaining: u64 = 1;
    while remaining > 0 {
        remaining -= 1;
        let Some((kind, line, next)) = header(buf, pos) else {
            // A header is a type byte and a number (or a short status or error text): a
            // "line" this long without its end is not Redis, and must not grow the buffer.
            if buf.len().saturating_sub(pos) > MAX_HEADER_LINE {
                return Err(bad("header line"));
            }
            return Ok(None);
        };
        pos = next;
        match kind {
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = number(line)?;
                if n < 0 {
                    continue;
                }
                let n = n as u64;
                // A map or attribute counts key and value; an attribute also precedes a value.
                let add = match kind {
                    b'%' => n.checked_mul(2),
                    b'|' => n.checked_mul(2).and_then(|n| n.checked_add(1)),
                    _ => Some(n),
                };
                remaining = add
                    .and_then(|a| remaining.checked_add(a))
                    .ok_or_else(|| bad("aggregate length"))?;
            }
            b'$' | b'=' | b'!' => {
                let n = number(line)?;
                if n < 0 {
                    continue;
                }
                // No field the watcher writes is longer (`REDTAIL_MAX_LINE_BYTES` ≤ 512 MiB,
                // Redis' own `proto-max-bulk-len`): reject before buffering it.
                if n as u64 > MAX_BULK_BYTES {
                    return Err(bad("bulk length"));
                }
                let end = pos
                    .checked_add(n as usize)
                    .and_then(|e| e.checked_add(2))
                    .ok_or_else(|| bad("bulk length"))?;
                if end > buf.len() {
                    return Ok(None);
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(bad("bulk string terminator"));
                }
                pos = end;
            }
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {}
            _ => return Err(bad("type byte")),
        }
    }
    Ok(Some(pos))
}

/// Decodes one complete `XREADGROUP` reply frame (as measured by [`frame_len`]).
pub(crate) fn decode_read_frame(frame: &[u8]) -> Result<Decoded, BusError> {
    let mut r = Reader { buf: frame, pos: 0 };
    let mut out = Decoded::default();
    match r.next()? {
        Item::Nil => {}
        Item::Error => return Err(server_error(frame)),
        Item::Array(n) => {
            for _ in 0..n {
                match r.next()? {
                    Item::Array(2) => {}
                    _ => return Err(bad("XREADGROUP stream")),
                }
                r.skip_string()?;
                r.entries(&mut out)?;
            }
        }
        Item::Map(n) => {
            for _ in 0..n {
                r.skip_string()?;
                r.entries(&mut out)?;
            }
        }
        _ => return Err(bad("XREADGROUP reply")),
    }
    if r.pos != frame.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// A server error line (`-NOGROUP …`) as redis-rs' own error, so `code()` and the error's
/// kind behave exactly as on the redis-rs path. Only this short line goes through its parser.
pub(crate) fn server_error(frame: &[u8]) -> BusError {
    match redis::parse_redis_value(frame).and_then(Value::extract_error) {
        Err(e) => BusError::Redis(e),
        Ok(_) => bad("error reply"),
    }
}

/// One RESP element header, contents borrowed from the frame.
enum Item<'a> {
    Nil,
    Error,
    Array(usize),
    Map(usize),
    /// A bulk, simple or verbatim string, or an integer, as bytes.
    Text(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Item<'a>, BusError> {
        let (kind, line, next) = header(self.buf, self.pos).ok_or_else(|| bad("truncated"))?;
        self.pos = next;
        Ok(match kind {
            b'_' => Item::Nil,
            b'-' => Item::Error,
            b'*' | b'%' => {
                let n = number(line)?;
                match (n < 0, kind) {
                    (true, _) => Item::Nil,
                    // Bounded by the frame: each element takes at least 3 bytes.
                    (false, _) if n as u64 > self.buf.len() as u64 => {
                        return Err(bad("aggregate length"))
                    }
                    (false, b'*') => Item::Array(n as usize),
                    (false, _) => Item::Map(n as usize),
                }
            }
            b'$' | b'=' => {
                let n = number(line)?;
                if n < 0 {
                    return Ok(Item::Nil);
                }
                let end = next
                    .checked_add(n as usize)
                    .filter(|e| e.checked_add(2).is_some_and(|e2| e2 <= self.buf.len()))
                    .ok_or_else(|| bad("bulk length"))?;
                self.pos = end + 2;
                let mut text = &self.buf[next..end];
                if kind == b'=' {
                    // Verbatim strings start with a three-letter format and a colon.
                    text = text.get(4..).unwrap_or_default();
                }
                Item::Text(text)
            }
            b'+' | b':' | b'#' | b',' | b'(' => Item::Text(line),
            _ => return Err(bad("element type")),
        })
    }

    fn skip_string(&mut self) -> Result<(), BusError> {
        match self.next()? {
            Item::Text(_) => Ok(()),
            _ => Err(bad("stream key")),
        }
    }

    /// `[[id, [k, v, …] | nil], …]` or nil.
    fn entries(&mut self, out: &mut Decoded) -> Result<(), BusError> {
        let n = match self.next()? {
            Item::Array(n) => n,
            Item::Nil => return Ok(()),
            _ => return Err(bad("stream entries")),
        };
        // The declared count comes from the wire: reserve no more than a real reply needs.
        out.entries.reserve(n.min(MAX_RESERVE_ENTRIES));
        for _ in 0..n {
            match self.next()? {
                Item::Array(2) => {}
                Item::Array(_) => return Err(bad("stream entry length")),
                _ => return Err(bad("stream entry")),
            }
            let id = match self.next()? {
                Item::Text(id) => lossy(id),
                _ => return Err(bad("stream entry id")),
            };
            let count = match self.next()? {
                Item::Nil => {
                    out.vanished.push(id);
                    continue;
                }
                Item::Array(n) => n,
                Item::Map(n) => n.checked_mul(2).ok_or_else(|| bad("field count"))?,
                _ => return Err(bad("stream entry fields")),
            };
            let mut entry = StreamEntry::new(id);
            let mut read = 0;
            while read < count {
                let name = self.text()?;
                read += 1;
                // An odd flat list ends in a lone name; it is read and dropped, as before.
                if read == count {
                    break;
                }
                let value = self.text()?;
                read += 1;
                entry.set_field_from(name, value);
            }
            out.entries.push(entry);
        }
        Ok(())
    }

    /// A field name or value; nil counts as empty, like the redis-rs path.
    fn text(&mut self) -> Result<&'a [u8], BusError> {
        match self.next()? {
            Item::Text(t) => Ok(t),
            Item::Nil => Ok(&[]),
            _ => Err(bad("stream field")),
        }
    }
}

/// `(type byte, header line without CRLF, position after the CRLF)`; `None` when the line is
/// not complete yet.
fn header(buf: &[u8], pos: usize) -> Option<(u8, &[u8], usize)> {
    let kind = *buf.get(pos)?;
    let rest = buf.get(pos + 1..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
    Some((kind, line, pos + 1 + nl + 1))
}

fn number(line: &[u8]) -> Result<i64, BusError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("length"))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A protocol error naming the part of the reply, never its content (it may be a log line).
fn bad(what: &str) -> BusError {
    BusError::Protocol(format!("XREADGROUP reply: malformed {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::reply::decode_read;
    use crate::consumer::stream::is_nogroup;
    use proptest::prelude::*;

    // Replies captured from redis-server 7.0 (`XREADGROUP … COUNT 10 STREAMS s <id>` over a
    // raw socket; RESP3 after `HELLO 3`). Entry 1-1 has a binary line holding CR LF; 1-2 was
    // read, then `XDEL`eted, so the pending re-read returns it without a body.
    const R2_NEW: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$4\r\nline\r\n$4\r\ngone\r\n";
    const R2_PENDING_DELETED: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n*-1\r\n";
    const R2_NIL: &[u8] = b"*-1\r\n";
    const R2_EMPTY_PENDING: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*0\r\n";
    const R3_NEW: &[u8] = b"%1\r\n$2\r\ns3\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$4\r\nline\r\n$4\r\ngone\r\n";
    const R3_PENDING_DELETED: &[u8] = b"%1\r\n$2\r\ns3\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*8\r\n$4\r\nline\r\n$11\r\n\xff{\"a\":1}\x00\r\n\r\n$3\r\nsrc\r\n$5\r\npod-a\r\n$3\r\noff\r\n$2\r\n42\r\n$2\r\nct\r\n$1\r\n7\r\n*2\r\n$3\r\n1-2\r\n_\r\n";
    const R3_NIL: &[u8] = b"_\r\n";
    const R3_EMPTY_PENDING: &[u8] = b"%1\r\n$2\r\ns3\r\n*0\r\n";
    const NOGROUP: &[u8] =
        b"-NOGROUP No such key 's2' or consumer group 'nog' in XREADGROUP with GROUP option\r\n";

    const ALL: &[&[u8]] = &[
        R2_NEW,
        R2_PENDING_DELETED,
        R2_NIL,
        R2_EMPTY_PENDING,
        R3_NEW,
        R3_PENDING_DELETED,
        R3_NIL,
        R3_EMPTY_PENDING,
        NOGROUP,
    ];

    /// Frame length first, as the connection does, then the decode.
    fn decode(bytes: &[u8]) -> Result<Decoded, BusError> {
        assert_eq!(frame_len(bytes).expect("framed"), Some(bytes.len()));
        decode_read_frame(bytes)
    }

    #[test]
    fn decodes_new_entries_in_resp2_and_resp3() {
        for reply in [R2_NEW, R3_NEW] {
            let d = decode(reply).expect("decode");
            assert!(d.vanished.is_empty());
            assert_eq!(d.entries.len(), 2);
            let e = &d.entries[0];
            assert_eq!(e.id, "1-1");
            assert_eq!(e.id_ms, 1);
            assert_eq!(e.line.as_deref(), Some(&b"\xff{\"a\":1}\x00\r\n"[..]));
            assert_eq!(e.src.as_deref(), Some("pod-a"));
            assert_eq!(e.off, Some(42));
            assert_eq!(e.collected_us, Some(7));
            assert_eq!(d.entries[1].line.as_deref(), Some(&b"gone"[..]));
        }
    }

    #[test]
    fn deleted_bodies_are_vanished_ids() {
        for reply in [R2_PENDING_DELETED, R3_PENDING_DELETED] {
            let d = decode(reply).expect("decode");
            assert_eq!(d.entries.len(), 1);
            assert_eq!(d.vanished, vec!["1-2".to_string()]);
        }
    }

    #[test]
    fn nil_and_empty_streams_decode_to_nothing() {
        for reply in [R2_NIL, R3_NIL, R2_EMPTY_PENDING, R3_EMPTY_PENDING] {
            let d = decode(reply).expect("decode");
            assert!(d.entries.is_empty() && d.vanished.is_empty());
        }
    }

    #[test]
    fn server_errors_keep_their_code() {
        let err = decode(NOGROUP).expect_err("an error reply");
        assert!(is_nogroup(&err), "{err:?}");
        assert!(!err.breaks_connection());
    }

    #[test]
    fn same_result_as_the_redis_rs_path() {
        for reply in ALL {
            let ours = decode(reply);
            let theirs = redis::parse_redis_value(reply)
                .and_then(Value::extract_error)
                .map_err(BusError::from)
                .and_then(decode_read);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.entries, b.entries);
                    assert_eq!(a.vanished, b.vanished);
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("differ: {a:?} vs {b:?}"),
            }
        }
    }

    /// A reply that declares more than any entry can hold, or a header line that never
    /// ends, is refused at once instead of growing the receive buffer (a hostile or broken
    /// peer streamed 1.8 GiB into it before the response timeout).
    #[test]
    fn oversized_declarations_are_refused_before_buffering() {
        assert!(frame_len(b"*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*2\r\n$9999999999999\r\n").is_err());
        let mut endless = b"*1\r\n:".to_vec();
        endless.resize(endless.len() + MAX_HEADER_LINE + 1, b'7');
        assert!(frame_len(&endless).is_err());
        // Just below the header limit it is only incomplete.
        endless.truncate(4 + MAX_HEADER_LINE);
        assert!(matches!(frame_len(&endless), Ok(None)));
        // A declared count far above the frame's size decodes to an error, quickly.
        let many = b"*1\r\n*2\r\n$2\r\ns2\r\n*99999999\r\n*2\r\n$3\r\n1-1\r\n*0\r\n";
        assert!(decode_read_frame(many).is_err());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for reply in ALL {
            for cut in 0..reply.len() {
                assert_eq!(frame_len(&reply[..cut]).expect("prefix"), None, "cut {cut}");
            }
        }
    }

    #[test]
    fn huge_binary_fields_survive() {
        let line: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 256) as u8).collect();
        let mut reply = b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n9-0\r\n*4\r\n".to_vec();
        reply.extend_from_slice(format!("$4\r\nline\r\n${}\r\n", line.len()).as_bytes());
        reply.extend_from_slice(&line);
        reply.extend_from_slice(b"\r\n$5\r\nfield\r\n$3\r\n\x00\r\n\r\n");
        for cut in [1, 60, reply.len() / 2, reply.len() - 1] {
            assert_eq!(frame_len(&reply[..cut]).expect("prefix"), None);
        }
        let d = decode(&reply).expect("decode");
        assert_eq!(d.entries[0].line.as_deref(), Some(&line[..]));
        assert_eq!(
            d.entries[0].extra,
            vec![("field".into(), b"\x00\r\n".to_vec())]
        );
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        for bad in [
            &b"*1\r\n*2\r\n$2\r\ns2\r\n*1\r\n*3\r\n$1\r\na\r\n*0\r\n*0\r\n"[..],
            b"?\r\n",
            b"*x\r\n",
            b"$3\r\nabcd\r\n",
            b"*1\r\n:1\r\n",
            b"*99999999999999999999\r\n",
        ] {
            let framed = frame_len(bad);
            let decoded = decode_read_frame(bad);
            assert!(
                framed.is_err() || decoded.is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = frame_len(&bytes);
            let _ = decode_read_frame(&bytes);
        }

        #[test]
        fn corrupted_replies_never_panic(
            which in 0..ALL.len(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut reply = ALL[which].to_vec();
            let i = at.index(reply.len());
            reply[i] = byte;
            reply.truncate(cut.index(reply.len() + 1));
            if let Ok(Some(len)) = frame_len(&reply) {
                prop_assert!(len <= reply.len());
                let _ = decode_read_frame(&reply[..len]);
            }
            let _ = decode_read_frame(&reply);
        }
    }
}
