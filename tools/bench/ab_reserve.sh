#!/bin/sh
# ab_reserve.sh OLD_BIN NEW_BIN: the reserve+commit cost of two builds
# of gemroute side by side in one invocation (each bin/ folder with its
# gemrouted and gr-bench-reserve): a table of 1,000 projects and one
# model for each, with batch leases (batch_calls = 128) and a lease per
# call (1); the routers on CPU 0, the reserving process on CPU 1;
# interleaved repetitions (REPS, default 5) of 1 s, each line the
# harness's JSON and the process's CPU time; with CG=1, instructions per
# reserve+commit from callgrind (the difference of 5,000 and 45,000).
# For a change of the table's layout: build the commit before it in a
# clone, and compare.  Writes to stdout only.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN" >&2; exit 2; }
OLD=$1 NEW=$2
REPS=${REPS:-5}
NP=1000
w=$(mktemp -d /tmp/ab.XXXXXX)
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf $w' EXIT
conf() { # name batch
  {
    echo "router = { shm = \"/ab-$$-$1\"; window_ms = 500; headroom = 0.95;"
    echo "  state_file = \"$1.state\"; batch_calls = $2;"
    echo "  max_projects = $NP; max_models = 1; max_leases = 1024; };"
    echo "models = ( { name = \"gemini-2.5-flash\"; rpm = 2000000000; tpm = 2000000000; rpd = 2000000000; } );"
    echo "projects = ("
    awk -v n=$NP 'BEGIN{for(i=1;i<=n;i++) printf "  { name = \"p%d\"; key = \"bench-key-%06d\"; }%s\n", i, i, i<n?",":""}'
    echo ");"
  } > $w/$1.conf
}
for v in old new; do
  [ $v = old ] && B=$OLD || B=$NEW
  for b in 128 1; do
    t=$v$b; conf $t $b
    (cd $w && taskset -c 0 $B/gemrouted -c $w/$t.conf --foreground --unlink-on-exit >$w/$t.log 2>&1) &
    pids="$pids $!"
    sleep 3
    $B/gr-bench-reserve --impl gemroute --shm /ab-$$-$t --projects $NP --window-ms 500 --tokens 1000 --inline --ops $((NP*20)) >/dev/null
  done
done
for r in $(seq 1 $REPS); do
  for v in old new; do
    [ $v = old ] && B=$OLD || B=$NEW
    for b in 128 1; do
      printf "%s rep=%s %s batch=%s " "$(date +%T)" $r $v $b
      /usr/bin/time -f "cpu_s=%U+%S" taskset -c 1 $B/gr-bench-reserve --impl gemroute --shm /ab-$$-$v$b --projects $NP --window-ms 500 --tokens 1000 --warmup-ms 30 --seconds 1 2>&1 | tr '\n' ' '
      echo
    done
  done
done
if [ "${CG:-0}" = 1 ]; then
  for v in old new; do
    [ $v = old ] && B=$OLD || B=$NEW
    for b in 128 1; do
      for n in 5000 45000; do
        valgrind --tool=callgrind --callgrind-out-file=$w/cg.$v$b.$n $B/gr-bench-reserve --impl gemroute --shm /ab-$$-$v$b --projects $NP --window-ms 60000 --tokens 1000 --inline --ops $n >/dev/null 2>&1
      done
      a=$(awk '/^(summary|totals):/ {print $2; exit}' $w/cg.$v$b.5000)
      c=$(awk '/^(summary|totals):/ {print $2; exit}' $w/cg.$v$b.45000)
      echo "callgrind $v batch=$b instructions/op=$(( (c - a) / 40000 ))"
    done
  done
fi
cat /proc/loadavg
