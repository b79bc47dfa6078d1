# shellcheck shell=bash
# PostgreSQL for scripts/stack: Debian's server binaries, a project-owned cluster under
# .stack/postgres/ run by the `postgres` OS user, listening on 127.0.0.1:5432 only.
# Needs common.sh.

PG_ADMIN_USER=wildrydes_admin
PG_ADMIN_PASSWORD=wildrydes_admin
PG_DATABASE=wildrydes
PG_LOCAL_ADMIN_URL="postgres://$PG_ADMIN_USER:$PG_ADMIN_PASSWORD@localhost:5432/$PG_DATABASE"
PG_LINK="$STACK_DIR/postgres"
PG_LOG_LINK="$LOG_DIR/postgres.log"

# ---------------------------------------------------------------------------------------------
# URLs

# pg_url_part URL PART: scheme, userinfo ("user:password@"), hostport, database or query of a
# postgres:// URL.
pg_url_part() {
    local re='^(postgres(ql)?://)([^@/]*@)?([^/?]*)(/([^?]*))?(\?.*)?$'
    [[ "$1" =~ $re ]] || die "not a postgres:// URL: ${1%%@*}@..."
    case "$2" in
        scheme) echo "${BASH_REMATCH[1]}" ;;
        userinfo) echo "${BASH_REMATCH[3]}" ;;
        hostport) echo "${BASH_REMATCH[4]}" ;;
        database) echo "${BASH_REMATCH[6]}" ;;
        query) echo "${BASH_REMATCH[7]}" ;;
    esac
}

# pg_url_for URL USER PASSWORD: URL with other credentials.
pg_url_for() {
    echo "$(pg_url_part "$1" scheme)$2:$3@$(pg_url_part "$1" hostport)/$(pg_url_part "$1" database)$(pg_url_part "$1" query)"
}

# pg_url_with_database URL DATABASE: URL naming another database.
pg_url_with_database() {
    echo "$(pg_url_part "$1" scheme)$(pg_url_part "$1" userinfo)$(pg_url_part "$1" hostport)/$2$(pg_url_part "$1" query)"
}

# pg_is_local URL: URL points at localhost:5432, where scripts/stack runs its own cluster.
pg_is_local() {
    local hostport
    hostport="$(pg_url_part "$1" hostport)"
    [[ "$hostport" =~ ^(localhost|127\.0\.0\.1)(:5432)?$ ]]
}

# pg_psql URL ARGS...: psql that stops at the first error and reads no ~/.psqlrc.
pg_psql() {
    local url="$1"
    shift
    PGCONNECT_TIMEOUT=5 PGOPTIONS="-c client_min_messages=warning" psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"
}

# pg_answers URL: a server accepts that URL's login.
pg_answers() {
    command -v psql >/dev/null 2>&1 || return 1
    pg_psql "$1" -Atc 'SELECT 1' >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------
# Installation and layout

# as_postgres COMMAND...: runs COMMAND as the postgres OS user, from / (it may not be allowed
# into the current directory).
as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

# pg_bin_dir: Debian's server binaries (the version of an existing cluster, else the newest).
pg_bin_dir() {
    local data version
    data="$(pg_data_dir)"
    if [[ -f "$data/PG_VERSION" ]]; then
        version="$(cat "$data/PG_VERSION")"
        [[ -x "/usr/lib/postgresql/$version/bin/postgres" ]] || die "the cluster in $data is PostgreSQL $version, whose server is not installed: apt-get install postgresql-$version, or scripts/stack down --wipe"
        echo "/usr/lib/postgresql/$version/bin"
        return
    fi
    find /usr/lib/postgresql -mindepth 2 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        sort -V | tail -n1 | xargs -r dirname
}

pg_ensure_server_installed() {
    [[ -n "$(pg_bin_dir)" ]] && return 0
    apt_install postgresql
    [[ -n "$(pg_bin_dir)" ]] || die "apt-get installed postgresql but no initdb is under /usr/lib/postgresql/*/bin"
    pg_stop_debian_clusters
}

# pg_stop_debian_clusters: Debian's package may start its own 'main' cluster on 5432 at
# install time (where no policy-rc.d forbids it); the project's cluster needs that port.
pg_stop_debian_clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    local version cluster port status
    while read -r version cluster port status _; do
        if [[ "$port" == 5432 && "$status" == online* ]]; then
            warn "stopping Debian's PostgreSQL cluster $version/$cluster, started by its installation, to free port 5432"
            pg_ctlcluster "$version" "$cluster" stop || true
        fi
    done < <(pg_lsclusters --no-header 2>/dev/null)
}

pg_ensure_client_installed() {
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
}

# pg_base_dir: the folder holding data/ and postgres.log. It is .stack/postgres, unless the
# postgres OS user cannot reach into the checkout (e.g. one under /root): then the folder lives
# under /var/lib/wildrydes-stack/ and .stack/postgres is a symlink to it.
pg_base_dir() {
    if [[ -e "$PG_LINK" ]]; then
        readlink -f "$PG_LINK"
    else
        echo "$PG_LINK"
    fi
}

pg_data_dir() {
    echo "$(pg_base_dir)/data"
}

pg_prepare_base_dir() {
    [[ -e "$PG_LINK" ]] && return 0
    mkdir -p "$STACK_DIR"
    if as_postgres test -x "$STACK_DIR"; then
        mkdir -p "$PG_LINK"
    else
        local outside
        outside="/var/lib/wildrydes-stack/$(printf '%s' "$ROOT" | md5sum | cut -c1-12)/postgres"
        warn "the postgres OS user cannot enter $STACK_DIR: keeping the cluster in $outside (.stack/postgres links to it)"
        mkdir -p "$outside"
        chown postgres: "$outside"
        ln -sfn "$outside" "$PG_LINK"
    fi
    chown postgres: "$(pg_base_dir)"
    chmod 700 "$(pg_base_dir)"
}

# pg_init: creates the cluster once: superuser wildrydes_admin, scram passwords on TCP.
pg_init() {
    pg_prepare_base_dir
    local base data bin
    base="$(pg_base_dir)"
    data="$base/data"
    [[ -f "$data/PG_VERSION" ]] && return 0
    bin="$(pg_bin_dir)"
    info "creating the PostgreSQL cluster in $data"
    local pwfile="$base/.pwfile"
    printf '%s\n' "$PG_ADMIN_PASSWORD" >"$pwfile"
    chown postgres: "$pwfile"
    chmod 600 "$pwfile"
    rm -rf "$data"
    as_postgres "$bin/initdb" -D "$data" -U "$PG_ADMIN_USER" --pwfile="$pwfile" \
        --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
        >"$base/initdb.log" 2>&1 || {
        rm -f "$pwfile"
        cat "$base/initdb.log" >&2
        die "initdb failed"
    }
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<'EOF'

# Added by scripts/stack.
listen_addresses = '127.0.0.1'
port = 5432
unix_socket_directories = ''
password_encryption = 'scram-sha-256'
# Other settings: scripts/postgres/server.conf, given at every start (pg_server_options).
EOF
}

# pg_pid: the postmaster of the project's cluster, if it runs.
pg_pid() {
    local data
    data="$(pg_data_dir)"
    read_pid "$data/postmaster.pid"
}

pg_check_port_free() {
    if port_open 127.0.0.1 5432; then
        die "port 5432 is held by $(port_holder 5432), not by the PostgreSQL of scripts/stack. Stop that server (Debian's: pg_ctlcluster 15 main stop), or, to use it, export DATABASE_URL with the URL of a superuser"
    fi
}

# pg_server_options: scripts/postgres/server.conf as postgres -c options.
pg_server_options() {
    local name value options=()
    while IFS='=' read -r name value; do
        name="${name//[[:space:]]/}"
        value="${value#"${value%%[![:space:]]*}"}"
        value="${value%"${value##*[![:space:]]}"}"
        [[ -z "$name" || "$name" == \#* ]] && continue
        options+=("-c $name=$value")
    done <"$ROOT/scripts/postgres/server.conf"
    echo "${options[*]}"
}

pg_start() {
    pg_check_port_free
    pg_ensure_server_installed
    pg_init
    local base
    base="$(pg_base_dir)"
    # A postmaster killed with SIGKILL leaves its postmaster.pid behind.
    pg_pid >/dev/null || rm -f "$base/data/postmaster.pid"
    touch "$base/postgres.log"
    chown postgres: "$base/postgres.log"
    mkdir -p "$LOG_DIR"
    ln -sfn "$base/postgres.log" "$PG_LOG_LINK"
    info "starting PostgreSQL (log: ${PG_LOG_LINK#"$ROOT/"})"
    STARTED+=(postgres)
    as_postgres "$(pg_bin_dir)/pg_ctl" -D "$base/data" -l "$base/postgres.log" \
        -o "$(pg_server_options)" -w -t "${PG_START_TIMEOUT:-60}" start >/dev/null || {
        tail -n 30 "$base/postgres.log" >&2 || true
        die "PostgreSQL did not start (log: $PG_LOG_LINK)"
    }
}

pg_wait_ready() {
    wait_until "${PG_START_TIMEOUT:-60}" postgres "$(pg_bin_dir)/pg_isready" -q -h 127.0.0.1 -p 5432 ||
        die "PostgreSQL is not accepting connections on 127.0.0.1:5432 (log: $PG_LOG_LINK)"
}

# pg_create_database URL: creates URL's database when missing (connecting to 'postgres').
pg_create_database() {
    local db maintenance
    db="$(pg_url_part "$1" database)"
    maintenance="$(pg_url_with_database "$1" postgres)"
    if [[ -z "$(pg_psql "$maintenance" -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
        info "creating database $db"
        pg_psql "$maintenance" -c "CREATE DATABASE \"$db\""
    fi
}

# pg_apply_sql URL: the services' roles and schemas (scripts/postgres/*.sql), as the admin.
pg_apply_sql() {
    info "applying scripts/postgres/roles.sql and schemas.sql to $(pg_url_part "$1" hostport)/$(pg_url_part "$1" database)"
    pg_psql "$1" -f "$ROOT/scripts/postgres/roles.sql" ||
        die "scripts/postgres/roles.sql failed (as ${1%%:*}://$(pg_url_part "$1" hostport))"
    pg_psql "$1" -f "$ROOT/scripts/postgres/schemas.sql" ||
        die "scripts/postgres/schemas.sql failed"
}

pg_stop() {
    local pid data
    pid="$(pg_pid)" || return 0
    data="$(pg_data_dir)"
    info "stopping postgres (pid $pid)"
    as_postgres "$(pg_bin_dir)/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null ||
        stop_pid "$pid" postgres 10
}

# pg_cluster_pids: every process of the project's cluster, the postmaster's orphans included
# (each runs in the data directory).
pg_cluster_pids() {
    local data cwd pids=()
    data="$(readlink -f "$(pg_data_dir)")"
    for cwd in /proc/[0-9]*/cwd; do
        [[ "$(readlink "$cwd" 2>/dev/null)" == "$data" ]] && pids+=("${cwd//[^0-9]/}")
    done
    echo "${pids[*]}"
}

# pg_kill: SIGKILL to the postmaster and all its processes (each child runs in a session of its
# own, so not as one process group), like a crash of the whole server. The postmaster is
# stopped first, so that it forks no new backend while they are killed, and the command waits
# until none is left: a backend that outlived it would keep the shared memory attached, and
# the next start would refuse ("pre-existing shared memory block ... is still in use").
pg_kill() {
    local pid pids deadline
    pid="$(pg_pid)" || die "postgres is not running (as started by scripts/stack)"
    kill -STOP "$pid" 2>/dev/null || true
    pids="$(pg_cluster_pids)"
    info "SIGKILL postgres (postmaster $pid, processes: ${pids:-none})"
    deadline=$((SECONDS + 30))
    while [[ -n "$pids" ]] && ((SECONDS < deadline)); do
        # shellcheck disable=SC2086 # a list of pids
        kill -KILL "$pid" $pids 2>/dev/null || true
        sleep 0.1
        pids="$(pg_cluster_pids)"
    done
    [[ -z "$pids" ]] || warn "postgres processes still alive 30 s after SIGKILL: $pids"
    wait_released "$pid" 5432
}
