#!/usr/bin/env bash
# After the integration suite: no secret the suite handled appears in any line its processes
# logged (the host, the run command). The suite writes both lists when SENDINCHAT_TEST_LOG_DIR
# is set (tests/src/secrets_seen.rs); scripts/test.sh sets it and runs this after the suite.
#   scripts/scan-test-logs.sh <log dir>
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

dir=${1:?usage: scan-test-logs.sh <log dir>}
secrets=$(mktemp)
trap 'rm -f "$secrets"' EXIT
sort -u "$dir/secrets.txt" >"$secrets" 2>/dev/null || true
secret_count=$(wc -l <"$secrets")
logs=("$dir"/process-*.log)
line_count=$(cat "${logs[@]}" 2>/dev/null | wc -l)
# A scan of nothing proves nothing: the suite registers hundreds of users and logs every request.
[ "$secret_count" -ge 100 ] || die "only $secret_count secrets recorded in $dir: is the suite writing them?"
[ "$line_count" -ge 1000 ] || die "only $line_count log lines in $dir: is the suite writing them?"
if leaks=$(grep -F -f "$secrets" "${logs[@]}"); then
    echo "$leaks" | head -20 >&2
    die "secrets the suite used appear in the logs above"
fi
log "no secret among $secret_count appears in $line_count log lines of ${#logs[@]} processes"
