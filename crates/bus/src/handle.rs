//! One handle type for both deployments: a multiplexed connection to a single Redis, or a
//! Redis Cluster connection that routes each command to the shard owning its key.
//!
//! Why an enum rather than a trait object: every caller builds `redis::Cmd`s and runs them with
//! `query_async`, which needs `redis::aio::ConnectionLike`; implementing it once here keeps
//! every command site identical in both modes. The few things only a cluster needs (sending a
//! command to the primary of one key's slot, e.g. `WAIT`) are methods here.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

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

    /// Runs `cmd` on the primary that owns `key`'s slot, whatever the command's own routing
    /// rule says. A standalone connection has one server: the command goes there.
    ///
    /// Needed for `WAIT`: redis-rs sends a key-less `WAIT` to every primary and takes the
    /// minimum, but `WAIT` only means something on the connection that did the write (it counts
    /// replicas that acknowledged *that client's* last write), i.e. the slot's primary.
    pub async fn query_on_key_primary<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match self {
            RedisConn::Single(conn) => cmd.query_async(conn).await,
            RedisConn::Cluster(conn) => {
                let route = Route::with_key(key.as_bytes(), SlotAddr::Master);
                let value = conn
                    .route_command(
                        cmd.clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                Ok(redis::from_redis_value(value)?)
            }
        }
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
