//! Removing dead consumers from a group.
//!
//! Every subscriber pod that ever read the stream stays in the group as a consumer (its name
//! is the pod name), so each rollout leaves a few more behind, forever: `XINFO CONSUMERS`
//! grows, and dashboards count ghosts. A consumer that has been idle far longer than the
//! claim period and holds no pending entry is one nobody will come back for: removing it
//! loses nothing (its entries were claimed by the live consumers long ago), and a consumer
//! that was only quiet is simply created again by its next `XREADGROUP`.
//!
//! Never with pending entries: `XGROUP DELCONSUMER` drops a consumer's pending list with it,
//! and those entries would then never be delivered again. So the check and the delete run in
//! one server-side script, atomically: a consumer that read something between a check and a
//! delete cannot exist.

use std::time::Duration;

use redis::Script;

use crate::{BusError, Connection, RedisTarget};

/// Deletes, in one atomic step, every consumer of group `ARGV[1]` on stream `KEYS[1]` that is
/// not `ARGV[2]` (the caller), has no pending entry and has been idle at least `ARGV[3]` ms.
/// Returns the names deleted. A missing stream or group deletes nothing.
const REAP_SCRIPT: &str = r#"
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return {} end
local min_idle = tonumber(ARGV[3])
local removed = {}
for _, consumer in ipairs(consumers) do
  local name, pending, idle
  for i = 1, #consumer, 2 do
    local field = consumer[i]
    if field == 'name' then name = consumer[i + 1]
    elseif field == 'pending' then pending = consumer[i + 1]
    elseif field == 'idle' then idle = consumer[i + 1] end
  end
  if name and name ~= ARGV[2] and pending == 0 and idle and idle >= min_idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed[#removed + 1] = name
  end
end
return removed
"#;

/// Removes a group's dead consumers, on a connection of its own (the consumer's connection
/// spends its time in a blocking read).
pub struct ConsumerReaper {
    conn: Connection,
    script: Script,
    group: String,
    /// This process's consumer name: never removed by itself.
    consumer: String,
    /// A consumer idle at least this long with nothing pending is dead.
    dead_after: Duration,
}

impl ConsumerReaper {
    pub fn new(
        target: RedisTarget,
        group: impl Into<String>,
        consumer: impl Into<String>,
        dead_after: Duration,
    ) -> Result<Self, BusError> {
        Ok(Self {
            conn: Connection::new(target)?,
            script: Script::new(REAP_SCRIPT),
            group: group.into(),
            consumer: consumer.into(),
            dead_after,
        })
    }

    /// One pass over `stream`'s group: the names of the consumers removed.
    pub async fn reap(&mut self, stream: &str) -> Result<Vec<String>, BusError> {
        let mut conn = self.conn.get().await?;
        let idle_ms = u64::try_from(self.dead_after.as_millis()).unwrap_or(u64::MAX);
        let result = self
            .script
            .key(stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(idle_ms)
            .invoke_async::<Vec<String>>(&mut conn)
            .await;
        result.map_err(|e| self.conn.on_error(e.into()))
    }

    /// How often to look: a tenth of the idle threshold, between 1 s and 5 min. A dead
    /// consumer goes at most 10 % after it became removable; the cost is one small script
    /// call per stream per pass.
    pub fn interval(&self) -> Duration {
        (self.dead_after / 10).clamp(Duration::from_secs(1), Duration::from_secs(300))
    }
}
