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
prom_pid() { daemon_pid "$PROM_PIDFILE" prometheus; }

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
    daemon_ports_free prometheus "$PROM_ADDR"
    prom_config
    info "starting prometheus on $PROM_ADDR, scraping $PAYMENT_HTTP_ADDR and $ACCOUNTING_HTTP_ADDR (log: ${PROM_LOG#"$ROOT/"})"
    start_daemon prometheus "$PROM_PIDFILE" "$PROM_LOG" prometheus \
        --config.file="$PROM_DIR/prometheus.yml" \
        --storage.tsdb.path="$PROM_DIR/data" \
        --web.listen-address="$PROM_ADDR"
    STARTED+=(prometheus)
}

prom_wait_ready() {
    daemon_wait_ready prometheus "$PROM_PIDFILE" prometheus "$PROM_LOG" "http://$PROM_ADDR/-/ready"
    info "prometheus ready: http://$PROM_ADDR/targets"
}

prom_stop() { daemon_stop prometheus "$PROM_PIDFILE" prometheus; }

prom_kill() { daemon_kill prometheus "$PROM_PIDFILE" prometheus; }

# prom_status: prometheus' line of `scripts/stack status` (status_line is scripts/stack's).
prom_status() {
    daemon_status prometheus "$PROM_PIDFILE" prometheus "$PROM_ADDR" "http://$PROM_ADDR/-/ready" \
        "http://$PROM_ADDR/targets"
}
