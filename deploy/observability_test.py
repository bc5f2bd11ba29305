#!/usr/bin/env python3
"""Checks of the dashboard and the alert rules that promtool cannot make (issue 13 items 7, 13, 14).

Run by scripts/check-observability.sh: python3 deploy/observability_test.py <repo root>. Needs PyYAML
(the chart tools' venv has it; Debian: python3-yaml). One line per check, then "N passed, N failed".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
DASHBOARD = json.loads((ROOT / "deploy/grafana/redtail.json").read_text())
RULES = yaml.safe_load((ROOT / "deploy/prometheus/redtail-rules.yaml").read_text())
TESTS = yaml.safe_load((ROOT / "deploy/prometheus/redtail-rules.test.yaml").read_text())
README = (ROOT / "README.md").read_text()
ALERTS = [r for g in RULES["groups"] for r in g["rules"] if "alert" in r]
TARGETS = [(p, t) for p in DASHBOARD["panels"] for t in p.get("targets", [])]

# The loss and delivery counters each need a panel and an alert (item 7; issue 16's sink).
LOSS = [
    "redtail_watcher_files_lost_total", "redtail_subscriber_vanished_entries_total",
    "redtail_watcher_checkpoint_errors_total", "redtail_watcher_read_errors_total",
    "redtail_watcher_trim_errors_total", "redtail_watcher_replica_ack_failures_total",
    "redtail_subscriber_sink_deadletter_total", "redtail_subscriber_sink_oldest_unacked_seconds",
]
SINK = ["redtail_subscriber_sink_requests_total", "redtail_subscriber_sink_entries_total",
        "redtail_subscriber_sink_bytes_total", "redtail_subscriber_sink_retries_total",
        "redtail_subscriber_sink_request_duration_seconds_bucket"]


def check_variables() -> None:
    names = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    for n in ("namespace", "pod"):
        v = names.get(n)
        assert v, f"no ${n} variable"
        # "All" must also match series without the label (static scrape configs): allValue .*
        assert v.get("multi") and v.get("includeAll") and v.get("allValue") == ".*", f"${n} is not multi/All=.*"


def check_selectors() -> None:
    for p, t in TARGETS:
        e = t["expr"]
        if "redtail_" not in e:
            continue
        for v in ("namespace", "pod", "job", "instance"):
            assert f'{v}=~"${v}"' in e, f"panel {p['title']!r} does not filter by ${v}: {e}"


def check_rate_interval() -> None:
    for p, t in TARGETS:
        for window in re.findall(r"\[([^\]]+)\]", t["expr"]):
            assert window in ("$__rate_interval", "$__range"), f"panel {p['title']!r} uses a fixed [{window}]"


def check_legends_by_pod() -> None:
    for p, t in TARGETS:
        by = re.search(r"by \(([^)]*)\)", t["expr"])
        if by and "pod" in by.group(1):
            assert "{{pod}}" in t.get("legendFormat", ""), f"panel {p['title']!r}: legend {t.get('legendFormat')!r} lacks the pod"


def check_panels_for_counters() -> None:
    exprs = " ".join(t["expr"] for _, t in TARGETS)
    missing = [m for m in LOSS + SINK if m not in exprs]
    assert not missing, f"no panel for {missing}"


def check_layout() -> None:
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells = {}
    for p in DASHBOARD["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"panel {p['title']!r} is wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]!r} and {p['title']!r} overlap"
                cells[(x, y)] = p["title"]


def check_alert_metadata() -> None:
    runbook = re.search(r"^## Runbook$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert runbook, "README.md has no '## Runbook' section"
    headings = {h.strip().lower() for h in re.findall(r"^#### (.+)$", runbook.group(1), re.M)}
    for a in ALERTS:
        name = a["alert"]
        ann = a.get("annotations", {})
        assert a.get("labels", {}).get("severity") in ("info", "warning", "critical"), f"{name}: no severity"
        assert ann.get("summary") and ann.get("description"), f"{name}: no summary/description"
        url = ann.get("runbook_url", "")
        assert url.endswith("#" + name.lower()), f"{name}: runbook_url {url!r} is not README.md#{name.lower()}"
        assert name.lower() in headings, f"{name}: no '#### {name}' heading in README's Runbook section"


def check_alerts_per_pod() -> None:
    for a in ALERTS:
        e = a["expr"]
        assert "redtail_generator_" not in e, f"{a['alert']} relies on the demo generator's metrics"
        for by in re.findall(r"\b(?:sum|max|min|avg|count)\s*(?:by\s*\(([^)]*)\))?\s*\(", e):
            assert by.strip(), f"{a['alert']}: a cluster-wide aggregation without `by`: {e}"


def check_alerts_for_counters() -> None:
    exprs = " ".join(a["expr"] for a in ALERTS)
    missing = [m for m in LOSS if m not in exprs]
    assert not missing, f"no alert on {missing}"


def check_every_alert_tested() -> None:
    tested = {t["alertname"] for case in TESTS["tests"] for t in case.get("alert_rule_test", [])}
    untested = [a["alert"] for a in ALERTS if a["alert"] not in tested]
    assert not untested, f"alerts without a promtool test: {untested}"


def main() -> int:
    passed = failed = 0
    for fn in (check_variables, check_selectors, check_rate_interval, check_legends_by_pod,
               check_panels_for_counters, check_layout, check_alert_metadata, check_alerts_per_pod,
               check_alerts_for_counters, check_every_alert_tested):
        name = fn.__name__.removeprefix("check_").replace("_", " ")
        try:
            fn()
        except AssertionError as err:
            failed += 1
            print(f"FAIL  {name}: {err}")
        else:
            passed += 1
            print(f"ok    {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
