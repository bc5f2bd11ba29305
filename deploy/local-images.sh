#!/usr/bin/env bash
# Build redtail's three images (generator, watcher, subscriber) from the top-level Dockerfile on a
# machine whose Docker engine cannot pull from any registry, then print their sizes and measure
# how long a watcher container takes from `docker run` to a 200 on /readyz.
#
# Nothing is pulled: the base images are made here from Debian's packages.
#   builder  minbase bookworm (debootstrap) + gcc, libc6-dev, ca-certificates + this machine's Rust
#            toolchain copied in (Debian's rustc is older than the MSRV of redis 1.x / notify 8)
#   runtime  a distroless-like tree: glibc, libgcc, CA bundle, passwd with nonroot (65532), no shell
#   redis    minbase bookworm + redis-server (for docker-compose.yml and the measurements only)
# Base images are tagged by what decides their content and are reused when present.
# Crates are vendored (`cargo vendor --locked`) into a build context under target/, with a
# generated .cargo/config.toml, so the Docker build itself needs no network.
#
# Usage: deploy/local-images.sh [--no-measure] [--rebuild-bases]
# Environment:
#   REDTAIL_TAG            extra tag of the built images (default: local); they are always also tagged
#                          with the workspace version, the tag charts/redtail and deploy/kind use
#   REDTAIL_CONTEXT        worktree (default: tracked + untracked-not-ignored files) or head (git HEAD)
#   REDTAIL_DEBIAN_MIRROR  Debian mirror for debootstrap (default: the one apt is configured with)
#   REDTAIL_STATE_DIR      work directory (default: <repo>/target/container)
set -euo pipefail

readonly SUITE=bookworm
readonly BASE_REV=r1 # bump when the recipe of a base image changes

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tag=${REDTAIL_TAG:-local}
state_dir=${REDTAIL_STATE_DIR:-$repo_root/target/container}
context_mode=${REDTAIL_CONTEXT:-worktree}
measure=1
rebuild_bases=0
for arg in "$@"; do
  case $arg in
    --no-measure) measure=0 ;;
    --rebuild-bases) rebuild_bases=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { printf '[local-images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if ! docker info >/dev/null 2>&1; then
  echo "SKIP: no usable Docker engine ('docker info' failed); redtail images not built." >&2
  exit 0
fi

# The Docker CLI only uses BuildKit through the buildx plugin; without it, the legacy builder
# (the Dockerfile is written for both).
if docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=1
else
  export DOCKER_BUILDKIT=0
fi

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt is configured with: deb822 .sources first, then one-line sources.list.
debian_mirror() {
  if [[ -n ${REDTAIL_DEBIAN_MIRROR:-} ]]; then
    echo "$REDTAIL_DEBIAN_MIRROR"
    return
  fi
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk -v suite="$SUITE" 'BEGIN { RS = "" }
      {
        uris = ""; ok = 0
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", lines[i]); split(lines[i], u, /[ \t]+/); uris = u[1] }
          if (lines[i] ~ /^Suites:/) { m = split(lines[i], s, /[ \t]+/); for (j = 2; j <= m; j++) if (s[j] == suite) ok = 1 }
        }
        if (ok && uris != "") { print uris; exit }
      }' "$f")
    [[ -n $uri ]] && break
  done
  if [[ -z $uri ]]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -f $f ]] || continue
      uri=$(awk -v suite="$SUITE" '$1 == "deb" {
          i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
          if ($(i + 1) == suite) { print $i; exit }
        }' "$f")
      [[ -n $uri ]] && break
    done
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
}

# debootstrap a minbase tree with extra packages. Downloaded .debs are kept in a cache directory,
# so the second tree (and the next run) downloads almost nothing.
make_tree() {
  local dir=$1 include=$2
  local cache=/var/cache/redtail-debootstrap
  mkdir -p "$cache"
  log "debootstrap $SUITE (minbase + $include) from $mirror"
  if ! debootstrap --variant=minbase --cache-dir="$cache" --include="$include" \
    "$SUITE" "$dir" "$mirror" >"$dir.log" 2>&1; then
    tail -n 20 "$dir.log" >&2
    die "debootstrap failed (log: $dir.log)"
  fi
}

# Tar a tree for `docker import`, leaving out what only the installer needed.
tar_tree() {
  tar --numeric-owner -C "$1" \
    --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* --exclude=./debootstrap \
    --exclude=./var/cache/apt/archives/*.deb --exclude=./var/lib/apt/lists/* \
    --exclude=./usr/share/doc/* --exclude=./usr/share/man/* --exclude=./usr/share/locale/* \
    -cf - .
}

cleanup_tree() {
  local dir=$1
  [[ -d $dir ]] || return 0
  # debootstrap mounts /proc and /sys inside the tree; a failed run can leave them mounted.
  umount -l "$dir/proc" 2>/dev/null || true
  umount -l "$dir/sys" 2>/dev/null || true
  rm -rf --one-file-system "$dir"
}

# Copy a dpkg package's files (not its docs) from a tree into a staging root. Paths in dpkg lists
# predate the merged /usr, so /lib, /lib64, /bin and /sbin are mapped to their /usr homes.
copy_package_files() {
  local tree=$1 stage=$2 pkg=$3 list="" candidate path
  for candidate in "$tree/var/lib/dpkg/info/$pkg:amd64.list" "$tree/var/lib/dpkg/info/$pkg.list"; do
    if [[ -f $candidate ]]; then
      list=$candidate
      break
    fi
  done
  [[ -n $list ]] || die "package $pkg is not installed in $tree"
  while read -r path; do
    case $path in
      /usr/share/doc/* | /usr/share/lintian/* | /usr/share/locale/* | */gconv/*) continue ;;
    esac
    path=$(sed -E 's#^/(lib|lib64|bin|sbin)/#/usr/\1/#' <<<"$path")
    if [[ -f $tree$path || -L $tree$path ]] && [[ ! -d $tree$path ]]; then
      (cd "$tree" && cp -a --parents ".$path" "$stage/")
    fi
  done <"$list"
  mkdir -p "$stage/var/lib/dpkg/status.d"
  # A status entry per package, as distroless does, so image scanners can see what is inside.
  dpkg-query --admindir="$tree/var/lib/dpkg" -s "$pkg" >"$stage/var/lib/dpkg/status.d/$pkg"
}

build_runtime_base() {
  local tree=$1 image=$2 stage
  stage=$(mktemp -d "$work/runtime.XXXXXX")
  for d in bin lib lib64 sbin; do ln -s "usr/$d" "$stage/$d"; done
  mkdir -p "$stage"/usr/{bin,lib,lib64,sbin} "$stage"/etc/ssl/certs "$stage"/tmp "$stage"/home/nonroot \
    "$stage"/usr/local/bin "$stage"/var/lib
  chmod 1777 "$stage/tmp"
  copy_package_files "$tree" "$stage" libc6
  copy_package_files "$tree" "$stage" libgcc-s1
  cp "$tree/etc/ssl/certs/ca-certificates.crt" "$stage/etc/ssl/certs/"
  dpkg-query --admindir="$tree/var/lib/dpkg" -s ca-certificates >"$stage/var/lib/dpkg/status.d/ca-certificates"
  cp -a "$tree/usr/lib/os-release" "$stage/usr/lib/"
  ln -s ../usr/lib/os-release "$stage/etc/os-release"
  cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$stage/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\n' >"$stage/etc/nsswitch.conf"
  chown 65532:65532 "$stage/home/nonroot"
  chmod 0700 "$stage/home/nonroot"
  tar --numeric-owner -C "$stage" -cf - . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532:65532' \
    --change 'WORKDIR /home/nonroot' \
    --message "redtail runtime base: glibc, libgcc, CA certificates ($SUITE)" - "$image" >/dev/null
  rm -rf "$stage"
}

build_builder_base() {
  local tree=$1 image=$2 sysroot
  sysroot=$(rustc --print sysroot)
  log "copying the Rust toolchain from $sysroot"
  mkdir -p "$tree/usr/local/bin" "$tree/usr/local/lib" "$tree/usr/local/cargo/bin"
  cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$sysroot/bin/rustdoc" "$tree/usr/local/bin/"
  cp -a "$sysroot/lib/." "$tree/usr/local/lib/"
  if [[ -d $sysroot/libexec ]]; then cp -a "$sysroot/libexec" "$tree/usr/local/"; fi
  # Same layout as the official rust images: CARGO_HOME=/usr/local/cargo on PATH.
  tar_tree "$tree" | docker import \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "redtail builder base: $SUITE minbase + gcc + $(rustc --version)" - "$image" >/dev/null
}

build_redis_image() {
  local tree=$1 image=$2
  mkdir -p "$tree/data"
  chroot "$tree" chown redis:redis /data
  tar_tree "$tree" | docker import \
    --change 'WORKDIR /data' \
    --change 'USER redis' \
    --change 'EXPOSE 6379' \
    --change 'CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]' \
    --message "redis-server from Debian $SUITE (test image)" - "$image" >/dev/null
}

# `cargo vendor` copies every crate of the lock file, for every platform: half of it (~100 MB) is
# Windows/WASM-only, and the context is sent to the engine once per image. Crates that a Linux
# build of the binary never compiles keep only their manifest, an empty lib.rs and a checksum file
# without file list, which is all cargo reads of a crate it does not build.
prune_vendor() {
  local vendor=$1 ctx=$2 host keep dir id pruned=0
  host=$(rustc -vV | sed -n 's/^host: //p')
  keep=$(cd "$ctx" && cargo tree --locked --offline --workspace -e normal,build --target "$host" \
    --prefix none -f '{p}' | awk 'NF >= 2 { print $1 " " $2 }' | sort -u)
  for dir in "$vendor"/*/; do
    dir=${dir%/}
    id=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^name *=/ { n = $2 }
      pkg && /^version *=/ { v = $2 } END { print n " v" v }' "$dir/Cargo.toml")
    grep -qxF "$id" <<<"$keep" && continue
    python3 - "$dir" <<'PY'
import json, os, shutil, sys
d = sys.argv[1]
package = json.load(open(os.path.join(d, ".cargo-checksum.json"))).get("package")
for entry in os.listdir(d):
    if entry != "Cargo.toml":
        path = os.path.join(d, entry)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
os.makedirs(os.path.join(d, "src"))
open(os.path.join(d, "src", "lib.rs"), "w").close()
json.dump({"files": {}, "package": package}, open(os.path.join(d, ".cargo-checksum.json"), "w"))
PY
    pruned=$((pruned + 1))
  done
  log "vendor: $pruned crates not built on $host reduced to their manifests ($(du -sh "$vendor" | cut -f1) left)"
}

# ------------------------------------------------------------------------------------------------
command -v rustc >/dev/null 2>&1 || die "rustc not found: the builder image copies this machine's toolchain"
rust_version=$(rustc --version | awk '{print $2}')
builder_image=redtail-base/rust:$rust_version-$SUITE-$BASE_REV
runtime_image=redtail-base/runtime:$SUITE-$BASE_REV
redis_image=redtail-redis:$tag
mkdir -p "$state_dir"
work=$(mktemp -d "$state_dir/work.XXXXXX")
trap 'cleanup_tree "$work/tree-build"; cleanup_tree "$work/tree-redis"; rm -rf "$work"' EXIT

if ((rebuild_bases)); then
  docker image rm -f "$builder_image" "$runtime_image" "$redis_image" >/dev/null 2>&1 || true
fi

t_bases=$SECONDS
if ! image_exists "$builder_image" || ! image_exists "$runtime_image"; then
  ensure_debootstrap
  mirror=$(debian_mirror)
  make_tree "$work/tree-build" gcc,libc6-dev,ca-certificates
  log "importing $runtime_image"
  build_runtime_base "$work/tree-build" "$runtime_image"
  log "importing $builder_image"
  build_builder_base "$work/tree-build" "$builder_image"
  cleanup_tree "$work/tree-build"
fi
if ! image_exists "$redis_image"; then
  ensure_debootstrap
  mirror=$(debian_mirror)
  make_tree "$work/tree-redis" redis-server
  log "importing $redis_image"
  build_redis_image "$work/tree-redis" "$redis_image"
  cleanup_tree "$work/tree-redis"
fi
bases_seconds=$((SECONDS - t_bases))

# ------------------------------------------------------------------------------------------------
# Build context: the project's files (never target/), plus vendored crates and source replacement.
context=$state_dir/context
rm -rf "$context"
mkdir -p "$context"
cd "$repo_root"
if [[ $context_mode == head ]]; then
  git archive --format=tar HEAD | tar -C "$context" -xf -
  # Until they are committed, the container files themselves come from the work tree.
  for f in Dockerfile .dockerignore; do
    [[ -e $context/$f ]] || cp "$repo_root/$f" "$context/$f"
  done
else
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -C "$context" -xf -
fi

# The vendored (and pruned) set depends on the lock file and on the manifests' features.
deps_hash=$(cd "$context" && find . -name Cargo.toml -not -path './vendor/*' -print0 | sort -z |
  xargs -0 cat Cargo.lock | sha256sum | cut -c1-16)
vendor_dir=$state_dir/vendor-$deps_hash
if [[ ! -d $vendor_dir ]]; then
  log "cargo vendor --locked (Cargo.lock and manifests $deps_hash)"
  rm -rf "$state_dir"/vendor-* "$vendor_dir.tmp"
  (cd "$context" && cargo vendor --locked --quiet "$vendor_dir.tmp" >/dev/null) ||
    die "cargo vendor --locked failed (is Cargo.lock up to date with the manifests?)"
  prune_vendor "$vendor_dir.tmp" "$context"
  mv "$vendor_dir.tmp" "$vendor_dir"
fi
# A real copy: hard links (link count > 1) change the legacy builder's checksum of the files, and so
# would miss the layer cache whenever the vendor directory is recreated.
cp -a "$vendor_dir" "$context/vendor"
mkdir -p "$context/.cargo"
cat >>"$context/.cargo/config.toml" <<'EOF'

# Added by deploy/local-images.sh: build from the vendored crates, never from the network.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"

[net]
offline = true
EOF

# The Dockerfile's default builder (the public rust image) cannot be tried here without a
# registry, so check the one thing that breaks it: a locked crate needing a newer rustc.
default_rust=$(sed -n 's/^ARG RUST_IMAGE=rust:\([0-9][0-9.]*\).*/\1/p' "$context/Dockerfile")
need=$(for dir in "$context"/vendor/*/; do
  grep -q '"files": {}' "$dir/.cargo-checksum.json" && continue # pruned: never built
  awk -F'"' -v crate="$(basename "$dir")" '/^rust-version *=/ { print $2, crate; exit }' "$dir/Cargo.toml"
done | sort -V | tail -n 1)
need_version=${need%% *}
if [[ -n $default_rust && -n $need ]] &&
  [[ $(printf '%s\n' "$default_rust" "$need_version" | sort -V | tail -n 1) != "$default_rust" ]]; then
  die "the Dockerfile's default RUST_IMAGE (rust:$default_rust) is older than rustc $need_version, required by ${need#* }"
fi

version=$(awk -F'"' '/^\[workspace.package\]/ { p = 1 } p && /^version *=/ { print $2; exit }' "$context/Cargo.toml")
revision=$(git -C "$repo_root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $context_mode == worktree ]] && [[ -n $(git -C "$repo_root" status --porcelain 2>/dev/null) ]]; then
  revision=$revision-dirty
fi
created=$(git -C "$repo_root" log -1 --format=%cI 2>/dev/null || echo unknown)

# ------------------------------------------------------------------------------------------------
build_log=$state_dir/build.log
: >"$build_log"
t_build=$SECONDS
for role in generator watcher subscriber; do
  log "docker build --target $role -> redtail-$role:$version, redtail-$role:$tag"
  t0=$SECONDS
  if ! docker build "$context" --force-rm \
    --target "$role" \
    --build-arg RUST_IMAGE="$builder_image" \
    --build-arg RUNTIME_IMAGE="$runtime_image" \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    -t "redtail-$role:$version" -t "redtail-$role:$tag" >>"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    die "docker build --target $role failed (full log: $build_log)"
  fi
  log "  built in $((SECONDS - t0)) s"
done
build_seconds=$((SECONDS - t_build))

echo
echo "== images"
printf '%-32s %10s\n' IMAGE SIZE
for image in "redtail-generator:$tag" "redtail-watcher:$tag" "redtail-subscriber:$tag" \
  "$runtime_image" "$builder_image" "$redis_image"; do
  size=$(docker image inspect -f '{{.Size}}' "$image")
  printf '%-32s %7.1f MB\n' "$image" "$(awk -v s="$size" 'BEGIN { print s / 1000000 }')"
done
echo "base images: ${bases_seconds} s (0 when reused); redtail images: ${build_seconds} s"
runtime_size=$(docker image inspect -f '{{.Size}}' "redtail-watcher:$tag")
if ((runtime_size > 40000000)); then
  echo "WARNING: the watcher image is over the 40 MB target" >&2
fi

((measure)) || exit 0

# ------------------------------------------------------------------------------------------------
# Start-to-ready: a watcher container against a Redis container on a user-defined network,
# metrics published on loopback only. Three runs; also checks that SIGTERM to PID 1 ends it
# with status 0 well within the grace period (no init process in the image).
net=redtail-measure-$$
redis_name=redtail-measure-redis-$$
watcher_name=redtail-measure-watcher-$$
# shellcheck disable=SC2317 # called from the EXIT trap
measure_cleanup() {
  docker rm -f "$watcher_name" "$redis_name" >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
}
trap 'measure_cleanup; cleanup_tree "$work/tree-build"; cleanup_tree "$work/tree-redis"; rm -rf "$work"' EXIT
docker network create "$net" >/dev/null
docker run -d --name "$redis_name" --network "$net" --network-alias redis "$redis_image" >/dev/null

echo
echo "== start-to-ready (watcher, /readyz)"
status=0
for run in 1 2 3; do
  docker rm -f "$watcher_name" >/dev/null 2>&1 || true
  if ! python3 - "$watcher_name" "$net" "redtail-watcher:$tag" "$run" <<'PY'; then
import json, subprocess, sys, time, urllib.request, urllib.error
from datetime import datetime

name, net, image, run = sys.argv[1:5]
t0 = time.time()
subprocess.run(["docker", "run", "-d", "--name", name, "--network", net,
                "-p", "127.0.0.1::9102",
                "-e", "REDTAIL_REDIS_URL=redis://redis:6379",
                "-e", "REDTAIL_SOURCE=measure", image],
               check=True, stdout=subprocess.DEVNULL)
port = subprocess.run(["docker", "port", name, "9102/tcp"], check=True,
                      capture_output=True, text=True).stdout.split()[0].rsplit(":", 1)[1]
url = f"http://127.0.0.1:{port}/readyz"
deadline = t0 + 15
ready = None
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as r:
            if r.status == 200:
                ready = time.time()
                break
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    time.sleep(0.01)
state = json.loads(subprocess.run(["docker", "inspect", name], check=True,
                                  capture_output=True, text=True).stdout)[0]["State"]
if ready is None:
    logs = subprocess.run(["docker", "logs", "--tail", "20", name], capture_output=True, text=True)
    print(f"run {run}: NOT READY within 15 s (container running={state['Running']})")
    print(logs.stdout + logs.stderr)
    sys.exit(1)
started = datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z") + "+00:00").timestamp()
t_stop = time.time()
subprocess.run(["docker", "stop", "-t", "10", name], check=True, stdout=subprocess.DEVNULL)
stop_s = time.time() - t_stop
code = json.loads(subprocess.run(["docker", "inspect", name], check=True,
                                 capture_output=True, text=True).stdout)[0]["State"]["ExitCode"]
print(f"run {run}: docker run -> ready {ready - t0:.3f} s; process start -> ready "
      f"{ready - started:.3f} s; SIGTERM -> exit {code} in {stop_s:.2f} s")
sys.exit(0 if code == 0 and stop_s < 10 else 1)
PY
    status=1
  fi
done
exit "$status"
