#!/usr/bin/env bash
# Creates demo data through the public API: users alice, bob and carol (password
# "sendinchat-demo"), 100.00 USD for each, and a room "Demo" with all three.
#   scripts/seed.sh <base url> <operator token>
# Safe to run again: existing users are logged in (no registration is attempted, so reruns
# spend none of the address's registration budget), deposits use fixed Idempotency-Keys so
# balances are funded once, and an existing "Demo" room of alice's is kept.
set -euo pipefail
base=${1:?base url}
operator_token=${2:?operator token}
password=sendinchat-demo

json_field() { sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^\",}]*\).*/\1/p"; }
post() { curl -sS -X POST "$base$1" -H 'content-type: application/json' "${@:3}" -d "$2"; }

declare -A ids tokens
log_in() { post /users/token "{\"username\":\"$1\",\"password\":\"$password\"}" | json_field access_token; }
for name in alice bob carol; do
    tokens[$name]=$(log_in "$name")
    if [ -z "${tokens[$name]}" ]; then
        post /users/register "{\"username\":\"$name\",\"password\":\"$password\"}" >/dev/null
        tokens[$name]=$(log_in "$name")
    fi
    ids[$name]=$(curl -sS "$base/users/me" -H "authorization: Bearer ${tokens[$name]}" | json_field id)
    post /fintech/deposits "{\"user_id\":${ids[$name]},\"amount\":\"100.00\",\"note\":\"demo funds\"}" \
        -H "x-operator-token: $operator_token" -H "idempotency-key: seed-deposit-$name" >/dev/null
done
rooms=$(curl -sS "$base/chat/rooms?limit=100" -H "authorization: Bearer ${tokens[alice]}")
if echo "$rooms" | grep -q '"name" *: *"Demo"'; then
    room="Demo (already there)"
else
    room=$(post /chat/create_room "{\"name\":\"Demo\",\"member_ids\":[${ids[bob]},${ids[carol]}]}" \
        -H "authorization: Bearer ${tokens[alice]}" | json_field id)
fi
echo "seeded: alice=${ids[alice]} bob=${ids[bob]} carol=${ids[carol]} (the password is in scripts/seed.sh), room $room"
