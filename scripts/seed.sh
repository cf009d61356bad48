#!/usr/bin/env bash
# Creates demo data through the public API: users alice, bob and carol (password
# "sendinchat-demo"), 100.00 USD for each, and a room "Demo" with all three.
#   scripts/seed.sh <base url> <operator token>
# Safe to run twice: existing users are logged in instead, and deposits use fixed
# Idempotency-Keys so balances are funded once.
set -euo pipefail
base=${1:?base url}
operator_token=${2:?operator token}
password=sendinchat-demo

json_field() { sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^\",}]*\).*/\1/p"; }
post() { curl -sS -X POST "$base$1" -H 'content-type: application/json' "${@:3}" -d "$2"; }

declare -A ids tokens
for name in alice bob carol; do
    post /users/register "{\"username\":\"$name\",\"password\":\"$password\"}" >/dev/null
    session=$(post /users/token "{\"username\":\"$name\",\"password\":\"$password\"}")
    tokens[$name]=$(echo "$session" | json_field access_token)
    ids[$name]=$(curl -sS "$base/users/me" -H "authorization: Bearer ${tokens[$name]}" | json_field id)
    post /fintech/deposits "{\"user_id\":${ids[$name]},\"amount\":\"100.00\",\"note\":\"demo funds\"}" \
        -H "x-operator-token: $operator_token" -H "idempotency-key: seed-deposit-$name" >/dev/null
done
room=$(post /chat/create_room "{\"name\":\"Demo\",\"member_ids\":[${ids[bob]},${ids[carol]}]}" \
    -H "authorization: Bearer ${tokens[alice]}" | json_field id)
echo "seeded: alice=${ids[alice]} bob=${ids[bob]} carol=${ids[carol]} (password $password), room $room"
