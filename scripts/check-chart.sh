#!/usr/bin/env bash
# CI checks for charts/redtail (no cluster needed):
#   1. the chart's files/ links resolve to deploy/ (one source for the dashboard and alert rules);
#   2. helm lint --strict, for the default values and every ci/*-values.yaml;
#   3. helm template of each, validated against the Kubernetes schemas of 1.29 and the newest
#      version kubernetes-validate ships (CRDs such as ServiceMonitor are skipped by it);
#   4. the template tests of charts/redtail/tests/test_render.py (shape, probes, security, the
#      NetworkPolicy, values the schema must reject, ...).
# One line per check; exits non-zero when any check fails. Tools come from scripts/install-helm.sh.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="${repo_root}/charts/redtail"
tools="${REDTAIL_TOOLS_DIR:-${repo_root}/.tools}"
oldest_kube="1.29"

bash "${repo_root}/scripts/install-helm.sh"
helm="${tools}/bin/helm"
validate="${tools}/venv/bin/kubernetes-validate"
python="${tools}/venv/bin/python"
export HELM_CONFIG_HOME="${tools}/helm/config"
export HELM_CACHE_HOME="${tools}/helm/cache"
export HELM_DATA_HOME="${tools}/helm/data"

out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT

passed=0
failed=0
ok() {
  passed=$((passed + 1))
  echo "ok   $*"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL $*"
}
# helm logs an INFO line each time it follows a symbolic link in the chart: expected, not news.
quiet() { grep -v 'found symbolic link in path' || true; }

# 1. files/ are links into deploy/, so the chart cannot drift from the files users import by hand.
for link in files/redtail.json:deploy/grafana/redtail.json files/redtail-rules.yaml:deploy/prometheus/redtail-rules.yaml; do
  inside="${link%%:*}"
  source="${link#*:}"
  if [[ -L "${chart}/${inside}" && "$(realpath -m "${chart}/${inside}")" == "$(realpath -m "${repo_root}/${source}")" ]]; then
    if [[ -f "${repo_root}/${source}" ]]; then
      ok "charts/redtail/${inside} links to ${source}"
    else
      fail "charts/redtail/${inside} links to ${source}, which does not exist"
    fi
  else
    fail "charts/redtail/${inside} must be a symbolic link to ../../../${source}"
  fi
done

newest_kube="$("${python}" - <<'PY'
import pathlib, re, kubernetes_validate
d = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
versions = {tuple(map(int, m.groups())) for p in d.iterdir() if (m := re.match(r"v(\d+)\.(\d+)\.\d+-local-strict$", p.name))}
print("%d.%d" % max(versions))
PY
)"

# 2 and 3. lint, render, validate: default values first, then every supported combination.
values_sets=("default:")
for f in "${chart}"/ci/*-values.yaml; do
  values_sets+=("$(basename "${f}" -values.yaml):${f}")
done
rendered=()
for set in "${values_sets[@]}"; do
  name="${set%%:*}"
  file="${set#*:}"
  args=()
  [[ -n "${file}" ]] && args=(--values "${file}")
  if log="$("${helm}" lint --strict "${chart}" "${args[@]}" 2>&1)"; then
    ok "[${name}] helm lint --strict"
  else
    fail "[${name}] helm lint --strict"
    printf '%s\n' "${log}" | quiet | sed 's/^/     /'
  fi
  if "${helm}" template redtail "${chart}" --namespace redtail "${args[@]}" >"${out}/${name}.yaml" 2>"${out}/${name}.err"; then
    ok "[${name}] helm template"
    rendered+=("${out}/${name}.yaml")
  else
    fail "[${name}] helm template"
    quiet <"${out}/${name}.err" | sed 's/^/     /'
    continue
  fi
  if log="$("${validate}" --strict --quiet --no-warn -k "${oldest_kube}" -k "${newest_kube}" "${out}/${name}.yaml" 2>&1)"; then
    ok "[${name}] manifests valid for Kubernetes ${oldest_kube} and ${newest_kube} (kubernetes-validate --strict)"
  else
    fail "[${name}] manifests valid for Kubernetes ${oldest_kube} and ${newest_kube} (kubernetes-validate --strict)"
    printf '%s\n' "${log}" | sed 's/^/     /'
  fi
done

# The chart packages with the linked files' contents (what a chart repository would serve).
if "${helm}" package "${chart}" --destination "${out}/pkg" >/dev/null 2>&1 &&
  tar -xzOf "${out}"/pkg/redtail-*.tgz redtail/files/redtail.json | cmp -s - "${repo_root}/deploy/grafana/redtail.json"; then
  ok "helm package embeds deploy/grafana/redtail.json"
else
  fail "helm package embeds deploy/grafana/redtail.json"
fi

echo "shell checks: ${passed} passed, ${failed} failed"

# 4. template tests.
tests_rc=0
if ((${#rendered[@]} > 0)); then
  "${python}" "${chart}/tests/test_render.py" --helm "${helm}" --chart "${chart}" --deploy "${repo_root}/deploy" \
    "${rendered[@]}" || tests_rc=$?
else
  fail "nothing rendered: template tests not run"
fi

if ((failed > 0 || tests_rc != 0)); then
  echo "check-chart: FAILED" >&2
  exit 1
fi
echo "check-chart: all chart checks passed" >&2
