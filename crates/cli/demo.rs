//! `redtail demo`: generator, watcher and subscriber in one process, with
//! app.log and the checkpoint in a temporary directory, against
//! REDTAIL_REDIS_URL or a redis-server started here on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redtail_bus::{Mode, RedisTarget};
use redtail_tail::StartAt;

use crate::env::{ConfigError, Env};
use crate::roles;
use crate::runner::{self, RoleContext};
use crate::vars;

#[derive(Debug)]
pub struct DemoPlan {
    target: Option<RedisTarget>,
    rate: u64,
    seed: Option<u64>,
    pubsub: bool,
    shutdown_timeout: Duration,
}

pub fn plan(env: &Env) -> Result<DemoPlan, ConfigError> {
    let target = match env.is_set(&vars::DEMO_REDIS_URL) {
        true => Some(env.redis_target()?),
        false => None,
    };
    let seed = match env.is_set(&vars::SEED) {
        true => Some(env.u64(&vars::SEED)?),
        false => None,
    };
    Ok(DemoPlan {
        target,
        rate: env.u64(&vars::DEMO_RATE)?,
        seed,
        pubsub: env.choice(&vars::MODE, &["stream", "pubsub"])? == "pubsub",
        shutdown_timeout: env.millis(&vars::SHUTDOWN_TIMEOUT_MS, 100)?,
    })
}

/// A redis-server child, stopped when dropped.
struct LocalRedis {
    child: Child,
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn start_redis(dir: &Path) -> Result<(LocalRedis, String), String> {
    let server = find_in_path("redis-server").ok_or(
        "redis-server not found. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server) \
         or set REDTAIL_REDIS_URL to a running Redis.",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let child = Command::new(server)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting redis-server: {e}"))?;
    let redis = LocalRedis { child };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "redis-server did not listen on port {port} within 5 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((redis, format!("redis://127.0.0.1:{port}")))
}

/// Runs the three roles in this process until shutdown; the first to fail stops the demo.
pub async fn run(plan: DemoPlan, ctx: &RoleContext) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("redtail-demo-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?;
    let (_redis, target) = match plan.target {
        Some(target) => (None, target),
        None => {
            let (redis, url) = start_redis(dir.path())?;
            (Some(redis), RedisTarget::new(url))
        }
    };
    let log_path = dir.path().join("app.log");
    let source = format!("demo-{}", roles::host_name());
    let generator = redtail_generator::Config {
        log_path: log_path.clone(),
        rate: plan.rate,
        count: 0,
        seed: plan.seed,
        rotate_bytes: 0,
        rotate_keep: 5,
        host: roles::host_name(),
        service: "app".into(),
    };
    // The generator's JSON goes to app.log; a second file holds the realistic mix of other
    // formats (mix.rs). The watcher tails both through a glob.
    let mix_path = dir.path().join("services.log");
    let watched = dir.path().join("*.log");
    let watcher = redtail_watcher::Config {
        log_path: watched,
        checkpoint_path: dir.path().join("checkpoint.json"),
        checkpoint_every_lines: 1000,
        checkpoint_interval: Duration::from_secs(1),
        start_at: StartAt::Beginning,
        source: source.clone(),
        max_line_bytes: 1 << 20,
        batch_max_lines: 1024,
        batch_max_bytes: 1 << 20,
        batch_linger: redtail_watcher::Config::DEFAULT_BATCH_LINGER,
        read_buffer_bytes: 256 * 1024,
        poll_interval: Duration::from_millis(250),
        rotate_wait: Duration::from_secs(5),
        max_open_files: 256,
        close_inactive: Duration::from_secs(300),
        target: target.clone(),
        mode: if plan.pubsub {
            Mode::PubSub {
                channel: "logs".into(),
            }
        } else {
            Mode::Stream {
                key: "redtail:logs".into(),
                maxlen: 1_000_000,
            }
        },
        shutdown_timeout: plan.shutdown_timeout,
        replica_acks: 0,
        replica_ack_timeout: redtail_watcher::Config::DEFAULT_REPLICA_ACK_TIMEOUT,
        // The demo's mix has Java stack traces: one event each.
        multiline: redtail_tail::MultilineConfig {
            mode: redtail_tail::MultilineMode::Java,
            ..redtail_tail::MultilineConfig::default()
        },
    };
    let subscriber = redtail_subscriber::Config {
        target: target.clone(),
        stream: "redtail:logs".into(),
        channel: "logs".into(),
        pubsub: plan.pubsub,
        group: "redtail-demo".into(),
        consumer: source,
        output_format: redtail_subscriber::OutputFormat::Udm,
        output_path: None,
        claim_idle: Duration::from_secs(30),
        batch_size: 512,
        block: Duration::from_secs(1),
        parse: redtail_subscriber::ParseMode::Auto,
        parse_regex: None,
        udm: redtail_subscriber::UdmOptions::default(),
        stream_refresh: redtail_subscriber::Config::DEFAULT_STREAM_REFRESH,
        sink: None,
        dead_consumer_idle: redtail_subscriber::Config::DEFAULT_DEAD_CONSUMER_IDLE,
    };
    eprintln!("redtail demo");
    eprintln!(
        "  redis:   {}{}",
        target.redacted(),
        if _redis.is_some() {
            " (started here; stopped on exit)"
        } else {
            ""
        }
    );
    eprintln!("  app.log: {} (the generator's JSON)", log_path.display());
    eprintln!(
        "  mix:     {} (text, access log, logfmt, syslog, JSON, stack traces)",
        mix_path.display()
    );
    if let Some(url) = &ctx.metrics_url {
        eprintln!("  metrics: {url}  (also /healthz and /readyz)");
    }
    eprintln!("  events below; Ctrl-C to stop\n");
    let result = tokio::try_join!(
        crate::demo_mix::write(mix_path.clone(), plan.rate, ctx.shutdown.clone()),
        async {
            runner::generate(generator, ctx)
                .await
                .map_err(|e| format!("generator: {e}"))
        },
        async {
            runner::watch(watcher, ctx)
                .await
                .map_err(|e| format!("watcher: {e}"))
        },
        async {
            runner::subscribe(subscriber, ctx)
                .await
                .map_err(|e| format!("subscriber: {e}"))
        },
    );
    drop(_redis);
    result.map(|_| ())
}
