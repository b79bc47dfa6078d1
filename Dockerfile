# syntax=docker/dockerfile:1
# The application image of docker-compose.yml: payment-service, accounting-service and the
# `fares` CLI in /usr/local/bin. Database migrations are embedded in the binaries.

# ---- builder ----------------------------------------------------------------------------------
# rust:1-bookworm (buildpack-deps) already carries what rdkafka's bundled librdkafka needs:
# gcc, make, pkg-config and zlib1g-dev.
FROM rust:1-bookworm AS builder
WORKDIR /src
# sqlx's query! macros read the committed .sqlx/ cache instead of a live database.
ENV SQLX_OFFLINE=true CARGO_TERM_COLOR=never
ARG BINS="--bin payment-service --bin accounting-service --bin fares"

# 1. Dependencies only: the manifests and stub sources, so that this layer is rebuilt only when
#    Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY events-schema/Cargo.toml events-schema/
COPY transactional-messaging/Cargo.toml transactional-messaging/
COPY payment-service/Cargo.toml payment-service/
COPY accounting-service/Cargo.toml accounting-service/
COPY fares/Cargo.toml fares/
COPY tests/Cargo.toml tests/
RUN set -eux; \
    for crate in events-schema transactional-messaging payment-service accounting-service; do \
        mkdir -p "$crate/src"; : > "$crate/src/lib.rs"; \
    done; \
    for crate in payment-service accounting-service fares; do \
        mkdir -p "$crate/src"; echo 'fn main() {}' > "$crate/src/main.rs"; \
    done; \
    mkdir -p tests/integration; : > tests/lib.rs; echo 'fn main() {}' > tests/integration/main.rs; \
    cargo build --release --locked $BINS

# 2. The real sources (touched: they may be older than the stubs' build outputs).
COPY . .
RUN set -eux; \
    find events-schema transactional-messaging payment-service accounting-service fares tests \
        -name '*.rs' -exec touch {} +; \
    cargo build --release --locked $BINS

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin wildrydes
COPY --from=builder \
    /src/target/release/payment-service \
    /src/target/release/accounting-service \
    /src/target/release/fares \
    /usr/local/bin/
USER wildrydes
ENV RUST_LOG=info
CMD ["fares", "--help"]
