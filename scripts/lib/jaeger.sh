# shellcheck shell=bash
# Jaeger, the trace backend: built from the Go module proxy (no prebuilt download), cached as
# one binary per version, and an optional component of scripts/stack (`scripts/stack start
# jaeger`: an in-memory store, OTLP on loopback, the UI and query API on JAEGER_UI_ADDR). The
# services export their spans to it when it runs (scripts/lib/services.sh). Needs common.sh.
#
# The Go module github.com/jaegertracing/jaeger v1.76.0 is the same release as the Docker image
# jaegertracing/jaeger:2.13.0 (Jaeger v2, built on the OpenTelemetry Collector): compose runs
# that image, so both paths run the same Jaeger.

JAEGER_VERSION=1.76.0
# shellcheck disable=SC2034 # read by scripts/test: compose runs this image
JAEGER_IMAGE_VERSION=2.13.0
JAEGER_CACHE_DIR="${WILDRYDES_CACHE_DIR:-/var/cache/wildrydes}/bin"
JAEGER_BIN="$JAEGER_CACHE_DIR/jaeger-$JAEGER_VERSION"

# jaeger_build: builds $JAEGER_BIN when it is missing, in a scratch Go module of its own
# (`go install …@version` refuses a module with replace directives; `go get -tool` takes them
# as a dependency). Go's download and build caches make a second build quick.
jaeger_build() {
    [[ -x "$JAEGER_BIN" ]] && return 0
    command -v go >/dev/null 2>&1 ||
        die "go is needed to build Jaeger $JAEGER_VERSION (https://go.dev/dl; Debian: golang-go is too old, Go >= 1.24)"
    local work started=$SECONDS
    work="$(mktemp -d)"
    info "building Jaeger $JAEGER_VERSION from the Go module proxy into $JAEGER_BIN (a few minutes the first time)"
    (
        cd "$work" &&
            go mod init wildrydes/jaeger >/dev/null 2>&1 &&
            go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@v$JAEGER_VERSION" &&
            go build -trimpath -ldflags='-s -w' -o "$work/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
    ) || {
        rm -rf "$work"
        die "building Jaeger $JAEGER_VERSION failed (see above)"
    }
    mkdir -p "$JAEGER_CACHE_DIR"
    mv -f "$work/jaeger" "$JAEGER_BIN.tmp" && mv -f "$JAEGER_BIN.tmp" "$JAEGER_BIN"
    rm -rf "$work"
    info "Jaeger $JAEGER_VERSION built in $((SECONDS - started))s: $JAEGER_BIN"
}

# --- the optional component `jaeger` of scripts/stack (needs env.sh's environment) -----------

JAEGER_UI_ADDR="${JAEGER_UI_ADDR:-127.0.0.1:16686}"
JAEGER_OTLP_ADDR="${JAEGER_OTLP_ADDR:-127.0.0.1:4318}"
JAEGER_GRPC_ADDR="${JAEGER_GRPC_ADDR:-127.0.0.1:16685}"
JAEGER_PIDFILE="$RUN_DIR/jaeger.pid"
JAEGER_LOG="$LOG_DIR/jaeger.log"

# jaeger_pid: the pid of the Jaeger scripts/stack started, if it still runs.
jaeger_pid() {
    local pid
    pid="$(read_pid "$JAEGER_PIDFILE")" || return 1
    grep -qa jaeger "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# jaeger_otlp_endpoint: what the services get as OTEL_EXPORTER_OTLP_ENDPOINT while the stack's
# Jaeger runs; nothing when it does not (tracing stays off).
jaeger_otlp_endpoint() {
    jaeger_pid >/dev/null || return 0
    echo "http://$JAEGER_OTLP_ADDR"
}

jaeger_start() {
    jaeger_build
    local addr port
    for addr in "$JAEGER_UI_ADDR" "$JAEGER_OTLP_ADDR" "$JAEGER_GRPC_ADDR"; do
        port="${addr##*:}"
        if port_open 127.0.0.1 "$port"; then
            die "port $port (jaeger) is held by $(port_holder "$port")"
        fi
    done
    info "starting jaeger $JAEGER_VERSION: OTLP/HTTP on $JAEGER_OTLP_ADDR, UI and query API on $JAEGER_UI_ADDR, in memory (log: ${JAEGER_LOG#"$ROOT/"})"
    start_daemon jaeger "$JAEGER_PIDFILE" "$JAEGER_LOG" env \
        JAEGER_QUERY_ADDR="$JAEGER_UI_ADDR" JAEGER_OTLP_ADDR="$JAEGER_OTLP_ADDR" \
        JAEGER_QUERY_GRPC_ADDR="$JAEGER_GRPC_ADDR" \
        "$JAEGER_BIN" --config "$ROOT/scripts/jaeger/jaeger.yaml"
    STARTED+=(jaeger)
}

jaeger_wait_ready() {
    local deadline=$((SECONDS + 30))
    until curl -fsS -m 2 -o /dev/null "http://$JAEGER_UI_ADDR/api/services" 2>/dev/null; do
        jaeger_pid >/dev/null || {
            tail -n 30 "$JAEGER_LOG" >&2 || true
            die "jaeger exited during start-up (log: $JAEGER_LOG)"
        }
        ((SECONDS < deadline)) || die "jaeger not ready within 30s (log: $JAEGER_LOG)"
        sleep 0.5
    done
    info "jaeger ready: http://$JAEGER_UI_ADDR (services started from now on export their spans to it; restart running ones: scripts/stack stop|start <service>)"
}

jaeger_stop() {
    local pid
    pid="$(jaeger_pid)" || return 0
    stop_pid "$pid" jaeger 30
    rm -f "$JAEGER_PIDFILE"
}

jaeger_kill() {
    local pid
    pid="$(jaeger_pid)" || die "jaeger is not running (as started by scripts/stack)"
    info "SIGKILL jaeger (pid $pid)"
    kill -KILL "$pid"
}

# jaeger_status: Jaeger's line of `scripts/stack status` (status_line is scripts/stack's).
jaeger_status() {
    local pid note=""
    pid="$(jaeger_pid || true)"
    if [[ -n "$pid" ]]; then
        if curl -fsS -m 2 -o /dev/null "http://$JAEGER_UI_ADDR/api/services" 2>/dev/null; then
            note="ready, http://$JAEGER_UI_ADDR, OTLP http://$JAEGER_OTLP_ADDR"
        else
            note="not ready (yet)"
        fi
    fi
    status_line jaeger "$([[ -n "$pid" ]] && echo running || echo stopped)" "$pid" \
        "$JAEGER_UI_ADDR" "$note"
}
