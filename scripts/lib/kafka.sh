# shellcheck shell=bash
# Apache Kafka for scripts/stack: jars from Maven Central, KRaft combined mode: one node, or three
# (STACK_BROKERS).
# Needs KAFKA_VERSION (set at the top of scripts/stack) and common.sh.

# KAFKA_CACHE_DIR: the one `up` used (saved in .stack/build) when this shell does not set it.
# (A fresh checkout has no .stack/build: that is not an error.)
if [[ -z "${KAFKA_CACHE_DIR:-}" && -f "$STACK_DIR/build" ]]; then
    KAFKA_CACHE_DIR="$(sed -n 's/^kafka_cache_dir=//p' "$STACK_DIR/build" | head -n1)"
fi
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-$ROOT/.cache}"
KAFKA_LIBS="$KAFKA_CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
# Tools' log4j configuration (written with each node's config; any node's will do).
KAFKA_LOG4J="$STACK_DIR/kafka-log4j2.properties"

# ---------------------------------------------------------------------------------------------
# Nodes and ports
#
# STACK_BROKERS: 1 (one node, component `kafka`, as ever) or 3 (nodes `kafka-1`, `kafka-2`,
# `kafka-3`, each broker and controller: a 3-voter KRaft quorum). STACK_KAFKA_PORT: the base
# port, default 9092. Node N (the single node is node 1) listens for clients on
# base + 2(N-1) and as a controller on base + 2(N-1) + 1:
#   base 9092:  kafka-1 9092/9093, kafka-2 9094/9095, kafka-3 9096/9097
#   base 29092: kafka-1 29092/29093, kafka-2 29094/29095, kafka-3 29096/29097
# Each node keeps its config and data in .stack/<node>/, its log in .stack/logs/<node>.log.

kafka_check_topology() {
    [[ "$STACK_BROKERS" =~ ^(1|3)$ ]] || die "--brokers / STACK_BROKERS: 1 or 3, not '$STACK_BROKERS'"
    if ! [[ "$STACK_KAFKA_PORT" =~ ^[0-9]+$ ]] || ((STACK_KAFKA_PORT < 1024 || STACK_KAFKA_PORT > 65530)); then
        die "STACK_KAFKA_PORT: a port number from 1024 to 65530, not '$STACK_KAFKA_PORT'"
    fi
}

# kafka_nodes: the Kafka components, in order.
kafka_nodes() {
    if ((STACK_BROKERS == 1)); then
        echo kafka
    else
        local n
        for ((n = 1; n <= STACK_BROKERS; n++)); do echo "kafka-$n"; done
    fi
}

# kafka_is_node NAME: NAME is one of this stack's Kafka components.
kafka_is_node() {
    local node
    for node in $(kafka_nodes); do [[ "$1" == "$node" ]] && return 0; done
    return 1
}

# kafka_node_id NAME: its KRaft node.id (kafka: 1, kafka-N: N).
kafka_node_id() {
    if [[ "$1" == kafka ]]; then echo 1; else echo "${1#kafka-}"; fi
}

kafka_node_name() {
    if ((STACK_BROKERS == 1)); then echo kafka; else echo "kafka-$1"; fi
}

kafka_client_port() { echo $((STACK_KAFKA_PORT + 2 * ($(kafka_node_id "$1") - 1))); }
kafka_controller_port() { echo $(($(kafka_client_port "$1") + 1)); }
kafka_node_addr() { echo "localhost:$(kafka_client_port "$1")"; }
kafka_home() { echo "$STACK_DIR/$1"; }
kafka_pidfile() { echo "$RUN_DIR/$1.pid"; }
kafka_log() { echo "$LOG_DIR/$1.log"; }

# kafka_local_addr: the bootstrap list of this stack's nodes (localhost:9092 for one node).
kafka_local_addr() {
    local node list=()
    for node in $(kafka_nodes); do list+=("$(kafka_node_addr "$node")"); done
    local IFS=,
    echo "${list[*]}"
}

# kafka_voters: controller.quorum.voters of the stack's nodes.
kafka_voters() {
    local node list=()
    for node in $(kafka_nodes); do
        list+=("$(kafka_node_id "$node")@127.0.0.1:$(kafka_controller_port "$node")")
    done
    local IFS=,
    echo "${list[*]}"
}

kafka_check_java() {
    command -v java >/dev/null 2>&1 ||
        die "Java 17 or newer is needed to run Kafka $KAFKA_VERSION and was not found: apt-get install openjdk-17-jre-headless"
    local version major
    version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    major="${version%%.*}"
    [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$version")"
    if ! [[ "$major" =~ ^[0-9]+$ ]] || ((major < 17)); then
        die "Kafka $KAFKA_VERSION needs Java 17 or newer; 'java' is version ${version:-unknown} ($(command -v java))"
    fi
}

# kafka_fetch_libs: the broker's jars, downloaded once into $KAFKA_LIBS.
kafka_fetch_libs() {
    [[ -f "$KAFKA_LIBS/.complete" ]] && return 0
    ensure_command mvn maven
    info "fetching the Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
    local tmp="$KAFKA_LIBS.tmp.$$" log="$LOG_DIR/kafka-fetch.log"
    rm -rf "$tmp"
    mkdir -p "$tmp" "$LOG_DIR"
    if ! mvn -B -q -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
        rm -rf "$tmp"
        tail -n 20 "$log" >&2
        die "could not download the Kafka $KAFKA_VERSION jars with Maven (is Maven Central reachable? full log: $log)"
    fi
    touch "$tmp/.complete"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
}

# kafka_java CLASS ARGS...: runs a class from the Kafka jars in the foreground (tools).
KAFKA_TOOL_JAVA=(java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$KAFKA_LOG4J"
    -Dstack.log.level=warn -cp "$KAFKA_LIBS/*")
kafka_java() {
    "${KAFKA_TOOL_JAVA[@]}" "$@"
}

# kafka_write_config NODE: scripts/kafka/server.properties, then what scripts/stack adds: the
# data directory; for another base port or three nodes, the node's id, listeners and quorum;
# for three nodes, scripts/kafka/cluster.properties (replication). Later lines win.
kafka_write_config() {
    local node="$1" home
    home="$(kafka_home "$node")"
    mkdir -p "$home/data"
    {
        cat "$ROOT/scripts/kafka/server.properties"
        echo
        echo "# Added by scripts/stack."
        echo "log.dirs=$home/data"
        if ((STACK_BROKERS != 1 || STACK_KAFKA_PORT != 9092)); then
            echo "node.id=$(kafka_node_id "$node")"
            echo "controller.quorum.voters=$(kafka_voters)"
            echo "listeners=PLAINTEXT://127.0.0.1:$(kafka_client_port "$node"),CONTROLLER://127.0.0.1:$(kafka_controller_port "$node")"
            echo "advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_client_port "$node")"
        fi
        if ((STACK_BROKERS != 1)); then
            echo
            cat "$ROOT/scripts/kafka/cluster.properties"
        fi
    } >"$home/server.properties"
    cat >"$KAFKA_LOG4J" <<'EOF'
# Generated by scripts/stack. Kafka's own logs to stdout (.stack/logs/<node>.log).
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:stack.log.level:-info}
rootLogger.appenderRef.out.ref = OUT
logger.state-change.name = state.change.logger
logger.state-change.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
}

# kafka_cluster_id_file: one node keeps it in .stack/kafka/cluster.id; the nodes of a cluster
# share .stack/kafka-cluster.id.
kafka_cluster_id_file() {
    if ((STACK_BROKERS == 1)); then echo "$(kafka_home kafka)/cluster.id"; else echo "$STACK_DIR/kafka-cluster.id"; fi
}

# kafka_format NODE: formats the node's KRaft storage once, with the stack's cluster id.
kafka_format() {
    local node="$1" home
    home="$(kafka_home "$node")"
    [[ -f "$home/data/meta.properties" ]] && return 0
    local id_file log="$LOG_DIR/$node-format.log"
    id_file="$(kafka_cluster_id_file)"
    if [[ ! -s "$id_file" ]]; then
        kafka_java kafka.tools.StorageTool random-uuid >"$id_file.tmp" 2>"$log" ||
            die "kafka-storage random-uuid failed (see $log)"
        mv "$id_file.tmp" "$id_file"
    fi
    info "formatting the KRaft storage in $home/data (cluster id $(cat "$id_file"))"
    kafka_java kafka.tools.StorageTool format --ignore-formatted \
        -t "$(cat "$id_file")" -c "$home/server.properties" >>"$log" 2>&1 ||
        die "formatting the Kafka storage failed (see $log)"
}

# kafka_pid NODE: the pid of the node scripts/stack started, if it still runs.
kafka_pid() {
    local pid
    pid="$(read_pid "$(kafka_pidfile "$1")")" || return 1
    grep -qa 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# kafka_any_pid: the pid of some node of this stack that runs.
kafka_any_pid() {
    local node
    for node in $(kafka_nodes); do kafka_pid "$node" && return 0; done
    return 1
}

# kafka_is_local ADDRESS: ADDRESS is where scripts/stack runs its own broker (its first node).
kafka_is_local() {
    local hp
    read -r -a hp <<<"$(host_port "$1")"
    [[ "${hp[0]}" =~ ^(localhost|127\.0\.0\.1)$ && "${hp[1]}" == "$STACK_KAFKA_PORT" ]]
}

# kafka_answers ADDRESS: a Kafka broker answers a metadata request there.
kafka_answers() {
    local hp
    read -r -a hp <<<"$(host_port "$1")"
    port_open "${hp[0]}" "${hp[1]}" || return 1
    if command -v kcat >/dev/null 2>&1; then
        timeout 15 kcat -b "$1" -L -m 5 >/dev/null 2>&1
    elif [[ -f "$KAFKA_LIBS/.complete" ]]; then
        timeout 30 "${KAFKA_TOOL_JAVA[@]}" org.apache.kafka.tools.BrokerApiVersionsCommand \
            --bootstrap-server "$1" >/dev/null 2>&1
    fi
}

# kafka_node_ready NODE: the node answers at its own address and, in a cluster, the cluster's
# metadata lists it among the live brokers.
kafka_node_ready() {
    local addr id
    addr="$(kafka_node_addr "$1")"
    kafka_answers "$addr" || return 1
    ((STACK_BROKERS == 1)) && return 0
    id="$(kafka_node_id "$1")"
    timeout 15 kcat -b "$addr" -L -m 5 2>/dev/null | grep -Eq "^  broker $id at "
}

kafka_check_ports_free() {
    local port
    for port in "$(kafka_client_port "$1")" "$(kafka_controller_port "$1")"; do
        if port_open 127.0.0.1 "$port"; then
            die "port $port ($1) is held by $(port_holder "$port"), not by the Kafka of scripts/stack: stop that process or choose other ports with STACK_KAFKA_PORT (to use a Kafka broker that is already running instead, export KAFKA_BOOTSTRAP_SERVERS=<its address>)"
        fi
    done
}

# kafka_start NODE: starts the node in the background (does not wait for it).
kafka_start() {
    local node="$1" log
    log="$(kafka_log "$node")"
    kafka_check_ports_free "$node"
    kafka_check_java
    kafka_fetch_libs
    kafka_write_config "$node"
    kafka_format "$node"
    if ((STACK_BROKERS == 1)); then
        info "starting Kafka $KAFKA_VERSION (log: ${log#"$ROOT/"})"
    else
        info "starting Kafka $KAFKA_VERSION node $node on $(kafka_node_addr "$node") (log: ${log#"$ROOT/"})"
    fi
    # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several options
    start_daemon "$node" "$(kafka_pidfile "$node")" "$log" \
        java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" kafka.Kafka \
        "$(kafka_home "$node")/server.properties"
    STARTED+=("$node")
}

# kafka_wait_ready NODE...: until each answers (see kafka_node_ready).
kafka_wait_ready() {
    local node
    for node in "$@"; do
        wait_ready "$node" "$(kafka_log "$node")" "${KAFKA_START_TIMEOUT:-120}" \
            "did not answer on $(kafka_node_addr "$node")" "kafka_pid $node" kafka_node_ready "$node"
    done
}

kafka_stop() {
    local pid
    pid="$(kafka_pid "$1")" || return 0
    # A controlled shutdown of a combined broker+controller takes a few seconds.
    stop_pid "$pid" "$1" 60
    rm -f "$(kafka_pidfile "$1")"
}

# kafka_stop_all: every node at once: the last node of a quorum stopped alone would wait for a
# controller that is gone to acknowledge its controlled shutdown.
kafka_stop_all() {
    local node pid
    for node in $(kafka_nodes); do
        pid="$(kafka_pid "$node")" && kill -TERM "$pid" 2>/dev/null
    done
    for node in $(kafka_nodes); do
        kafka_stop "$node"
    done
}

kafka_kill() {
    local pid
    pid="$(kafka_pid "$1")" || die "$1 is not running (as started by scripts/stack)"
    info "SIGKILL $1 (pid $pid)"
    kill -KILL "$pid"
    wait_released "$pid" "$(kafka_client_port "$1")" "$(kafka_controller_port "$1")"
}

# kafka_active_controller: the node that leads the KRaft quorum (the active controller), from
# kafka-metadata-quorum's describe --status, asked of the controllers.
kafka_active_controller() {
    local node list=() id
    for node in $(kafka_nodes); do list+=("127.0.0.1:$(kafka_controller_port "$node")"); done
    id="$(
        IFS=,
        timeout 60 "${KAFKA_TOOL_JAVA[@]}" org.apache.kafka.tools.MetadataQuorumCommand \
            --bootstrap-controller "${list[*]}" describe --status 2>/dev/null |
            sed -n 's/^LeaderId: *\([0-9][0-9]*\).*/\1/p'
    )"
    [[ -n "$id" ]] || return 1
    kafka_node_name "$id"
}
