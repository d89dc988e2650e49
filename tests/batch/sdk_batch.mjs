// sdk_batch.mjs - the real @google/genai SDK against gemroute-gateway's
// batch routes.  PHASE=create: N jobs with ai.batches.create (inline
// requests of R requests each), then one more that finds no pool with
// room (the gateway answers 429 within a short queue budget); prints
// "job NAME" per job.  PHASE=get: ai.batches.get for each NAME in JOBS
// (space-separated) until JOB_STATE_SUCCEEDED, with its inline results.
// Prints "ok NAME" per check passed and "FAIL NAME: why" on stderr per
// check failed.  Run by tests/batch/run_batch.sh with GW_BASE, GW_TOKEN,
// GW_MODEL.
import { assert, base, check, done, model, require, token }
    from '../sdk_lib.mjs';

const { GoogleGenAI } = require('@google/genai');

const n = Number(process.env.N ?? 6);
const r = Number(process.env.R ?? 10);

// 160 bytes of text per request: 40 tokens (docs/CLIENT.md's estimate).
function requests(tag) {
    const src = [];
    for (let i = 0; i < r; i++)
        src.push({ contents: [{ role: 'user', parts: [
            { text: `${tag} request ${i} `.padEnd(160, 'x') }] }] });
    return src;
}

if (process.env.PHASE === 'create') {
    const ai = new GoogleGenAI({ apiKey: token,
                                 httpOptions: { baseUrl: base } });
    await check(`create x${n}`, async () => {
        for (let j = 0; j < n; j++) {
            const b = await ai.batches.create({
                model, src: requests(`job ${j}`),
                config: { displayName: `sdk ${j}` } });
            assert(b && typeof b.name === 'string' &&
                   b.name.startsWith('batches/'), 'no batch name');
            assert(b.state === 'JOB_STATE_PENDING', `state ${b.state}`);
            console.log(`job ${b.name}`);
        }
    });
    const short = new GoogleGenAI({ apiKey: token, httpOptions: {
        baseUrl: base, headers: { 'x-gemroute-queue-s': '0.3' } } });
    await check('no room: 429', async () => {
        let status = 0;
        try {
            await short.batches.create({ model, src: requests('extra') });
        } catch (e) {
            status = e.status ?? 0;
        }
        assert(status === 429, `status ${status}`);
    });
} else {
    const ai = new GoogleGenAI({ apiKey: token,
                                 httpOptions: { baseUrl: base } });
    const names = (process.env.JOBS ?? '').split(' ').filter(Boolean);
    await check(`get x${names.length}`, async () => {
        assert(names.length === n, `${names.length} jobs`);
        for (const name of names) {
            const b = await ai.batches.get({ name });
            assert(b.state === 'JOB_STATE_SUCCEEDED', `${name}: ${b.state}`);
            const got = b.dest?.inlinedResponses ?? [];
            assert(got.length === r, `${name}: ${got.length} results`);
            assert(got.every((x) => x.response?.candidates?.length > 0),
                   `${name}: a result without candidates`);
        }
    });
}
done();
