#!/usr/bin/env bash
# Runs the whole system on this machine: Postgres, Redis, Pushpin and the app.
#
#   scripts/run.sh [--seed] [--quiet] [--no-metrics] [--replicas 1] [--port 3000] [--ws-port 7999]
#                  [--metrics-port 9464] [--data .data/dev]
#
# - Postgres: $DATABASE_URL when set, otherwise a cluster under .data/dev/postgres.
# - Redis: $REDIS_URL when set, otherwise a server under .data/dev/redis (append-only file on).
# - Pushpin from deploy/pushpin, in front of the app, for WebSockets.
# - Secrets (JWT key, Pushpin signing key, operator token) are generated on first run into
#   .data/dev/secrets.env (mode 600) and reused; data survives restarts.
# - The app runs under the real Spin CLI when `spin` 4.1+ is on PATH, else under the local host
#   ($SENDINCHAT_HOST_BIN when set, otherwise built in release mode).
# - --seed creates demo users with balances and a room (see README).
# - The local host serves Prometheus metrics on --metrics-port, unless --no-metrics (under
#   `spin up`, see the README's Observability section for Spin's OpenTelemetry export instead).
# - --quiet turns off the per-request log lines of the host and the components (for benchmarks).
# - --replicas N runs the production topology: N app instances (ports --port, --port+1, ...;
#   metrics on --metrics-port, +1, ...) sharing Postgres and Redis, behind N Pushpin nodes (ports
#   --ws-port, --ws-port+1, ...) that each route to every instance and each receive every publish.
# Ctrl-C stops exactly what this script started.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/services.sh"
cd "$PROJECT_ROOT"

app_port=3000
ws_port=7999
metrics_port=9464
metrics=yes
seed=no
replicas=1
host_flags=()
data=.data/dev
while [ $# -gt 0 ]; do
    case $1 in
        --seed) seed=yes ;;
        --quiet) host_flags+=(--quiet); export SPIN_VARIABLE_LOG_LEVEL=warn ;;
        --replicas) replicas=$2; shift ;;
        --port) app_port=$2; shift ;;
        --ws-port) ws_port=$2; shift ;;
        --metrics-port) metrics_port=$2; shift ;;
        --no-metrics) metrics=no ;;
        --data) data=$2; shift ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (try --help)" ;;
    esac
    shift
done

mkdir -p "$data"
secrets=$data/secrets.env
if [ ! -f "$secrets" ]; then
    umask 077
    {
        echo "JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "ADMIN_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "GRIP_SIG_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$secrets"
    umask 022
    log "generated secrets in $secrets"
fi
# shellcheck disable=SC1090
source "$secrets"
# The file may have been edited: refuse short, placeholder (CHANGE-ME) and shared values, as the
# app's readiness check does.
check_secrets() {
    local name value seen=""
    for name in JWT_SECRET ADMIN_TOKEN GRIP_SIG_KEY; do
        value=${!name:-}
        [ "${#value}" -ge 32 ] || die "$name in $secrets is shorter than 32 bytes"
        case ${value,,} in *change*) die "$name in $secrets is still a placeholder" ;; esac
        case $seen in *"|$value|"*) die "$name in $secrets has the value of another secret" ;; esac
        seen="$seen|$value|"
    done
}
check_secrets

[[ "$replicas" =~ ^[1-9]$ ]] || die "--replicas takes 1 to 9"
# Instance i listens on app_ports[i]; Pushpin node i on ws_ports[i].
app_ports=() ws_ports=()
for ((index = 0; index < replicas; index++)); do
    app_ports+=($((app_port + index)))
    ws_ports+=($((ws_port + index)))
done

# `<service>:<its data folder>`, stopped in reverse order of starting.
started=()
app_pids=()
# Stops what this script started, the app first (it finishes requests in flight), on Ctrl-C
# (the whole terminal process group gets SIGINT) or on a SIGTERM sent to this script alone.
stop_started() {
    # `|| true`: under `set -e` a non-zero status here would end the cleanup early.
    local pid service
    for pid in "${app_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${app_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for service in "${started[@]}"; do "stop_${service%%:*}" "${service#*:}"; done
}
trap stop_started EXIT
trap 'exit 130' INT TERM

for port in "${app_ports[@]}" "${ws_ports[@]}"; do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is taken (use --port / --ws-port)"
done

apt_ensure curl
log "building components"
scripts/build-components.sh auth fintech chat chat-fanout health docs web

if [ -z "${DATABASE_URL:-}" ]; then
    start_postgres "$data" "$(free_port 15432)" yes
    started+=("postgres:$data")
    psql "$PG_ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'sendinchat'" | grep -q 1 \
        || psql "$PG_ADMIN_URL" -qc "CREATE DATABASE sendinchat"
    DATABASE_URL=${PG_ADMIN_URL/\/postgres\?/\/sendinchat?}
fi
if [ -z "${REDIS_URL:-}" ]; then
    start_redis "$data" "$(free_port 16379)" yes
    started+=("redis:$data")
    REDIS_URL=$REDIS_URL_LOCAL
fi

log "applying migrations"
migrate "$DATABASE_URL"

# Each Pushpin node's publish port, all distinct.
publish_ports=() publish_urls=()
next_port=5561
for ((index = 0; index < replicas; index++)); do
    publish_ports+=("$(free_port "$next_port")")
    next_port=$((publish_ports[index] + 1))
    publish_urls+=("http://127.0.0.1:${publish_ports[index]}")
done
host_and_port() { local rest=${1#*://}; rest=${rest##*@}; echo "${rest%%[/?]*}"; }
export SPIN_VARIABLE_DATABASE_URL=$DATABASE_URL
export SPIN_VARIABLE_DATABASE_HOST=$(host_and_port "$DATABASE_URL")
export SPIN_VARIABLE_REDIS_URL=$REDIS_URL
export SPIN_VARIABLE_REDIS_HOST=$(host_and_port "$REDIS_URL")
export SPIN_VARIABLE_JWT_SECRET=$JWT_SECRET
export SPIN_VARIABLE_ADMIN_TOKEN=$ADMIN_TOKEN
export SPIN_VARIABLE_GRIP_SIG_KEY=$GRIP_SIG_KEY
# Every event goes to every Pushpin node; the outbound policy allows the range of their ports.
export SPIN_VARIABLE_GRIP_PUBLISH_URLS=$(IFS=,; echo "${publish_urls[*]}")
export SPIN_VARIABLE_GRIP_PUBLISH_HOSTS=http://127.0.0.1:${publish_ports[0]}..$((publish_ports[replicas - 1] + 1))
# The web client at http://127.0.0.1:$app_port/ opens its WebSockets on Pushpin's port.
export SPIN_VARIABLE_WEB_SOCKET_ORIGIN=${SPIN_VARIABLE_WEB_SOCKET_ORIGIN:-ws://127.0.0.1:$ws_port}
# Pushpin runs on this machine and writes the client's address into X-Forwarded-For.
export SPIN_VARIABLE_TRUSTED_PROXIES=${SPIN_VARIABLE_TRUSTED_PROXIES:-127.0.0.1}

for ((index = 0; index < replicas; index++)); do
    # One node keeps the single-node layout (.data/dev/pushpin); more get a folder each.
    node_data=$data
    [ "$replicas" -eq 1 ] || node_data=$data/node$index
    # Pushpin sends each request to the first target that accepts connections (routes.in), so
    # node i lists instance i first: the nodes spread the load, and each fails over to the rest.
    targets=("${app_ports[@]:index}" "${app_ports[@]:0:index}")
    start_pushpin "$node_data" "${ws_ports[index]}" "${publish_ports[index]}" "${targets[*]}" "$GRIP_SIG_KEY"
    started+=("pushpin:$node_data")
done

if [ "$metrics" = yes ]; then
    metrics_line="  Metrics     http://127.0.0.1:$metrics_port/metrics   (Prometheus text format)"
else
    metrics_line="  Metrics     off (--no-metrics)"
fi
local_host=yes
spin_version() { spin --version 2>/dev/null | sed -n 's/^spin \([0-9]*\)\.\([0-9]*\).*/\1 \2/p'; }
if command -v spin >/dev/null && read -r major minor < <(spin_version) && { [ "$major" -gt 4 ] || { [ "$major" -eq 4 ] && [ "$minor" -ge 1 ]; }; }; then
    runtime=(spin up --from spin.toml)
    local_host=no
    metrics_line="  Metrics     under spin up: set OTEL_EXPORTER_OTLP_ENDPOINT (see the README's Observability)"
elif [ -n "${SENDINCHAT_HOST_BIN:-}" ]; then
    runtime=("$SENDINCHAT_HOST_BIN" up --from spin.toml "${host_flags[@]}")
else
    log "building the local host (Spin 4.1+ not found on PATH)"
    cargo build --quiet --release -p sendinchat-host
    runtime=(target/release/sendinchat-host up --from spin.toml "${host_flags[@]}")
fi

# The local host prints its own machine-readable `ready` line; this script prints the one a
# person reads, after seeding, so exactly one appears.
for ((index = 0; index < replicas; index++)); do
    instance_flags=(--listen "127.0.0.1:${app_ports[index]}")
    if [ "$metrics" = yes ] && [ "$local_host" = yes ]; then
        instance_flags+=(--metrics-listen "127.0.0.1:$((metrics_port + index))")
    fi
    "${runtime[@]}" "${instance_flags[@]}" > >(grep --line-buffered -vx ready) &
    app_pids+=($!)
done
for port in "${app_ports[@]}"; do wait_for_port "$port" "the app" "its output above"; done
# Pushpin's ports open before its internal links are up: wait until each node proxies to the app.
for port in "${ws_ports[@]}"; do
    for attempt in $(seq 150); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        sleep 0.2
    done
done
if [ "$seed" = yes ]; then
    scripts/seed.sh "http://127.0.0.1:$app_port" "$ADMIN_TOKEN"
fi
if [ "$replicas" -eq 1 ]; then
    cat <<READY

  Web app     http://127.0.0.1:$app_port/
  HTTP API    http://127.0.0.1:$app_port   (e.g. curl http://127.0.0.1:$app_port/health/ready)
  WebSockets  ws://127.0.0.1:$ws_port/chat/ws/{room_id}
$metrics_line
  Operator token and secrets: $secrets
  Data: $data (Postgres and Redis keep their data across runs)

ready
READY
else
    echo
    for ((index = 0; index < replicas; index++)); do
        metrics_url=""
        if [ "$metrics" = yes ] && [ "$local_host" = yes ]; then
            metrics_url="  metrics http://127.0.0.1:$((metrics_port + index))/metrics"
        fi
        echo "  App instance $index   http://127.0.0.1:${app_ports[index]}/$metrics_url"
    done
    for ((index = 0; index < replicas; index++)); do
        echo "  Pushpin node $index   http://127.0.0.1:${ws_ports[index]} (HTTP API, to every instance)" \
            " ws://127.0.0.1:${ws_ports[index]}/chat/ws/{room_id}" \
            " http://127.0.0.1:${ws_ports[index]}/chat/rooms/{room_id}/events  publish ${publish_urls[index]}"
    done
    cat <<READY
  Operator token and secrets: $secrets
  Data: $data (Postgres and Redis keep their data across runs)

ready
READY
fi
wait "${app_pids[@]}"
