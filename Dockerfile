# redtail container images: one build, three targets.
#
#   docker build --target generator  -t redtail/generator:local  .
#   docker build --target watcher    -t redtail/watcher:local    .
#   docker build --target subscriber -t redtail/subscriber:local .
#
# The base images are build arguments so that a machine without registry access can substitute
# locally made ones (deploy/local-images.sh builds them with debootstrap and passes them here).
#
# Deliberately portable: no `# syntax=` line (fetching a frontend image needs a registry), no
# `RUN --mount`, no `COPY --parents`, so the legacy builder and BuildKit produce the same images.
#
# Offline builds: when the context holds `vendor/` and `.cargo/config.toml` (source replacement,
# written by `cargo vendor`), the build never touches the network. Without them, cargo downloads
# the locked crates from crates.io inside the dependency layer, once.

# The builder must be at least the newest `rust-version` in Cargo.lock (1.88: redis 1.x, notify 8;
# notify-types is pinned to 2.0 because 2.3 needs 1.91), and bookworm, so the binary's glibc
# matches the runtime's. deploy/local-images.sh fails if a lock update breaks this.
ARG RUST_IMAGE=rust:1.88-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------------------------
# planner: reduce the workspace to what decides the dependency build (cargo-chef's "recipe"):
# every Cargo.toml, Cargo.lock, and a one-line dummy for every target. The recipe only changes
# when manifests or the lock file change, so the expensive layer below stays cached while the
# sources change. It also lays out the real sources without the vendored crates, so the final
# source layer stays small.
FROM ${RUST_IMAGE} AS planner
WORKDIR /ctx
COPY . .
RUN set -eu; \
    mkdir -p /recipe /source; \
    cp Cargo.lock /recipe/; \
    find . \( -path ./vendor -o -path ./target -o -path ./.git \) -prune -o -name Cargo.toml -print \
      | while read -r manifest; do \
          mkdir -p "/recipe/$(dirname "$manifest")"; cp "$manifest" "/recipe/$manifest"; \
        done; \
    for f in rust-toolchain rust-toolchain.toml; do if [ -f "$f" ]; then cp "$f" /recipe/; fi; done; \
    cargo metadata --offline --no-deps --format-version 1 > /tmp/metadata.json; \
    grep -o '"src_path":"[^"]*"' /tmp/metadata.json | cut -d'"' -f4 | sort -u \
      | while read -r src; do \
          rel="${src#/ctx/}"; mkdir -p "/recipe/$(dirname "$rel")"; \
          printf '#![allow(dead_code)]\nfn main() {}\n' > "/recipe/$rel"; \
        done; \
    tar --exclude=./vendor --exclude=./.cargo --exclude=./target -cf - . | tar -C /source -xf -

# ---------------------------------------------------------------------------------------------
# builder: dependencies first (cached layer), then the workspace itself.
FROM ${RUST_IMAGE} AS builder
WORKDIR /build
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
# Optional vendored crates and cargo config (offline builds). `Cargo.lock` is listed first only so
# that COPY has a source when the optional ones are absent; cargo ignores the stray file there.
COPY Cargo.lock vendo[r] ./vendor/
COPY Cargo.lock .carg[o] ./.cargo/
COPY --from=planner /recipe/ ./
# Dependency layer: builds every locked dependency against dummy workspace crates.
RUN cargo build --release --locked --bin redtail
COPY --from=planner /source/ ./
# COPY keeps the context's modification times, which can be older than the dummy build above;
# touching the workspace sources makes cargo rebuild our crates (and only them).
# Then: a first `--version` smoke test, and a check that the binary links nothing beyond glibc and
# libgcc, which is all the runtime image (distroless/cc) carries.
RUN set -eu; \
    find . \( -path ./vendor -o -path ./target \) -prune -o -type f -exec touch {} +; \
    cargo build --release --locked --bin redtail; \
    mkdir -p /out/empty; \
    install -m 0755 target/release/redtail /out/redtail; \
    /out/redtail --version; \
    /out/redtail --version | grep -Eq '[0-9]+\.[0-9]+\.[0-9]+'; \
    extra="$(ldd /out/redtail | awk '{print $1}' \
      | grep -Ev '^(linux-vdso\.so|/lib64/ld-linux-x86-64\.so|ld-linux|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so|libutil\.so)' || true)"; \
    if [ -n "$extra" ]; then echo "redtail links libraries the runtime image lacks: $extra" >&2; exit 1; fi

# ---------------------------------------------------------------------------------------------
# runtime: glibc + libgcc + CA certificates, no shell, numeric non-root user.
FROM ${RUNTIME_IMAGE} AS runtime
ARG RUNTIME_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="redtail" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
COPY --from=builder /out/redtail /usr/local/bin/redtail
# Default state directories owned by the runtime user: a named volume mounted there (Docker,
# Compose) starts with this ownership, so the non-root process can write without a chown step.
COPY --from=builder --chown=65532:65532 /out/empty/ /var/log/app/
COPY --from=builder --chown=65532:65532 /out/empty/ /var/lib/redtail/
USER 65532:65532
# Smoke test against the runtime's own libraries; exec form, since there is no shell.
RUN ["/usr/local/bin/redtail", "--version"]

FROM runtime AS generator
LABEL org.opencontainers.image.title="redtail-generator" \
      org.opencontainers.image.description="redtail generate: appends JSON log lines to REDTAIL_LOG_PATH"
EXPOSE 9101
ENTRYPOINT ["/usr/local/bin/redtail", "generate"]

FROM runtime AS watcher
LABEL org.opencontainers.image.title="redtail-watcher" \
      org.opencontainers.image.description="redtail watch: tails log files and publishes every line to Redis exactly once"
EXPOSE 9102
ENTRYPOINT ["/usr/local/bin/redtail", "watch"]

FROM runtime AS subscriber
LABEL org.opencontainers.image.title="redtail-subscriber" \
      org.opencontainers.image.description="redtail subscribe: consumes from Redis and writes normalized events"
EXPOSE 9103
ENTRYPOINT ["/usr/local/bin/redtail", "subscribe"]
