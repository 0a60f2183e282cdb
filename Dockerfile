# syntax=docker/dockerfile:1
#
# hivewatch as a container image: built with the pinned Rust toolchain, run as a non-root user on Debian slim.
#
#   docker build -t hivewatch .
#   docker run --rm -p 4317:4317 -p 4318:4318 \
#     -e HIVEWATCH_INGEST_TOKEN=… -e HIVEWATCH_READ_TOKEN=… hivewatch
#
# The default command listens on 0.0.0.0, where hivewatch refuses to start without both tokens (or
# --insecure-no-auth). Every other setting is an HIVEWATCH_* variable (`docker run … hivewatch serve --help`).
# Without HIVEWATCH_DATABASE_URL the data (SQLite) is in /var/lib/hivewatch: mount a volume there.
# compose/docker-compose.yml runs this image with Postgres, Redis and the rest of the stack (docs/DEPLOY.md).
#
# Needs BuildKit (the default builder of current Docker, and of `docker compose`) for the cache mounts, which keep
# the crates and the target directory between builds: a clean release build takes minutes, a rebuild after a
# source change seconds.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# .dockerignore lets in only what cargo needs: the manifests, the lock file and the sources.
COPY . .
# Pure Rust (tokio-postgres, no libpq; no OpenSSL): the only native code is the bundled SQLite and zstd, built with
# the C compiler that the rust image ships. --locked: exactly the versions of Cargo.lock.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p hivewatch \
    && install -D -m 0755 target/release/hivewatch /out/hivewatch

FROM debian:bookworm-slim
# ca-certificates: the system trust store, for whatever in the container speaks TLS (hivewatch itself serves and
# exports plain HTTP/gRPC: put TLS in front of it). bash, already in the image, runs the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hivewatch \
    && useradd --system --uid 10001 --gid hivewatch --home-dir /var/lib/hivewatch --no-create-home \
        --shell /usr/sbin/nologin hivewatch \
    && install -d -o hivewatch -g hivewatch -m 0750 /var/lib/hivewatch
COPY --from=builder /out/hivewatch /usr/local/bin/hivewatch

ENV HIVEWATCH_DATA_DIR=/var/lib/hivewatch
WORKDIR /var/lib/hivewatch
VOLUME ["/var/lib/hivewatch"]
USER 10001:10001

# 4317 OTLP/gRPC; 4318 OTLP/HTTP, the hook endpoint, the API, /metrics, the live stream and the dashboard.
EXPOSE 4317 4318

# GET /healthz over bash's /dev/tcp (the slim image has no curl): healthy only on an answer `HTTP/1.1 200`.
# /healthz needs no token. The port is the default command's; compose/docker-compose.yml runs the same check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4318 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1.1 200 '"]

ENTRYPOINT ["hivewatch"]
CMD ["serve", "--grpc-addr", "0.0.0.0:4317", "--http-addr", "0.0.0.0:4318"]
