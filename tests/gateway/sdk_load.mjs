// sdk_load.mjs - the official @google/genai SDK (pinned in
// tests/package.json) offering generateContent calls to gemroute-gateway
// at a fixed rate: call i starts at i / LOAD_RATE seconds, whatever the
// calls before it are doing, until LOAD_CALLS have started; then every
// call is awaited.  The SDK's own retries stay off (no retryOptions), and
// its fetch is wrapped so that every HTTP status the SDK received is
// counted: a 429 the gateway let through cannot hide behind a retry.
// Prints one JSON line: {"offered", "ok", "failed", "status": {code: n},
// "errors": [first messages]}.  Judged by tests/gateway/run_sdk_load.sh,
// which sets GW_BASE, GW_TOKEN, GW_MODEL, LOAD_RATE and LOAD_CALLS.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../package.json', import.meta.url));
const { GoogleGenAI } = require('@google/genai');

const rate = Number(process.env.LOAD_RATE);
const calls = Number(process.env.LOAD_CALLS);
const status = {};
const errors = [];
let ok = 0, failed = 0;

// Every response the SDK's transport got, by status.
async function countingFetch(input, init) {
    const r = await fetch(input, init);
    status[r.status] = (status[r.status] ?? 0) + 1;
    return r;
}

const ai = new GoogleGenAI({
    apiKey: process.env.GW_TOKEN,
    httpOptions: { baseUrl: process.env.GW_BASE, timeout: 120000,
                   fetch: countingFetch } });

async function one(i) {
    try {
        const r = await ai.models.generateContent({
            model: process.env.GW_MODEL, contents: `load call ${i}` });
        if (typeof r.text !== 'string' || r.text.length === 0)
            throw new Error('an answer without text');
        ok++;
    } catch (e) {
        failed++;
        // The message only: an SDK error object may carry request headers.
        if (errors.length < 5)
            errors.push(String(e && e.message).slice(0, 200));
    }
}

const t0 = performance.now();
const running = [];
for (let i = 0; i < calls; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0)
        await new Promise((res) => setTimeout(res, wait));
    running.push(one(i));
}
await Promise.all(running);
console.log(JSON.stringify({ offered: calls, ok, failed, status, errors }));
