//! The password in the Redis URL never appears in any output: logs, metrics, readiness,
//! `--help`, or the errors of a refused or unreachable server.

use std::process::Command;
use std::time::Duration;

use crate::acl::{acl_setuser, SUBSCRIBER_RULES, WATCHER_RULES};
use crate::support::*;
use crate::T;

const SECRET: &str = "Canary-pw-7f3a9c";

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET),
        "the password leaked into {what}:\n{text}"
    );
}

/// The password in REDTAIL_REDIS_URL never shows: not in the logs (text or
/// JSON, at debug level), not in the metrics or readiness bodies, not in
/// --help, not in the errors of a refused login or an unreachable server.
#[test]
fn password_never_appears_in_output() {
    let redis = RedisServer::start();
    acl_setuser(&redis, "redtail-watcher", WATCHER_RULES, SECRET);
    acl_setuser(&redis, "redtail-subscriber", SUBSCRIBER_RULES, SECRET);
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 500);
    let good = |user: &str| format!("redis://{user}:{SECRET}@127.0.0.1:{}/0", redis.port);
    let verbose = |mut env: Vec<(&'static str, String)>, url: String, json: bool| {
        env.retain(|(k, _)| *k != "REDTAIL_REDIS_URL");
        env.push(("REDTAIL_REDIS_URL", url));
        env.push(("RUST_LOG", "debug".to_string()));
        env.push((
            "REDTAIL_LOG_FORMAT",
            if json { "json" } else { "text" }.to_string(),
        ));
        env
    };

    // 1. Working pipeline, debug logs.
    let mut watcher = scene.start(
        "watch",
        &verbose(
            scene.watcher_env(&redis, "stream"),
            good("redtail-watcher"),
            true,
        ),
    );
    let mut subscriber = scene.start(
        "subscribe",
        &verbose(
            scene.subscriber_env(&redis, "stream"),
            good("redtail-subscriber"),
            false,
        ),
    );
    wait_until(T, "lines through", || {
        output_lines(&scene.output_bytes()).len() == 500
    });
    for p in [&watcher, &subscriber] {
        for path in ["/metrics", "/readyz", "/healthz"] {
            assert_no_secret(&format!("{} {path}", p.command), &p.http_get(path).1);
        }
    }
    assert!(watcher.terminate(Duration::from_secs(15)).success());
    assert!(subscriber.terminate(Duration::from_secs(15)).success());
    assert!(
        watcher.stderr().contains("127.0.0.1"),
        "the log names the server (redacted):\n{}",
        watcher.stderr()
    );
    for p in [&watcher, &subscriber] {
        let log = p.stderr();
        assert_no_secret(&format!("{} stderr", p.command), &log);
        assert_no_secret(
            &format!("{} stdout", p.command),
            &String::from_utf8_lossy(&p.stdout()),
        );
    }

    // 2. Wrong password: a clear, non-retryable failure (exit 1), no echo of it.
    let wrong = format!(
        "redis://redtail-watcher:{SECRET}-wrong@127.0.0.1:{}",
        redis.port
    );
    let mut env = verbose(scene.watcher_env(&redis, "stream"), wrong.clone(), false);
    env.push((
        "REDTAIL_CHECKPOINT_PATH",
        scene.path("wrong/cp.json").display().to_string(),
    ));
    let mut refused_watcher = scene.start("watch", &env);
    let status = refused_watcher.wait_exit(T);
    assert_eq!(status.code(), Some(1), "{}", refused_watcher.stderr());
    assert_no_secret("refused watcher stderr", &refused_watcher.stderr());
    let env = verbose(scene.subscriber_env(&redis, "stream"), wrong, true);
    let mut refused_subscriber = scene.start("subscribe", &env);
    let status = refused_subscriber.wait_exit(T);
    assert_eq!(status.code(), Some(1), "{}", refused_subscriber.stderr());
    assert_no_secret("refused subscriber stderr", &refused_subscriber.stderr());

    // 3. Nothing listening: retries, not ready; the reason shows, the password not.
    let closed = format!("redis://redtail-watcher:{SECRET}@127.0.0.1:{}", free_port());
    let mut env = verbose(scene.watcher_env(&redis, "stream"), closed.clone(), true);
    env.push((
        "REDTAIL_CHECKPOINT_PATH",
        scene.path("closed/cp.json").display().to_string(),
    ));
    let down_watcher = scene.start("watch", &env);
    let down_subscriber = scene.start(
        "subscribe",
        &verbose(scene.subscriber_env(&redis, "stream"), closed, false),
    );
    std::thread::sleep(Duration::from_secs(3));
    for p in [&down_watcher, &down_subscriber] {
        let (status, body) = p.http_get("/readyz");
        assert_eq!(status, 503, "{}", p.command);
        assert_no_secret(&format!("{} /readyz", p.command), &body);
        assert_no_secret(&format!("{} /metrics", p.command), &p.metrics().0);
        assert_no_secret(&format!("{} stderr", p.command), &p.stderr());
    }

    // 4. --help and usage errors with the password in the environment.
    for cmd in ["watch", "subscribe", "generate", "demo"] {
        for args in [vec![cmd, "--help"], vec![cmd, "unexpected-arg"]] {
            let out = Command::new(BIN)
                .args(&args)
                .env_clear()
                .env("REDTAIL_REDIS_URL", good("u"))
                .output()
                .unwrap();
            assert_no_secret(
                &format!("{args:?} stdout"),
                &String::from_utf8_lossy(&out.stdout),
            );
            assert_no_secret(
                &format!("{args:?} stderr"),
                &String::from_utf8_lossy(&out.stderr),
            );
        }
    }
    // An invalid value elsewhere, a password in the URL, a TLS file that is missing.
    for (k, v) in [
        ("REDTAIL_MODE", "kafka"),
        ("REDTAIL_REDIS_CA_PATH", "/nonexistent/ca.pem"),
    ] {
        let out = Command::new(BIN)
            .arg("watch")
            .env_clear()
            .env(
                "REDTAIL_REDIS_URL",
                good("u").replace("redis://", "rediss://"),
            )
            .env("REDTAIL_METRICS_ADDR", "off")
            .env(
                "REDTAIL_CHECKPOINT_PATH",
                scene.path("cfg/cp.json").display().to_string(),
            )
            .env("REDTAIL_LOG_PATH", scene.log().display().to_string())
            .env(k, v)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{k}={v}");
        assert_no_secret(&format!("{k}={v}"), &String::from_utf8_lossy(&out.stderr));
    }
}
