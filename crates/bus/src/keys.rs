//! Key names, in one place, for both deployments.
//!
//! Standalone (the default): one stream (`redtail:logs`) and one offsets hash
//! (`redtail:offsets`) hold every source.
//!
//! Redis Cluster: a script may only touch keys of one hash slot, and one stream on one shard
//! would carry the whole load anyway. So each source (watcher) gets its own stream and its
//! own offsets hash, tagged with the source so both land in the same slot:
//! `redtail:logs:{<source>}` and `redtail:offsets:{<source>}`. Sources spread over the shards
//! by the CRC16 of their name. Subscribers find the streams through a registry set,
//! `redtail:logs:streams` (`<stream prefix>:streams`), which every watcher `SADD`s its stream
//! into; the set lives in its own slot, so it is written by a separate command, never from the
//! publish script.

/// The prefix of the per-source offsets hashes in cluster mode.
pub const CLUSTER_OFFSETS_PREFIX: &str = "redtail:offsets";

/// `<prefix>:{<source>}`: one source's stream in cluster mode.
pub fn cluster_stream_key(prefix: &str, source: &str) -> String {
    format!("{prefix}:{{{source}}}")
}

/// `redtail:offsets:{<source>}`: one source's offsets hash, in the slot of its stream.
pub fn cluster_offsets_key(source: &str) -> String {
    format!("{CLUSTER_OFFSETS_PREFIX}:{{{source}}}")
}

/// `<prefix>:streams`: the set of every per-source stream key (cluster mode).
pub fn registry_key(prefix: &str) -> String {
    format!("{prefix}:streams")
}

/// Why a stream prefix cannot be used in cluster mode, if it cannot: a brace in it would
/// become (part of) the hash tag, and the stream would leave its offsets hash's slot.
pub fn check_cluster_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains('{') || prefix.contains('}') {
        return Err(format!(
            "the stream key {prefix:?} holds a brace; in cluster mode it is a prefix and \
             redtail adds the hash tag itself"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    fn slot(key: &str) -> Slot {
        Slot::for_key(key)
    }

    #[test]
    fn stream_and_offsets_share_a_slot() {
        for source in ["pod-0", "web-7d9f-abcde", "a}b", "a{b", "x:y"] {
            let stream = cluster_stream_key("redtail:logs", source);
            let offsets = cluster_offsets_key(source);
            assert_eq!(
                slot(&stream),
                slot(&offsets),
                "{source}: {stream} vs {offsets}"
            );
        }
        assert_eq!(cluster_stream_key("redtail:logs", "p"), "redtail:logs:{p}");
        assert_eq!(cluster_offsets_key("p"), "redtail:offsets:{p}");
        assert_eq!(registry_key("redtail:logs"), "redtail:logs:streams");
    }

    #[test]
    fn sources_spread_over_slots() {
        let slots: std::collections::HashSet<_> = (0..10)
            .map(|i| slot(&cluster_stream_key("redtail:logs", &format!("src-{i}"))))
            .collect();
        assert!(slots.len() > 5, "{slots:?}");
    }

    #[test]
    fn braces_in_the_prefix_are_refused() {
        assert!(check_cluster_prefix("redtail:logs").is_ok());
        assert!(check_cluster_prefix("redtail:{logs}").is_err());
    }
}
