# shellcheck shell=bash
# Shared helpers of scripts/stack and scripts/test: messages, paths, waiting, ports, processes,
# apt. Sourced, never run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# STACK_DIR: where a stack keeps everything it runs (default .stack/; scripts/cluster-check runs
# its own stack in .stack/cluster-check/ beside the checkout's).
STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"

# ---------------------------------------------------------------------------------------------
# Messages

if [[ -t 2 ]]; then
    _BOLD=$'\e[1m' _RED=$'\e[31m' _YELLOW=$'\e[33m' _RESET=$'\e[0m'
else
    _BOLD='' _RED='' _YELLOW='' _RESET=''
fi

info() { printf '%s==>%s %s\n' "$_BOLD" "$_RESET" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_YELLOW" "$_RESET" "$*" >&2; }
die() {
    printf '%serror:%s %s\n' "$_RED" "$_RESET" "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Waiting

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second until it succeeds;
# fails (returns 1, with a message) once SECONDS have passed.
wait_until() {
    local timeout="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            warn "$what: not ready after ${timeout}s"
            return 1
        fi
        sleep 0.5
    done
}

# ---------------------------------------------------------------------------------------------
# Network

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_released PID PORT...: after a SIGKILL, waits (up to 30 s) until the process has exited
# and nothing listens on its ports any more, so that a `start` right after finds them free. A
# killed JVM keeps its listening sockets for a moment while its threads are torn down.
wait_released() {
    local pid="$1"
    shift
    local deadline=$((SECONDS + 30)) port held
    while ((SECONDS < deadline)); do
        held=0
        pid_alive "$pid" && held=1
        for port in "$@"; do
            [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] && held=1
        done
        ((held == 0)) && return 0
        sleep 0.2
    done
    warn "pid $pid or its port(s) $* still busy 30 s after SIGKILL"
}

# port_holder PORT: "pid=123 (java: /usr/bin/java -cp ...)" of the local listener, or "unknown".
port_holder() {
    local port="$1" line pid cmd
    line="$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n1)"
    pid="$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line")"
    if [[ -z "$pid" ]]; then
        echo "unknown (ss -ltnp shows: ${line:-nothing})"
        return
    fi
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)"
    echo "pid=$pid ($cmd)"
}

# port_holder_pid PORT: the pid listening on PORT, empty if none or unknown.
port_holder_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1
}

# host_port ADDRESS: "host port" of "host:port" (the first of a comma-separated list).
host_port() {
    local first="${1%%,*}"
    first="${first#*://}"
    echo "${first%:*} ${first##*:}"
}

# ---------------------------------------------------------------------------------------------
# Processes

# pid_alive PID: the process exists and is not a zombie (an orphan whose exit nobody reaped).
pid_alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# read_pid FILE: the pid in FILE if that process still runs, else nothing (and status 1).
read_pid() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(head -n1 "$1" 2>/dev/null | tr -dc '0-9')"
    pid_alive "$pid" || return 1
    echo "$pid"
}

# stop_pid PID NAME [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
    local pid="$1" name="$2" grace="${3:-20}"
    pid_alive "$pid" || return 0
    info "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while pid_alive "$pid" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if pid_alive "$pid"; then
        warn "$name did not stop within ${grace}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
}

# start_daemon NAME PIDFILE LOGFILE COMMAND...: runs COMMAND in its own session, detached from
# this shell's terminal and pipes, appending its output to LOGFILE; writes its pid to PIDFILE.
start_daemon() {
    local name="$1" pidfile="$2" logfile="$3"
    shift 3
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    printf '\n===== %s: starting %s =====\n' "$(date -Is)" "$name" >>"$logfile"
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    echo $! >"$pidfile"
}

# ---------------------------------------------------------------------------------------------
# Optional components of scripts/stack (prometheus, jaeger): a daemon with a pid file, a log and
# an HTTP address that answers once it is ready. WORD is a word of its command line, so that a
# recycled pid is not taken for it.

# daemon_pid PIDFILE WORD: its pid, if it still runs.
daemon_pid() {
    local pid
    pid="$(read_pid "$1")" || return 1
    grep -qa "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# daemon_ports_free NAME ADDRESS...: dies naming the holder when a port is taken.
daemon_ports_free() {
    local name="$1" addr port
    shift
    for addr in "$@"; do
        port="${addr##*:}"
        if port_open 127.0.0.1 "$port"; then
            die "port $port ($name) is held by $(port_holder "$port")"
        fi
    done
}

# wait_ready NAME LOG SECONDS WHAT ALIVE PROBE...: runs PROBE... every 0.5 s until it succeeds.
# Dies, with the last lines of LOG, when ALIVE (a command and its words, e.g. "svc_pid NAME")
# fails — the process exited during start-up — or when SECONDS have passed ("NAME WHAT within
# SECONDSs"). The one start-up wait of Kafka, the services and the daemons.
wait_ready() {
    local name="$1" log="$2" timeout="$3" what="$4" alive="$5"
    shift 5
    local deadline=$((SECONDS + timeout)) reason
    until "$@" >/dev/null 2>&1; do
        reason=""
        # shellcheck disable=SC2086 # ALIVE is a command and its words
        $alive >/dev/null 2>&1 || reason="$name exited during start-up"
        [[ -z "$reason" ]] && ((SECONDS >= deadline)) && reason="$name $what within ${timeout}s"
        if [[ -n "$reason" ]]; then
            tail -n 30 "$log" >&2 || true
            die "$reason (log: $log)"
        fi
        sleep 0.5
    done
}

# daemon_wait_ready NAME PIDFILE WORD LOG URL: polls URL for up to 30 s while the daemon runs.
daemon_wait_ready() {
    wait_ready "$1" "$4" 30 "not ready on $5" "daemon_pid $2 $3" curl -fsS -m 2 -o /dev/null "$5"
}

# daemon_stop NAME PIDFILE WORD: SIGTERM (then SIGKILL), if it runs.
daemon_stop() {
    local pid
    pid="$(daemon_pid "$2" "$3")" || return 0
    stop_pid "$pid" "$1" 30
    rm -f "$2"
}

# daemon_kill NAME PIDFILE WORD: SIGKILL, a crash.
daemon_kill() {
    local pid
    pid="$(daemon_pid "$2" "$3")" || die "$1 is not running (as started by scripts/stack)"
    info "SIGKILL $1 (pid $pid)"
    kill -KILL "$pid"
}

# daemon_status NAME PIDFILE WORD ADDR URL NOTE: its line of `scripts/stack status`, NOTE when
# URL answers (status_line is scripts/stack's).
daemon_status() {
    local pid note=""
    pid="$(daemon_pid "$2" "$3" || true)"
    if [[ -n "$pid" ]]; then
        if curl -fsS -m 2 -o /dev/null "$5" 2>/dev/null; then
            note="ready, $6"
        else
            note="not ready (yet)"
        fi
    fi
    status_line "$1" "$([[ -n "$pid" ]] && echo running || echo stopped)" "$pid" "$4" "$note"
}

# ---------------------------------------------------------------------------------------------
# Debian packages

_APT_UPDATED=0

# apt_install PACKAGE...: installs Debian packages, or dies saying how to install them by hand.
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "need the Debian package(s) $*, but apt-get is not available: install them by hand"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
        sudo=(sudo)
    fi
    local log="$LOG_DIR/apt.log"
    mkdir -p "$LOG_DIR"
    if ((_APT_UPDATED == 0)); then
        info "apt-get update"
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update >>"$log" 2>&1 ||
            die "apt-get update failed (see $log): the Debian mirrors are needed to install $*"
        _APT_UPDATED=1
    fi
    info "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "$@" >>"$log" 2>&1 ||
        die "apt-get install $* failed (see $log)"
}

# ensure_command COMMAND PACKAGE: installs PACKAGE when COMMAND is missing.
ensure_command() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# ---------------------------------------------------------------------------------------------
# Rust binaries

# cargo_target_dir: where cargo puts its output for this workspace (honours CARGO_TARGET_DIR
# and .cargo/config.toml).
cargo_target_dir() {
    if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
        echo "$CARGO_TARGET_DIR"
        return
    fi
    (cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null) |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
