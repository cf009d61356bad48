# Shared by the transfer benchmarks (source it): bringing the system up with the run command,
# funded users with their tokens, and wrk driving POST /fintech/transfer.

# start_system <data dir> <app port> <ws port> <log file> [run.sh flags...]: starts the run
# command in the background (its pid in $run_pid) and waits for `ready`.
start_system() {
    local data=$1 app_port=$2 ws_port=$3 log_file=$4
    shift 4
    # Cheap hashing and no throttles: the benchmark creates many users from one address, and each
    # makes thousands of transfers a day.
    SPIN_VARIABLE_BCRYPT_COST=4 SPIN_VARIABLE_LOGIN_MAX_FAILURES_PER_ADDRESS=100000 \
        SPIN_VARIABLE_DAILY_OUTGOING_TRANSFERS_MAX=100000000 \
        SPIN_VARIABLE_LOGIN_MAX_ATTEMPTS_PER_ADDRESS=100000 \
        SPIN_VARIABLE_REGISTRATIONS_PER_ADDRESS_MAX=100000 SPIN_VARIABLE_REGISTRATIONS_MAX=100000 \
        scripts/run.sh --data "$data" --port "$app_port" --ws-port "$ws_port" "$@" >"$log_file" 2>&1 &
    run_pid=$!
    for _ in $(seq 600); do grep -qx ready "$log_file" && return 0; sleep 1; done
    die "the system did not start; see $log_file"
}

stop_system() {
    [ -n "${run_pid:-}" ] || return 0
    kill "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
    run_pid=
}

# create_funded_users <base url> <count> <operator token> <tokens.lua>: registers bench_1..N
# through the API, funds each with 1,000,000 USD, and writes their access tokens as a Lua table.
create_funded_users() {
    local base=$1 users=$2 operator_token=$3 tokens_lua=$4 index body token
    echo "tokens = {" >"$tokens_lua"
    for index in $(seq "$users"); do
        body="{\"username\":\"bench_$index\",\"password\":\"bench password $index\"}"
        curl -sf -X POST "$base/users/register" -H 'content-type: application/json' -d "$body" >/dev/null
        token=$(curl -sf -X POST "$base/users/token" -H 'content-type: application/json' -d "$body" \
            | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
        curl -sf -X POST "$base/fintech/deposits" -H 'content-type: application/json' \
            -H "x-operator-token: $operator_token" -d "{\"user_id\":$index,\"amount\":\"1000000\"}" >/dev/null
        echo "  \"$token\"," >>"$tokens_lua"
    done
    echo "}" >>"$tokens_lua"
}

# write_transfer_lua <tokens.lua> <user count> <script path>: a wrk script in which each request
# is a 0.01 USD transfer between random users; with HOT_PERCENT, that share of transfers has user
# 1 as sender or receiver. Ids are 1..N because the database is new. wrk prints
# "RESULT transfers/s p50_ms p99_ms status_errors socket_errors".
write_transfer_lua() {
    local tokens_lua=$1 users=$2 script=$3
    cat >"$script" <<LUA
dofile("$tokens_lua")
local users = $users
local hot_percent = tonumber(os.getenv("HOT_PERCENT") or "0")
function init(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000) end
function request()
  local sender = math.random(1, users)
  local receiver = 1 + (sender + math.random(0, users - 2)) % users
  if math.random(1, 100) <= hot_percent then
    if math.random(1, 2) == 1 then sender = 1 else receiver = 1 end
    if sender == receiver then receiver = 2 end
  end
  return wrk.format("POST", "/fintech/transfer", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[sender],
  }, '{"receiver_id":' .. receiver .. ',"amount":"0.01"}')
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.2f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}

# wrk_transfers <base url> <connections> <hot percent> <seconds> <script>: the RESULT fields.
wrk_transfers() {
    HOT_PERCENT=$3 wrk -t2 -c"$2" -d"${4}s" --latency -s "$5" "$1" | sed -n 's/^RESULT //p'
}
