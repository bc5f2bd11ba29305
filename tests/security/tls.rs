//! TLS: the whole pipeline over mutual TLS (`rediss://`, a client certificate), and
//! nothing sent when the CA or the client certificate is wrong.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use crate::T;

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
