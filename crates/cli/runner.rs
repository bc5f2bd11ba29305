//! Process plumbing around a role: logging, metrics registry, admin server,
//! signals and the shutdown deadline, and the roles' start-up on it. Every command
//! goes through here, so they all start, report and stop the same way.

use std::future::Future;
use std::process::ExitCode;

use prometheus::{IntGauge, Registry};
use redtail_telemetry::admin::{self, AdminState};
use redtail_telemetry::metrics::CommonMetrics;
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::{self, Shutdown};

use crate::env::{ConfigError, Env};
use crate::roles::{self, Process};
use crate::vars::Command;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a role gets from the process.
pub struct RoleContext {
    pub registry: Registry,
    pub common: CommonMetrics,
    pub readiness: Readiness,
    pub liveness: Liveness,
    pub shutdown: Shutdown,
    /// `http://addr/metrics` when the admin server runs.
    pub metrics_url: Option<String>,
}

/// Exit status 1 with a one-line message (runtime failure that cannot be retried).
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("redtail: {message}");
    ExitCode::from(1)
}

/// Starts the plumbing, runs `role`, and turns its result into an exit status.
pub async fn run_role<F, Fut, E>(roles: &[&str], process: Process, role: F) -> ExitCode
where
    F: FnOnce(RoleContext) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let registry = Registry::new();
    let common = match CommonMetrics::register(&registry) {
        Ok(common) => common,
        Err(e) => return fail(format!("registering metrics: {e}")),
    };
    for role in roles {
        common.set_build_info(VERSION, role);
    }
    let readiness = Readiness::default();
    // Not ready until the role says so: the admin server answers before the
    // role's first step, and a readiness with no conditions would say "ready".
    for role in roles {
        match *role {
            "watch" => {
                readiness.set_failing("checkpoint", "not loaded yet");
                readiness.set_failing("redis", "not connected yet");
            }
            "subscribe" => readiness.set_failing("redis", "not connected yet"),
            _ => {}
        }
    }
    let liveness = Liveness::new(process.liveness_timeout);
    let (trigger, shutdown) = Shutdown::new();

    let mut metrics_url = None;
    if let Some(addr) = process.metrics_addr {
        let listener = match admin::bind(addr).await {
            Ok(listener) => listener,
            Err(e) => return fail(format!("binding REDTAIL_METRICS_ADDR {addr}: {e}")),
        };
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(addr = %local, "Metrics on http://{local}/metrics (and /healthz, /readyz).");
        metrics_url = Some(format!("http://{local}/metrics"));
        let state = AdminState {
            registry: registry.clone(),
            readiness: readiness.clone(),
            liveness: liveness.clone(),
        };
        tokio::spawn(admin::serve(listener, state, shutdown.wait_owned()));
    }

    let timeout = process.shutdown_timeout;
    tokio::spawn(async move {
        let signal = shutdown::signal().await;
        tracing::info!(signal, "Shutting down.");
        trigger.trigger();
        tokio::time::sleep(timeout).await;
        tracing::error!(
            timeout_ms = timeout.as_millis() as u64,
            "Graceful shutdown took too long; exiting."
        );
        std::process::exit(1);
    });

    let context = RoleContext {
        registry,
        common,
        readiness,
        liveness,
        shutdown,
        metrics_url,
    };
    match role(context).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// A command's validated configuration: everything is parsed before the runtime starts.
#[derive(Debug)]
pub enum Role {
    Generate(redtail_generator::Config),
    Watch(redtail_watcher::Config),
    Subscribe(redtail_subscriber::Config),
    Demo(crate::demo::DemoPlan),
}

impl Role {
    pub fn from_env(command: &Command, env: &Env) -> Result<Role, ConfigError> {
        Ok(match command.name {
            "generate" => Role::Generate(roles::generate(env)?),
            "watch" => Role::Watch(roles::watch(env)?),
            "subscribe" => Role::Subscribe(roles::subscribe(env)?),
            _ => Role::Demo(crate::demo::plan(env)?),
        })
    }

    pub async fn run(self, ctx: RoleContext) -> Result<(), String> {
        match self {
            Role::Generate(config) => generate(config, &ctx).await,
            Role::Watch(config) => watch(config, &ctx).await,
            Role::Subscribe(config) => subscribe(config, &ctx).await,
            Role::Demo(plan) => crate::demo::run(plan, &ctx).await,
        }
    }
}

/// `redtail generate` (also the demo's generator).
pub async fn generate(config: redtail_generator::Config, ctx: &RoleContext) -> Result<(), String> {
    let metrics = redtail_generator::Metrics::register(&ctx.registry).map_err(|e| e.to_string())?;
    ctx.readiness.set_ok("generator");
    let summary =
        redtail_generator::run(config, metrics, ctx.liveness.clone(), ctx.shutdown.clone())
            .await
            .map_err(|e| e.to_string())?;
    tracing::info!(
        lines = summary.lines,
        next_seq = summary.next_seq,
        "Generator stopped."
    );
    Ok(())
}

/// `redtail watch` (also the demo's watcher).
pub async fn watch(config: redtail_watcher::Config, ctx: &RoleContext) -> Result<(), String> {
    start_redis_role(
        ctx,
        config,
        redtail_watcher::Metrics::register,
        redtail_watcher::run,
    )
    .await
}

/// `redtail subscribe` (also the demo's subscriber).
pub async fn subscribe(
    config: redtail_subscriber::Config,
    ctx: &RoleContext,
) -> Result<(), String> {
    start_redis_role(
        ctx,
        config,
        redtail_subscriber::Metrics::register,
        redtail_subscriber::run,
    )
    .await
}

/// The start-up the two Redis roles share: register the role's metrics on the process
/// registry, then run it with the process's Redis gauge, readiness, liveness and
/// shutdown. One place, so watch and subscribe cannot drift apart in what they are given.
async fn start_redis_role<C, M, RegErr, Fut, RunErr>(
    ctx: &RoleContext,
    config: C,
    register: impl FnOnce(&Registry) -> Result<M, RegErr>,
    run: impl FnOnce(C, M, IntGauge, Readiness, Liveness, Shutdown) -> Fut,
) -> Result<(), String>
where
    RegErr: std::fmt::Display,
    Fut: Future<Output = Result<(), RunErr>>,
    RunErr: std::fmt::Display,
{
    let metrics = register(&ctx.registry).map_err(|e| e.to_string())?;
    run(
        config,
        metrics,
        ctx.common.redis_up.clone(),
        ctx.readiness.clone(),
        ctx.liveness.clone(),
        ctx.shutdown.clone(),
    )
    .await
    .map_err(|e| e.to_string())
}
