#!/usr/bin/env python3
"""Template tests for the redtail chart: assertions on `helm template` output.

No cluster is needed. scripts/check-chart.sh renders the chart for the default values and every
ci/*-values.yaml into a directory and calls this script with it; the script also renders values
the chart must reject and expects helm to fail. One line per check, then "N passed, N failed";
the exit status is non-zero when any check failed.

Standard library plus PyYAML (installed into .tools/venv by scripts/install-helm.sh).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

import hardening
import value_checks

Doc = dict[str, Any]

# Rules whose expr a ci/ values set overrides (metrics.prometheusRule.ruleOverrides).
OVERRIDDEN: set[str] = set()
# Every rendering here passes the Redis password the chart never generates (see values.yaml).
PASSWORD = ["--values", str(Path(__file__).with_name("defaults-values.yaml"))]

LOG_DIR = "/var/log/app"
CHECKPOINT_DIR = "/var/lib/redtail"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


class Checks:
    """Runs named checks, prints one line each, and counts the outcome."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except AssertionError as err:
            self.failed += 1
            print(f"FAIL {name}: {err}")
        except Exception as err:  # a crash in a check is a failed check, not a crashed suite
            self.failed += 1
            print(f"FAIL {name}: {type(err).__name__}: {err}")
        else:
            self.passed += 1
            print(f"ok   {name}")


# ---------------------------------------------------------------------------------------------
# Helpers over rendered manifests


def load_docs(path: Path) -> list[Doc]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def component(doc: Doc) -> str | None:
    return doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")


def one(docs: list[Doc], kind: str, comp: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if component(d) == comp]
    assert len(found) == 1, f"expected one {kind} with component={comp}, found {len(found)}"
    return found[0]


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d.get("kind") in ("StatefulSet", "Deployment", "DaemonSet")]


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]


def all_containers(spec: Doc) -> list[Doc]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def container(spec: Doc, name: str) -> Doc:
    found = [c for c in all_containers(spec) if c["name"] == name]
    assert len(found) == 1, f"expected one container {name!r}, found {len(found)}"
    return found[0]


def env_map(c: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in c.get("env") or []}


def mounts(c: Doc) -> dict[str, Doc]:
    return {m["name"]: m for m in c.get("volumeMounts") or []}


def is_redtail(c: Doc) -> bool:
    # The images' entrypoints run `redtail <role>`; the containers are named after the role.
    return c["name"] in ("generator", "watcher", "subscriber")


def name_of(d: Doc) -> str:
    return f"{d['kind']}/{d['metadata']['name']}"


def selector_matches(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match_labels.items())


# ---------------------------------------------------------------------------------------------
# Assertions on one rendering


def check_entrypoints(docs: list[Doc]) -> None:
    # The images' ENTRYPOINT is `redtail <role>`: a command or args here would break it.
    for w in workloads(docs):
        for c in all_containers(pod_spec(w)):
            if is_redtail(c):
                assert "command" not in c and "args" not in c, f"{c['name']} overrides the image's entrypoint"


def check_statefulset_shape(docs: list[Doc], values_name: str) -> None:
    sts = one(docs, "StatefulSet", "generator")
    spec = pod_spec(sts)
    gen = container(spec, "generator")
    watcher = container(spec, "watcher")
    native = watcher in (spec.get("initContainers") or [])
    if native:
        assert watcher.get("restartPolicy") == "Always", "native sidecar watcher lacks restartPolicy: Always"
    else:
        assert watcher in spec["containers"], "watcher is neither a native sidecar nor a container"
    for c in (gen, watcher):
        m = mounts(c).get("logs")
        assert m, f"{c['name']} does not mount the shared 'logs' volume"
        assert m["mountPath"] == LOG_DIR, f"{c['name']} mounts logs at {m['mountPath']}, not {LOG_DIR}"
    assert mounts(watcher)["logs"].get("readOnly") is True, "watcher should mount the logs read-only"
    assert env_map(gen)["REDTAIL_LOG_PATH"]["value"].startswith(LOG_DIR + "/")
    assert env_map(watcher)["REDTAIL_LOG_PATH"]["value"].startswith(LOG_DIR + "/")
    vct = {t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates") or []}
    pod_vols = {v["name"]: v for v in spec.get("volumes") or []}
    assert ("logs" in vct) != ("logs" in pod_vols), "logs must be exactly one of a PVC template or a pod volume"
    if values_name == "default":
        assert "logs" in vct, "by default app.log must be on a PVC (a rolling restart loses nothing)"
    if "logs" in pod_vols:
        assert "emptyDir" in pod_vols["logs"], "logs pod volume should be an emptyDir"


def check_checkpoint_pvc(docs: list[Doc]) -> None:
    sts = one(docs, "StatefulSet", "generator")
    vct = {t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates") or []}
    assert "checkpoint" in vct, "no 'checkpoint' volumeClaimTemplate"
    assert "checkpoint" not in {v["name"] for v in pod_spec(sts).get("volumes") or []}, \
        "a pod volume shadows the checkpoint PVC"
    watcher = container(pod_spec(sts), "watcher")
    m = mounts(watcher).get("checkpoint")
    assert m and m["mountPath"] == CHECKPOINT_DIR, "watcher does not mount the checkpoint PVC"
    assert not m.get("readOnly"), "checkpoint mount must be writable"
    path = env_map(watcher)["REDTAIL_CHECKPOINT_PATH"]["value"]
    assert path.startswith(CHECKPOINT_DIR + "/"), f"REDTAIL_CHECKPOINT_PATH {path} is not on the PVC"
    gen = container(pod_spec(sts), "generator")
    assert "checkpoint" not in mounts(gen), "the generator has no business with the checkpoint"


def check_probes(docs: list[Doc]) -> None:
    for w in workloads(docs):
        for c in all_containers(pod_spec(w)):
            for p in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert c.get(p), f"{name_of(w)} container {c['name']} has no {p}"
            if is_redtail(c):
                port_names = {p["name"] for p in c.get("ports") or []}
                for p, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                ("startupProbe", "/healthz")):
                    get = c[p].get("httpGet") or {}
                    assert get.get("path") == path, f"{c['name']} {p} is not GET {path}"
                    assert get.get("port") in port_names, f"{c['name']} {p} port {get.get('port')} is not declared"


def check_resources(docs: list[Doc]) -> None:
    for w in workloads(docs):
        for c in all_containers(pod_spec(w)):
            r = c.get("resources") or {}
            assert r.get("requests", {}).get("cpu") and r.get("requests", {}).get("memory"), \
                f"{name_of(w)} container {c['name']} lacks cpu/memory requests"
            assert r.get("limits", {}).get("memory"), f"{name_of(w)} container {c['name']} lacks a memory limit"


def check_security(docs: list[Doc]) -> None:
    pods = [(name_of(w), pod_spec(w)) for w in workloads(docs)]
    pods += [(name_of(p), p["spec"]) for p in of_kind(docs, "Pod")]
    for where, spec in pods:
        psc = spec.get("securityContext") or {}
        assert psc.get("fsGroup") is not None, f"{where}: no fsGroup (volumes would not be writable)"
        assert psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot is not true"
        assert spec.get("automountServiceAccountToken") is False, f"{where}: service account token is mounted"
        for c in all_containers(spec):
            sc = c.get("securityContext") or {}
            who = f"{where} container {c['name']}"
            assert sc.get("runAsNonRoot") is True, f"{who}: runAsNonRoot is not true"
            assert sc.get("readOnlyRootFilesystem") is True, f"{who}: root filesystem is writable"
            assert sc.get("allowPrivilegeEscalation") is False, f"{who}: privilege escalation allowed"
            assert sc.get("privileged") in (None, False), f"{who}: privileged"
            assert "ALL" in (sc.get("capabilities") or {}).get("drop", []), f"{who}: capabilities not dropped"
            assert not (sc.get("capabilities") or {}).get("add"), f"{who}: capabilities added"
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            assert seccomp == "RuntimeDefault", f"{who}: seccomp profile is {seccomp}"
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            assert isinstance(uid, int) and uid != 0, f"{who}: runs as uid {uid}"


def check_grace_period(docs: list[Doc]) -> None:
    seen = 0
    for w in workloads(docs):
        spec = pod_spec(w)
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for c in all_containers(spec):
            timeout = env_map(c).get("REDTAIL_SHUTDOWN_TIMEOUT_MS")
            if not is_redtail(c):
                continue
            assert timeout, f"{name_of(w)} container {c['name']} lacks REDTAIL_SHUTDOWN_TIMEOUT_MS"
            seen += 1
            assert grace * 1000 > int(timeout["value"]), \
                f"{name_of(w)}: grace {grace}s is not larger than shutdown timeout {timeout['value']}ms"
    assert seen >= 2, "no redtail container found"


def check_env(docs: list[Doc]) -> None:
    sts = one(docs, "StatefulSet", "generator")
    watcher = container(pod_spec(sts), "watcher")
    env = env_map(watcher)
    field = lambda n: env.get(n, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    assert field("POD_NAME") == "metadata.name", "POD_NAME is not the pod name"
    names = [e["name"] for e in watcher["env"]]
    source = env["REDTAIL_SOURCE"]["value"]
    # Issue 13 item 11: qualified by the namespace unless the values say otherwise.
    assert source in ("$(POD_NAMESPACE)/$(POD_NAME)", "$(POD_NAME)"), f"REDTAIL_SOURCE is {source!r}"
    if "POD_NAMESPACE" in source:
        assert field("POD_NAMESPACE") == "metadata.namespace", "POD_NAMESPACE is not the namespace"
    for ref in re.findall(r"\$\(([A-Z_]+)\)", source):
        assert ref in names[: names.index("REDTAIL_SOURCE")], f"$({ref}) used before it is defined"
    users = [watcher]
    subs = [d for d in of_kind(docs, "Deployment") if component(d) == "subscriber"]
    for d in subs:
        c = container(pod_spec(d), "subscriber")
        assert env_map(c)["REDTAIL_CONSUMER"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", \
            "REDTAIL_CONSUMER is not the pod name"
        users.append(c)
    for c in users:
        names = [e["name"] for e in c.get("env") or []]
        assert "REDTAIL_REDIS_URL" in names, f"{c['name']} has no REDTAIL_REDIS_URL"
        url = env_map(c)["REDTAIL_REDIS_URL"]
        if "value" in url:
            # Dependent expansion only sees variables defined earlier in the list.
            for ref in re.findall(r"\$\(([A-Z_]+)\)", url["value"]):
                assert ref in names[: names.index("REDTAIL_REDIS_URL")], \
                    f"{c['name']}: $({ref}) used before it is defined"
            assert not re.search(r"redis://[^@]*:[^$@][^@]*@", url["value"]), "a literal password in the pod spec"


def check_network_policy(docs: list[Doc]) -> None:
    pols = of_kind(docs, "NetworkPolicy")
    assert len(pols) == 1, f"expected one NetworkPolicy, found {len(pols)}"
    pol = pols[0]["spec"]
    redis = one(docs, "StatefulSet", "redis")
    redis_labels = redis["spec"]["template"]["metadata"]["labels"]
    assert selector_matches(pol["podSelector"]["matchLabels"], redis_labels), "the policy does not select Redis"
    for w in workloads(docs):
        if component(w) != "redis":
            assert not selector_matches(pol["podSelector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"]), \
                f"the policy selects {name_of(w)} too"
    assert pol.get("policyTypes") == ["Ingress"], "the policy should restrict ingress"
    rules = pol.get("ingress") or []
    exporter = any(p["name"] == "redis-metrics" for c in pod_spec(redis)["containers"] for p in c.get("ports") or [])
    scrapable = any([p["port"] for p in r.get("ports") or []] == ["redis-metrics"] for r in rules)
    assert exporter == scrapable, f"redis_exporter {'runs' if exporter else 'does not run'} but its port is {'' if scrapable else 'not '}admitted"
    assert rules, "no ingress rule: nothing could reach Redis"
    redtail_pods = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs) if component(w) != "redis"]
    redtail_pods += [p["metadata"]["labels"] for p in of_kind(docs, "Pod")]
    for rule in rules:
        ports = [p["port"] for p in rule.get("ports") or []]
        if ports == ["redis-metrics"]:
            continue  # the exporter's port (redis.metrics.enabled), for Prometheus; never Redis's
        peers = rule.get("from") or []
        assert peers, "an ingress rule without 'from' admits everyone"
        for peer in peers:
            assert set(peer) == {"podSelector"}, f"peer {peer} is not a same-namespace pod selector"
            ml = peer["podSelector"].get("matchLabels") or {}
            assert ml.get("app.kubernetes.io/instance") and ml.get("app.kubernetes.io/name") == "redtail", \
                f"peer {ml} does not limit to this release's redtail pods"
        assert [p["port"] for p in rule.get("ports") or []] == ["redis"], "only the Redis port should be open"
        for labels in redtail_pods:
            assert any(selector_matches(p["podSelector"].get("matchLabels") or {}, labels) for p in peers), \
                f"redtail pod {labels.get('app.kubernetes.io/component')} could not reach Redis"


def check_service_account(docs: list[Doc]) -> None:
    for sa in of_kind(docs, "ServiceAccount"):
        assert sa.get("automountServiceAccountToken") is False, f"{name_of(sa)} automounts its token"


def check_labels(docs: list[Doc]) -> None:
    for d in docs:
        labels = d.get("metadata", {}).get("labels") or {}
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{name_of(d)} lacks {missing}"


def check_metrics_services(docs: list[Doc]) -> None:
    pods = {component(w): w for w in workloads(docs)}
    services = [s for s in of_kind(docs, "Service") if component(s) in ("generator", "watcher", "subscriber")]
    want = {"generator", "watcher"} | ({"subscriber"} if "subscriber" in pods else set())
    assert {component(s) for s in services} == want, f"metrics Services for {sorted(component(s) for s in services)}"
    for s in services:
        ports = s["spec"]["ports"]
        assert [p["name"] for p in ports] == ["metrics"], f"{name_of(s)} has no single 'metrics' port"
        target = [w for w in pods.values() if selector_matches(s["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert len(target) == 1, f"{name_of(s)} selects {len(target)} workloads"
        declared = {p["name"]: p["containerPort"] for c in all_containers(pod_spec(target[0])) for p in c.get("ports") or []}
        assert ports[0]["targetPort"] in declared, f"{name_of(s)} targets undeclared port {ports[0]['targetPort']}"
        assert declared[ports[0]["targetPort"]] == ports[0]["port"], f"{name_of(s)} port differs from the container's"
        ann = s["metadata"].get("annotations") or {}
        if "prometheus.io/scrape" in ann:
            assert ann["prometheus.io/port"] == str(ports[0]["port"]), f"{name_of(s)} prometheus.io/port is wrong"
            assert ann["prometheus.io/path"] == "/metrics"


def check_dashboard(docs: list[Doc], deploy: Path) -> None:
    cms = [c for c in of_kind(docs, "ConfigMap") if "redtail.json" in (c.get("data") or {})]
    assert len(cms) == 1, f"expected one dashboard ConfigMap, found {len(cms)}"
    cm = cms[0]
    assert cm["metadata"]["labels"].get("grafana_dashboard") == "1", "no grafana_dashboard: \"1\" label"
    source = json.loads((deploy / "grafana" / "redtail.json").read_text())
    shipped = json.loads(cm["data"]["redtail.json"])
    # Issue 13 item 13: a uid (and title) per release, everything else as in deploy/.
    uid = shipped.get("uid", "")
    assert uid.startswith("redtail-") and len(uid) <= 40 and uid != source.get("uid"), f"dashboard uid {uid!r} is not per release"
    for k in ("uid", "title"):
        shipped.pop(k, None)
        source.pop(k, None)
    assert shipped == source, "the ConfigMap's JSON differs from deploy/grafana/redtail.json (beyond uid and title)"


def check_prometheus_rule(docs: list[Doc], deploy: Path) -> None:
    rules = of_kind(docs, "PrometheusRule")
    assert len(rules) == 1, f"expected one PrometheusRule, found {len(rules)}"
    source = yaml.safe_load((deploy / "prometheus" / "redtail-rules.yaml").read_text())
    shipped = {r["alert"]: r for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r}
    for g in source["groups"]:
        for r in g["rules"]:
            got = shipped.get(r["alert"])
            if got is None:
                continue  # dropped with disabledRules: checked by rule_values()
            assert got["expr"] == r["expr"] or r["alert"] in OVERRIDDEN, f"{r['alert']}: expr differs from deploy/"


def check_monitors(docs: list[Doc]) -> None:
    sms = of_kind(docs, "ServiceMonitor")
    pms = of_kind(docs, "PodMonitor")
    # Issue 13 item 15: never both (every series would be scraped twice).
    assert len(sms) + len(pms) == 1, f"{len(sms)} ServiceMonitor(s) and {len(pms)} PodMonitor(s): want exactly one"
    endpoints = []
    if sms:
        assert sms[0]["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor scrapes the wrong port"
        endpoints = sms[0]["spec"]["endpoints"]
    declared = {p["name"] for w in workloads(docs) for c in all_containers(pod_spec(w)) for p in c.get("ports") or []}
    for pm in pms:
        for ep in pm["spec"]["podMetricsEndpoints"]:
            assert ep["port"] in declared, f"PodMonitor port {ep['port']} is declared by no container"
        endpoints = pm["spec"]["podMetricsEndpoints"]
    # The dashboard and alert rules select job "redtail" and tell roles apart by `role`.
    for ep in endpoints:
        targets = {r["targetLabel"]: r for r in ep.get("relabelings") or []}
        assert targets.get("job", {}).get("replacement") == "redtail", "scraped job is not 'redtail'"
        assert "role" in targets, "no 'role' label on the scraped series"


def check_test_hook(docs: list[Doc]) -> None:
    pods = [p for p in of_kind(docs, "Pod") if (p["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    assert len(pods) == 1, "no helm test hook Pod"
    c = pods[0]["spec"]["containers"][0]
    assert "REDTAIL_REDIS_URL" in env_map(c), "the test pod cannot reach Redis"
    assert pods[0]["spec"]["restartPolicy"] == "Never"


def check_pdbs(docs: list[Doc]) -> None:
    pdbs = of_kind(docs, "PodDisruptionBudget")
    assert pdbs, "no PodDisruptionBudget"
    for pdb in pdbs:
        ml = pdb["spec"]["selector"]["matchLabels"]
        matched = [w for w in workloads(docs) if selector_matches(ml, w["spec"]["template"]["metadata"]["labels"])]
        assert len(matched) == 1, f"{name_of(pdb)} selects {len(matched)} workloads"


# ---------------------------------------------------------------------------------------------
# Values the chart must reject


# (what, helm arguments, text the error must contain, caught by the schema?). The schema's
# rejections fail `helm lint --strict` too; the template's own `fail` checks (relations between
# values that JSON Schema cannot express) fail `helm template`/`install` only, because
# `helm lint` deliberately reports a template `fail` as INFO.
REJECTED = [
    ("a string where an integer is expected", ["--set-string", "watcher.checkpointEveryLines=lots"], "checkpointEveryLines", True),
    ("an unknown key in a component", ["--set", "generator.rateLimit=5"], "rateLimit", True),
    ("an unknown top-level key", ["--set", "replicaCount=3"], "replicaCount", True),
    ("an unknown mode", ["--set", "config.mode=kafka"], "mode", True),
    ("an unknown log volume type", ["--set", "generator.logVolume.type=hostPath"], "type", True),
    ("a negative rate", ["--set", "generator.rate=-1"], "rate", True),
    ("a malformed resource quantity", ["--set", "watcher.resources.limits.memory=lots"], "memory", True),
    ("a non-redis external URL", ["--set", "redis.enabled=false", "--set", "externalRedis.url=http://x"], "url", True),
    ("a watcher path outside the log volume", ["--set", "watcher.logPath=/etc/passwd"], "logPath", True),
    ("a grace period not above the shutdown timeout", ["--set", "generator.terminationGracePeriodSeconds=10"],
     "generator.terminationGracePeriodSeconds", False),
    # Issue 13 item 2: the native sidecar stops after the app, so the period holds both.
    ("a grace period without room for the watcher after the app", ["--set", "generator.terminationGracePeriodSeconds=24"],
     "generator.shutdownSeconds", False),
    # Item 5: native sidecars need 1.29; older clusters get a message naming the way out.
    ("the native sidecar on Kubernetes 1.28", ["--kube-version", "1.28.0"], "watcher.nativeSidecar=false", False),
    # Item 4: no generated password (it would change with every render).
    ("the bundled Redis without a password", ["--set", "redis.auth.password="], "redis.auth.existingSecret", False),
    ("both a password and an existing Secret", ["--set", "redis.auth.existingSecret=s"], "only one of", False),
    ("a password that is not URL-safe", ["--set", "redis.auth.password=a@b"], "password", True),
    # Item 15: both monitors scrape every process twice.
    ("a ServiceMonitor and a PodMonitor together", ["--set", "metrics.serviceMonitor.enabled=true",
                                                     "--set", "metrics.podMonitor.enabled=true"], "only one of", False),
    ("an eviction policy Kubernetes does not know", ["--set", "generator.podDisruptionBudget.unhealthyPodEvictionPolicy=Never"],
     "unhealthyPodEvictionPolicy", True),
    ("an eviction maxmemory policy", ["--set", "redis.maxmemoryPolicy=allkeys-lru"], "maxmemoryPolicy", True),
    # Issue 16: the SecOps sink needs its endpoint, instance and log type.
    ("the secops sink without an endpoint", ["--set", "subscriber.sink.type=secops"], "endpoint", False),
    ("the secops logs API without a log type", ["--set", "subscriber.sink.type=secops",
                                                "--set", "subscriber.sink.secops.endpoint=https://x",
                                                "--set", "subscriber.sink.secops.instance=projects/p/locations/l/instances/i"],
     "logType", False),
    ("a shutdown timeout above the subscriber's grace period", ["--set", "config.shutdownTimeoutMs=45000"],
     "terminationGracePeriodSeconds", False),
    ("redis disabled without an external URL", ["--set", "redis.enabled=false"], "externalRedis", False),
    ("both external URL and Secret", ["--set", "redis.enabled=false", "--set", "externalRedis.url=redis://x:6379",
                                       "--set", "externalRedis.existingSecret=s"], "externalRedis", False),
]

ACCEPTED = [
    ("the smallest grace periods that fit (app 10 s + drain 10 s + 5 s; subscriber 15 s)",
     ["--set", "generator.terminationGracePeriodSeconds=25", "--set", "subscriber.terminationGracePeriodSeconds=15"]),
    ("a plain-container watcher with app 10 s + 5 s", ["--set", "watcher.nativeSidecar=false",
                                                     "--set", "generator.terminationGracePeriodSeconds=15"]),
    ("the plain-container watcher on Kubernetes 1.25", ["--kube-version", "1.25.0", "--set", "watcher.nativeSidecar=false"]),
    ("an existing Secret instead of a password", ["--set", "redis.auth.password=", "--set", "redis.auth.existingSecret=s"]),
]


def helm(helm_bin: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_bin, *args], capture_output=True, text=True, check=False)


def noise_free(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if "found symbolic link" not in l]
    return " ".join(lines)[:300]


def expect_rejected(helm_bin: str, chart: str, args: list[str], needle: str, by_schema: bool) -> None:
    cmds = [["template", "t", chart, *PASSWORD, *args]]
    if by_schema:
        cmds.append(["lint", "--strict", chart, *PASSWORD, *args])
    for cmd in cmds:
        res = helm(helm_bin, cmd)
        assert res.returncode != 0, f"helm {cmd[0]} accepted {' '.join(args)}"
        assert needle in res.stderr + res.stdout, f"helm {cmd[0]} failed without naming {needle!r}: {noise_free(res.stderr)}"


def expect_accepted(helm_bin: str, chart: str, args: list[str]) -> None:
    res = helm(helm_bin, ["template", "t", chart, *PASSWORD, *args])
    assert res.returncode == 0, f"helm template rejected {' '.join(args)}: {noise_free(res.stderr)}"


# ---------------------------------------------------------------------------------------------
# values.yaml documentation


def leaf_paths(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaf_paths(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def check_values_documented(chart: Path) -> None:
    values = yaml.safe_load((chart / "values.yaml").read_text())
    readme = (chart / "README.md").read_text()
    section = re.search(r"^## Values$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, "README.md has no '## Values' section"
    readme = section.group(1)
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    missing = []
    for path in leaf_paths(values):
        # A map of free-form Kubernetes settings is documented by its parent key.
        parts = path.split(".")
        if not any(".".join(parts[:n]) in documented for n in range(1, len(parts) + 1)):
            missing.append(path)
    assert not missing, f"values not in README.md's table: {missing}"
    stale = [p for p in documented if not any(l == p or l.startswith(p + ".") for l in leaf_paths(values))]
    assert not stale, f"README.md documents values that do not exist: {stale}"


def check_schema_strict(chart: Path) -> None:
    schema = json.loads((chart / "values.schema.json").read_text())

    def walk(node: Doc, where: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{where or '<root>'} accepts unknown keys"
            for k, v in node["properties"].items():
                walk(v, f"{where}.{k}" if where else k)

    walk(schema, "")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--helm", required=True, help="helm binary")
    ap.add_argument("--chart", required=True, type=Path, help="chart directory")
    ap.add_argument("--deploy", required=True, type=Path, help="the repository's deploy/ directory")
    ap.add_argument("rendered", nargs="+", type=Path, help="rendered manifests, <values-name>.yaml")
    args = ap.parse_args()

    checks = Checks()
    for path in args.rendered:
        name = path.stem
        docs = load_docs(path)
        kinds = {d["kind"] for d in docs}
        redis_in_release = any(component(w) == "redis" for w in workloads(docs))
        t = f"[{name}]"
        checks.run(f"{t} StatefulSet shares the app.log volume between generator and watcher",
                   lambda: check_statefulset_shape(docs, name))
        checks.run(f"{t} redtail containers keep the images' entrypoint (redtail <role>)", lambda: check_entrypoints(docs))
        checks.run(f"{t} checkpoint is a volumeClaimTemplate mounted in the watcher", lambda: check_checkpoint_pvc(docs))
        checks.run(f"{t} every container has liveness, readiness and startup probes", lambda: check_probes(docs))
        checks.run(f"{t} every container has resources", lambda: check_resources(docs))
        checks.run(f"{t} every pod and container has the full security context and fsGroup",
                   lambda: check_security(docs))
        checks.run(f"{t} grace period exceeds REDTAIL_SHUTDOWN_TIMEOUT_MS", lambda: check_grace_period(docs))
        checks.run(f"{t} source/consumer are pod names; Redis URL without a literal password", lambda: check_env(docs))
        if redis_in_release and "NetworkPolicy" in kinds:
            checks.run(f"{t} NetworkPolicy selects Redis and admits only redtail pods", lambda: check_network_policy(docs))
        checks.run(f"{t} ServiceAccount does not automount a token", lambda: check_service_account(docs))
        checks.run(f"{t} standard app.kubernetes.io labels on every resource", lambda: check_labels(docs))
        checks.run(f"{t} metrics Services expose a 'metrics' port matching the pods", lambda: check_metrics_services(docs))
        checks.run(f"{t} PodDisruptionBudgets select one workload each", lambda: check_pdbs(docs))
        checks.run(f"{t} helm test hook checks the flow through Redis", lambda: check_test_hook(docs))
        if "ConfigMap" in kinds:
            checks.run(f"{t} dashboard ConfigMap is labelled for Grafana and equals deploy/grafana/redtail.json",
                       lambda: check_dashboard(docs, args.deploy))
        if "PrometheusRule" in kinds:
            checks.run(f"{t} PrometheusRule equals deploy/prometheus/redtail-rules.yaml",
                       lambda: check_prometheus_rule(docs, args.deploy))
        if "ServiceMonitor" in kinds or "PodMonitor" in kinds:
            checks.run(f"{t} one ServiceMonitor or PodMonitor, scraping declared ports", lambda: check_monitors(docs))
        for what, fn in hardening.per_rendering(docs, name):
            checks.run(what, fn)

    def default_rendered() -> None:
        assert "default" in {p.stem for p in args.rendered}, "no rendering of the default values was given"

    checks.run("the default values were rendered and checked", default_rendered)
    chart = str(args.chart)
    for what, extra, needle, by_schema in REJECTED:
        how = "schema: template+lint" if by_schema else "template fail"
        checks.run(f"rejects {what} ({' '.join(extra[1::2])}; {how})",
                   lambda extra=extra, needle=needle, by_schema=by_schema:
                   expect_rejected(args.helm, chart, extra, needle, by_schema))
    for what, extra in ACCEPTED:
        checks.run(f"accepts {what}", lambda extra=extra: expect_accepted(args.helm, chart, extra))
    def render(extra: list[str], release: str = "t", namespace: str = "t-ns") -> list[Doc]:
        args_ = ["template", release, chart, "--namespace", namespace, *PASSWORD, *extra]
        res = helm(args.helm, args_)
        assert res.returncode == 0, f"helm template {' '.join(extra)} failed: {noise_free(res.stderr)}"
        return [d for d in yaml.safe_load_all(res.stdout) if d]

    for what, fn in value_checks.checks(render):
        checks.run(what, fn)
    for what, fn in hardening.static_checks():
        checks.run(what, fn)
    checks.run("values.schema.json rejects unknown keys at every level", lambda: check_schema_strict(args.chart))
    checks.run("every value in values.yaml is in README.md's table", lambda: check_values_documented(args.chart))

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
