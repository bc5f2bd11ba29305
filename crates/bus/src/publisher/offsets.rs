//! Offset lookups and bookkeeping outside the publish script: what Redis holds for a
//! source's files (at start-up and for the checkpoint rebuild), start offsets no publish
//! reached, forgetting gone contents, and the cluster's source registry.

use super::{Mode, Publisher};
use crate::keys::{cluster_stream_key, registry_key};
use crate::BusError;

impl Publisher {
    /// The committed offsets Redis holds for these files (HMGET), `None` where unknown.
    pub async fn committed_offsets(
        &mut self,
        source: &str,
        fids: &[String],
    ) -> Result<Vec<Option<u64>>, BusError> {
        if fids.is_empty() {
            return Ok(Vec::new());
        }
        let result: Result<Vec<Option<u64>>, BusError> = async {
            let key = self.offsets_key(source);
            let mut conn = self.conn.get().await?;
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(&key);
            for fid in fids {
                cmd.arg(Self::offsets_field(source, fid));
            }
            let values: Vec<Option<String>> = cmd.query_async(&mut conn).await?;
            values
                .into_iter()
                .map(|v| match v {
                    None => Ok(None),
                    Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
                        BusError::Protocol(format!("offset {s:?} in {key} is not a number"))
                    }),
                })
                .collect()
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }

    /// Every committed offset Redis holds for `source`: (fid, offset). At start this is
    /// the authoritative record of what was published (the checkpoint may lag it or be
    /// lost). Standalone: `HSCAN … MATCH <source>:*` of the shared hash; cluster: the
    /// source's own hash.
    pub async fn source_offsets(&mut self, source: &str) -> Result<Vec<(String, u64)>, BusError> {
        let key = self.offsets_key(source);
        let prefix = format!("{source}:");
        let pattern = format!("{}*", glob_escape(&prefix));
        let result: Result<Vec<(String, u64)>, BusError> = async {
            let mut conn = self.conn.get().await?;
            let mut out = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                    .arg(&key)
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                for (field, value) in page {
                    let Some(fid) = field.strip_prefix(&prefix) else {
                        continue;
                    };
                    let offset = value.parse::<u64>().map_err(|_| {
                        BusError::Protocol(format!("offset {value:?} in {key} is not a number"))
                    })?;
                    out.push((fid.to_string(), offset));
                }
                if next == 0 {
                    return Ok(out);
                }
                cursor = next;
            }
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }

    /// Raise a file's committed offset to `offset` without publishing (a copy continued
    /// where its original ended, a file skipped on purpose): Redis alone must know where
    /// to resume. Never lowers it.
    pub async fn raise_offset(
        &mut self,
        source: &str,
        fid: &str,
        offset: u64,
    ) -> Result<(), BusError> {
        const RAISE: &str = "local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') \
            if tonumber(ARGV[2]) > c then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end \
            return 1";
        let key = self.offsets_key(source);
        let result: Result<(), BusError> = async {
            let mut conn = self.conn.get().await?;
            let _: i64 = redis::cmd("EVAL")
                .arg(RAISE)
                .arg(1)
                .arg(&key)
                .arg(Self::offsets_field(source, fid))
                .arg(offset)
                .query_async(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }

    /// Remove the committed offsets of files whose content is gone for good (deleted or
    /// truncated and read to their end), so the hash does not grow with every rotation.
    pub async fn forget_all(&mut self, source: &str, fids: &[String]) -> Result<(), BusError> {
        if fids.is_empty() {
            return Ok(());
        }
        let key = self.offsets_key(source);
        let result: Result<(), BusError> = async {
            let mut conn = self.conn.get().await?;
            let mut cmd = redis::cmd("HDEL");
            cmd.arg(&key);
            for fid in fids {
                cmd.arg(Self::offsets_field(source, fid));
            }
            let _: i64 = cmd.query_async(&mut conn).await?;
            Ok(())
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }

    /// Remove a file's committed offset (after its checkpoint entry was dropped).
    pub async fn forget(&mut self, source: &str, fid: &str) -> Result<(), BusError> {
        let key = self.offsets_key(source);
        let result: Result<(), BusError> = async {
            let mut conn = self.conn.get().await?;
            let _: i64 = redis::cmd("HDEL")
                .arg(&key)
                .arg(Self::offsets_field(source, fid))
                .query_async(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }

    /// Cluster, stream mode: `SADD <prefix>:streams <source's stream>` so subscribers find
    /// the stream. Idempotent (an existing member changes nothing and is not replicated), so
    /// it is repeated now and then: a registry lost in a failover is rebuilt within seconds.
    /// Standalone or pub/sub mode: nothing to do.
    pub async fn register(&mut self, source: &str) -> Result<(), BusError> {
        let (Mode::Stream { key, .. }, true) = (&self.mode, self.cluster) else {
            return Ok(());
        };
        let registry = registry_key(key);
        let stream = cluster_stream_key(key, source);
        let result: Result<(), BusError> = async {
            let mut conn = self.conn.get().await?;
            let _: i64 = redis::cmd("SADD")
                .arg(&registry)
                .arg(&stream)
                .query_async(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }
}

/// `s` with Redis glob metacharacters escaped (for `MATCH`).
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_match_patterns() {
        assert_eq!(glob_escape("pod-0:"), "pod-0:");
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:");
    }
}
