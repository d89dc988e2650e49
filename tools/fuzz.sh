#!/bin/sh
# fuzz.sh - build the libFuzzer harnesses (make fuzzers) and run each for
# FUZZ_SECONDS (default 180; `make check` runs a 20 s smoke of each).
# FUZZ_ONLY="settle config" builds and runs only those harnesses.
# Seeds come from tests/fixtures/gemini (real answers) and the test
# configs.  A crash leaves its input in build/fuzz/ and fails the run:
# turn it into a regression test.
set -eu
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-180}
out=build/fuzz
mkdir -p "$out"
command -v clang >/dev/null 2>&1 || tools/deps.sh clang libclang-rt-14-dev
all="classify sse config mock_request json_scan settle media"
all="$all h1_parse"
only=${FUZZ_ONLY:-$all}
wanted() {  # name without fuzz_
    case " $only " in *" $1 "*) return 0 ;; esac
    return 1
}

# The Makefile knows each harness's sources ("make fuzzers").
targets=""
for t in $all; do
    wanted "$t" && targets="$targets $out/fuzz_$t"
done
# shellcheck disable=SC2086
make -s $targets

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
# Media headers for fuzz_media (kind byte: 1 image, 2 PDF, 3 audio,
# 4 video; then the file): PNG, GIF, WebP, JPEG, PDF, WAV, MP3, MP4.
printf '\001\211PNG\r\n\032\n\000\000\000\rIHDR\000\000\003\300\000\000\002\034\010\002\000\000\000' \
    >"$out/seed_media/png"
printf '\001GIF89a\364\001\364\001\000\000\000;' >"$out/seed_media/gif"
printf '\001RIFF\036\000\000\000WEBPVP8X\022\000\000\000\000\000\000\000\377\003\000\377\002\000' \
    >"$out/seed_media/webp"
printf '\001\377\330\377\340\000\004\000\000\377\376\000\002\377\300\000\021\010\004\070\007\200\003\001\042\000' \
    >"$out/seed_media/jpeg"
printf '\002%%PDF-1.4\n2 0 obj << /Type /Pages /Count 2 >>\n3 0 obj << /Type /Page >>\n4 0 obj <</Type/Page/Parent 2 0 R>>\n%%%%EOF\n' \
    >"$out/seed_media/pdf"
printf '\003RIFF\054\000\000\000WAVEfmt \020\000\000\000\001\000\001\000\100\037\000\000\200\076\000\000\002\000\020\000data\010\000\000\000\000\000\000\000\000\000\000\000' \
    >"$out/seed_media/wav"
printf '\003\377\373\220\144%036s' '' >"$out/seed_media/mp3"
printf '\004\000\000\000\010mdat\000\000\000\044moov\000\000\000\034mvhd\000\000\000\000\000\000\000\000\000\000\000\000\000\000\003\350\000\000\047\020' \
    >"$out/seed_media/mp4"
printf '%s' '{"generationConfig":{"mediaResolution":"MEDIA_RESOLUTION_LOW"},"contents":[{"parts":[{"mediaResolution":{"level":"MEDIA_RESOLUTION_HIGH"},"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAA8AAAAIc"}},{"media_resolution":"low","inline_data":{"mime_type":"application/pdf","data":"JVBERi0xLjQKL1R5cGUgL1BhZ2UK"}},{"fileData":{"fileUri":"files/abc","mimeType":"video/mp4"}}]}]}' \
    >"$out/seed_json_scan/req3"
cp tests/config/*.conf "$out/seed_config/" 2>/dev/null || true
cp examples/gemroute.conf "$out/seed_config/" 2>/dev/null || true
# Programs for fuzz_settle (mode byte, then operations): reserve, a huge
# usage settled, time passes; and the same with a scribble and a repair.
printf '\000\000\000\000\001\001\007\241\040\001\000\001\000\030\030\030\003\377\377\003\377\377' \
    >"$out/seed_settle/s1"
printf '\001\000\000\000\001\001\007\241\040\001\006\000\000\000\100\010ABCDEFGH\007\001\000\030\030\030' \
    >"$out/seed_settle/s2"

# Answers for fuzz_h1_parse (mode byte: bit 0 HEAD, bits 1-2 the piece
# size; then the bytes): a length, chunks with trailers after a 100,
# a body to the end, a HEAD answer followed by another, a fixture.
printf '\002HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello' \
    >"$out/seed_h1_parse/length"
printf '\004HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n' \
    >"$out/seed_h1_parse/chunked"
printf '\006HTTP/1.0 503 Service Unavailable\nConnection: close\n\n{"error":{}}' \
    >"$out/seed_h1_parse/to_eof"
printf '\001HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n' \
    >"$out/seed_h1_parse/head"
# Bit 3: 0xff N is the byte before it 64 * N more times: a header line
# of exactly 8192 bytes (GR_H1P_LINE_MAX, the longest taken).
printf '\012HTTP/1.1 200 OK\r\nX: a\377\177%s\r\n\r\n' \
    "$(printf '%58s' '' | tr ' ' a)" >"$out/seed_h1_parse/long_line"
for f in tests/fixtures/gemini/*; do
    { printf '\006HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n' \
        "$(wc -c <"$f" | tr -d ' ')"; cat "$f"; } >"$out/seed_h1_parse/fixture"
    break
done

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
    h1_parse) dict="-dict=$(pwd)/tests/fuzz/http1.dict" ;;
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
