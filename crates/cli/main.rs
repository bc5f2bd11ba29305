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
use runner::{run_role, Role, VERSION};
use vars::Command;

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
        Some(name) => match vars::command(name) {
            Some(command) => command,
            None => {
                eprintln!("redtail: unknown command {name:?}; expected generate, watch, subscribe or demo (see redtail --help)");
                return ExitCode::from(2);
            }
        },
    };
    let name = command.name;
    if args[1..].iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", command.help_text());
        return ExitCode::SUCCESS;
    }
    if let Some(extra) = args.get(1) {
        eprintln!("redtail {name}: unexpected argument {extra:?}; configuration is by environment variables (see redtail {name} --help)");
        return ExitCode::from(2);
    }

    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let env = match Env::from_iter(vars) {
        Ok(env) => env,
        Err(e) => return usage_error(e),
    };
    match run(command, &env) {
        Ok(code) => code,
        Err(e) => usage_error(e),
    }
}

fn usage_error(e: ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(2)
}

/// Validates everything first, then starts the runtime and the role.
fn run(command: &Command, env: &Env) -> Result<ExitCode, ConfigError> {
    let process = roles::process(env, command)?;
    let role = Role::from_env(command, env)?;
    if let Err(e) = redtail_telemetry::logging::init(process.log_format, &process.rust_log) {
        return Err(ConfigError(format!(
            "RUST_LOG: expected a tracing filter such as info or redtail=debug ({e})"
        )));
    }
    for name in env.unknown_names() {
        tracing::warn!(variable = %name, "Unknown variable ignored (a typo?).");
    }
    // The watcher runs on one thread: its pipeline and the Redis connection's task share
    // it, so a batch at a live rate costs two wake-ups of this thread (the reader's item,
    // Redis's reply) instead of hops between threads — the wake-ups are most of what a
    // batch costs on a small VM. The reader and the checkpoint writer keep their own
    // threads. (A/B in the README, "Live-rate efficiency".)
    let mut builder = if matches!(role, Role::Watch(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().thread_name("redtail").build() {
        Ok(rt) => rt,
        Err(e) => return Ok(runner::fail(format!("starting the runtime: {e}"))),
    };
    let watch = matches!(role, Role::Watch(_));
    let roles = command.roles;
    let main = async move {
        let role = role;
        run_role(roles, process, |ctx| role.run(ctx)).await
    };
    if !watch {
        return Ok(runtime.block_on(main));
    }
    // `watch` runs as a spawned task, not as `block_on`'s own future: on the current-thread
    // runtime a task that wakes `block_on`'s future (the Redis connection's task, with every
    // reply) also writes the runtime's eventfd and costs one more turn of the reactor, while
    // a task waking a task is a queue push. Measured at 10 000 lines/s (live.sh, five runs
    // each): 3.5–5.4 CPU-µs per line against 4.6–6.1, the same syscalls less one epoll_wait
    // per batch. A panic in the role ends in a one-line error and exit 1. (The other roles
    // stay `block_on`'s future: spawned from a multi-thread worker, the signal task would wait
    // in that worker's LIFO slot until the role first yields, and `demo` blocks before that.)
    Ok(runtime.block_on(async move {
        match tokio::spawn(main).await {
            Ok(code) => code,
            Err(e) => runner::fail(format!("the role's task ended abnormally: {e}")),
        }
    }))
}
