#!/bin/sh
# run_cli_numbers.sh - issue 13, item 17 (deadline): a number given to a
# gemroute option is the whole argument, finite and in range, or the
# command stops with a usage error naming the option, exit 2.  Before,
# `call --deadline nan` fell back to the default deadline and `1e20`
# overflowed its conversion to nanoseconds.  No router is needed: the
# options are checked before the table is opened (a table that does not
# exist gives exit 1, which shows that a good value was taken).
set -u
. "$(dirname "$0")/../lib.sh"

shm="/grtest-nonexistent-$$"

refused() {     # option-name, subcommand and arguments...
    name=$1
    shift
    out=$("$BIN/gemroute" "$@" 2>&1 >/dev/null); rc=$?
    check "item 17: $* -> exit 2 ($rc)" '[ $rc -eq 2 ]'
    check "item 17: $* -> names $name ($out)" \
        'echo "$out" | grep -q -- "$name"'
}
taken() {       # subcommand and arguments...
    out=$("$BIN/gemroute" "$@" 2>&1 >/dev/null); rc=$?
    check "$* is taken: exit 1, no table ($rc: $out)" \
        '[ $rc -eq 1 ] && echo "$out" | grep -q "no such table"'
}

for v in nan NaN inf -inf 1e20 1e300 -1 0 "" " 5" 5x 0x10 86401; do
    refused --deadline call --shm "$shm" --model m --deadline "$v" hello
done
for v in 0 -3 abc 101 9999999999999999999999 1.5; do
    refused --attempts call --shm "$shm" --model m --attempts "$v" hello
done
for v in 0 -1 abc 1e3 100000001; do
    refused --tokens call --shm "$shm" --model m --tokens "$v" hello
done
taken call --shm "$shm" --model m --deadline 2.5 --attempts 3 --tokens 10 hi
taken call --shm "$shm" --model m --deadline 86400 hello

# gemroute load takes seconds and rates as numbers too.
L="load --shm $shm --model m"
for a in "--rate nan --duration 1" "--rate inf --duration 1" \
         "--rate 10 --duration nan" "--rate 10 --duration 1e300" \
         "--rate 10 --duration 1 --deadline nan" \
         "--rate 10 --duration 1 --deadline 1e20" \
         "--rate 10 --duration 1 --deadline -5" \
         "--rate 10 --duration 1 --procs 4x" \
         "--rate 10 --duration 1 --tokens 1.5"; do
    # shellcheck disable=SC2086
    refused "usage: gemroute load" $L $a
done
# shellcheck disable=SC2086
taken $L --rate 10 --duration 1 --deadline 5 --procs 2 --tokens 10

finish
