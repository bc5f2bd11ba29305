#!/usr/bin/env bash
# CI checks for charts/redtail (no cluster needed):
#   1. the chart's files/ are real files (GitOps tools drop or refuse symbolic links) identical to
#      the deploy/ copies users import by hand (one set of rules and one dashboard);
#   2. helm lint --strict, for the default values and every ci/*-values.yaml;
#   3. helm template of each, twice: the two renders must be identical (Argo CD renders on every
#      sync; anything random would make pods disagree), validated against the Kubernetes schemas
#      of 1.29 and the newest version kubernetes-validate ships (CRDs such as ServiceMonitor are
#      skipped by it); the plain-sidecar set also for the oldest supported cluster, 1.25;
#   4. the template tests of charts/redtail/tests/test_render.py (shape, probes, security, the
#      NetworkPolicy, values the schema must reject, ...).
# One line per check; exits non-zero when any check fails. Tools come from scripts/install-helm.sh.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="${repo_root}/charts/redtail"
tools="${REDTAIL_TOOLS_DIR:-${repo_root}/.tools}"
oldest_kube="1.29"           # native sidecars (the default)
oldest_supported_kube="1.25" # Chart.yaml kubeVersion, with watcher.nativeSidecar=false

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
# 1. files/ are copies of deploy/, so the chart cannot drift from the files users import by hand.
for pair in files/redtail.json:deploy/grafana/redtail.json files/redtail-rules.yaml:deploy/prometheus/redtail-rules.yaml; do
  inside="${pair%%:*}"
  source="${pair#*:}"
  if [[ -L "${chart}/${inside}" || ! -f "${chart}/${inside}" ]]; then
    fail "charts/redtail/${inside} must be a regular file (a copy of ${source}), not a link"
  elif cmp -s "${chart}/${inside}" "${repo_root}/${source}"; then
    ok "charts/redtail/${inside} is identical to ${source}"
  else
    fail "charts/redtail/${inside} differs from ${source}: cp ${source} charts/redtail/${inside}"
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
# The default values need one addition, the Redis password the chart never generates.
values_sets=("default:${chart}/tests/defaults-values.yaml")
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
    printf '%s\n' "${log}" | sed 's/^/     /'
  fi
  if "${helm}" template redtail "${chart}" --namespace redtail "${args[@]}" >"${out}/${name}.yaml" 2>"${out}/${name}.err"; then
    ok "[${name}] helm template"
    rendered+=("${out}/${name}.yaml")
  else
    fail "[${name}] helm template"
    sed 's/^/     /' <"${out}/${name}.err"
    continue
  fi
  "${helm}" template redtail "${chart}" --namespace redtail "${args[@]}" >"${out}/${name}.again" 2>/dev/null || true
  if cmp -s "${out}/${name}.yaml" "${out}/${name}.again"; then
    ok "[${name}] two renders are identical"
  else
    fail "[${name}] two renders differ"
    diff "${out}/${name}.yaml" "${out}/${name}.again" | head -n 20 | sed 's/^/     /'
  fi
  if log="$("${validate}" --strict --quiet --no-warn -k "${oldest_kube}" -k "${newest_kube}" "${out}/${name}.yaml" 2>&1)"; then
    ok "[${name}] manifests valid for Kubernetes ${oldest_kube} and ${newest_kube} (kubernetes-validate --strict)"
  else
    fail "[${name}] manifests valid for Kubernetes ${oldest_kube} and ${newest_kube} (kubernetes-validate --strict)"
    printf '%s\n' "${log}" | sed 's/^/     /'
  fi
done

# Clusters older than 1.29 have no native sidecars: the plain-sidecar set must validate there.
plain="${chart}/ci/plain-sidecar-values.yaml"
if "${helm}" template redtail "${chart}" --namespace redtail --kube-version "${oldest_supported_kube}.0" \
  --values "${plain}" >"${out}/plain-old.yaml" 2>"${out}/plain-old.err" &&
  log="$("${validate}" --strict --quiet --no-warn -k "${oldest_supported_kube}" "${out}/plain-old.yaml" 2>&1)"; then
  ok "[plain-sidecar] renders for and validates against Kubernetes ${oldest_supported_kube}"
else
  fail "[plain-sidecar] renders for and validates against Kubernetes ${oldest_supported_kube}"
  cat "${out}/plain-old.err" - <<<"${log:-}" | sed 's/^/     /'
fi

# The packaged chart (what a chart repository serves) holds the files themselves.
if "${helm}" package "${chart}" --destination "${out}/pkg" >/dev/null 2>&1 &&
  tar -xzOf "${out}"/pkg/redtail-*.tgz redtail/files/redtail.json | cmp -s - "${repo_root}/deploy/grafana/redtail.json" &&
  tar -xzOf "${out}"/pkg/redtail-*.tgz redtail/files/redtail-rules.yaml | cmp -s - "${repo_root}/deploy/prometheus/redtail-rules.yaml"; then
  ok "helm package embeds deploy/grafana/redtail.json and deploy/prometheus/redtail-rules.yaml"
else
  fail "helm package embeds deploy/grafana/redtail.json and deploy/prometheus/redtail-rules.yaml"
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
