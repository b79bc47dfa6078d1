# shellcheck shell=bash
# Optional component of scripts/stack: Debian's `prometheus` (apt-get install prometheus)
# scraping the native stack's two services every 5 s, on loopback (PROMETHEUS_ADDR, default
# 127.0.0.1:9090), with its configuration and data under .stack/prometheus/. Not started by
# `up`: `scripts/stack start prometheus`. Needs common.sh and the environment from env.sh.

PROM_ADDR="${PROMETHEUS_ADDR:-127.0.0.1:9090}"
PROM_DIR="$STACK_DIR/prometheus"
PROM_PIDFILE="$RUN_DIR/prometheus.pid"
PROM_LOG="$LOG_DIR/prometheus.log"

# prom_pid: the pid of the prometheus scripts/stack started, if it still runs.
prom_pid() {
    local pid
    pid="$(read_pid "$PROM_PIDFILE")" || return 1
    grep -qa prometheus "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# prom_config: .stack/prometheus/prometheus.yml for the services' addresses, checked by promtool.
prom_config() {
    mkdir -p "$PROM_DIR/data"
    cat >"$PROM_DIR/prometheus.yml" <<YAML
# Written by scripts/stack start prometheus (scripts/lib/prometheus.sh): the native stack's services.
global:
  scrape_interval: 5s
  scrape_timeout: 4s
scrape_configs:
  - job_name: payment-service
    static_configs:
      - targets: ["$PAYMENT_HTTP_ADDR"]
  - job_name: accounting-service
    static_configs:
      - targets: ["$ACCOUNTING_HTTP_ADDR"]
YAML
    promtool check config "$PROM_DIR/prometheus.yml" >/dev/null ||
        die "promtool rejects $PROM_DIR/prometheus.yml"
}

prom_start() {
    ensure_command prometheus prometheus
    local port="${PROM_ADDR##*:}"
    if port_open 127.0.0.1 "$port"; then
        die "port $port (prometheus) is held by $(port_holder "$port")"
    fi
    prom_config
    info "starting prometheus on $PROM_ADDR, scraping $PAYMENT_HTTP_ADDR and $ACCOUNTING_HTTP_ADDR (log: ${PROM_LOG#"$ROOT/"})"
    start_daemon prometheus "$PROM_PIDFILE" "$PROM_LOG" prometheus \
        --config.file="$PROM_DIR/prometheus.yml" \
        --storage.tsdb.path="$PROM_DIR/data" \
        --web.listen-address="$PROM_ADDR"
    STARTED+=(prometheus)
}

prom_wait_ready() {
    local deadline=$((SECONDS + 30))
    until curl -fsS -m 2 -o /dev/null "http://$PROM_ADDR/-/ready" 2>/dev/null; do
        prom_pid >/dev/null || {
            tail -n 30 "$PROM_LOG" >&2 || true
            die "prometheus exited during start-up (log: $PROM_LOG)"
        }
        ((SECONDS < deadline)) || die "prometheus not ready within 30s (log: $PROM_LOG)"
        sleep 0.5
    done
    info "prometheus ready: http://$PROM_ADDR/targets"
}

prom_stop() {
    local pid
    pid="$(prom_pid)" || return 0
    stop_pid "$pid" prometheus 30
    rm -f "$PROM_PIDFILE"
}

prom_kill() {
    local pid
    pid="$(prom_pid)" || die "prometheus is not running (as started by scripts/stack)"
    info "SIGKILL prometheus (pid $pid)"
    kill -KILL "$pid"
}

# prom_status: prometheus' line of `scripts/stack status` (status_line is scripts/stack's).
prom_status() {
    local pid note=""
    pid="$(prom_pid || true)"
    if [[ -n "$pid" ]]; then
        if curl -fsS -m 2 -o /dev/null "http://$PROM_ADDR/-/ready" 2>/dev/null; then
            note="ready, http://$PROM_ADDR/targets"
        else
            note="not ready (yet)"
        fi
    fi
    status_line prometheus "$([[ -n "$pid" ]] && echo running || echo stopped)" "$pid" \
        "$PROM_ADDR" "$note"
}
