//! A throw-away Redis Cluster per test: 3 primaries with one replica each, every node a
//! `redis-server --cluster-enabled yes` in its own temp dir on free loopback ports, joined
//! with `redis-cli --cluster create`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redtail_testkit::ServerOptions;

use super::{free_port, wait_until, which, RedisServer, StreamEntry};

/// Node timeout: how long a silent primary takes to be declared failed (automatic failover
/// starts after it). Short, so failover tests stay fast.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// One cluster node process: the harness's redis-server in cluster mode.
pub struct ClusterNode {
    pub port: u16,
    server: RedisServer,
}

impl ClusterNode {
    fn start() -> ClusterNode {
        let bus_port = free_port().to_string();
        let timeout = NODE_TIMEOUT_MS.to_string();
        let options = ServerOptions::new().args([
            "--cluster-port",
            &bus_port,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
            // Other shards keep serving while one fails over.
            "--cluster-require-full-coverage",
            "no",
            // Replicas sync at once instead of after the default 5 s diskless-sync delay.
            // (Persistence stays off: a replica's data matters for failover, not a restart's.)
            "--repl-diskless-sync-delay",
            "0",
        ]);
        let server = RedisServer::start_options(options);
        ClusterNode {
            port: server.port,
            server,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.server.log_path()
    }

    fn try_conn(&self) -> redis::RedisResult<redis::Connection> {
        let c =
            redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))?;
        // A stopped (SIGSTOP) node accepts connections but never answers.
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(c)
    }

    /// A direct (non-cluster) connection to this node.
    pub fn conn(&self) -> redis::Connection {
        self.try_conn().expect("connect to cluster node")
    }

    /// `INFO <section>` as key → value.
    pub fn info(&self, section: &str) -> HashMap<String, String> {
        self.info_of(redis::cmd("INFO").arg(section))
    }

    /// `CLUSTER INFO` as key → value.
    pub fn cluster_info(&self) -> HashMap<String, String> {
        self.info_of(redis::cmd("CLUSTER").arg("INFO"))
    }

    fn info_of(&self, cmd: &redis::Cmd) -> HashMap<String, String> {
        let Ok(mut c) = self.try_conn() else {
            return HashMap::new();
        };
        let text: String = cmd.query(&mut c).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    pub fn node_id(&self) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.conn())
            .expect("CLUSTER MYID")
    }

    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }

    /// Start again on the same ports and directory: with its `nodes.conf` it rejoins the
    /// cluster (as a replica of whoever took its slots over).
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// SIGSTOP: the node stays connected but answers nothing (replication to it stalls).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.server.pid() {
            let status = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{sig}");
        }
    }

    /// SIGKILL: whatever it had not replicated is gone.
    pub fn kill9(&mut self) {
        self.server.kill();
    }
}

/// Six nodes: three primaries, one replica each.
pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<ClusterNode> = (0..6).map(|_| ClusterNode::start()).collect();
        let cli = which("redis-cli").expect("redis-cli not found (apt-get install -y redis-tools)");
        let output = Command::new(cli)
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| n.addr()))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Every running node sees `cluster_state:ok`, agrees on 3 primaries covering all slots,
    /// and every running replica's link to its primary is up.
    pub fn wait_healthy(&self, timeout: Duration) {
        wait_until(timeout, "cluster state ok with replicas in sync", || {
            self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                let cluster = n.cluster_info();
                let replication = n.info("replication");
                cluster.get("cluster_state").map(String::as_str) == Some("ok")
                    && cluster.get("cluster_slots_assigned").map(String::as_str) == Some("16384")
                    && match replication.get("role").map(String::as_str) {
                        Some("master") => true,
                        Some("slave") => {
                            replication.get("master_link_status").map(String::as_str) == Some("up")
                        }
                        _ => false,
                    }
            }) && self.primary_ports().len() == 3
        });
    }

    /// Seed URLs for REDTAIL_REDIS_URL (every node: any of them will do).
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn any_running(&self) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.is_running() && n.try_conn().is_ok())
            .expect("a running node")
    }

    pub fn node(&self, port: u16) -> &ClusterNode {
        self.nodes.iter().find(|n| n.port == port).expect("node")
    }

    pub fn node_mut(&mut self, port: u16) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("node")
    }

    /// `CLUSTER SLOTS` as seen by a running node: (first slot, last slot, primary port,
    /// replica ports).
    pub fn slot_ranges(&self) -> Vec<(u16, u16, u16, Vec<u16>)> {
        let reply: redis::Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.any_running().conn())
            .expect("CLUSTER SLOTS");
        let int = |v: &redis::Value| match v {
            redis::Value::Int(i) => *i,
            _ => -1,
        };
        let mut out = Vec::new();
        if let redis::Value::Array(ranges) = reply {
            for range in ranges {
                let redis::Value::Array(parts) = range else {
                    continue;
                };
                let port_of = |v: &redis::Value| match v {
                    redis::Value::Array(node) => int(&node[1]) as u16,
                    _ => 0,
                };
                out.push((
                    int(&parts[0]) as u16,
                    int(&parts[1]) as u16,
                    port_of(&parts[2]),
                    parts[3..].iter().map(port_of).collect(),
                ));
            }
        }
        out
    }

    pub fn primary_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.slot_ranges().iter().map(|r| r.2).collect();
        ports.sort();
        ports.dedup();
        ports
    }

    /// The primary port serving `key`.
    pub fn primary_of_key(&self, key: &str) -> u16 {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.any_running().conn())
            .expect("CLUSTER KEYSLOT");
        self.slot_ranges()
            .iter()
            .find(|r| r.0 <= slot && slot <= r.1)
            .map(|r| r.2)
            .expect("slot covered")
    }

    /// The replica of the primary on `port` (the running node replicating from it).
    pub fn replica_of(&self, port: u16) -> u16 {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .find(|n| {
                let info = n.info("replication");
                info.get("role").map(String::as_str) == Some("slave")
                    && info.get("master_port").map(String::as_str) == Some(&port.to_string())
            })
            .map(|n| n.port)
            .expect("primary has a replica")
    }

    /// A cluster-aware synchronous connection (follows MOVED/ASK).
    pub fn conn(&self) -> redis::cluster::ClusterConnection {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.url())
            .collect();
        redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(10))
            .build()
            .and_then(|c| c.get_connection())
            .expect("cluster connection")
    }

    /// Members of a set (the stream registry).
    pub fn smembers(&self, key: &str) -> Vec<String> {
        let mut members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(key)
            .query(&mut self.conn())
            .unwrap_or_default();
        members.sort();
        members
    }

    /// Entries of one stream, in order (XRANGE in pages).
    pub fn stream_lines(&self, key: &str) -> Vec<StreamEntry> {
        super::read_stream(&mut self.conn(), key)
    }

    /// Committed offsets of one source (its `redtail:offsets:{<source>}` hash), summed.
    pub fn committed(&self, source: &str) -> u64 {
        let map: BTreeMap<String, u64> = redis::cmd("HGETALL")
            .arg(format!("redtail:offsets:{{{source}}}"))
            .query(&mut self.conn())
            .unwrap_or_default();
        map.values().sum()
    }

    /// Kill the primary on `port` (SIGKILL) and promote its `replica` at once with
    /// `CLUSTER FAILOVER TAKEOVER` (no wait for the node timeout, no agreement needed). The
    /// replica is resumed first in case it was paused.
    pub fn kill_primary_and_take_over(&mut self, port: u16, replica: u16) {
        self.node_mut(port).kill9();
        self.node(replica).resume();
        let _: String = redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .arg("TAKEOVER")
            .query(&mut self.node(replica).conn())
            .expect("CLUSTER FAILOVER TAKEOVER");
        wait_until(Duration::from_secs(20), "replica promoted", || {
            self.node(replica)
                .info("replication")
                .get("role")
                .map(String::as_str)
                == Some("master")
                && self.slot_ranges().iter().any(|r| r.2 == replica)
        });
    }

    /// `redis-cli --cluster reshard`: move `slots` slots from the primary on `from` to the
    /// primary on `to` (keys migrate with their slots). Returns how long it took.
    pub fn reshard(&self, from: u16, to: u16, slots: u32) -> Duration {
        let started = Instant::now();
        let cli = which("redis-cli").expect("redis-cli");
        let output = Command::new(cli)
            .args(["--cluster", "reshard", &self.node(from).addr()])
            .args(["--cluster-from", &self.node(from).node_id()])
            .args(["--cluster-to", &self.node(to).node_id()])
            .args(["--cluster-slots", &slots.to_string()])
            .args(["--cluster-yes", "--cluster-pipeline", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("redis-cli --cluster reshard");
        assert!(
            output.status.success(),
            "reshard failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed()
    }
}
