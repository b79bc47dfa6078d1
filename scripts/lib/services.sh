# shellcheck shell=bash
# The project's binaries for scripts/stack: build, topics, payment-service, accounting-service.
# Needs common.sh and the environment from env.sh.

SERVICES=(payment-service accounting-service)

# The build the services run: `debug`, or `release` after `up --release` (for benchmarks), and
# the cargo target directory it is built in. `up` sets STACK_BUILD_CHOICE and saves both in
# .stack/build; every later command (`start` of a service) reads them from there, so that a
# restarted service runs the same binaries whatever the CARGO_TARGET_DIR of its shell.
BUILD_FILE="$STACK_DIR/build"

# saved_build_field NAME: the value of NAME=… in .stack/build, if any.
saved_build_field() {
    [[ -f "$BUILD_FILE" ]] || return 0
    sed -n "s/^$1=//p" "$BUILD_FILE" | head -n1
}

# stack_build: debug or release.
stack_build() {
    local build="${STACK_BUILD_CHOICE:-}"
    [[ -n "$build" ]] || build="$(saved_build_field build)"
    case "$build" in
        release) echo release ;;
        debug | "") echo debug ;;
        *) die "$BUILD_FILE says build=$build: expected debug or release (run scripts/stack up [--release] again)" ;;
    esac
}

# stack_target_dir: cargo's target directory: the one `up` used, else this shell's.
stack_target_dir() {
    local dir=""
    [[ -n "${STACK_BUILD_CHOICE:-}" ]] || dir="$(saved_build_field target_dir)"
    [[ -n "$dir" ]] || dir="$(cargo_target_dir)"
    [[ -n "$dir" ]] || die "cannot find cargo's target directory (cargo metadata failed in $ROOT)"
    echo "$dir"
}

build_save() {
    mkdir -p "$STACK_DIR"
    {
        echo "# Written by scripts/stack up: the services' build, for later 'scripts/stack start'."
        echo "build=$(stack_build)"
        [[ -n "${STACK_BIN_DIR:-}" ]] || echo "target_dir=$(stack_target_dir)"
        echo "kafka_cache_dir=$KAFKA_CACHE_DIR"
    } >"$BUILD_FILE"
}

# bin_dir: where the binaries are: $STACK_BIN_DIR if set (no build), else
# <target dir>/debug or <target dir>/release (see stack_build, stack_target_dir).
bin_dir() {
    if [[ -n "${STACK_BIN_DIR:-}" ]]; then
        echo "$STACK_BIN_DIR"
        return
    fi
    echo "$(stack_target_dir)/$(stack_build)"
}

build_binaries() {
    if [[ -n "${STACK_BIN_DIR:-}" ]]; then
        info "using the binaries in STACK_BIN_DIR=$STACK_BIN_DIR (not building)"
    else
        command -v cargo >/dev/null 2>&1 || die "cargo is needed to build the services (https://rustup.rs)"
        local profile=()
        [[ "$(stack_build)" == release ]] && profile=(--release)
        info "cargo build ${profile[*]}${profile[*]:+ }--bin payment-service --bin accounting-service --bin fares"
        local target
        target="$(stack_target_dir)"
        (cd "$ROOT" && CARGO_TARGET_DIR="$target" cargo build "${profile[@]}" \
            --bin payment-service --bin accounting-service --bin fares) ||
            die "cargo build of the services failed"
    fi
    local bin dir
    dir="$(bin_dir)"
    for bin in payment-service accounting-service fares; do
        [[ -x "$dir/$bin" ]] || die "$dir/$bin does not exist: the binary is not built (yet)"
    done
}

ensure_topics() {
    info "fares topics ensure (KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS KAFKA_REPLICATION_FACTOR=$KAFKA_REPLICATION_FACTOR)"
    "$(bin_dir)/fares" topics ensure || die "'fares topics ensure' failed: the topics could not be created"
}

# svc_addr NAME: the service's HTTP address (PAYMENT_HTTP_ADDR / ACCOUNTING_HTTP_ADDR).
svc_addr() {
    case "$1" in
        payment-service) echo "$PAYMENT_HTTP_ADDR" ;;
        accounting-service) echo "$ACCOUNTING_HTTP_ADDR" ;;
        *) die "unknown service $1" ;;
    esac
}

svc_pidfile() { echo "$RUN_DIR/$1.pid"; }
svc_log() { echo "$LOG_DIR/$1.log"; }

# svc_pid NAME: the pid of the service scripts/stack started, if it still runs.
svc_pid() {
    local pid
    pid="$(read_pid "$(svc_pidfile "$1")")" || return 1
    grep -qa "$1" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# svc_running_build NAME: which build the running service is, from its executable:
# "release build", "debug build" (or its path), and whether it was rebuilt since it started.
svc_running_build() {
    local pid exe build
    pid="$(svc_pid "$1")" || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || {
        echo "build unknown"
        return
    }
    case "$exe" in
        */release/"$1"*) build="release build" ;;
        */debug/"$1"*) build="debug build" ;;
        *) build="${exe% (deleted)}" ;;
    esac
    [[ "$exe" == *" (deleted)" ]] && build+=", rebuilt since it started"
    echo "$build"
}

svc_healthy() {
    curl -fsS -m 2 -o /dev/null "http://$(svc_addr "$1")/health"
}

# The services' tuning variables: taken from the shell that runs `up` or `start` when set there,
# so that e.g. `GATEWAY_LATENCY_MS=100 scripts/stack start payment-service` restarts it with
# that latency. COMPENSATION_BUDGET defaults to 30s here (SPEC §4: every marker path ends
# within a minute in a demo), not to the services' production default of 6h.
SERVICE_TUNING=(GATEWAY_FAULT_RATE GATEWAY_LATENCY_MS GATEWAY_SLOW_MS GATEWAY_MAX_ATTEMPTS
    GATEWAY_RETRY_BASE_MS COMPENSATION_BUDGET COMPENSATION_RETRY_BASE_MS COMPENSATION_RETRY_MAX_MS
    KAFKA_MAX_POLL_INTERVAL_MS CONSUMER_MAX_IN_FLIGHT CONSUMER_MAX_BATCH CONSUMER_WORKERS
    DATABASE_POOL_SIZE RETENTION LOG_FORMAT COMPENSATION_LEASE CRASH_POINT CRASH_POINT_AFTER
    GATEWAY_ANSWER_TIMEOUT STUCK_AFTER)

# service_tuning: NAME=VALUE for each tuning variable set in this shell.
service_tuning() {
    local name
    for name in "${SERVICE_TUNING[@]}"; do
        if [[ -n "${!name:-}" ]]; then
            echo "$name=${!name}"
        fi
    done
}

svc_start() {
    local name="$1" addr port
    addr="$(svc_addr "$name")"
    port="${addr##*:}"
    if port_open 127.0.0.1 "$port"; then
        die "port $port ($name) is held by $(port_holder "$port")"
    fi
    info "starting $name on $addr (log: $(svc_log "$name" | sed "s#^$ROOT/##"))"
    local tuning otlp
    mapfile -t tuning < <(COMPENSATION_BUDGET="${COMPENSATION_BUDGET:-30s}" service_tuning)
    # Traces: to the stack's Jaeger while it runs (scripts/stack start jaeger), else to the
    # shell's OTEL_EXPORTER_OTLP_ENDPOINT if set, else off.
    otlp="$(jaeger_otlp_endpoint)"
    otlp="${otlp:-${OTEL_EXPORTER_OTLP_ENDPOINT:-}}"
    [[ -z "$otlp" ]] || info "$name exports its traces to $otlp"
    tuning+=("OTEL_EXPORTER_OTLP_ENDPOINT=$otlp")
    start_daemon "$name" "$(svc_pidfile "$name")" "$(svc_log "$name")" \
        env "${tuning[@]}" KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" \
        KAFKA_REPLICATION_FACTOR="$KAFKA_REPLICATION_FACTOR" \
        PAYMENT_DATABASE_URL="$PAYMENT_DATABASE_URL" \
        ACCOUNTING_DATABASE_URL="$ACCOUNTING_DATABASE_URL" \
        PAYMENT_HTTP_ADDR="$PAYMENT_HTTP_ADDR" \
        ACCOUNTING_HTTP_ADDR="$ACCOUNTING_HTTP_ADDR" \
        RUST_LOG="$RUST_LOG" NO_COLOR=1 \
        "$(bin_dir)/$name"
    STARTED+=("$name")
}

svc_wait_ready() {
    wait_ready "$1" "$(svc_log "$1")" "${SERVICE_START_TIMEOUT:-120}" \
        "did not answer 200 on GET http://$(svc_addr "$1")/health" "svc_pid $1" svc_healthy "$1"
}

svc_stop() {
    local pid
    pid="$(svc_pid "$1")" || return 0
    stop_pid "$pid" "$1" 30
    rm -f "$(svc_pidfile "$1")"
}

svc_kill() {
    local pid
    pid="$(svc_pid "$1")" || die "$1 is not running (as started by scripts/stack)"
    info "SIGKILL $1 (pid $pid)"
    kill -KILL "$pid"
    local addr
    addr="$(svc_addr "$1")"
    wait_released "$pid" "${addr##*:}"
}
