#!/bin/sh
# run_explain.sh - `gemroute explain` on the real samples and on bodies
# written here: the JSON fields, the exit codes, and valid JSON whatever
# the body holds.  Ends with "N passed, N failed" for tests/run.sh.
#
#   BIN=bin tests/cli/run_explain.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
BIN=${BIN:-bin}
gr="$BIN/gemroute"
fix=tests/fixtures/gemini
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() {
    passed=$((passed + 1))
}

bad() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}

# expect NAME WANT_RC PYTHON_CHECK gemroute-args...
# Runs gemroute explain, checks its exit status and, when it printed,
# evaluates the Python expression with j = the parsed JSON.
expect() {
    name=$1 want=$2 check=$3
    shift 3
    "$gr" explain "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name: exit $rc, want $want ($(cat "$tmp/err"))"
        return
    fi
    if [ -n "$check" ]; then
        if python3 - "$tmp/out" "$check" <<'PY'
import json, sys
with open(sys.argv[1], "rb") as f:
    raw = f.read()
j = json.loads(raw.decode("utf-8"))   # must be valid UTF-8 JSON
keys = ["status", "class", "dims", "cooldown_s", "cooldown_from", "disable",
        "retryable", "learned", "quota_ids", "reason"]
assert list(j.keys()) == keys, list(j.keys())
assert raw.count(b"\n") == 1, "one line"
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
PY
        then
            ok
        else
            bad "$name: check failed: $check; got $(cat "$tmp/out")"
        fi
    else
        ok
    fi
}

expect "429 tpm flash" 0 \
    'j["status"] == 429 and j["class"] == "quota" and j["dims"] == ["tpm"]
     and j["cooldown_s"] == 26.0 and j["cooldown_from"] == "retryinfo"
     and j["disable"] == "none" and j["retryable"] is True
     and j["learned"] == {"tpm": 250000}
     and j["quota_ids"] == ["GenerateContentInputTokensPerModelPerMinute-FreeTier"]
     and "26.0 s" in j["reason"]' \
    "$fix/429-tpm-freetier-flash.json"

expect "429 pro no RetryInfo" 0 \
    'j["dims"] == ["tpm"] and j["learned"] == {"tpm": 125000}
     and j["cooldown_from"] == "backoff" and j["cooldown_s"] > 0' \
    "$fix/429-tpm-freetier-pro-no-retryinfo.json"

expect "429 tokens per day" 0 \
    'j["class"] == "quota" and j["dims"] == ["tpd"]
     and j["cooldown_from"] == "midnight" and j["cooldown_s"] > 41
     and j["learned"] == {"tpd": 1000000}
     and j["quota_ids"] == ["GenerateContentInputTokensPerModelPerDay-FreeTier"]
     and "input tokens per day" in j["reason"]' \
    "$fix/429-tpd-freetier-gemma.json"

expect "429 bare" 0 \
    'j["class"] == "quota" and j["dims"] == [] and j["learned"] == {}
     and j["cooldown_from"] == "backoff" and j["disable"] == "none"' \
    "$fix/429-bare-no-details.json"

expect "400 key invalid" 0 \
    'j["status"] == 400 and j["class"] == "auth" and j["disable"] == "key"
     and j["retryable"] is True and "API_KEY_INVALID" in j["reason"]' \
    "$fix/400-api-key-invalid.json"

expect "403 leaked" 0 \
    'j["class"] == "auth" and j["disable"] == "key"' \
    "$fix/403-leaked-key.json"

expect "404 model" 0 \
    'j["class"] == "model" and j["disable"] == "cell" and j["retryable"]' \
    "$fix/404-model-not-found.json"

expect "500" 0 \
    'j["class"] == "server" and j["disable"] == "none" and j["retryable"]' \
    "$fix/500-internal.json"

expect "503" 0 \
    'j["class"] == "overload" and j["status"] == 503' \
    "$fix/503-overloaded.json"

expect "200 generate" 0 \
    'j["status"] == 200 and j["class"] == "ok" and not j["retryable"]
     and j["cooldown_s"] == 0 and j["cooldown_from"] == "none"' \
    "$fix/200-generate-content.json"

expect "200 SSE stream" 0 \
    'j["status"] == 200 and j["class"] == "ok"' \
    "$fix/200-stream-sse-thinking.txt"

# The same answer wrapped in an array, from stdin.
{ printf '['; cat "$fix/429-tpm-freetier-flash.json"; printf ']'; } \
    >"$tmp/wrapped.json"
expect "array-wrapped via stdin" 0 \
    'j["status"] == 429 and j["dims"] == ["tpm"] and j["cooldown_s"] == 26.0' \
    - <"$tmp/wrapped.json"

# Minute and day together: the day wins, until Pacific midnight.
# --now 2026-07-15T20:00:00Z is 13:00 PDT: 11 h to go.
cat >"$tmp/day.json" <<'J'
{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"},
  {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
    {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"},
    {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "250"}]}]}}
J
now=$(python3 -c 'import calendar; print(calendar.timegm((2026,7,15,20,0,0)))')
expect "minute + day" 0 \
    'j["dims"] == ["rpm", "rpd"] and j["cooldown_s"] == 39600.0
     and j["cooldown_from"] == "midnight"
     and j["learned"] == {"rpm": 10, "rpd": 250} and len(j["quota_ids"]) == 2' \
    --now "$now" "$tmp/day.json"

# The late-2025 message: limit 0 disables the cell; "Please retry in".
cat >"$tmp/limit0.json" <<'J'
{"error": {"code": 429, "message": "You exceeded your current quota.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro\nPlease retry in 850ms.", "status": "RESOURCE_EXHAUSTED"}}
J
expect "limit 0" 0 \
    'j["disable"] == "cell" and j["dims"] == ["rpm"]
     and j["cooldown_from"] == "message" and j["cooldown_s"] == 0.85' \
    "$tmp/limit0.json"

# Older ErrorInfo form.
cat >"$tmp/errorinfo.json" <<'J'
{"error": {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "metadata": {"quota_limit": "GenerateRequestsPerMinutePerProjectPerModel", "quota_limit_value": "15", "quota_metric": "generativelanguage.googleapis.com/generate_requests_per_model"}}]}}
J
expect "ErrorInfo RATE_LIMIT_EXCEEDED" 0 \
    'j["dims"] == ["rpm"] and j["learned"] == {"rpm": 15}
     and j["quota_ids"] == ["GenerateRequestsPerMinutePerProjectPerModel"]' \
    "$tmp/errorinfo.json"

# Output stays valid JSON with quotes, control bytes and bad UTF-8.
printf '{"error": {"code": 400, "message": "bad \\"q\\" \\\\ \\u0001 \\t \377\376 caf\303\251", "status": "INVALID_ARGUMENT"}}' \
    >"$tmp/nasty.json"
expect "escaping" 0 \
    'j["class"] == "request" and not j["retryable"] and "caf\u00e9" in j["reason"]' \
    "$tmp/nasty.json"

# Not JSON: the status must be given.
printf 'upstream connect error' >"$tmp/garbage.txt"
expect "garbage, no status" 1 "" "$tmp/garbage.txt"
grep -q -- "--status" "$tmp/err" && ok || bad "garbage: stderr names --status"
expect "garbage, --status 502" 0 \
    'j["class"] == "server" and j["status"] == 502' --status 502 "$tmp/garbage.txt"
expect "garbage, --status=429" 0 \
    'j["class"] == "quota" and j["dims"] == []' --status=429 "$tmp/garbage.txt"
: >"$tmp/empty"
expect "empty, --status 0" 0 \
    'j["class"] == "server" and j["status"] == 0 and "no answer" in j["reason"]' \
    --status 0 "$tmp/empty"
expect "--status overrides the body" 0 \
    'j["status"] == 503 and j["class"] == "overload"' \
    --status 503 "$fix/429-bare-no-details.json"

# Usage errors and missing files.
expect "no file" 2 ""
expect "two files" 2 "" a b
expect "bad status" 2 "" --status abc "$tmp/empty"
expect "status out of range" 2 "" --status 1000 "$tmp/empty"
expect "bad option" 2 "" --bogus "$tmp/empty"
expect "missing file" 1 "" "$tmp/does-not-exist"
expect "--help" 0 "" --help

"$gr" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "usage" "$tmp/err" && ok || bad "no command: exit 2 + usage"
"$gr" frobnicate >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "unknown command" "$tmp/err" && ok ||
    bad "unknown command: exit 2"
"$gr" help >"$tmp/out" 2>/dev/null
[ $? -eq 0 ] && grep -q "explain" "$tmp/out" && ok || bad "help lists explain"

echo "explain: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
