#!/bin/sh
# fuzz.sh - build the libFuzzer harnesses with clang and run each for
# FUZZ_SECONDS (default 180; `make check` runs a 20 s smoke of each).
# FUZZ_ONLY="settle config" builds and runs only those harnesses.
# Seeds come from shared/gemini-samples (via tests/fixtures) and the test
# configs.  A crash leaves its input in build/fuzz/ and fails the run:
# turn it into a regression test.
set -eu
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-180}
out=build/fuzz
mkdir -p "$out"
command -v clang >/dev/null 2>&1 || tools/deps.sh clang libclang-rt-14-dev
jc=$(pkg-config --cflags json-c)
jl=$(pkg-config --libs json-c)
cf="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -std=c11"

all="classify sse config mock_request json_scan settle"
only=${FUZZ_ONLY:-$all}
wanted() {  # name without fuzz_
    case " $only " in *" $1 "*) return 0 ;; esac
    return 1
}

build() {   # name, sources and flags...
    name=$1
    shift
    wanted "${name#fuzz_}" || return 0
    # shellcheck disable=SC2086
    clang $cf "$@" -o "$out/$name"
}
build fuzz_classify -Iinclude -Iclient -Ishm $jc tests/fuzz/fuzz_classify.c \
    client/classify.c client/response.c client/json_scan.c shm/clock.c $jl
build fuzz_sse -Iinclude -Iclient -Ishm $jc tests/fuzz/fuzz_sse.c client/response.c \
    client/json_scan.c $jl
build fuzz_json_scan -Iinclude -Iclient -Ishm $jc tests/fuzz/fuzz_json_scan.c \
    client/json_scan.c client/estimate.c $jl
build fuzz_config -Iconfig tests/fuzz/fuzz_config.c config/*.c -lconfig
build fuzz_mock_request -Itools/mock -Ishm $jc tests/fuzz/fuzz_mock_request.c \
    tools/mock/request.c tools/mock/jsonw.c $jl
# Settle, charge and reap with any usage numbers, and the router's repair
# of random bytes: router/ without its main and its log (the harness logs
# nothing: a repair a run would be noise), config/, shm/.
rsrc=""
for f in router/*.c; do
    case $f in router/main.c|router/log.c) ;; *) rsrc="$rsrc $f" ;; esac
done
# shellcheck disable=SC2086
build fuzz_settle -Irouter -Iconfig -Ishm tests/fuzz/fuzz_settle.c $rsrc \
    config/*.c shm/*.c -lconfig -lm

# Seeds.
for t in $all; do
    mkdir -p "$out/seed_$t" "$out/corpus_$t"
done
i=0
for f in tests/fixtures/gemini/*; do
    i=$((i + 1))
    { printf '\000'; cat "$f"; } >"$out/seed_classify/s$i"
    cp "$f" "$out/seed_sse/s$i"
    cp "$f" "$out/seed_json_scan/s$i"
    { printf '\000\040'; cat "$f"; } >"$out/seed_mock_request/s$i"
done
# Requests, for the estimate: text, images both spellings, a batch.
printf '%s' '{"contents":[{"role":"user","parts":[{"text":"Hi \"you\"\n"},{"inlineData":{"mimeType":"image/png","data":"iVBO"}},{"inline_data":{"mime_type":"image/jpeg"}}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]}}' \
    >"$out/seed_json_scan/req1"
printf '%s' '{"requests":[{"content":{"parts":[{"text":"one"}]}},{"content":{"parts":[{"text":"\u00e9\ud83d\ude00"}]}}]}' \
    >"$out/seed_json_scan/req2"
cp tests/config/*.conf "$out/seed_config/" 2>/dev/null || true
cp examples/gemroute.conf "$out/seed_config/" 2>/dev/null || true
# Programs for fuzz_settle (mode byte, then operations): reserve, a huge
# usage settled, time passes; and the same with a scribble and a repair.
printf '\000\000\000\000\001\001\007\241\040\001\000\001\000\030\030\030\003\377\377\003\377\377' \
    >"$out/seed_settle/s1"
printf '\001\000\000\000\001\001\007\241\040\001\006\000\000\000\100\010ABCDEFGH\007\001\000\030\030\030' \
    >"$out/seed_settle/s2"

# libconfig's own leaks on syntax errors are not ours (see the file).
export LSAN_OPTIONS="suppressions=$(pwd)/tests/fuzz/lsan.supp"
fail=0
ran=0
for t in $all; do
    wanted "$t" || continue
    ran=$((ran + 1))
    dict=""
    case $t in
    classify|sse|json_scan) dict="-dict=$(pwd)/tests/fuzz/gemini.dict" ;;
    esac
    echo "== fuzz_$t for $secs s"
    # shellcheck disable=SC2086
    if ! (cd "$out" && ./fuzz_$t $dict -max_total_time="$secs" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 "corpus_$t" "seed_$t" \
            >"fuzz_$t.log" 2>&1); then
        echo "fuzz_$t: FAILED (see $out/fuzz_$t.log)"
        tail -n 30 "$out/fuzz_$t.log"
        fail=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss" "$out/fuzz_$t.log" |
            sed "s/^/  fuzz_$t: /"
    fi
done
[ $fail -eq 0 ] && echo "fuzz: $ran harnesses, no crash"
exit $fail
