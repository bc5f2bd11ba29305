//! One handle type for both deployments: a multiplexed connection to a single Redis, or a
//! Redis Cluster connection that routes each command to the shard owning its key.
//!
//! Why an enum rather than a trait object: every caller builds `redis::Cmd`s and runs them with
//! `query_async`, which needs `redis::aio::ConnectionLike`; implementing it once here keeps
//! every command site identical in both modes. (`WAIT` is not sent on its own: it goes in one
//! pipeline with the write it is about, see `Publisher::publish_replicated`.)

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connected handle; clones share the underlying socket(s).
#[derive(Clone)]
pub enum RedisConn {
    /// One server (standalone, or a primary behind a proxy/Sentinel-managed address).
    Single(MultiplexedConnection),
    /// Redis Cluster: follows MOVED/ASK, refreshes the slot map, reconnects by itself.
    Cluster(ClusterConnection),
}

impl RedisConn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}
