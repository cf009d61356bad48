# Project-local Postgres and Redis: installed from Debian's packages when missing, run from a
# data folder under .data/<profile>/, on loopback only. Source it after common.sh.
# shellcheck shell=bash

# Prints a free TCP port on 127.0.0.1, starting the search at $1. Callers start below the
# kernel's ephemeral range (32768 and up), where outgoing connections can take a port between
# this check and the server's bind.
free_port() {
    local port=$1
    while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

# Runs a command as the postgres user when we are root (Postgres refuses to run as root).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_bin() {
    local version
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
    [ -n "$version" ] || die "no Postgres server binaries under /usr/lib/postgresql"
    echo "/usr/lib/postgresql/$version/bin"
}

# postgres_tls <data folder>: a root certificate and a server certificate for 127.0.0.1 that it
# issued, made once under <data>/tls, for a cluster that speaks TLS as managed servers do (its
# clients choose with sslmode). Sets PG_TLS_ROOT_CERT.
postgres_tls() {
    local tls
    tls=$(realpath -m "$1/tls")
    apt_ensure openssl
    if [ ! -f "$tls/server.key" ]; then
        mkdir -p "$tls"
        local curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${curve[@]}" -days 3650 -subj "/CN=SendInChat local root" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$tls/root.key" -out "$tls/root.crt" 2>/dev/null
        openssl req "${curve[@]}" -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$tls/server.ext"
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/root.crt" -CAkey "$tls/root.key" -CAcreateserial \
            -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
        chmod 600 "$tls/server.key" "$tls/root.key"
        [ "$(id -u)" -eq 0 ] && chown postgres "$tls/server.key" "$tls/server.crt"
    fi
    PG_TLS_ROOT_CERT="$tls/root.crt"
    export PG_TLS_ROOT_CERT
}

# start_postgres <data folder> <port> <durable: yes|no>
# Creates the cluster on first use (superuser "postgres", password in <data>/postgres.password,
# password authentication over TCP, TLS offered: see postgres_tls) and starts it unless it is
# already running. Sets PG_ADMIN_URL and PG_TLS_ROOT_CERT.
start_postgres() {
    local data=$1 port=$2 durable=$3
    apt_ensure postgresql
    local bin cluster="$data/postgres" password_file="$data/postgres.password"
    bin=$(postgres_bin)
    mkdir -p "$data"
    if [ ! -f "$password_file" ]; then
        head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$password_file"
        chmod 600 "$password_file"
    fi
    if [ ! -f "$cluster/PG_VERSION" ]; then
        log "creating a Postgres cluster in $cluster"
        mkdir -p "$cluster"
        local init_password
        init_password=$(mktemp)
        cp "$password_file" "$init_password"
        [ "$(id -u)" -eq 0 ] && chown postgres "$cluster" "$init_password"
        as_postgres "$bin/initdb" -D "$cluster" -U postgres --pwfile="$init_password" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        rm -f "$init_password"
    fi
    # Every app keeps a pool of up to 64 connections per component (as Spin does); tests run many
    # apps at once.
    postgres_tls "$data"
    local options="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c max_connections=400"
    local tls
    tls=$(dirname "$PG_TLS_ROOT_CERT")
    options="$options -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key"
    # Test data is thrown away: skip the disk flushes that durability needs.
    [ "$durable" = no ] && options="$options -c max_connections=600 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if ! as_postgres "$bin/pg_ctl" -D "$cluster" status >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl" -D "$cluster" -l "$cluster/server.log" -o "$options" -w -t 60 start >/dev/null \
            || die "Postgres did not start; see $cluster/server.log"
    fi
    port=$(sed -n 4p "$cluster/postmaster.pid")
    PG_ADMIN_URL="postgres://postgres:$(cat "$password_file")@127.0.0.1:$port/postgres?sslmode=disable"
    export PG_ADMIN_URL
}

stop_postgres() {
    local cluster="$1/postgres"
    [ -f "$cluster/postmaster.pid" ] || return 0
    as_postgres "$(postgres_bin)/pg_ctl" -D "$cluster" -m fast -w stop >/dev/null 2>&1 || true
}

# start_redis <data folder> <port> <durable: yes|no>. Sets REDIS_URL_LOCAL.
start_redis() {
    local data=$1 port=$2 durable=$3
    apt_ensure redis-server
    local folder="$data/redis"
    mkdir -p "$folder"
    if [ -f "$folder/redis.pid" ] && kill -0 "$(cat "$folder/redis.pid")" 2>/dev/null; then
        port=$(cat "$folder/port")
    else
        local persistence=(--save "" --appendonly no)
        [ "$durable" = yes ] && persistence=(--appendonly yes)
        redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$(realpath "$folder")" \
            --pidfile "$(realpath "$folder")/redis.pid" --logfile "$(realpath "$folder")/redis.log" \
            "${persistence[@]}" >/dev/null
        echo "$port" >"$folder/port"
        local attempt
        for attempt in $(seq 50); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        redis-cli -p "$port" ping >/dev/null 2>&1 || die "Redis did not start; see $folder/redis.log"
    fi
    REDIS_URL_LOCAL="redis://127.0.0.1:$port"
    export REDIS_URL_LOCAL
}

# Stop functions run from EXIT traps under `set -e`: a process already gone must not end the
# cleanup early, hence `|| true`.
stop_redis() {
    local pid_file="$1/redis/redis.pid"
    if [ -f "$pid_file" ]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
    rm -f "$pid_file"
}

# start_pushpin <data folder> <client port> <publish port> <app ports> <sig key>
# Renders deploy/pushpin/*.in into <data>/pushpin and starts Pushpin in the background, routing
# to every app instance (<app ports> space-separated, in the order Pushpin tries them).
start_pushpin() {
    local data=$1 client_port=$2 publish_port=$3 app_ports=$4 sig_key=$5
    apt_ensure pushpin
    local folder port targets=""
    folder="$(realpath -m "$data")/pushpin"
    mkdir -p "$folder/run" "$folder/log"
    for port in $app_ports; do targets="$targets 127.0.0.1:$port,over_http"; done
    sed "s#@APP_TARGETS@#${targets# }#" "$PROJECT_ROOT/deploy/pushpin/routes.in" >"$folder/routes"
    sed -e "s#@RUN_DIR@#$folder/run#" -e "s#@LOG_DIR@#$folder/log#" -e "s#@BIND_ADDRESS@#127.0.0.1#" \
        -e "s#@HTTP_PORT@#$client_port#" \
        -e "s#@PUBLISH_PORT@#$publish_port#" -e "s#@SIG_KEY@#$sig_key#" -e "s#@ROUTES_FILE@#$folder/routes#" \
        "$PROJECT_ROOT/deploy/pushpin/pushpin.conf.in" >"$folder/pushpin.conf"
    chmod 600 "$folder/pushpin.conf"
    pushpin --config="$folder/pushpin.conf" >"$folder/log/pushpin.out" 2>&1 &
    echo $! >"$folder/pushpin.pid"
    wait_for_port "$client_port" "Pushpin" "$folder/log"
    wait_for_port "$publish_port" "Pushpin's publish endpoint" "$folder/log"
}

stop_pushpin() {
    local pid_file="$1/pushpin/pushpin.pid"
    [ -f "$pid_file" ] || return 0
    local pid attempt
    pid=$(cat "$pid_file")
    kill "$pid" 2>/dev/null || true
    # Pushpin's runner stops its services (condure, zurl, proxy, handler) before it exits.
    for attempt in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pid_file"
}

# wait_for_port <port> <what> <where its logs are>
wait_for_port() {
    local attempt
    for attempt in $(seq 150); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.2
    done
    die "$2 did not listen on port $1; see $3"
}
