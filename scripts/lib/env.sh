# shellcheck shell=bash
# The environment the services, the CLI and the tests read, with the stack's local defaults.
# `scripts/stack up` writes the values it used to .stack/env (source it to talk to the stack).
# Needs common.sh, kafka.sh and postgres.sh.

ENV_FILE="$STACK_DIR/env"
ENV_NAMES=(STACK_BROKERS STACK_KAFKA_PORT KAFKA_BOOTSTRAP_SERVERS KAFKA_REPLICATION_FACTOR
    TOPIC_SUFFIX DATABASE_URL PAYMENT_DATABASE_URL ACCOUNTING_DATABASE_URL PAYMENT_HTTP_ADDR
    ACCOUNTING_HTTP_ADDR RUST_LOG)

# Whether the caller chose Kafka / PostgreSQL, before any default is filled in.
KAFKA_EXPLICIT="${KAFKA_BOOTSTRAP_SERVERS:+1}"
PG_EXPLICIT="${DATABASE_URL:+1}"

# env_load_saved: fills variables the caller did not set from .stack/env (the last `up`).
env_load_saved() {
    [[ -f "$ENV_FILE" ]] || return 0
    local line name
    while IFS= read -r line; do
        [[ "$line" =~ ^export\ ([A-Z_]+)= ]] || continue
        name="${BASH_REMATCH[1]}"
        [[ -n "${!name:-}" ]] || eval "$line"
    done <"$ENV_FILE"
}

# env_defaults: fills whatever is still unset with the local stack's values.
# STACK_BROKERS and STACK_KAFKA_PORT: see kafka.sh; the replication factor follows the number of
# brokers.
env_defaults() {
    export STACK_BROKERS="${STACK_BROKERS:-1}"
    export STACK_KAFKA_PORT="${STACK_KAFKA_PORT:-9092}"
    kafka_check_topology
    export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-$(kafka_local_addr)}"
    export KAFKA_REPLICATION_FACTOR="${KAFKA_REPLICATION_FACTOR:-$STACK_BROKERS}"
    export TOPIC_SUFFIX="${TOPIC_SUFFIX:-}"
    export DATABASE_URL="${DATABASE_URL:-$PG_LOCAL_ADMIN_URL}"
    export PAYMENT_DATABASE_URL="${PAYMENT_DATABASE_URL:-$(pg_url_for "$DATABASE_URL" payment_service payment_service)}"
    export ACCOUNTING_DATABASE_URL="${ACCOUNTING_DATABASE_URL:-$(pg_url_for "$DATABASE_URL" accounting_service accounting_service)}"
    export PAYMENT_HTTP_ADDR="${PAYMENT_HTTP_ADDR:-127.0.0.1:8081}"
    export ACCOUNTING_HTTP_ADDR="${ACCOUNTING_HTTP_ADDR:-127.0.0.1:8082}"
    export RUST_LOG="${RUST_LOG:-info}"
}

env_save() {
    mkdir -p "$STACK_DIR"
    {
        echo "# Written by scripts/stack up on $(date -Is). Source it: . .stack/env"
        local name
        for name in "${ENV_NAMES[@]}"; do
            printf 'export %s=%q\n' "$name" "${!name}"
        done
    } >"$ENV_FILE"
}
