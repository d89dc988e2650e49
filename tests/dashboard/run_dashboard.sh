#!/bin/sh
# run_dashboard.sh - the dashboard at /gemroute/ of bin/gemroute-gateway,
# end to end: the mock (one project's true limit lower than configured,
# so Google's 429s cool it), a router with a private table, two gateways
# on that table and a load (bin/gemroute load).  curl checks the JSON
# endpoints and the auth rules (Bearer, login, signed cookie, CSRF
# token, Origin); then Debian's chromium, driven headless by
# playwright-core (tests/package.json; tests/dashboard/browser.js), opens
# the page and checks what an operator sees and does.  Without chromium
# or playwright-core the browser part says so and is skipped.  Polls with
# bounded retries, never timed assertions.  Screenshots go to the test's
# temporary directory (KEEP=1 keeps it); GR_DASH_SCREENSHOT=FILE copies
# the one taken under load there.  Ends with "N passed, N failed".
#
#   BIN=bin tests/dashboard/run_dashboard.sh
set -u
# port_of and start_mock (its own check and finish are defined below)
. "$(dirname "$0")/../lib.sh"
root=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-dash.XXXXXX")
shm="/gr-dash-$$"
mock_pid=
router_pid=
gw_pid=
gw2_pid=
gw3_pid=
load_pid=
passed=0
failed=0
KEY1=gr-dash-SECRET-alpha-1a2b
KEY2=gr-dash-SECRET-bravo-3c4d
KEY3=gr-dash-SECRET-charlie-5e6f
export GR_DASH_TOKEN=dash-token-SECRET-0a0a0a0a
export GR_DASH_ADMIN=dash-admin-SECRET-7b7b7b7b
MODEL=gemini-2.5-flash

cleanup() {
    for p in $load_pid $gw3_pid $gw2_pid $gw_pid $router_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }
check() {
    name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
has() { grep -q -- "$2" "$tmp/$1"; }
hasnt() { ! grep -q -- "$2" "$tmp/$1"; }

umask 077
# charlie's true limit is 3 a minute: the router, told 30, meets 429s.
cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
window_ms = 60000;
projects = (
  { name = "alpha"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = 1000; tpm = 10000000; } ); },
  { name = "bravo"; keys = ["$KEY2"];
    limits = ( { model = "$MODEL"; rpm = 1000; tpm = 10000000; } ); },
  { name = "charlie"; keys = ["$KEY3"];
    limits = ( { model = "$MODEL"; rpm = 3; tpm = 10000000; } ); }
);
MOCK
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { bad "gemroute-mock did not start"; finish; }

# conf FILE ADMIN_LINE
conf() {
    cat >"$1" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           window_ms = 60000; headroom = 1.0; max_models = 4; };
models = ( { name = "$MODEL"; rpm = 30; tpm = 1000000; rpd = 5000; } );
projects = ( { name = "alpha"; key = "$KEY1"; },
             { name = "bravo"; key = "$KEY2"; },
             { name = "charlie"; key = "$KEY3"; } );
gateway = {
  listen = "127.0.0.1:0";
  tokens = [ "env:GR_DASH_TOKEN" ];$2
};
CONF
}
conf "$tmp/gw.conf" '
  admin_tokens = [ "env:GR_DASH_ADMIN" ];'
conf "$tmp/noadmin.conf" ''
"$BIN/gemrouted" -c "$tmp/gw.conf" --foreground --unlink-on-exit \
    2>"$tmp/router.log" &
router_pid=$!
i=0
until "$BIN/gemroute" status --shm "$shm" --json 2>/dev/null |
      grep -q '"config_generation": [1-9]'; do
    i=$((i + 1))
    [ $i -gt 400 ] && { bad "gemrouted did not start"; finish; }
    sleep 0.02
done
start_gw() {    # conf out log -> pid in $gw_started
    "$BIN/gemroute-gateway" -c "$1" --foreground >"$2" 2>"$3" &
    gw_started=$!
}
start_gw "$tmp/gw.conf" "$tmp/gw.out" "$tmp/gw.log"
gw_pid=$gw_started
port=$(port_of "$tmp/gw.out")
[ -n "$port" ] || { bad "gemroute-gateway did not start"; finish; }
base="http://127.0.0.1:$port"

# c NAME [curl args]: status in NAME.code, body NAME.body, headers NAME.hdr
c() {
    name=$1
    shift
    curl -s -o "$tmp/$name.body" -D "$tmp/$name.hdr" -w '%{http_code}' \
        "$@" >"$tmp/$name.code" 2>"$tmp/$name.err"
}
code() { cat "$tmp/$1.code"; }
bearer="Authorization: Bearer $GR_DASH_ADMIN"
json() {    # NAME PYTHON-EXPR over j: prints the value
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" \
        "$tmp/$1.body" 2>/dev/null
}

# ---- the JSON endpoint and the auth rules (curl) -------------------------
c noauth "$base/gemroute/api/state"
check "api/state without a token: 401" test "$(code noauth)" = 401
c usertoken -H "Authorization: Bearer $GR_DASH_TOKEN" "$base/gemroute/api/state"
check "api/state with a caller (not admin) token: 401" \
    test "$(code usertoken)" = 401
c wrongbearer -H "Authorization: Bearer dash-admin-wrong-7b7b7b7b" \
    "$base/gemroute/api/state"
check "api/state with a wrong Bearer: 401" test "$(code wrongbearer)" = 401
c state -H "$bearer" "$base/gemroute/api/state"
check "api/state with the admin Bearer: 200" test "$(code state)" = 200
check "api/state is JSON with version 1" \
    test "$(json state "j['version']")" = 1
check "api/state lists the three projects" \
    test "$(json state "','.join(sorted(p['name'] for p in j['projects']))")" \
    = "alpha,bravo,charlie"
check "api/state: three cells with rpm limit 30, rpd 5000" \
    test "$(json state "sorted(set((c['limit'][0], c['limit'][2]) for c in j['cells']))")" \
    = "[(30, 5000)]"
check "api/state: keys only as their last four characters" \
    test "$(json state "all(len(c['key']) == 7 and c['key'].startswith('...') for c in j['cells'] + j['projects'])")" = True
check "api/state holds no key" hasnt state.body SECRET
check "api/state: the pool of $MODEL with capacity 90 rpm" \
    test "$(json state "j['models'][0]['capacity'][0]")" = 90
check "api/state: no-store" grep -qi '^Cache-Control: no-store' "$tmp/state.hdr"
c page_noauth "$base/gemroute/"
check "the page without a token: the login form" has page_noauth.body 'name="token"'
check "the login form holds no dashboard" hasnt page_noauth.body 'csrf-token'
check "CSP: scripts from the gateway only" \
    grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self'" \
    "$tmp/page_noauth.hdr"
check "X-Frame-Options: DENY" grep -qi '^X-Frame-Options: DENY' \
    "$tmp/page_noauth.hdr"
c redirect "$base/gemroute"
check "/gemroute redirects to /gemroute/" test "$(code redirect)" = 308
c js "$base/gemroute/app.js"
check "app.js embedded" has js.body 'api/state'
# The only URL in the assets is SVG's namespace name (never fetched).
grep -Eoh "https?://[^ \"';]*" gateway/assets/* | sort -u >"$tmp/urls"
check "the page loads nothing from elsewhere" \
    test "$(cat "$tmp/urls")" = "http://www.w3.org/2000/svg"
c history -H "$bearer" "$base/gemroute/api/history"
check "api/history: 200" test "$(code history)" = 200
check "api/history: a sample per cell already" \
    test "$(json history "j['samples'] >= 1 and len(j['cells']) == 3")" = True

# Login: a wrong token is refused and sets nothing; the right one sets a
# signed session cookie.
c badlogin -d "token=dash-admin-wrong-7b7b7b7b" "$base/gemroute/login"
check "login with a wrong token: 401" test "$(code badlogin)" = 401
check "login with a wrong token sets no cookie" \
    sh -c "! grep -qi '^Set-Cookie' '$tmp/badlogin.hdr'"
check "login with a wrong token says so" has badlogin.body 'not an admin token'
c crosslogin -H "Origin: http://evil.example" \
    --data-urlencode "token=$GR_DASH_ADMIN" "$base/gemroute/login"
check "login from another origin: 403" test "$(code crosslogin)" = 403
c login --data-urlencode "token=$GR_DASH_ADMIN" "$base/gemroute/login"
check "login: 303 to the page" test "$(code login)" = 303
cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: \(gr_session=[^;]*\);.*/\1/p' \
         "$tmp/login.hdr" | tr -d '\r')
check "login sets gr_session" test -n "$cookie"
check "the cookie is HttpOnly, SameSite=Strict, Path=/gemroute/, with an expiry" \
    grep -qi '^Set-Cookie: gr_session=.*; Path=/gemroute/; Max-Age=[1-9][0-9]*; HttpOnly; SameSite=Strict' \
    "$tmp/login.hdr"
c page -H "Cookie: $cookie" "$base/gemroute/"
check "the page with the cookie: the dashboard" has page.body 'id="cells"'
csrf=$(sed -n 's/.*name="csrf-token" content="\([0-9a-f]*\)".*/\1/p' \
       "$tmp/page.body")
check "the page carries a CSRF token" test "${#csrf}" = 32
c cstate -H "Cookie: $cookie" "$base/gemroute/api/state"
check "api/state with the cookie: 200" test "$(code cstate)" = 200
tampered=$(echo "$cookie" | sed 's/.$/A/; t; s/$//')
[ "$tampered" = "$cookie" ] && tampered=$(echo "$cookie" | sed 's/.$/B/')
c tamper -H "Cookie: $tampered" "$base/gemroute/api/state"
check "a tampered cookie: 401" test "$(code tamper)" = 401
act="action=enable&target=bravo"
c nocsrf -H "Cookie: $cookie" -d "$act" "$base/gemroute/api/action"
check "POST with the cookie but no CSRF token: 403" test "$(code nocsrf)" = 403
c badcsrf -H "Cookie: $cookie" -H "x-csrf-token: 0123456789abcdef0123456789abcdef" \
    -d "$act" "$base/gemroute/api/action"
check "POST with a wrong CSRF token: 403" test "$(code badcsrf)" = 403
c xorigin -H "Cookie: $cookie" -H "x-csrf-token: $csrf" \
    -H "Origin: http://evil.example" -d "$act" "$base/gemroute/api/action"
check "POST with the CSRF token from another origin: 403" \
    test "$(code xorigin)" = 403
c xsite -H "Cookie: $cookie" -H "x-csrf-token: $csrf" \
    -H "Sec-Fetch-Site: cross-site" -d "$act" "$base/gemroute/api/action"
check "POST with Sec-Fetch-Site: cross-site: 403" test "$(code xsite)" = 403
c goodcsrf -H "Cookie: $cookie" -H "x-csrf-token: $csrf" \
    -H "Origin: http://127.0.0.1:$port" -d "$act" "$base/gemroute/api/action"
check "POST with the CSRF token and the page's origin: 200" \
    test "$(code goodcsrf)" = 200
check "the router's answer is handed back" has goodcsrf.body '"ok": true'
c badact -H "$bearer" -d "action=explode&target=bravo" "$base/gemroute/api/action"
check "an unknown action: 400" test "$(code badact)" = 400
c nlact -H "$bearer" --data "action=drain&target=bravo%0Adisable%20alpha" \
    "$base/gemroute/api/action"
check "a target with a newline: 400 (one command only)" test "$(code nlact)" = 400
c noproj -H "$bearer" -d "action=drain&target=nosuch" "$base/gemroute/api/action"
check "no such project: 409 with the router's reason" \
    sh -c "[ \"\$(cat '$tmp/noproj.code')\" = 409 ] && grep -q nosuch '$tmp/noproj.body'"
c reset -H "$bearer" -d "action=reset&target=charlie/$MODEL&dim=rpm" \
    "$base/gemroute/api/action"
check "reset of a cell's dimension with the Bearer: 200" test "$(code reset)" = 200
i=0
until grep -q "control: enable bravo by uid [0-9]* pid [0-9]* for dashboard:admin#0" \
      "$tmp/router.log" || [ $i -gt 200 ]; do
    i=$((i + 1)); sleep 0.05
done
check "the router logs the action with who asked" \
    grep -q "control: enable bravo by uid [0-9]* pid [0-9]* for dashboard:admin#0" \
    "$tmp/router.log"

# No admin token configured: no page at all.
start_gw "$tmp/noadmin.conf" "$tmp/gw3.out" "$tmp/gw3.log"
gw3_pid=$gw_started
port3=$(port_of "$tmp/gw3.out")
c noadmin "http://127.0.0.1:$port3/gemroute/"
check "no admin_tokens: /gemroute/ is 404" test "$(code noadmin)" = 404
c noadmin_state -H "$bearer" "http://127.0.0.1:$port3/gemroute/api/state"
check "no admin_tokens: api/state is 404" test "$(code noadmin_state)" = 404
kill "$gw3_pid" 2>/dev/null
wait "$gw3_pid" 2>/dev/null
gw3_pid=

# ---- under load ----------------------------------------------------------
"$BIN/gemroute" load --shm "$shm" --procs 2 --rate 6 --duration 300 \
    --model "$MODEL" --deadline 2 >"$tmp/load.out" 2>"$tmp/load.err" &
load_pid=$!

# The history is the router's: another gateway process, and one started
# after the first stopped, serve the same samples.
i=0
while [ $i -lt 300 ]; do
    c h1 -H "$bearer" "$base/gemroute/api/history"
    [ "$(json h1 "j['samples']")" -ge 2 ] 2>/dev/null && break
    i=$((i + 1)); sleep 0.1
done
check "history grows (2 samples)" test "$(json h1 "j['samples']")" -ge 2
start_gw "$tmp/gw.conf" "$tmp/gw2.out" "$tmp/gw2.log"
gw2_pid=$gw_started
port2=$(port_of "$tmp/gw2.out")
c h2 -H "$bearer" "http://127.0.0.1:$port2/gemroute/api/history"
check "a second gateway process serves the same history" \
    test "$(json h1 "j['t_ms'][0]")" = "$(json h2 "j['t_ms'][0]")"
kill "$gw_pid" 2>/dev/null
wait "$gw_pid" 2>/dev/null
start_gw "$tmp/gw.conf" "$tmp/gw.out" "$tmp/gw.log2"
gw_pid=$gw_started
port=$(port_of "$tmp/gw.out")
base="http://127.0.0.1:$port"
c h3 -H "$bearer" "$base/gemroute/api/history"
check "a restarted gateway lost no history" \
    test "$(json h1 "j['t_ms'][0]")" = "$(json h3 "j['t_ms'][0]")"
# The old session still works on the new process: the cookie is signed.
c cookie2 -H "Cookie: $cookie" "$base/gemroute/api/state"
check "the session survives a gateway restart" test "$(code cookie2)" = 200

# ---- in the browser --------------------------------------------------------
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] && command -v chromium >/dev/null 2>&1; then
    chromium=$(command -v chromium)
fi
[ -x "$chromium" ] || tools/deps.sh chromium >/dev/null 2>&1 || true
if [ ! -x "$chromium" ]; then
    echo "SKIP: the browser checks: no chromium (Debian's 'chromium'; tools/deps.sh chromium installs it)"
elif ! command -v node >/dev/null 2>&1; then
    echo "SKIP: the browser checks: no node (Debian's 'nodejs')"
elif [ ! -d tests/node_modules/playwright-core ] &&
     ! (cd tests && npm ci --no-audit --no-fund --silent >/dev/null 2>&1); then
    echo "SKIP: the browser checks: playwright-core could not be installed (npm ci in tests/)"
else
    GR_DASH_BASE="$base" GR_DASH_SHM="$shm" GR_DASH_BIN="$BIN" \
    GR_DASH_OUT="$tmp" CHROMIUM="$chromium" \
        node tests/dashboard/browser.js >"$tmp/browser.out" 2>"$tmp/browser.err"
    brc=$?
    grep -v SECRET "$tmp/browser.out"
    grep -v SECRET "$tmp/browser.err" | head -20 >&2
    np=$(grep -c '^PASS: ' "$tmp/browser.out")
    nf=$(grep -c '^FAIL: ' "$tmp/browser.out")
    passed=$((passed + np))
    failed=$((failed + nf))
    [ "$brc" -eq 0 ] || [ "$nf" -gt 0 ] || bad "browser.js exited $brc"
    check "the browser checks ran (at least 15)" test "$np" -ge 15
    if [ -n "${GR_DASH_SCREENSHOT:-}" ] && [ -f "$tmp/dashboard-load.png" ]; then
        cp "$tmp/dashboard-load.png" "$GR_DASH_SCREENSHOT"
    fi
fi

# ---- secrets ---------------------------------------------------------------
check "no token or key in the gateways' logs" \
    sh -c "! cat '$tmp'/gw*.log* | grep -q SECRET"
check "no token or key in the router's log" hasnt router.log SECRET
finish
