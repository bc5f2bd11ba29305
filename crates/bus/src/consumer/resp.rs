//! `XREADGROUP` replies decoded straight from the RESP bytes, without a `redis::Value` tree.
//!
//! Profiles of a backlog drain showed redis-rs' generic parser (one `Value`, one allocation per
//! bulk string and per array, then a second walk to turn the tree into entries and a free of
//! every node) as the largest single cost of the subscriber. For the one reply on the hot path
//! we know the shape, so [`frame_len`] first finds where the reply ends (headers only, bulk
//! contents are skipped by their length) and [`decode_read_frame`] then copies each field once,
//! from the socket buffer into its [`StreamEntry`]. The pub/sub subscription's frames
//! (`message <channel> <payload>`) are cut the same way ([`decode_push`]).
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

/// A frame a subscribed (RESP2) connection receives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Push<'a> {
    /// `message <channel> <payload>`: the payload.
    Message(&'a [u8]),
    /// The reply to a `PING` sent while subscribed.
    Pong,
    /// `subscribe` confirmations and anything else a subscriber may be sent.
    Other,
}

/// Decodes one complete frame (as measured by [`frame_len`]) of a subscribed connection.
pub(crate) fn decode_push(frame: &[u8]) -> Result<Push<'_>, BusError> {
    let mut r = Reader { buf: frame, pos: 0 };
    let n = match r.next()? {
        Item::Array(n) | Item::Map(n) => n,
        Item::Error => return Err(server_error(frame)),
        _ => return Err(bad("pub/sub frame")),
    };
    let kind = match r.next()? {
        Item::Text(kind) => kind,
        _ => return Err(bad("pub/sub frame kind")),
    };
    match (kind, n) {
        (b"message", 3) => {
            r.skip_string()?;
            match r.next()? {
                Item::Text(payload) => Ok(Push::Message(payload)),
                Item::Nil => Ok(Push::Message(&[])),
                _ => Err(bad("pub/sub payload")),
            }
        }
        (b"pong", _) => Ok(Push::Pong),
        _ => Ok(Push::Other),
    }
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

/// A header's number: a sign and digits. Done by hand for the usual short one (a reply of 512
/// entries has ~8 000 of them; `str::parse` after a UTF-8 check was 5 % of a drain's
/// profile); a long one goes through `str::parse`, which reports the overflow.
fn number(line: &[u8]) -> Result<i64, BusError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 18 {
        return std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("length"));
    }
    let mut n: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(bad("length"));
        }
        n = n * 10 + i64::from(digit);
    }
    Ok(if negative { -n } else { n })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A protocol error naming the part of the reply, never its content (it may be a log line).
fn bad(what: &str) -> BusError {
    BusError::Protocol(format!(
        "Redis reply (XREADGROUP or pub/sub): malformed {what}"
    ))
}

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
