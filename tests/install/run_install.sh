#!/bin/sh
# run_install.sh - `make install` and `make uninstall` into a temporary
# DESTDIR, as a Debian package build would (PREFIX=/usr).  Checks that
# every file lands where Debian expects it; that examples/hello.c builds
# against the install with pkg-config (shared, and static from
# Libs.private) and runs into the library; that the installed library
# exports exactly the API include/gemroute.h declares; that every man page
# is clean under `mandoc -T lint`; that the units pass `systemd-analyze
# verify` and carry the hardening; that the installed example config is
# valid and lets the group gemroute attach; that the Grafana dashboard
# reads only metrics docs/OPERATIONS.md lists, and all of them; that a
# second install keeps a changed config and uninstall keeps it too; and
# that uninstall leaves nothing else behind.
# Ends with "N passed, N failed" for tests/run.sh.
#
#   BUILD=build/default BIN=bin tests/install/run_install.sh
set -u
BIN=${BIN:-bin}
BUILD=${BUILD:-build/default}
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
d="$tmp/root"
names="python3 tests/install/api_names.py"

# This runs under `make test`: the make below is a new one, not a sub-make
# of that one (its jobserver is not ours).  A sanitized build installs
# its own objects, and programs linking them need the sanitizer too.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
san=
case "$BUILD" in
build/default) ;;
build/*) san=$(echo "${BUILD#build/}" | tr - ,) ;;
esac
mk() {
    make --no-print-directory ${san:+SANITIZE=$san} PREFIX=/usr "$@"
}
hello_cflags="-std=c11 -Wall -Werror ${san:+-fsanitize=$san}"

# ---- install ------------------------------------------------------------
mk install DESTDIR="$d" >"$tmp/install.log" 2>&1
check "make install: $(tail -n 5 "$tmp/install.log")" '[ $? -eq 0 ]'
for f in usr/bin/gemroute usr/sbin/gemrouted; do
    check "$f installed, executable" '[ -x "$d/$f" ] && [ -f "$d/$f" ]'
done
for f in usr/lib/libgemroute.so.1 usr/lib/libgemroute.a \
    usr/include/gemroute.h usr/include/gemroute_stat.h \
    usr/lib/pkgconfig/gemroute.pc \
    usr/share/man/man1/gemroute.1 usr/share/man/man3/libgemroute.3 \
    usr/share/man/man5/gemroute.conf.5 usr/share/man/man8/gemrouted.8 \
    usr/share/man/man8/gemroute-gateway.8 \
    usr/lib/systemd/system/gemrouted.service \
    usr/lib/sysusers.d/gemroute.conf \
    usr/share/gemroute/grafana-dashboard.json \
    etc/gemroute/gemroute.conf etc/gemroute/tiers-2025.conf; do
    check "$f installed" '[ -f "$d/$f" ] && [ -s "$d/$f" ]'
done
check "usr/lib/libgemroute.so -> libgemroute.so.1" \
    '[ "$(readlink "$d/usr/lib/libgemroute.so")" = libgemroute.so.1 ]'
check "the header is the tree's" 'cmp -s include/gemroute.h "$d/usr/include/gemroute.h"'
if [ -x "$BIN/gemroute-gateway" ]; then
    check "the gateway installed with its unit" \
        '[ -x "$d/usr/sbin/gemroute-gateway" ] &&
         [ -f "$d/usr/lib/systemd/system/gemroute-gateway.service" ]'
else
    echo "note: $BIN/gemroute-gateway not built: neither it nor its unit installed"
    check "no gateway installed without its program" \
        '[ ! -e "$d/usr/sbin/gemroute-gateway" ] &&
         [ ! -e "$d/usr/lib/systemd/system/gemroute-gateway.service" ]'
fi

# ---- pkg-config and examples/hello.c -------------------------------------
pc() {
    PKG_CONFIG_PATH="$d/usr/lib/pkgconfig" PKG_CONFIG_LIBDIR= \
        PKG_CONFIG_SYSROOT_DIR="$d" pkg-config "$@" gemroute
}
check "pkg-config knows gemroute $(pc --modversion 2>&1)" 'pc --exists'
grep -q '^prefix=/usr$' "$d/usr/lib/pkgconfig/gemroute.pc"
check "gemroute.pc: prefix=/usr" '[ $? -eq 0 ]'
check "gemroute.pc: no @VARIABLE@ left" \
    '! grep -q "@[A-Z]*@" "$d/usr/lib/pkgconfig/gemroute.pc"'
# shellcheck disable=SC2046,SC2086
cc $hello_cflags $(pc --cflags) examples/hello.c $(pc --libs) \
    -o "$tmp/hello" >"$tmp/cc.log" 2>&1
check "hello.c builds with pkg-config: $(head -c 600 "$tmp/cc.log")" \
    '[ $? -eq 0 ] && [ -x "$tmp/hello" ]'
readelf -d "$tmp/hello" 2>/dev/null | grep NEEDED >"$tmp/needed"
check "hello needs libgemroute.so.1 (the soname)" \
    'grep -q "\[libgemroute.so.1\]" "$tmp/needed"'
# Run it against a table that does not exist: gr_open, inside the
# installed library, says so and hello exits 1.
LD_LIBRARY_PATH="$d/usr/lib" GEMROUTE_SHM="/gr-install-none-$$" \
    "$tmp/hello" "hi" >"$tmp/hello.out" 2>"$tmp/hello.err"
rc=$?
check "hello runs into the installed library (exit $rc: \
$(head -c 300 "$tmp/hello.err"))" \
    '[ $rc -eq 1 ] && grep -q "gr-install-none-$$" "$tmp/hello.err"'
LD_LIBRARY_PATH="$d/usr/lib" LD_DEBUG=libs "$tmp/hello" 2>&1 |
    grep -q "calling init: $d/usr/lib/libgemroute.so.1"
check "hello loaded the installed libgemroute.so.1" '[ $? -eq 0 ]'
# Static: the archive with what Libs.private lists.
# shellcheck disable=SC2046,SC2086
cc $hello_cflags $(pc --cflags) examples/hello.c \
    $(pc --static --libs | sed 's/-lgemroute/-l:libgemroute.a/') \
    -o "$tmp/hello-static" >"$tmp/cc2.log" 2>&1
check "hello.c links statically with Libs.private: \
$(head -c 600 "$tmp/cc2.log")" '[ $? -eq 0 ]'
check "the static hello does not need libgemroute.so" \
    '! readelf -d "$tmp/hello-static" | grep -q libgemroute'

# ---- the installed library exports exactly the API ----------------------
$names header include/gemroute.h include/gemroute_stat.h >"$tmp/api" 2>/dev/null
nm -D --defined-only "$d/usr/lib/libgemroute.so.1" |
    awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort >"$tmp/exported"
diff "$tmp/api" "$tmp/exported" >"$tmp/api.diff"
check "installed library exports the header's functions, no other \
(< header only, > exported only): $(cat "$tmp/api.diff")" \
    '[ -s "$tmp/api" ] && [ ! -s "$tmp/api.diff" ]'

# ---- man pages ----------------------------------------------------------
if command -v mandoc >/dev/null 2>&1; then
    # Every message counts, style included, but one: a reference to one of
    # our own pages, which mandoc looks up in the system's manuals (where
    # they are not, yet).  Those references must name an installed page.
    ours='gemroute 1|libgemroute 3|gemroute\.conf 5|gemrouted 8|gemroute-gateway 8'
    for p in "$d"/usr/share/man/man*/*; do
        mandoc -T lint "$p" 2>&1 |
            grep -vE "STYLE: referenced manual not found: Xr ($ours)( \(|$)" \
            >"$tmp/lint"
        check "mandoc -T lint ${p#"$d"/}: $(cat "$tmp/lint")" \
            '[ ! -s "$tmp/lint" ]'
    done
    # The checker can fail: a page with a mistake.
    printf '.Dd x\n.Dt BAD 1\n.Sh NAME\n.Xr\n' >"$tmp/bad.1"
    check "mandoc -T lint notices a broken page" \
        '[ -n "$(mandoc -T lint "$tmp/bad.1" 2>&1)" ]'
else
    echo "note: mandoc not installed: man pages not linted"
fi
# Each cross reference names one of the pages installed.
sed -n 's/^\.Xr \([^ ]*\) \([0-9]\).*/\1.\2/p' "$d"/usr/share/man/man*/* |
    sort -u | while read -r x; do
    [ -f "$d/usr/share/man/man${x##*.}/$x" ] || echo "$x"
done >"$tmp/xr"
check "every .Xr names an installed page: $(cat "$tmp/xr")" '[ ! -s "$tmp/xr" ]'
# libgemroute(3) documents every function of the header.
for f in $(cat "$tmp/api"); do
    grep -q "^\.Fn $f " "$d/usr/share/man/man3/libgemroute.3" ||
        no "libgemroute(3) has no .Fn $f in its SYNOPSIS"
done
ok

# ---- systemd units --------------------------------------------------------
u="$d/usr/lib/systemd/system/gemrouted.service"
check "units: no @VARIABLE@ left" '! grep -q "@[A-Z]*@" "$d"/usr/lib/systemd/system/*'
for want in 'User=gemroute' 'Group=gemroute' 'RuntimeDirectory=gemroute' \
    'StateDirectory=gemroute' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
    'PrivateTmp=yes' 'ProtectHome=yes' 'RemoveIPC=no' 'CapabilityBoundingSet=' \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    'ExecStart=/usr/sbin/gemrouted -c /etc/gemroute/gemroute.conf --foreground'
do
    check "gemrouted.service: $want" 'grep -qxF "$want" "$u"'
done
# ~@privileged would hold fchown(2): the router could not give the table
# to its group.
check "gemrouted.service lets the router fchown the table" \
    '! grep -q "^SystemCallFilter=~.*@privileged" "$u"'
check "sysusers.d creates the user gemroute" \
    'grep -q "^u *gemroute " "$d/usr/lib/sysusers.d/gemroute.conf"'
# The gateway's unit: the installed one, else the template made with the
# same substitutions as make install, for a stub program.
gu="$d/usr/lib/systemd/system/gemroute-gateway.service"
if [ ! -f "$gu" ]; then
    mkdir -p "$tmp/stub/usr/sbin"
    printf '#!/bin/sh\nexit 0\n' >"$tmp/stub/usr/sbin/gemroute-gateway"
    chmod 755 "$tmp/stub/usr/sbin/gemroute-gateway"
    sed -e 's|@SBINDIR@|/usr/sbin|g' -e 's|@SYSCONFDIR@|/etc|g' \
        packaging/gemroute-gateway.service.in >"$tmp/stub/gw.service"
    gu="$tmp/stub/gw.service"
fi
for want in 'User=gemroute' 'Group=gemroute' 'ProtectSystem=strict' \
    'NoNewPrivileges=yes' 'PrivateTmp=yes' 'RemoveIPC=no' \
    'After=gemrouted.service network-online.target' \
    'ExecStart=/usr/sbin/gemroute-gateway -c /etc/gemroute/gemroute.conf --foreground'
do
    check "gemroute-gateway.service: $want" 'grep -qxF "$want" "$gu"'
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that each program exists: point the paths into DESTDIR
    # (or the stub), and read the documentation links as given.
    mkdir -p "$tmp/units"
    sed "s|/usr/sbin/|$d/usr/sbin/|g" "$u" >"$tmp/units/gemrouted.service"
    case "$gu" in
    "$d"/*) sed "s|/usr/sbin/|$d/usr/sbin/|g" "$gu" ;;
    *) sed "s|/usr/sbin/|$tmp/stub/usr/sbin/|g" "$gu" ;;
    esac >"$tmp/units/gemroute-gateway.service"
    for f in "$tmp"/units/*.service; do
        systemd-analyze verify --man=no "$f" >"$tmp/verify" 2>&1
        rc=$?
        check "systemd-analyze verify $(basename "$f") (exit $rc): \
$(head -c 600 "$tmp/verify")" '[ $rc -eq 0 ] && [ ! -s "$tmp/verify" ]'
    done
    # The checker can fail: an unknown directive.
    sed 's/^UMask=/ProtectEverything=yes\nUMask=/' \
        "$tmp/units/gemrouted.service" >"$tmp/bad.service"
    check "systemd-analyze verify notices a bad directive" \
        '[ -n "$(systemd-analyze verify --man=no "$tmp/bad.service" 2>&1)" ]'
else
    echo "note: systemd-analyze not installed: units not verified"
fi

# ---- the installed example config ------------------------------------------
c="$d/etc/gemroute/gemroute.conf"
check "example config: mode 0660" 'grep -q "^ *mode = \"0660\";" "$c"'
check "example config: group gemroute" 'grep -q "^ *group = \"gemroute\";" "$c"'
GEMINI_KEY_1=gr-install-SECRET-one GEMINI_KEY_2=gr-install-SECRET-two \
    "$d/usr/sbin/gemrouted" --check -c "$c" >"$tmp/check.out" 2>&1
check "gemrouted --check accepts the installed config: \
$(head -c 600 "$tmp/check.out")" '[ $? -eq 0 ]'

# ---- the Grafana dashboard --------------------------------------------------
python3 - "$d/usr/share/gemroute/grafana-dashboard.json" docs/OPERATIONS.md \
    tests/golden/status.prom >"$tmp/dash" 2>&1 <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
doc = open(sys.argv[2]).read()
table = doc[doc.index("## Prometheus"):]
listed = set(re.findall(r"`(gemroute_[a-z0-9_]+)`", table))
golden = set(re.findall(r"^(gemroute_[a-z0-9_]+)", open(sys.argv[3]).read(),
                        flags=re.M))
used, n = set(), 0
def walk(panels):
    global n
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            n += 1
            used.update(re.findall(r"\bgemroute_[a-z0-9_]+", t["expr"]))
walk(dash["panels"])
assert n >= 10, "too few queries: %d" % n
assert used - listed == set(), "not in OPERATIONS.md: %s" % (used - listed)
assert used - golden == set(), "not exported: %s" % (used - golden)
assert listed - used == set(), "no panel shows: %s" % (listed - used)
PY
check "dashboard: $(cat "$tmp/dash")" '[ $? -eq 0 ] && [ ! -s "$tmp/dash" ]'

# ---- uninstall --------------------------------------------------------------
mk uninstall DESTDIR="$d" >"$tmp/uninstall.log" 2>&1
check "make uninstall: $(tail -n 5 "$tmp/uninstall.log")" '[ $? -eq 0 ]'
find "$d" \( -type f -o -type l \) >"$tmp/left"
check "uninstall leaves no file behind: $(head -n 10 "$tmp/left")" \
    '[ ! -s "$tmp/left" ]'
check "uninstall removes our directories" \
    '[ ! -e "$d/etc/gemroute" ] && [ ! -e "$d/usr/share/gemroute" ]'

# A changed config survives a second install and the uninstall.
d="$tmp/root2"
mk install DESTDIR="$d" >"$tmp/install2.log" 2>&1 &&
    echo '# changed by the operator' >>"$d/etc/gemroute/gemroute.conf" &&
    mk install DESTDIR="$d" >>"$tmp/install2.log" 2>&1
check "install twice: $(tail -n 5 "$tmp/install2.log")" '[ $? -eq 0 ]'
check "a second install keeps a changed config" \
    'grep -q "changed by the operator" "$d/etc/gemroute/gemroute.conf"'
mk uninstall DESTDIR="$d" >"$tmp/uninstall2.log" 2>&1
find "$d" \( -type f -o -type l \) | sed "s|^$d/||" >"$tmp/left2"
check "uninstall keeps only the changed config: $(cat "$tmp/left2")" \
    '[ "$(cat "$tmp/left2")" = etc/gemroute/gemroute.conf ]'
check "uninstall says it kept it" \
    'grep -q "kept .*gemroute.conf" "$tmp/uninstall2.log"'
# The default prefix, /usr/local: the config under /usr/local/etc, and the
# unit names those paths.
d="$tmp/root3"
make --no-print-directory ${san:+SANITIZE=$san} install DESTDIR="$d" \
    >"$tmp/install3.log" 2>&1
check "install with the default prefix: $(tail -n 5 "$tmp/install3.log")" \
    '[ $? -eq 0 ] && [ -f "$d/usr/local/etc/gemroute/gemroute.conf" ] &&
     [ -x "$d/usr/local/sbin/gemrouted" ]'
check "its unit runs /usr/local/sbin/gemrouted with /usr/local/etc" \
    'grep -qxF "ExecStart=/usr/local/sbin/gemrouted -c /usr/local/etc/gemroute/gemroute.conf --foreground" \
        "$d/usr/local/lib/systemd/system/gemrouted.service"'
make --no-print-directory ${san:+SANITIZE=$san} uninstall DESTDIR="$d" \
    >"$tmp/uninstall3.log" 2>&1
check "its uninstall leaves no file: $(find "$d" ! -type d | head -n 5)" \
    '[ -z "$(find "$d" ! -type d)" ]'
finish
