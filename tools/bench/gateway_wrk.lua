-- gateway_wrk.lua - wrk script of tools/bench/gateway.sh: POST a small
-- generateContent body with the key (or the gateway's local token) in
-- x-goog-api-key, as a Gemini SDK does, and print one line of JSON at
-- the end: requests, duration, latency percentiles, errors.
--   GW_WRK_KEY=... wrk -t1 -c16 -d3s -s tools/bench/gateway_wrk.lua URL
-- GW_WRK_METHOD=GET sends a GET without a body (the gateway's /healthz).
wrk.method = os.getenv("GW_WRK_METHOD") or "POST"
if wrk.method == "POST" then
    wrk.body = '{"contents":[{"parts":[{"text":"Say hello in five languages."}]}]}'
end
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-goog-api-key"] = os.getenv("GW_WRK_KEY") or "bench-key"

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, ' ..
        '"p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
        '"errors": %d, "non2xx": %d}\n',
        summary.requests, summary.duration, latency:percentile(50),
        latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, e.connect + e.read + e.write + e.timeout, e.status))
end
