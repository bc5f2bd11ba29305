//! `redtail`: one binary, four commands. This crate only wires the libraries
//! together: it reads the environment, validates it (exit 2 on a bad value,
//! before any file or socket is opened), and runs the chosen role.
#![forbid(unsafe_code)]

mod demo;
mod demo_mix;
mod env;
mod roles;
mod runner;
mod secops_env;
mod vars;

use std::process::ExitCode;

use env::{ConfigError, Env};
use runner::{run_role, VERSION};

const USAGE: &str =
    "redtail: log shipping for Kubernetes — every line of app.log into Redis, exactly once.

Usage: redtail <command> [--help]
       redtail --version

Commands:
  generate   append JSON log lines to REDTAIL_LOG_PATH (an application stand-in)
  watch      tail the log file(s), publish each complete line to Redis, checkpoint offsets
  subscribe  consume from Redis, parse, write events out, acknowledge
  demo       run all three locally (starts its own redis-server unless REDTAIL_REDIS_URL is set)

Configuration is by environment variables: `redtail <command> --help` lists them.";

fn summary(command: &str) -> &'static str {
    match command {
        "generate" => "append JSON log lines to a file",
        "watch" => "tail log files and publish every line to Redis exactly once",
        "subscribe" => "consume lines from Redis and write normalized events",
        "demo" => "generator, watcher and subscriber together, locally",
        _ => "",
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Some("-V" | "--version" | "version") => {
            println!("redtail {VERSION}");
            return ExitCode::SUCCESS;
        }
        Some(c @ ("generate" | "watch" | "subscribe" | "demo")) => c.to_string(),
        Some(other) => {
            eprintln!("redtail: unknown command {other:?}; expected generate, watch, subscribe or demo (see redtail --help)");
            return ExitCode::from(2);
        }
    };
    if args[1..].iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", vars::help_text(&command, summary(&command)));
        return ExitCode::SUCCESS;
    }
    if let Some(extra) = args.get(1) {
        eprintln!("redtail {command}: unexpected argument {extra:?}; configuration is by environment variables (see redtail {command} --help)");
        return ExitCode::from(2);
    }

    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let env = match Env::from_iter(vars) {
        Ok(env) => env,
        Err(e) => return usage_error(e),
    };
    match run(&command, &env) {
        Ok(code) => code,
        Err(e) => usage_error(e),
    }
}

fn usage_error(e: ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(2)
}

/// Validates everything first, then starts the runtime and the role.
fn run(command: &str, env: &Env) -> Result<ExitCode, ConfigError> {
    let (default_addr, role_names): (&str, &[&str]) = match command {
        "generate" => ("0.0.0.0:9101", &["generate"]),
        "watch" => ("0.0.0.0:9102", &["watch"]),
        "subscribe" => ("0.0.0.0:9103", &["subscribe"]),
        _ => ("127.0.0.1:0", &["generate", "watch", "subscribe"]),
    };
    let process = roles::process(env, default_addr)?;
    enum Role {
        Generate(redtail_generator::Config),
        Watch(redtail_watcher::Config),
        Subscribe(redtail_subscriber::Config),
        Demo(demo::DemoPlan),
    }
    let role = match command {
        "generate" => Role::Generate(roles::generate(env)?),
        "watch" => Role::Watch(roles::watch(env)?),
        "subscribe" => Role::Subscribe(roles::subscribe(env)?),
        _ => Role::Demo(demo::plan(env)?),
    };
    if let Err(e) = redtail_telemetry::logging::init(process.log_format, &process.rust_log) {
        return Err(ConfigError(format!(
            "RUST_LOG: expected a tracing filter such as info or redtail=debug ({e})"
        )));
    }
    for name in env.unknown_names() {
        tracing::warn!(variable = %name, "Unknown variable ignored (a typo?).");
    }
    // The watcher's pipeline runs on this thread (block_on) and the Redis connection's task
    // on one worker: they overlap in a drain, and no second idle worker is woken per batch
    // at live rates. (A current-thread runtime, tried first, cut live CPU at 1 000 lines/s
    // by a third but slowed the backlog drain by ~40 %.)
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(role, Role::Watch(_)) {
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().thread_name("redtail").build() {
        Ok(rt) => rt,
        Err(e) => return Ok(runner::fail(format!("starting the runtime: {e}"))),
    };
    let code = runtime.block_on(async move {
        match role {
            Role::Generate(config) => {
                run_role(role_names, process, |ctx| async move {
                    let metrics = redtail_generator::Metrics::register(&ctx.registry)
                        .map_err(|e| e.to_string())?;
                    ctx.readiness.set_ok("generator");
                    let summary =
                        redtail_generator::run(config, metrics, ctx.liveness, ctx.shutdown)
                            .await
                            .map_err(|e| e.to_string())?;
                    tracing::info!(
                        lines = summary.lines,
                        next_seq = summary.next_seq,
                        "Generator stopped."
                    );
                    Ok::<(), String>(())
                })
                .await
            }
            Role::Watch(config) => {
                run_role(role_names, process, |ctx| async move {
                    let metrics = redtail_watcher::Metrics::register(&ctx.registry)
                        .map_err(|e| e.to_string())?;
                    redtail_watcher::run(
                        config,
                        metrics,
                        ctx.common.redis_up.clone(),
                        ctx.readiness,
                        ctx.liveness,
                        ctx.shutdown,
                    )
                    .await
                    .map_err(|e| e.to_string())
                })
                .await
            }
            Role::Subscribe(config) => {
                run_role(role_names, process, |ctx| async move {
                    let metrics = redtail_subscriber::Metrics::register(&ctx.registry)
                        .map_err(|e| e.to_string())?;
                    redtail_subscriber::run(
                        config,
                        metrics,
                        ctx.common.redis_up.clone(),
                        ctx.readiness,
                        ctx.liveness,
                        ctx.shutdown,
                    )
                    .await
                    .map_err(|e| e.to_string())
                })
                .await
            }
            Role::Demo(plan) => demo::run(plan, process).await,
        }
    });
    Ok(code)
}
