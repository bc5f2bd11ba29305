#!/usr/bin/env bash
# Creates (or reuses) a kind cluster, builds the three redtail images, loads them into the nodes,
# optionally installs kube-prometheus-stack, installs charts/redtail, runs `helm test`, and prints
# how to reach the logs and Grafana.
#
#   deploy/kind/up.sh [--monitoring] [--skip-build] [--name NAME] [--namespace NS] [--release R]
#                     [-- extra helm install arguments]
#
# Needs docker, kind, kubectl; helm is taken from PATH or installed by scripts/install-helm.sh.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="${repo_root}/deploy/kind"
cluster=redtail
namespace=redtail
release=redtail
monitoring=false
build=true
helm_args=()

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($# > 0)); do
  case "$1" in
    --monitoring) monitoring=true ;;
    --skip-build) build=false ;;
    --name) cluster="$2"; shift ;;
    --namespace) namespace="$2"; shift ;;
    --release) release="$2"; shift ;;
    --) shift; helm_args=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) echo "up.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "up.sh: $1 is required ($2)" >&2; exit 1; }; }
need docker "https://docs.docker.com/engine/install/"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
if command -v helm >/dev/null 2>&1; then
  helm=helm
else
  bash "${repo_root}/scripts/install-helm.sh"
  helm="${repo_root}/.tools/bin/helm"
  export HELM_CONFIG_HOME="${repo_root}/.tools/helm/config" HELM_CACHE_HOME="${repo_root}/.tools/helm/cache" \
    HELM_DATA_HOME="${repo_root}/.tools/helm/data"
fi

tag="$(sed -n 's/^appVersion: *//p' "${repo_root}/charts/redtail/Chart.yaml" | tr -d "\"' ")"
images=("redtail-generator:${tag}" "redtail-watcher:${tag}" "redtail-subscriber:${tag}")

say "kind cluster ${cluster}"
if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
  echo "reusing the existing cluster"
else
  kind create cluster --name "${cluster}" --config "${here}/cluster.yaml" --wait 120s
fi
kubectl config use-context "kind-${cluster}" >/dev/null

if [[ "${build}" == true ]]; then
  say "building ${images[*]}"
  for role in generator watcher subscriber; do
    docker build --target "${role}" -t "redtail-${role}:${tag}" "${repo_root}"
  done
fi

say "loading the images into the nodes"
kind load docker-image --name "${cluster}" "${images[@]}"
# Offline machines: hand the nodes the Redis image too when docker already has it.
if docker image inspect redis:7.2 >/dev/null 2>&1; then
  kind load docker-image --name "${cluster}" redis:7.2
fi

# Native sidecars need Kubernetes 1.29+; older clusters get the watcher as a plain container.
minor="$(kubectl version -o json | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | tail -n 1)"
if [[ -n "${minor}" ]] && ((minor < 29)); then
  echo "Kubernetes 1.${minor}: watcher runs as a plain second container"
  helm_args=(--set watcher.nativeSidecar=false "${helm_args[@]}")
fi

if [[ "${monitoring}" == true ]]; then
  say "kube-prometheus-stack (release kps, namespace monitoring)"
  "${helm}" repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
  "${helm}" upgrade --install kps prometheus-community/kube-prometheus-stack --namespace monitoring \
    --create-namespace --values "${here}/monitoring-values.yaml" --wait --timeout 10m
  helm_args=(--set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true
    --set metrics.service.prometheusAnnotations=false "${helm_args[@]}")
fi

say "redtail (release ${release}, namespace ${namespace})"
"${helm}" upgrade --install "${release}" "${repo_root}/charts/redtail" --namespace "${namespace}" \
  --create-namespace --wait --timeout 5m "${helm_args[@]}"

say "helm test: are lines flowing?"
"${helm}" test "${release}" --namespace "${namespace}" --logs

say "done"
cat <<MSG
Events from the subscribers:
  kubectl -n ${namespace} logs -f -l app.kubernetes.io/instance=${release},app.kubernetes.io/component=subscriber
Rolling-restart drill (no line lost):
  deploy/kind/rolling-restart-drill.sh --namespace ${namespace} --release ${release}
MSG
if [[ "${monitoring}" == true ]]; then
  cat <<MSG
Grafana (dashboard "redtail"), user admin, password redtail:
  kubectl -n monitoring port-forward svc/kps-grafana 3000:80   # then open http://localhost:3000
Prometheus:
  kubectl -n monitoring port-forward svc/prometheus-operated 9090:9090
MSG
fi
echo "Delete everything: kind delete cluster --name ${cluster}"
