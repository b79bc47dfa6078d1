# shellcheck shell=bash
# Jaeger, the trace backend: built from the Go module proxy (no prebuilt download), cached as
# one binary per version, and an optional component of scripts/stack (`scripts/stack start
# jaeger`: an in-memory store, OTLP on loopback, the UI and query API on JAEGER_UI_ADDR). The
# services export their spans to it when it runs (scripts/lib/services.sh). Needs common.sh.
#
# The Go module github.com/jaegertracing/jaeger v1.75.0 is the same release as the Docker image
# jaegertracing/jaeger:2.12.0 (Jaeger v2, built on the OpenTelemetry Collector): compose runs
# that image, so both paths run the same Jaeger.

JAEGER_VERSION=1.75.0
# shellcheck disable=SC2034 # read by scripts/test: compose runs this image
JAEGER_IMAGE_VERSION=2.12.0
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

# jaeger_build_background: when $JAEGER_BIN is missing, starts jaeger_build in the background,
# its output in a file of its own (scripts/test: it runs while clippy and the build do);
# jaeger_build_wait waits for it, shows that output and fails as it did — or, with none under
# way, builds in the foreground.
JAEGER_BUILD_PID=""
JAEGER_BUILD_LOG=""
jaeger_build_background() {
    [[ -x "$JAEGER_BIN" ]] && return 0
    JAEGER_BUILD_LOG="$(mktemp)"
    info "building Jaeger $JAEGER_VERSION in the background (output: $JAEGER_BUILD_LOG)"
    (jaeger_build) >"$JAEGER_BUILD_LOG" 2>&1 &
    JAEGER_BUILD_PID=$!
}

jaeger_build_wait() {
    [[ -n "$JAEGER_BUILD_PID" ]] || {
        jaeger_build
        return
    }
    local status=0
    wait "$JAEGER_BUILD_PID" || status=$?
    cat "$JAEGER_BUILD_LOG" >&2
    rm -f "$JAEGER_BUILD_LOG"
    JAEGER_BUILD_PID=""
    return "$status"
}

# --- the optional component `jaeger` of scripts/stack (needs env.sh's environment) -----------

JAEGER_UI_ADDR="${JAEGER_UI_ADDR:-127.0.0.1:16686}"
JAEGER_OTLP_ADDR="${JAEGER_OTLP_ADDR:-127.0.0.1:4318}"
JAEGER_GRPC_ADDR="${JAEGER_GRPC_ADDR:-127.0.0.1:16685}"
JAEGER_PIDFILE="$RUN_DIR/jaeger.pid"
JAEGER_LOG="$LOG_DIR/jaeger.log"

# jaeger_pid: the pid of the Jaeger scripts/stack started, if it still runs.
jaeger_pid() { daemon_pid "$JAEGER_PIDFILE" jaeger; }

# jaeger_otlp_endpoint: what the services get as OTEL_EXPORTER_OTLP_ENDPOINT while the stack's
# Jaeger runs; nothing when it does not (tracing stays off).
jaeger_otlp_endpoint() {
    jaeger_pid >/dev/null || return 0
    echo "http://$JAEGER_OTLP_ADDR"
}

jaeger_start() {
    jaeger_build
    daemon_ports_free jaeger "$JAEGER_UI_ADDR" "$JAEGER_OTLP_ADDR" "$JAEGER_GRPC_ADDR"
    info "starting jaeger $JAEGER_VERSION: OTLP/HTTP on $JAEGER_OTLP_ADDR, UI and query API on $JAEGER_UI_ADDR, in memory (log: ${JAEGER_LOG#"$ROOT/"})"
    start_daemon jaeger "$JAEGER_PIDFILE" "$JAEGER_LOG" env \
        JAEGER_QUERY_ADDR="$JAEGER_UI_ADDR" JAEGER_OTLP_ADDR="$JAEGER_OTLP_ADDR" \
        JAEGER_QUERY_GRPC_ADDR="$JAEGER_GRPC_ADDR" \
        "$JAEGER_BIN" --config "$ROOT/scripts/jaeger/jaeger.yaml"
    STARTED+=(jaeger)
}

jaeger_wait_ready() {
    daemon_wait_ready jaeger "$JAEGER_PIDFILE" jaeger "$JAEGER_LOG" "http://$JAEGER_UI_ADDR/api/services"
    info "jaeger ready: http://$JAEGER_UI_ADDR (services started from now on export their spans to it; restart running ones: scripts/stack stop|start <service>)"
}

jaeger_stop() { daemon_stop jaeger "$JAEGER_PIDFILE" jaeger; }

jaeger_kill() { daemon_kill jaeger "$JAEGER_PIDFILE" jaeger; }

# jaeger_status: Jaeger's line of `scripts/stack status` (status_line is scripts/stack's).
jaeger_status() {
    daemon_status jaeger "$JAEGER_PIDFILE" jaeger "$JAEGER_UI_ADDR" "http://$JAEGER_UI_ADDR/api/services" \
        "http://$JAEGER_UI_ADDR, OTLP http://$JAEGER_OTLP_ADDR"
}
