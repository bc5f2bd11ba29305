# shellcheck shell=bash
# Shared helpers for the scripts (sourced, not run).

# ensure_packages CMD PACKAGE... : install the Debian packages when CMD is missing.
ensure_packages() {
  local cmd=$1
  shift
  if command -v "$cmd" >/dev/null 2>&1; then
    return 0
  fi
  echo "==> installing $* (for $cmd)"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      echo "error: $cmd is missing. Install it with: sudo apt-get install -y $*" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $cmd is missing and this is not a Debian/Ubuntu machine: install $* with your package manager" >&2
    return 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found. Install Rust (https://rustup.rs), version 1.88 or newer." >&2
    return 1
  fi
}
