#!/usr/bin/env bash
# Creates (or reuses) a local Kubernetes cluster — kind or minikube — builds the three redtail
# images, loads them into it, optionally installs kube-prometheus-stack, installs charts/redtail,
# runs `helm test`, and prints how to reach the logs and Grafana.
#
#   deploy/up.sh kind|minikube [--monitoring] [--skip-build] [--name NAME] [--namespace NS]
#                [--release R] [-- extra helm install arguments]
#
# (deploy/kind/up.sh and deploy/minikube/up.sh call this with the platform filled in.)
# Needs docker, kind or minikube, kubectl; helm is taken from PATH or installed by
# scripts/install-helm.sh. minikube: MINIKUBE_START_ARGS adds flags to `minikube start`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

platform="${1:-}"
case "${platform}" in
  kind | minikube) shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "up.sh: first argument must be kind or minikube" >&2; usage >&2; exit 2 ;;
esac
here="${repo_root}/deploy/${platform}"
cluster=redtail
namespace=redtail
release=redtail
monitoring=false
build=true
helm_args=()

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

# The platform-specific steps: start or reuse, select the context, load images, delete hint.
kind_up() {
  say "kind cluster ${cluster}"
  if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
    echo "reusing the existing cluster"
  else
    kind create cluster --name "${cluster}" --config "${here}/cluster.yaml" --wait 120s
  fi
  kubectl config use-context "kind-${cluster}" >/dev/null
}
# `docker save | kind load image-archive`, not `kind load docker-image`: the latter fails for
# multi-platform images under Docker's containerd image store ("content digest not found").
kind_load() {
  local archive
  archive="$(mktemp "${TMPDIR:-/tmp}/redtail-images.XXXXXX")"
  docker save -o "${archive}" "$@"
  kind load image-archive --name "${cluster}" "${archive}"
  rm -f "${archive}"
}
kind_delete_hint() { echo "kind delete cluster --name ${cluster}"; }

minikube_up() {
  say "minikube profile ${cluster}"
  if minikube -p "${cluster}" status >/dev/null 2>&1; then
    echo "reusing the running profile"
  else
    # Two CPUs and 4 GiB hold redtail plus kube-prometheus-stack. MINIKUBE_START_ARGS adds flags
    # (e.g. --driver=docker --kubernetes-version=v1.31.0).
    read -r -a start_args <<<"${MINIKUBE_START_ARGS:-}"
    minikube start -p "${cluster}" --cpus 2 --memory 4096 ${start_args[@]+"${start_args[@]}"}
  fi
  kubectl config use-context "${cluster}" >/dev/null
}
minikube_load() {
  local image
  for image in "$@"; do
    minikube -p "${cluster}" image load "${image}"
  done
}
minikube_delete_hint() { echo "minikube delete -p ${cluster}"; }

say() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "up.sh: $1 is required ($2)" >&2; exit 1; }; }
need docker "https://docs.docker.com/engine/install/"
case "${platform}" in
  kind) need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation" ;;
  minikube) need minikube "https://minikube.sigs.k8s.io/docs/start/" ;;
esac
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

"${platform}_up"

if [[ "${build}" == true ]]; then
  say "building ${images[*]}"
  for role in generator watcher subscriber; do
    docker build --target "${role}" -t "redtail-${role}:${tag}" "${repo_root}"
  done
fi

say "loading the images into ${platform}"
"${platform}_load" ${images[@]+"${images[@]}"}
# Offline machines: hand the cluster the Redis image too when docker already has it.
if docker image inspect redis:7.2 >/dev/null 2>&1; then
  "${platform}_load" redis:7.2
fi

# Native sidecars need Kubernetes 1.29+; older clusters get the watcher as a plain container.
minor="$(kubectl version -o json | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | tail -n 1)"
if [[ -n "${minor}" ]] && ((minor < 29)); then
  echo "Kubernetes 1.${minor}: watcher runs as a plain second container"
  helm_args=(--set watcher.nativeSidecar=false ${helm_args[@]+"${helm_args[@]}"})
fi

if [[ "${monitoring}" == true ]]; then
  say "kube-prometheus-stack (release kps, namespace monitoring)"
  "${helm}" repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
  "${helm}" upgrade --install kps prometheus-community/kube-prometheus-stack --namespace monitoring \
    --create-namespace --values "${here}/monitoring-values.yaml" --wait --timeout 10m
  helm_args=(--set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true
    --set metrics.service.prometheusAnnotations=false ${helm_args[@]+"${helm_args[@]}"})
fi

# The chart never generates the Redis password (renders must be deterministic): create a Secret
# once, keep it across runs, and point the chart at it.
say "Redis password (Secret ${release}-redis-auth, created once)"
kubectl create namespace "${namespace}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if kubectl -n "${namespace}" get secret "${release}-redis-auth" >/dev/null 2>&1; then
  echo "reusing the existing Secret"
else
  kubectl -n "${namespace}" create secret generic "${release}-redis-auth" \
    --from-literal=redis-password="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
fi
helm_args=(--set redis.auth.existingSecret="${release}-redis-auth" ${helm_args[@]+"${helm_args[@]}"})

say "redtail (release ${release}, namespace ${namespace})"
"${helm}" upgrade --install "${release}" "${repo_root}/charts/redtail" --namespace "${namespace}" \
  --create-namespace --wait --timeout 5m ${helm_args[@]+"${helm_args[@]}"}

say "helm test: are lines flowing?"
"${helm}" test "${release}" --namespace "${namespace}" --logs

say "done"
cat <<MSG
Events from the subscribers:
  kubectl -n ${namespace} logs -f -l app.kubernetes.io/instance=${release},app.kubernetes.io/component=subscriber
Rolling-restart drill (no line lost; works on any cluster):
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
echo "Delete everything: $("${platform}_delete_hint")"
