-- mock_wrk.lua - wrk script: POST a small generateContent body with the
-- key in x-goog-api-key, as a Gemini client does.
--   wrk -t2 -c64 -d10s -s tests/e2e/mock_wrk.lua \
--       http://127.0.0.1:PORT/v1beta/models/gemini-2.5-flash:generateContent
wrk.method = "POST"
wrk.body = '{"contents":[{"parts":[{"text":"Say hello in five languages."}]}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-goog-api-key"] = os.getenv("MOCK_KEY") or "bench-key"
