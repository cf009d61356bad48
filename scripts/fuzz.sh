#!/usr/bin/env bash
# Fuzzes the running app against its contract, openapi.yaml, with schemathesis (from PyPI).
#
#   scripts/fuzz.sh [--examples N] [--seed S]
#   scripts/fuzz.sh --deep [--examples N] [--seeds "S1 S2 ..."]
#   scripts/fuzz.sh --install-only
#
# Starts a private app the way the integration suite does: the local host (the build the tests
# use; $SENDINCHAT_HOST_BIN when set) on a free port with SPIN_VARIABLE_* settings, a fresh
# migrated database on the test Postgres ($SENDINCHAT_TEST_DATABASE_URL, else a private cluster
# under .data/fuzz), the test Redis ($SENDINCHAT_TEST_REDIS_URL, else a private one) and Pushpin
# in front. Then it registers and logs in a user, funds it, opens a room with a second user, and
# runs schemathesis authenticated as that user (bearer token) and as the operator
# (X-Operator-Token): every operation, at most N generated cases per operation and phase, with a
# fixed seed so a run is reproducible. Any 5xx, any response the spec does not declare (status,
# headers, content type, body schema), any request the app takes while the spec says it must
# refuse it, or any crash fails the run. Prints the number of cases it ran.
#
# --deep runs the same checks with more examples (500 per operation and phase unless --examples
# says otherwise) once per seed: the fixed one plus three fresh ones (or the --seeds given), each
# printed so a failure can be replayed with --seed. The test command keeps the fast fixed run.
#
# The WebSocket-over-HTTP operation (webSocketOverHttp) is left out: its events
# (application/websocket-events) are a framing schemathesis cannot generate, and only Pushpin may
# send them (Grip-Sig). The integration suite covers it (tests/suite/chat.rs, security.rs).
#
# schemathesis is installed (pinned) into a virtualenv under .data/, once.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/services.sh"
cd "$PROJECT_ROOT"

SCHEMATHESIS_VERSION=4.32.5
examples=""
seed=20261124
seeds=""
deep=""
install_only=""
while [ $# -gt 0 ]; do
    case $1 in
        --install-only) install_only=1 ;;
        --examples) examples=$2; shift ;;
        --seed) seed=$2; shift ;;
        --deep) deep=1 ;;
        --seeds) seeds=$2; shift ;;
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (try --help)" ;;
    esac
    shift
done

fresh_seed() { od -An -N4 -tu4 /dev/urandom | tr -d ' '; }
if [ -n "$deep" ]; then
    examples=${examples:-500}
    seeds=${seeds:-"$seed $(fresh_seed) $(fresh_seed) $(fresh_seed)"}
else
    examples=${examples:-50}
    seeds=$seed
fi

data=.data/fuzz
mkdir -p "$data"
venv=.data/schemathesis-$SCHEMATHESIS_VERSION
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    # Debian's python3 needs python3-venv for this; other Pythons (pyenv's) bring it along.
    python3 -m venv "$venv" 2>/dev/null || { apt_ensure python3-venv && python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
python=$venv/bin/python
[ -z "$install_only" ] || exit 0

started=()
database=""
# Stops what this script started; runs on every exit, so no step may end it early.
cleanup() {
    local pid
    for pid in "${started[@]}"; do { kill "$pid" && wait "$pid"; } 2>/dev/null || true; done
    stop_pushpin "$data" || true
    if [ -n "$database" ]; then
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" 2>/dev/null || true
    fi
    if [ -n "${started_postgres:-}" ]; then stop_postgres "$data" || true; fi
    if [ -n "${started_redis:-}" ]; then stop_redis "$data" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SENDINCHAT_TEST_DATABASE_URL:-}" ]; then
    PG_ADMIN_URL=$SENDINCHAT_TEST_DATABASE_URL
else
    start_postgres "$data" "$(free_port 15442)" no
    started_postgres=1
fi
if [ -n "${SENDINCHAT_TEST_REDIS_URL:-}" ]; then
    redis_url=$SENDINCHAT_TEST_REDIS_URL
else
    start_redis "$data" "$(free_port 16389)" no
    started_redis=1
    redis_url=$REDIS_URL_LOCAL
fi
apt_ensure postgresql-client

database=sic_fuzz_$$
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $database"
database_url=${PG_ADMIN_URL/\/postgres\?/\/$database?}
[ "$database_url" != "$PG_ADMIN_URL" ] || die "cannot derive a database URL from $PG_ADMIN_URL (expected .../postgres?...)"
log "applying migrations to $database"
migrate "$database_url"

if [ -n "${SENDINCHAT_HOST_BIN:-}" ]; then
    host_bin=$SENDINCHAT_HOST_BIN
else
    cargo build --quiet -p sendinchat-host
    host_bin=${CARGO_TARGET_DIR:-$PROJECT_ROOT/target}/debug/sendinchat-host
fi
scripts/build-components.sh auth fintech chat chat-fanout health docs

secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
host_and_port() { local rest=${1#*://}; rest=${rest##*@}; echo "${rest%%[/?]*}"; }
admin_token=$(secret)
jwt_secret=$(secret)
grip_sig_key=$(secret)
app_port=$(free_port 3300)
publish_port=$(free_port 5570)
ws_port=$(free_port 7990)
database_host=$(host_and_port "$database_url")
redis_host=$(host_and_port "$redis_url")
export SPIN_VARIABLE_DATABASE_URL=$database_url
export SPIN_VARIABLE_DATABASE_HOST=$database_host
export SPIN_VARIABLE_REDIS_URL=$redis_url
export SPIN_VARIABLE_REDIS_HOST=$redis_host
export SPIN_VARIABLE_REDIS_KEY_PREFIX=sendinchat-fuzz-$$
export SPIN_VARIABLE_CHAT_EVENTS_CHANNEL=sendinchat.fuzz-events.$$
export SPIN_VARIABLE_JWT_SECRET=$jwt_secret
export SPIN_VARIABLE_ADMIN_TOKEN=$admin_token
export SPIN_VARIABLE_GRIP_SIG_KEY=$grip_sig_key
export SPIN_VARIABLE_GRIP_PUBLISH_URLS=http://127.0.0.1:$publish_port
export SPIN_VARIABLE_GRIP_PUBLISH_HOSTS=http://127.0.0.1:$publish_port
# Cheap hashing, and limits high enough that generated cases reach the handlers behind them
# (the limits themselves are covered by the integration suite).
export SPIN_VARIABLE_BCRYPT_COST=4
export SPIN_VARIABLE_CHAT_MESSAGES_PER_MINUTE=100000
export SPIN_VARIABLE_LOGIN_MAX_FAILURES=100000
export SPIN_VARIABLE_LOGIN_MAX_FAILURES_PER_ADDRESS=100000
export SPIN_VARIABLE_LOGIN_MAX_ATTEMPTS_PER_ADDRESS=100000
export SPIN_VARIABLE_TOKEN_REFRESHES_PER_MINUTE=100000
export SPIN_VARIABLE_REGISTRATIONS_PER_ADDRESS_MAX=100000
export SPIN_VARIABLE_REGISTRATIONS_MAX=100000
export SPIN_VARIABLE_USER_LOOKUPS_PER_MINUTE=100000

"$host_bin" up --from spin.toml --listen "127.0.0.1:$app_port" >"$data/host.log" 2>&1 &
started+=($!)
wait_for_port "$app_port" "the app" "$data/host.log"
start_pushpin "$data" "$ws_port" "$publish_port" "$app_port" "$grip_sig_key"
base_url=http://127.0.0.1:$app_port

log "creating the fuzzing user, its money and its room"
# Prints shell assignments: the fuzzing user's token, its room and a second one to leave, its
# peer, a transfer it received, a payment request it was asked to pay, a split it asked for and
# two of its messages (one to edit, one to delete).
fixtures=$("$python" - "$base_url" "$admin_token" <<'PY'
import json, sys, time, urllib.error, urllib.request

base, admin_token = sys.argv[1], sys.argv[2]

def call(method, path, body=None, token=None, headers=None):
    request = urllib.request.Request(base + path, method=method, headers=dict(headers or {}))
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")

for attempt in range(100):
    try:
        call("GET", "/health/ready")
        break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.2)

def user(name):
    password = f"fuzzing password of {name}"
    created = call("POST", "/users/register", {"username": name, "password": password})
    session = call("POST", "/users/token", {"username": name, "password": password})
    return created["id"], session["access_token"]

fuzzer, token = user("fuzzer")
peer, peer_token = user("fuzz_peer")
operator = {"x-operator-token": admin_token}
transfer = call("POST", "/fintech/deposits", {"user_id": fuzzer, "amount": "1000000"}, headers=operator)["id"]
call("POST", "/fintech/deposits", {"user_id": peer, "amount": "1000"}, headers=operator)
room = call("POST", "/chat/create_room", {"name": "fuzzing", "member_ids": [peer]}, token=token)["id"]
spare_room = call("POST", "/chat/create_room", {"name": "to leave", "member_ids": [peer]}, token=token)["id"]
message = call("POST", "/chat/send_message", {"chat_id": room, "content": "hello"}, token=token)["id"]
doomed = call("POST", "/chat/send_message", {"chat_id": room, "content": "to delete"}, token=token)["id"]
asked = call("POST", f"/chat/rooms/{room}/payment_requests", {"payer_id": fuzzer, "amount": "1"}, token=peer_token)
request = asked["payment_request"]["id"]
third, _ = user("fuzz_third")
call("POST", f"/chat/rooms/{room}/members", {"user_id": third}, token=token)
split = call("POST", f"/chat/rooms/{room}/split_requests", {"amount": "3", "payer_ids": [peer, third]}, token=token)
print(f"FUZZ_TOKEN={token} FUZZ_ROOM={room} FUZZ_SPARE_ROOM={spare_room} FUZZ_PEER={peer} "
      f"FUZZ_TRANSFER={transfer} FUZZ_REQUEST={request} FUZZ_MESSAGE={message} FUZZ_DOOMED_MESSAGE={doomed} "
      f"FUZZ_SPLIT={split['split_request']['id']}")
PY
)
eval "$fixtures"

# - Path and query parameters naming the fuzzing user's resources (its room, peer, transfer,
#   payment request, split and message) take their values, so generated bodies and headers reach
#   the handlers rather than stopping at 404; leaving a room leaves the spare one, and deleting a
#   message deletes another than the one edits reach. The rest is generated.
# - scripts/fuzz-hooks.py teaches schemathesis the WebSocket-over-HTTP media type and
#   percent-encodes non-ASCII header values (see there).
# - No cache: replaying failures remembered from earlier runs would make runs differ.
config=$data/schemathesis.toml
cat >"$config" <<TOML
cache.enabled = false

[auth.openapi.bearerAuth]
bearer = "\${FUZZ_TOKEN}"

[auth.openapi.operatorToken]
api_key = "\${FUZZ_OPERATOR_TOKEN}"

[parameters]
room_id = $FUZZ_ROOM
user_id = $FUZZ_PEER
username = "fuzz_peer"
transfer_id = $FUZZ_TRANSFER
request_id = $FUZZ_REQUEST
message_id = $FUZZ_MESSAGE
split_id = $FUZZ_SPLIT

[[operations]]
include-operation-id = "leaveRoom"
parameters = { room_id = $FUZZ_SPARE_ROOM }

[[operations]]
include-operation-id = "deleteMessage"
parameters = { message_id = $FUZZ_DOOMED_MESSAGE }
TOML
export FUZZ_TOKEN FUZZ_OPERATOR_TOKEN=$admin_token

# Every check (negative_data_rejection and ignored_auth included) but positive_data_acceptance:
# requests that are valid for the schema are refused by rules no schema expresses (insufficient
# funds, unknown receiver, common password), as declared.
fuzz_with_seed() {
    local seed=$1 log_file=$data/schemathesis-$1.log status=0 cases
    log "fuzzing $base_url: at most $examples cases per operation and phase, seed $seed"
    SCHEMATHESIS_HOOKS=scripts/fuzz-hooks.py "$venv/bin/schemathesis" --config-file "$config" run openapi.yaml \
        --url "$base_url" \
        --exclude-operation-id webSocketOverHttp \
        --phases examples,coverage,fuzzing \
        --checks all \
        --exclude-checks positive_data_acceptance \
        --max-examples "$examples" \
        --seed "$seed" \
        --generation-database none \
        --workers 1 \
        --request-timeout 30 \
        --no-color >"$log_file" 2>&1 || status=$?
    # The summary's "Test cases:" section: "<N> generated, <M> passed" (or "... found ... failures").
    cases=$(sed -n 's/^ *\([0-9][0-9]*\) generated,.*/\1/p' "$log_file" | tail -n 1)
    sed -n '/= SUMMARY =/,$p' "$log_file"
    if [ "$status" -ne 0 ]; then
        log "seed $seed: schemathesis found problems (exit $status); full output in $log_file, app log in $data/host.log"
        return "$status"
    fi
    [ -n "$cases" ] || die "no test case count in $log_file: did schemathesis run at all?"
    log "seed $seed: $cases test cases, no failures"
}

failed=0
for seed in $seeds; do
    fuzz_with_seed "$seed" || failed=1
done
[ "$failed" -eq 0 ] || die "schemathesis found problems with at least one seed (above)"
