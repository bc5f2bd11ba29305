"""Checks for issue 13 ("Production hardening") and the chart half of issue 16 (SecOps sink).

Two kinds: `per_rendering(docs, name)` returns the checks that apply to one rendered values set
(test_render.py runs them beside its own), and `value_checks(render)` returns checks that render
the chart themselves with chosen values (`render(args) -> (rc, docs, stderr)`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

Doc = dict[str, Any]
Check = tuple[str, Callable[[], None]]

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "redtail"

# INTERFACE.md "Delivery to Google SecOps": read by the subscriber. Listed here until
# crates/cli/vars.rs carries them (issue 16); then the parse below finds them too.
SECOPS_VARS = {
    "REDTAIL_SINK", "REDTAIL_SECOPS_API", "REDTAIL_SECOPS_ENDPOINT", "REDTAIL_SECOPS_INSTANCE",
    "REDTAIL_SECOPS_CUSTOMER_ID", "REDTAIL_SECOPS_LOG_TYPE", "REDTAIL_SECOPS_NAMESPACE",
    "REDTAIL_SECOPS_CREDENTIALS", "REDTAIL_SECOPS_BATCH_BYTES", "REDTAIL_SECOPS_BATCH_ENTRIES",
    "REDTAIL_SECOPS_BATCH_MS", "REDTAIL_SECOPS_GZIP", "REDTAIL_SECOPS_MAX_AGE_MS",
}


def role_vars() -> dict[str, set[str]]:
    """The variables each role reads, from the one table the binary's --help is made from
    (crates/cli/vars.rs and crates/cli/vars/*.rs)."""
    cli = REPO / "crates" / "cli"
    text = "\n".join(p.read_text() for p in [cli / "vars.rs", *sorted((cli / "vars").glob("*.rs"))])
    names = dict(re.findall(r'pub const (\w+): Var = var\(\s*"([A-Z_]+)"', text))
    groups = {}
    for m in re.finditer(r"pub const (\w+): &\[Var\] = &\[(.*?)\n\];", text, re.S):
        body = m.group(2)
        found = set(re.findall(r'var\(\s*"([A-Z_]+)"', body))
        found |= {names[i] for i in re.findall(r"\b([A-Z][A-Z0-9_]*)\b", body) if i in names}
        groups[m.group(1)] = found
    roles = {}
    for m in re.finditer(r'roles: &\["(generate|watch|subscribe)"\],\s*vars: &\[([A-Z_, ]+)\]', text):
        roles[m.group(1)] = set().union(*(groups[g.strip()] for g in m.group(2).split(",")))
    assert set(roles) == {"generate", "watch", "subscribe"}, f"could not read crates/cli/vars.rs: {sorted(roles)}"
    roles["subscribe"] |= SECOPS_VARS
    return roles


def _containers(docs: list[Doc]) -> dict[str, Doc]:
    found = {}
    for d in docs:
        if d.get("kind") in ("StatefulSet", "Deployment"):
            spec = d["spec"]["template"]["spec"]
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                found[c["name"]] = c
    return found


def _env(c: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in c.get("env") or []}


def check_env_minimal(docs: list[Doc]) -> None:
    """Item 16: each redtail container gets only variables its role reads (plus the helpers its
    own dependent expansions use); the generator nothing about Redis."""
    roles = role_vars()
    helpers = {"REDIS_PASSWORD", "POD_NAME", "POD_NAMESPACE"}
    for name, role in (("generator", "generate"), ("watcher", "watch"), ("subscriber", "subscribe")):
        c = _containers(docs).get(name)
        if c is None:
            continue
        env = _env(c)
        extra = [n for n in env if n not in roles[role] and n not in helpers]
        assert not extra, f"{name} gets variables `redtail {role}` never reads: {extra}"
        used = " ".join(e.get("value", "") for e in env.values())
        for h in helpers & set(env):
            assert f"$({h})" in used, f"{name} gets {h} but nothing expands it"
        mode = env.get("REDTAIL_MODE", {}).get("value")
        if mode == "stream":
            assert "REDTAIL_CHANNEL" not in env, f"{name}: a channel in stream mode"
        if mode == "pubsub":
            assert "REDTAIL_STREAM" not in env, f"{name}: a stream in pubsub mode"
    gen = _containers(docs)["generator"]
    assert not [n for n in _env(gen) if "REDIS" in n or n == "REDTAIL_MODE"], "the generator gets Redis settings"


def check_redis_server(docs: list[Doc]) -> None:
    """Items 8 and 16: maxmemory from the limit with noeviction; no password on the command line."""
    redis = [d for d in docs if d.get("kind") == "StatefulSet"
             and d["metadata"]["labels"].get("app.kubernetes.io/component") == "redis"]
    if not redis:
        return
    c = next(c for c in redis[0]["spec"]["template"]["spec"]["containers"] if c["name"] == "redis")
    argv = c.get("command", []) + c.get("args", [])
    server = argv[argv.index("redis-server"):]  # "$@" of the sh wrapper: redis-server's own argv
    assert "--requirepass" not in server and not any("PASSWORD" in a for a in server), \
        f"the password is on redis-server's command line: {server}"
    assert "$(REDIS_PASSWORD)" not in " ".join(argv), "the kubelet would expand the password into argv"
    assert server[server.index("--maxmemory-policy") + 1] == "noeviction", "maxmemory-policy is not noeviction"
    maxmemory = server[server.index("--maxmemory") + 1]
    limit = c["resources"]["limits"]["memory"]
    if re.fullmatch(r"\d+[KMGT]i", limit) and maxmemory.isdigit():
        limit_bytes = int(limit[:-2]) * 1024 ** "KMGT".index(limit[-2]) * 1024
        assert int(maxmemory) == limit_bytes * 75 // 100, f"maxmemory {maxmemory} is not 75% of {limit}"


def check_files_are_copies() -> None:
    """Item 3: the chart is self-contained (no symbolic links) and its copies equal deploy/'s."""
    for inside, source in (("files/redtail.json", "deploy/grafana/redtail.json"),
                           ("files/redtail-rules.yaml", "deploy/prometheus/redtail-rules.yaml")):
        p = CHART / inside
        assert not p.is_symlink() and p.is_file(), f"charts/redtail/{inside} is not a regular file"
        assert p.read_bytes() == (REPO / source).read_bytes(), f"charts/redtail/{inside} differs from {source}"
    links = [str(p) for p in CHART.rglob("*") if p.is_symlink()]
    assert not links, f"symbolic links in the chart: {links}"


def check_nothing_random() -> None:
    """Item 4: no template function whose result changes from one render to the next."""
    bad = re.compile(r"\b(randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|uuidv4|now|genPrivateKey|genCA)\b")
    for t in (CHART / "templates").rglob("*"):
        if t.is_file():
            hits = bad.findall(t.read_text())
            assert not hits, f"{t.name} uses {sorted(set(hits))}: renders would differ"


def check_volume_claims_documented() -> None:
    """Item 6: the immutability of volumeClaimTemplates is said where the values are, with the way out."""
    values = (CHART / "values.yaml").read_text()
    for key in ("\n  logVolume:", "\n  checkpoint:", "\n  persistence:"):
        at = values.index(key)
        assert "IMMUTABLE" in values[max(0, at - 700):at + 200], f"values.yaml does not say that {key.strip()} is immutable"
    assert "--cascade=orphan" in values, "values.yaml gives no procedure for changing a volume"
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^#+ Changing a volume", readme, re.M) and "--cascade=orphan" in readme, \
        "README.md has no 'Changing a volume' procedure"


def check_scripts_bash32() -> None:
    """Item 5: deploy scripts run on macOS's bash 3.2, where "${a[@]}" of an empty array under
    set -u is an error: every array expansion is guarded as ${a[@]+"${a[@]}"}."""
    # The scripts a laptop runs (macOS ships bash 3.2); compose/ and the container tests run on Linux CI.
    laptop = [REPO / "deploy" / "up.sh", *sorted((REPO / "deploy" / "kind").glob("*.sh")),
              *sorted((REPO / "deploy" / "minikube").glob("*.sh"))]
    for script in laptop:
        text = script.read_text()
        guarded = re.sub(r'\$\{(\w+)\[@\]\+"\$\{\1\[@\]\}"\}', "", text)
        bare = re.findall(r'"\$\{\w+\[@\]\}"', guarded)
        assert not bare, f"{script.relative_to(REPO)}: unguarded {bare} (fails on bash 3.2 when empty)"
    up = (REPO / "deploy" / "up.sh").read_text()
    assert "image-archive" in up and "docker save" in up, "deploy/up.sh loads images without docker save | image-archive"
    cluster = (REPO / "deploy" / "kind" / "cluster.yaml").read_text()
    assert re.search(r"image: kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", cluster), \
        "deploy/kind/cluster.yaml pins no node image (tag and digest)"


def per_rendering(docs: list[Doc], name: str) -> list[Check]:
    return [
        (f"[{name}] containers get only the variables their role reads (crates/cli/vars*)",
         lambda: check_env_minimal(docs)),
        (f"[{name}] Redis: maxmemory from the limit, noeviction, no password in argv",
         lambda: check_redis_server(docs)),
    ]


def static_checks() -> list[Check]:
    return [
        ("chart files/ are regular files identical to deploy/", check_files_are_copies),
        ("no template function that changes between renders", check_nothing_random),
        ("volumeClaimTemplates immutability documented with the procedure", check_volume_claims_documented),
        ("deploy scripts: bash 3.2 arrays, docker save | kind load image-archive, pinned node image",
         check_scripts_bash32),
    ]
