#!/bin/sh
# deps.sh - make sure the Debian packages gemroute builds and tests with are
# installed.  As root it installs what is missing with apt-get; otherwise it
# prints the one command to run.  Extra package names may be passed as
# arguments (the benchmarks ask for redis-server, gnuplot, ...).
set -eu

# pkg-config module -> Debian package that provides it
need="libconfig:libconfig-dev json-c:libjson-c-dev libcurl:libcurl4-openssl-dev
cunit:libcunit1-dev libmicrohttpd:libmicrohttpd-dev lmdb:liblmdb-dev
hiredis:libhiredis-dev openssl:libssl-dev"
missing=""
command -v pkg-config >/dev/null 2>&1 || missing="pkg-config"
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v make >/dev/null 2>&1 || missing="$missing make"
# the script tests read JSON with python3
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
# the router links hiredis; tests/cluster runs a real redis-server
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
# tests/cluster/run_cluster_tls.sh makes a throwaway CA with openssl
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# the router reads the Pacific day from the tz database (router/tzday.c)
[ -e /usr/share/zoneinfo/America/Los_Angeles ] || missing="$missing tzdata"
# tests/install checks every man page with mandoc -T lint
command -v mandoc >/dev/null 2>&1 || missing="$missing mandoc"
for pair in $need; do
    mod=${pair%%:*}
    pkg=${pair#*:}
    if ! command -v pkg-config >/dev/null 2>&1 ||
       ! pkg-config --exists "$mod" 2>/dev/null; then
        missing="$missing $pkg"
    fi
done
for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
else
    echo "deps: missing Debian packages; run:" >&2
    echo "    sudo apt-get install -y$missing" >&2
    exit 1
fi
