//! The secure configuration works and is tight: TLS (with client
//! certificates), ACL users with the minimal rules the README gives, no
//! password in any output, no root needed, private checkpoint files.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const T: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- TLS

/// A CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, made with `openssl` in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Pki {
        assert!(
            which("openssl").is_some(),
            "openssl not found: apt-get install -y openssl (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("redtail-pki-")
            .tempdir()
            .unwrap();
        let pki = Pki { dir };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for ca in ["ca", "other-ca"] {
            pki.openssl(
                &[
                    &["req", "-x509", "-nodes", "-days", "2"][..],
                    &ec[..],
                    &[
                        "-keyout",
                        &format!("{ca}.key"),
                        "-out",
                        &format!("{ca}.crt"),
                        "-subj",
                        &format!("/CN=redtail test {ca}"),
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ][..],
                ]
                .concat(),
            );
        }
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n",
            ),
            (
                "client",
                "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n",
            ),
        ] {
            std::fs::write(pki.path(&format!("{name}.ext")), ext).unwrap();
            pki.openssl(
                &[
                    &["req", "-nodes"][..],
                    &ec[..],
                    &[
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.csr"),
                        "-subj",
                        &format!("/CN=redtail-{name}"),
                    ][..],
                ]
                .concat(),
            );
            pki.openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        pki
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// redis-server with TLS on `tls_port` (client certificates required) next to
/// the plain loopback port the harness uses to inspect what arrived.
fn tls_redis(pki: &Pki, tls_port: u16) -> RedisServer {
    let port = tls_port.to_string();
    let (cert, key, ca) = (pki.s("server.crt"), pki.s("server.key"), pki.s("ca.crt"));
    RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "yes",
    ])
}

fn with_tls(
    mut env: Vec<(&'static str, String)>,
    url: &str,
    tls: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    env.retain(|(k, _)| *k != "REDTAIL_REDIS_URL");
    env.push(("REDTAIL_REDIS_URL", url.to_string()));
    env.extend(tls.iter().cloned());
    env
}

/// `rediss://` with the test CA and a client certificate: the whole pipeline
/// runs over mutual TLS, exactly once.
#[test]
fn tls_pipeline_with_client_certificate() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let redis = tls_redis(&pki, tls_port);
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let tls = [
        ("REDTAIL_REDIS_CA_PATH", pki.s("ca.crt")),
        ("REDTAIL_REDIS_CLIENT_CERT_PATH", pki.s("client.crt")),
        ("REDTAIL_REDIS_CLIENT_KEY_PATH", pki.s("client.key")),
    ];
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 5_000);
    let watcher = scene.start(
        "watch",
        &with_tls(scene.watcher_env(&redis, "stream"), &url, &tls),
    );
    let subscriber = scene.start(
        "subscribe",
        &with_tls(scene.subscriber_env(&redis, "stream"), &url, &tls),
    );
    wait_until(T, "5 000 lines over TLS", || {
        seq_counts(output_lines(&scene.output_bytes())).len() == 5_000
    });
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        5_000,
        "stream over TLS",
    );
    assert_eq!(watcher.http_get("/readyz").0, 200);
    assert_eq!(subscriber.http_get("/readyz").0, 200);
    // The connections really are TLS connections on the TLS port.
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.conn())
        .unwrap();
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")),
        "no client on the TLS port:\n{clients}"
    );
}

/// Without a client certificate, or trusting another CA, nothing is sent:
/// not ready, Redis down in the metrics, and the reason in the log.
#[test]
fn tls_refuses_unknown_ca_and_missing_client_certificate() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let redis = tls_redis(&pki, tls_port);
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 100);
    let cases = [
        (
            "no client certificate",
            vec![("REDTAIL_REDIS_CA_PATH", pki.s("ca.crt"))],
        ),
        (
            "server certificate from an untrusted CA",
            vec![
                ("REDTAIL_REDIS_CA_PATH", pki.s("other-ca.crt")),
                ("REDTAIL_REDIS_CLIENT_CERT_PATH", pki.s("client.crt")),
                ("REDTAIL_REDIS_CLIENT_KEY_PATH", pki.s("client.key")),
            ],
        ),
    ];
    let watchers: Vec<(&str, Redtail)> = cases
        .iter()
        .enumerate()
        .map(|(i, (what, tls))| {
            let mut env = with_tls(scene.watcher_env(&redis, "stream"), &url, tls);
            env.push((
                "REDTAIL_CHECKPOINT_PATH",
                scene
                    .path(&format!("state{i}/cp.json"))
                    .display()
                    .to_string(),
            ));
            (*what, scene.start("watch", &env))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    for (what, watcher) in &watchers {
        let (status, body) = watcher.http_get("/readyz");
        assert_eq!(status, 503, "{what}: must not be ready ({body})");
        assert!(body.contains("redis"), "{what}: {body}");
        assert_eq!(
            watcher.metrics().value("redtail_watcher_redis_up"),
            0.0,
            "{what}"
        );
    }
    assert_eq!(redis.xlen("redtail:logs"), 0, "nothing got through");
}

// ---------------------------------------------------------------- ACL

/// The minimal rules of the README's Security section (password appended).
const WATCHER_RULES: &str = "on resetkeys ~redtail:offsets ~redtail:logs resetchannels &logs -@all +ping +evalsha +eval +script|load +hmget +hscan +hget +hset +hdel +xadd +xtrim +publish";
const SUBSCRIBER_RULES: &str = "on resetkeys ~redtail:logs resetchannels &logs -@all +ping +xreadgroup +xack +xgroup|create +xautoclaim +xpending +xinfo|groups +subscribe +evalsha +script|load +xinfo|consumers +xgroup|delconsumer";

fn acl_setuser(redis: &RedisServer, user: &str, rules: &str, password: &str) {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(user);
    for rule in rules.split_whitespace() {
        cmd.arg(rule);
    }
    cmd.arg(format!(">{password}"));
    let _: String = cmd.query(&mut redis.conn()).expect("ACL SETUSER");
}

fn user_conn(redis: &RedisServer, user: &str, password: &str) -> redis::Connection {
    redis::Client::open(format!(
        "redis://{user}:{password}@127.0.0.1:{}",
        redis.port
    ))
    .unwrap()
    .get_connection_with_timeout(Duration::from_secs(2))
    .expect("connect as ACL user")
}

fn refused(conn: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(conn) {
        Ok(v) => panic!("{args:?} was allowed: {v:?}"),
        Err(e) => {
            assert_eq!(e.code(), Some("NOPERM"), "{args:?}: {e}");
            e.to_string()
        }
    }
}

fn acl_log_len(redis: &RedisServer) -> usize {
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .arg(1000)
        .query(&mut redis.conn())
        .unwrap();
    log.len()
}

/// Both roles, in both modes, under ACL users with the minimal rules; ACL LOG
/// stays empty (nothing they do is refused); then what they must not do is refused.
#[test]
fn acl_users_with_minimal_rules() {
    let redis = RedisServer::start();
    acl_setuser(&redis, "redtail-watcher", WATCHER_RULES, "w-pass-1");
    acl_setuser(&redis, "redtail-subscriber", SUBSCRIBER_RULES, "s-pass-2");
    let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{}", redis.port);
    let set_url = |mut env: Vec<(&'static str, String)>, u: String| {
        env.retain(|(k, _)| *k != "REDTAIL_REDIS_URL");
        env.push(("REDTAIL_REDIS_URL", u));
        env
    };

    for (mode, n) in [("stream", 5_000u64), ("pubsub", 2_000)] {
        let mut scene = Scene::new();
        // Same first line, maybe a recycled inode: a distinct source keeps the
        // second run from being taken for the first run's (committed) file.
        scene.source = format!("acl-{mode}");
        let mut subscriber = scene.start(
            "subscribe",
            &set_url(
                scene.subscriber_env(&redis, mode),
                url("redtail-subscriber", "s-pass-2"),
            ),
        );
        wait_until(T, "subscriber ready", || {
            subscriber.http_get("/readyz").0 == 200
        });
        let mut watcher = scene.start(
            "watch",
            &set_url(
                scene.watcher_env(&redis, mode),
                url("redtail-watcher", "w-pass-1"),
            ),
        );
        prewrite_lines(&scene.log(), 0, n);
        wait_until(T, &format!("{mode}: all lines at the subscriber"), || {
            seq_counts(output_lines(&scene.output_bytes())).len() == n as usize
        });
        assert_exactly_once(
            &seq_counts(output_lines(&scene.output_bytes())),
            n,
            &format!("{mode} subscriber output under ACL users"),
        );
        assert!(watcher.terminate(Duration::from_secs(15)).success());
        assert!(subscriber.terminate(Duration::from_secs(15)).success());
        assert_eq!(
            acl_log_len(&redis),
            0,
            "{mode}: a role was refused something it needs: {:?}",
            redis_admin(&redis, &["ACL", "LOG"])
        );
    }
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        5_000,
        "stream under ACL users",
    );

    // What the roles must not do.
    let mut w = user_conn(&redis, "redtail-watcher", "w-pass-1");
    refused(&mut w, &["FLUSHALL"]);
    refused(&mut w, &["CONFIG", "GET", "requirepass"]);
    refused(&mut w, &["KEYS", "*"]);
    refused(&mut w, &["HGET", "session:42", "token"]); // allowed command, foreign key
    refused(&mut w, &["XADD", "other:stream", "*", "a", "b"]);
    refused(
        &mut w,
        &[
            "XREADGROUP",
            "GROUP",
            "redtail",
            "x",
            "STREAMS",
            "redtail:logs",
            ">",
        ],
    );
    let mut s = user_conn(&redis, "redtail-subscriber", "s-pass-2");
    refused(&mut s, &["FLUSHALL"]);
    refused(&mut s, &["XADD", "redtail:logs", "*", "line", "forged"]);
    refused(&mut s, &["HSET", "redtail:offsets", "src:fid", "0"]);
    refused(&mut s, &["XRANGE", "session:stream", "-", "+"]);
    refused(&mut s, &["PUBLISH", "logs", "forged"]);
    refused(&mut s, &["EVAL", "return redis.call('FLUSHALL')", "0"]);
    assert!(acl_log_len(&redis) >= 12, "the refusals are in ACL LOG");
}

/// A watcher user without `+xtrim` (an older copy of the rules): the stream
/// trim is refused inside the publish script. Every batch must still be
/// published exactly once — the offset is stored before the trim — and the
/// refusal counted, not retried into duplicates.
#[test]
fn refused_trim_never_duplicates() {
    let redis = RedisServer::start();
    let rules = WATCHER_RULES.replace(" +xtrim", "");
    acl_setuser(&redis, "old-watcher", &rules, "w-pass-3");
    let scene = Scene::new();
    let mut env = scene.watcher_env(&redis, "stream");
    env.retain(|(k, _)| *k != "REDTAIL_REDIS_URL");
    env.push((
        "REDTAIL_REDIS_URL",
        format!("redis://old-watcher:w-pass-3@127.0.0.1:{}", redis.port),
    ));
    env.push(("REDTAIL_STREAM_MAXLEN", "1000".to_string()));
    prewrite_lines(&scene.log(), 0, 5_000);
    let watcher = scene.start("watch", &env);
    wait_until(T, "all published", || {
        watcher
            .metrics()
            .get("redtail_watcher_lines_published_total", &[])
            == Some(5_000.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        5_000,
        "stream with the trim refused",
    );
    let m = watcher.metrics();
    assert!(m.value("redtail_watcher_trim_errors_total") >= 1.0);
    assert_eq!(m.value("redtail_watcher_duplicates_skipped_total"), 0.0);
    assert!(
        watcher.stderr().contains("refused XTRIM"),
        "{}",
        watcher.stderr()
    );
}

// ---------------------------------------------------------------- secrets

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

// ---------------------------------------------------------------- root, modes

/// A `redtail` child run as another user (uid/gid), killed on drop.
struct AsUser {
    child: Child,
    stderr: PathBuf,
}

impl AsUser {
    fn start(command: &str, uid: Option<u32>, env: &[(&str, String)], dir: &Path) -> AsUser {
        use std::os::unix::process::CommandExt;
        let stderr = dir.join(format!("{command}-unprivileged.stderr"));
        let mut cmd = Command::new(BIN);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let child = cmd
            .arg(command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REDTAIL_METRICS_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn as user");
        AsUser { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn admin(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(i) = log.find("Metrics on http://") {
                let rest = &log[i + "Metrics on http://".len()..];
                if let Some(end) = rest.find('/') {
                    return rest[..end].to_string();
                }
            }
            assert!(Instant::now() < deadline, "no metrics address:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The three roles run as an unprivileged user (65534, "nobody") when the
/// tests run as root; the checkpoint and its temp files are 0600 whatever the
/// umask.
#[test]
fn runs_without_root_and_keeps_checkpoint_private() {
    use std::os::unix::fs::MetadataExt;
    const N: u64 = 1_000;
    let redis = RedisServer::start();
    let scene = Scene::new();
    // As root, drop to 65534 ("nobody"); otherwise we already are unprivileged.
    let uid = if is_root() { Some(65534) } else { None };
    let state = scene.path("state");
    std::fs::create_dir_all(&state).unwrap();
    if let Some(uid) = uid {
        for p in [scene.dir.path(), state.as_path()] {
            std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
        }
    }

    let mut generator = AsUser::start(
        "generate",
        uid,
        &scene.generator_env(0, N),
        scene.dir.path(),
    );
    let deadline = Instant::now() + T;
    while generator.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{}", generator.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut wenv = scene.watcher_env(&redis, "stream");
    wenv.push(("REDTAIL_CHECKPOINT_EVERY_LINES", "1".to_string()));
    wenv.push(("REDTAIL_CHECKPOINT_INTERVAL_MS", "10".to_string()));
    wenv.push(("REDTAIL_BATCH_MAX_LINES", "1".to_string()));
    let mut watcher = AsUser::start("watch", uid, &wenv, scene.dir.path());
    let mut subscriber = AsUser::start(
        "subscribe",
        uid,
        &scene.subscriber_env(&redis, "stream"),
        scene.dir.path(),
    );
    // Watch the checkpoint directory for temp files while one-line batches
    // force a checkpoint write per line.
    let mut temp_modes = Vec::new();
    let deadline = Instant::now() + T;
    while redis.xlen("redtail:logs") < N {
        assert!(
            Instant::now() < deadline,
            "watcher stuck:\n{}",
            watcher.log()
        );
        for entry in std::fs::read_dir(&state).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                if let Ok(meta) = entry.metadata() {
                    use std::os::unix::fs::PermissionsExt;
                    temp_modes.push(meta.permissions().mode() & 0o777);
                }
            }
        }
    }
    wait_until(T, "all at the subscriber", || {
        output_lines(&scene.output_bytes()).len() == N as usize
    });
    let (status, _) = http_get(&watcher.admin(), "/readyz");
    assert_eq!(status, 200);
    assert!(watcher.terminate().success(), "{}", watcher.log());
    assert!(subscriber.terminate().success(), "{}", subscriber.log());

    let checkpoint = scene.checkpoint();
    assert_eq!(mode_of(&checkpoint), 0o600, "checkpoint file mode");
    let me = current_uid();
    let expected_owner = uid.unwrap_or(me);
    assert_eq!(
        std::fs::metadata(&checkpoint).unwrap().uid(),
        expected_owner
    );
    assert_eq!(
        std::fs::metadata(scene.output()).unwrap().uid(),
        expected_owner,
        "the output was written by the unprivileged user"
    );
    eprintln!("observed {} checkpoint temp files", temp_modes.len());
    assert!(
        temp_modes.iter().all(|&m| m == 0o600),
        "temp file modes: {temp_modes:?}"
    );
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        N,
        "stream from the unprivileged watcher",
    );
}

fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(65534)
}
