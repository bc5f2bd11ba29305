#!/usr/bin/env bash
# Validates the monitoring files shipped in deploy/:
#   - the Prometheus alerting rules (promtool check rules),
#   - their unit tests (promtool test rules),
#   - the sample Prometheus configuration (promtool check config),
#   - the Grafana dashboard (valid JSON),
#   - what promtool cannot check (deploy/observability_test.py): dashboard variables, selectors,
#     $__rate_interval, legends by pod, panels and alerts for every loss counter, a runbook_url and
#     a README Runbook entry per alert, no cluster-wide sums, a promtool test for every alert.
# Prints one line per check and exits non-zero if any failed (the tool's output follows a
# failed line). Installs promtool from Debian's `prometheus` package when it is missing and the
# script runs as root; otherwise it says how to install it.
#
# Usage: scripts/check-observability.sh        (from anywhere; paths are taken from the repo)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prom_dir="${repo_root}/deploy/prometheus"
dashboard="${repo_root}/deploy/grafana/redtail.json"

install_promtool() {
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "promtool not found. Install it with one of:" >&2
        echo "  sudo apt-get install --no-install-recommends prometheus   # Debian/Ubuntu" >&2
        echo "  or the promtool binary from https://prometheus.io/download/ on your PATH" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "promtool not found and apt-get is unavailable: put promtool from" \
            "https://prometheus.io/download/ on your PATH" >&2
        exit 1
    fi
    echo "installing promtool (Debian package prometheus)..."
    # The package was not installed (promtool is part of it), so any prometheus service running
    # after this point was started by this installation: stop it again below, we only want the tool.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
        echo "stopped and disabled the prometheus service the package started"
    fi
    command -v promtool >/dev/null 2>&1 || {
        echo "promtool still not found after installing the prometheus package" >&2
        exit 1
    }
}

command -v promtool >/dev/null 2>&1 || install_promtool
command -v python3 >/dev/null 2>&1 || {
    echo "python3 is required for the JSON check" >&2
    exit 1
}
if ! python3 -c 'import yaml' 2>/dev/null; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing PyYAML (Debian package python3-yaml)..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
    fi
    python3 -c 'import yaml' 2>/dev/null || {
        echo "PyYAML is required: apt-get install python3-yaml (or pip install PyYAML)" >&2
        exit 1
    }
fi

failures=0

# run_check <label> <command...>: runs the command quietly, prints "ok"/"FAIL" with the label,
# and the command's output only when it failed.
run_check() {
    local label="$1"
    shift
    local output
    if output="$("$@" 2>&1)"; then
        printf 'ok    %s\n' "${label}"
    else
        printf 'FAIL  %s\n' "${label}"
        printf '%s\n' "${output}" | sed 's/^/      /'
        failures=$((failures + 1))
    fi
}

# promtool resolves rule_files relative to the file that names them; run from the repo root so the
# labels printed are the paths a reader would type.
cd "${repo_root}"
run_check "promtool check rules deploy/prometheus/redtail-rules.yaml" \
    promtool check rules "${prom_dir}/redtail-rules.yaml"
run_check "promtool test rules deploy/prometheus/redtail-rules.test.yaml" \
    promtool test rules "${prom_dir}/redtail-rules.test.yaml"
run_check "promtool check config deploy/prometheus/prometheus.yml" \
    promtool check config "${prom_dir}/prometheus.yml"
run_check "json deploy/grafana/redtail.json" \
    python3 -m json.tool "${dashboard}"
run_check "dashboard and rules conventions (deploy/observability_test.py)" \
    python3 "${repo_root}/deploy/observability_test.py" "${repo_root}"

if [[ "${failures}" -ne 0 ]]; then
    echo "${failures} check(s) failed" >&2
    exit 1
fi
