"""Issue 13/16 checks that render the chart with chosen values (helm template, no cluster).

`checks(render)` returns (name, fn) pairs; `render(args)` runs `helm template` with the chart's
required password plus `args` and returns the parsed documents (it raises on a failed render).
"""

from __future__ import annotations

import json
from typing import Any, Callable

Doc = dict[str, Any]
Render = Callable[..., list[Doc]]


def _one(docs: list[Doc], kind: str, component: str | None = None) -> Doc:
    found = [d for d in docs if d.get("kind") == kind and (
        component is None or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def _container(doc: Doc, name: str) -> Doc:
    spec = doc["spec"]["template"]["spec"]
    return next(c for c in (spec.get("initContainers") or []) + spec["containers"] if c["name"] == name)


def _env(c: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env") or []}


def dashboard_uid_per_release(render: Render) -> None:
    """a dashboard uid per release (item 13)"""
    uids = set()
    for release, ns in (("a", "team-1"), ("b", "team-1"), ("a", "team-2")):
        cm = _one(render([], release=release, namespace=ns), "ConfigMap")
        uids.add(json.loads(cm["data"]["redtail.json"])["uid"])
    assert len(uids) == 3, f"three releases share dashboard uids: {uids}"


def rules_can_be_dropped_overridden_added(render: Render) -> None:
    """alert rules can be dropped, overridden, added, labelled, rebased (item 14)"""
    docs = render(["--set", "metrics.prometheusRule.enabled=true",
                   "--set", "metrics.prometheusRule.disabledRules={RedtailSubscriberLagHigh}",
                   "--set", "metrics.prometheusRule.ruleOverrides.RedtailWatcherLagGrowing.for=15m",
                   "--set", "metrics.prometheusRule.ruleOverrides.RedtailWatcherLagGrowing.labels.severity=info",
                   "--set", "metrics.prometheusRule.extraLabels.team=logging",
                   "--set", "metrics.prometheusRule.runbookBaseUrl=https://wiki.example/redtail",
                   "--set-json", 'metrics.prometheusRule.extraGroups=[{"name":"mine","rules":[{"alert":"Mine","expr":"vector(1)"}]}]'])
    groups = _one(docs, "PrometheusRule")["spec"]["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert "RedtailSubscriberLagHigh" not in rules, "a disabled rule is still there"
    lag = rules["RedtailWatcherLagGrowing"]
    assert lag["for"] == "15m" and lag["labels"]["severity"] == "info", f"override not applied: {lag}"
    assert "Mine" in rules and [g["name"] for g in groups][-1] == "mine", "extra group missing"
    for name, r in rules.items():
        if name.startswith("Redtail"):
            assert r["labels"]["team"] == "logging", f"{name} lacks the extra label"
            assert r["annotations"]["runbook_url"].startswith("https://wiki.example/redtail#"), \
                f"{name} runbook_url not rebased: {r['annotations'].get('runbook_url')}"


def unknown_rule_name_rejected(render: Render) -> None:
    """a misspelt rule name is an error (item 14)"""
    try:
        render(["--set", "metrics.prometheusRule.enabled=true",
                "--set", "metrics.prometheusRule.disabledRules={RedtailNoSuchAlert}"])
    except AssertionError as err:
        assert "RedtailNoSuchAlert" in str(err), f"fails without naming the rule: {err}"
        return
    raise AssertionError("a misspelt rule name in disabledRules was accepted silently")


def maxmemory_follows_the_limit(render: Render) -> None:
    """Redis maxmemory follows the memory limit or redis.maxmemory (item 8)"""
    docs = render(["--set", "redis.resources.limits.memory=512Mi"])
    c = _container(_one(docs, "StatefulSet", "redis"), "redis")
    args = c["args"]
    assert args[args.index("--maxmemory") + 1] == str(512 * 1024 * 1024 * 75 // 100), f"maxmemory: {args}"
    docs = render(["--set", "redis.maxmemory=300mb"])
    args = _container(_one(docs, "StatefulSet", "redis"), "redis")["args"]
    assert args[args.index("--maxmemory") + 1] == "300mb", "redis.maxmemory not used"


def same_values_same_secret(render: Render) -> None:
    """same values, same Redis Secret (item 4)"""
    a = _one(render([]), "Secret")
    b = _one(render([]), "Secret")
    assert a == b, "two renders give different Redis Secrets"


def secops_key_file(render: Render) -> None:
    """secops sink: env, key file from an existing Secret (issue 16)"""
    docs = render(["--set", "subscriber.sink.type=secops",
                   "--set", "subscriber.sink.secops.endpoint=https://us-chronicle.googleapis.com",
                   "--set", "subscriber.sink.secops.instance=projects/p/locations/us/instances/i",
                   "--set", "subscriber.sink.secops.logType=JSON",
                   "--set", "subscriber.sink.secops.credentials.existingSecret=sa-key"])
    dep = _one(docs, "Deployment", "subscriber")
    c = _container(dep, "subscriber")
    env = _env(c)
    assert env["REDTAIL_SINK"] == "secops" and env["REDTAIL_SECOPS_LOG_TYPE"] == "JSON"
    path = env["REDTAIL_SECOPS_CREDENTIALS"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "secops-credentials")
    assert path.startswith(mount["mountPath"] + "/") and mount["readOnly"], "the key file is not where the variable says"
    vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "secops-credentials")
    assert vol["secret"]["secretName"] == "sa-key", "the key is not from the named Secret"
    assert "REDTAIL_OUTPUT_PATH" not in env, "the file sink's variables with the secops sink"
    assert not any("BEGIN PRIVATE" in str(v) for v in env.values())


def secops_workload_identity(render: Render) -> None:
    """secops sink: Workload Identity leaves credentials unset (issue 16)"""
    docs = render(["--set", "subscriber.sink.type=secops", "--set", "subscriber.sink.secops.api=events",
                   "--set", "subscriber.sink.secops.endpoint=https://us-chronicle.googleapis.com",
                   "--set", "subscriber.sink.secops.instance=projects/p/locations/us/instances/i",
                   "--set", "serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=g@p.iam.gserviceaccount.com"])
    env = _env(_container(_one(docs, "Deployment", "subscriber"), "subscriber"))
    assert "REDTAIL_SECOPS_CREDENTIALS" not in env and "GOOGLE_APPLICATION_CREDENTIALS" not in env, \
        "Workload Identity must leave the credentials unset (metadata server)"
    sa = _one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("g@")


def hpa_owns_replicas(render: Render) -> None:
    """subscriber HPA owns the replicas (item 15)"""
    docs = render(["--set", "subscriber.autoscaling.enabled=true", "--set", "subscriber.autoscaling.maxReplicas=5"])
    hpa = _one(docs, "HorizontalPodAutoscaler")
    dep = _one(docs, "Deployment", "subscriber")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], "the HPA scales something else"
    assert "replicas" not in dep["spec"], "the Deployment's replicas would fight the HPA"
    assert hpa["spec"]["maxReplicas"] == 5


def tls_files_mounted(render: Render) -> None:
    """TLS CA and client certificate mounted where the variables say (item 15)"""
    docs = render(["--set", "tls.existingSecret=redis-tls", "--set", "tls.certKey=tls.crt"])
    for workload, name in (("StatefulSet", "watcher"), ("Deployment", "subscriber")):
        comp = "generator" if name == "watcher" else "subscriber"
        doc = _one(docs, workload, comp)
        c = _container(doc, name)
        env = _env(c)
        mount = next(m for m in c["volumeMounts"] if m["name"] == "redis-tls")
        for var in ("REDTAIL_REDIS_CA_PATH", "REDTAIL_REDIS_CLIENT_CERT_PATH", "REDTAIL_REDIS_CLIENT_KEY_PATH"):
            assert env[var].startswith(mount["mountPath"] + "/"), f"{name}: {var} is not under the TLS mount"
        vols = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
        assert vols["redis-tls"]["secret"]["secretName"] == "redis-tls"
    gen = _container(_one(docs, "StatefulSet", "generator"), "generator")
    assert "redis-tls" not in {m["name"] for m in gen.get("volumeMounts") or []}, "the generator gets the TLS key"


def extension_points(render: Render) -> None:
    """envFrom, lifecycle, extra/init containers, PDB policy, extraObjects (item 15)"""
    docs = render(["--set-json", 'watcher.envFrom=[{"configMapRef":{"name":"w"}}]',
                   "--set-json", 'subscriber.lifecycle={"preStop":{"sleep":{"seconds":3}}}',
                   "--set-json", 'generator.extraContainers=[{"name":"app","image":"app:1"}]',
                   "--set-json", 'generator.initContainers=[{"name":"prep","image":"busybox"}]',
                   "--set", "generator.podDisruptionBudget.unhealthyPodEvictionPolicy=AlwaysAllow",
                   "--set-json", 'extraObjects=[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"{{ .Release.Name }}-x"}}]'])
    sts = _one(docs, "StatefulSet", "generator")
    spec = sts["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["prep", "watcher"], "user init containers must run before the watcher"
    assert "app" in [c["name"] for c in spec["containers"]]
    assert _container(sts, "watcher")["envFrom"] == [{"configMapRef": {"name": "w"}}]
    assert _container(_one(docs, "Deployment", "subscriber"), "subscriber")["lifecycle"]["preStop"]["sleep"]["seconds"] == 3
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"].endswith("-generator"))
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == "t-x" for d in docs), "extraObjects not rendered with tpl"


def servicemonitor_options(render: Render) -> None:
    """ServiceMonitor namespace, scheme, tlsConfig, relabelings (item 15)"""
    docs = render(["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.namespace=monitoring",
                   "--set", "metrics.serviceMonitor.scheme=https",
                   "--set-json", 'metrics.serviceMonitor.tlsConfig={"insecureSkipVerify":false,"serverName":"x"}',
                   "--set-json", 'metrics.serviceMonitor.relabelings=[{"targetLabel":"cluster","replacement":"c1"}]',
                   "--set-json", 'metrics.serviceMonitor.metricRelabelings=[{"action":"drop","sourceLabels":["__name__"],"regex":"x"}]'])
    sm = _one(docs, "ServiceMonitor")
    ep = sm["spec"]["endpoints"][0]
    assert sm["metadata"]["namespace"] == "monitoring" and sm["spec"]["namespaceSelector"]["matchNames"] == ["t-ns"]
    assert ep["scheme"] == "https" and ep["tlsConfig"]["serverName"] == "x"
    assert ep["relabelings"][-1]["targetLabel"] == "cluster", "user relabelings must come after the chart's"
    assert ep["metricRelabelings"][0]["action"] == "drop"


def checks(render: Render) -> list[tuple[str, Callable[[], None]]]:
    return [(f.__doc__ or f.__name__.replace("_", " "), lambda f=f: f(render)) for f in (
        dashboard_uid_per_release, rules_can_be_dropped_overridden_added, unknown_rule_name_rejected,
        maxmemory_follows_the_limit, same_values_same_secret, secops_key_file, secops_workload_identity,
        hpa_owns_replicas, tls_files_mounted, extension_points, servicemonitor_options)]
