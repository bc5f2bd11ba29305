//! Reading a stream back the way the watcher wrote it, in `XRANGE` pages so a stream of
//! millions of entries never is one reply.

use redis::streams::{StreamId, StreamRangeReply};

/// Entries per `XRANGE` page.
const PAGE: usize = 10_000;

/// One stream entry with the watcher's fields (INTERFACE.md): absent fields are empty, an
/// absent or unreadable `off` is `u64::MAX`.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    pub id: String,
    pub line: Vec<u8>,
    pub src: String,
    pub fid: String,
    pub off: u64,
    pub trunc: bool,
}

impl StreamEntry {
    pub fn from_id(id: &StreamId) -> StreamEntry {
        let get = |f: &str| -> Vec<u8> {
            match id.map.get(f) {
                Some(redis::Value::BulkString(b)) => b.clone(),
                _ => Vec::new(),
            }
        };
        let text = |f: &str| String::from_utf8_lossy(&get(f)).into_owned();
        StreamEntry {
            id: id.id.clone(),
            line: get("line"),
            src: text("src"),
            fid: text("fid"),
            off: text("off").parse().unwrap_or(u64::MAX),
            trunc: !get("trunc").is_empty(),
        }
    }
}

/// Calls `each` for every entry of `key`, in stream order, on any connection (a single node
/// or a cluster).
pub fn for_each_entry(
    conn: &mut impl redis::ConnectionLike,
    key: &str,
    mut each: impl FnMut(&StreamId),
) -> redis::RedisResult<()> {
    let mut start = "-".to_string();
    loop {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query(conn)?;
        for id in &reply.ids {
            each(id);
        }
        match reply.ids.last() {
            Some(last) if reply.ids.len() == PAGE => start = format!("({}", last.id),
            _ => return Ok(()),
        }
    }
}

/// Every entry of `key`, in order; panics (for tests) when it cannot be read.
pub fn read_stream(conn: &mut impl redis::ConnectionLike, key: &str) -> Vec<StreamEntry> {
    let mut out = Vec::new();
    for_each_entry(conn, key, |id| out.push(StreamEntry::from_id(id))).expect("XRANGE");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedisServer;

    #[test]
    fn reads_every_entry_in_order_across_pages() {
        let server = RedisServer::start();
        let mut conn = server.conn();
        let n = PAGE * 2 + 17;
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.cmd("XADD")
                .arg("s")
                .arg("*")
                .arg("line")
                .arg(format!("l{i}"))
                .arg("off")
                .arg(i)
                .ignore();
        }
        pipe.query::<()>(&mut conn).expect("XADD");
        let entries = read_stream(&mut conn, "s");
        assert_eq!(entries.len(), n);
        assert!(entries.iter().enumerate().all(|(i, e)| e.off == i as u64
            && e.line == format!("l{i}").into_bytes()
            && e.fid.is_empty()
            && !e.trunc));
        assert!(read_stream(&mut conn, "missing").is_empty());
    }
}
