// sdk.mjs - the real SDKs against gemroute-gateway: @google/genai and
// openai, pinned in tests/package.json.  Prints "ok NAME" for each check
// that passed and "FAIL NAME: why" (on stderr) for each that did not;
// exits 1 when any failed.  Run by tests/gateway/run_gateway.sh with
// GW_BASE, GW_TOKEN, GW_MODEL and GW_EMB set.
import { assert, base, check, done, model, require, token }
    from '../sdk_lib.mjs';

const { GoogleGenAI } = require('@google/genai');
const OpenAI = require('openai').default ?? require('openai');

const emb = process.env.GW_EMB;

const ai = new GoogleGenAI({ apiKey: token, httpOptions: { baseUrl: base } });
const oa = new OpenAI({ apiKey: token, baseURL: `${base}/v1beta/openai/`,
                        maxRetries: 0 });

await check('genai.generate', async () => {
    const r = await ai.models.generateContent({ model, contents: 'hello' });
    assert(typeof r.text === 'string' && r.text.length > 0, 'no text');
    assert(r.usageMetadata && r.usageMetadata.promptTokenCount > 0,
           'no usage');
});
await check('genai.stream', async () => {
    const s = await ai.models.generateContentStream({ model,
                                                      contents: 'hi' });
    let n = 0, text = '';
    for await (const ch of s) {
        n++;
        text += ch.text ?? '';
    }
    assert(n >= 2, `${n} chunks`);
    assert(text.length > 0, 'no text');
});
await check('genai.count', async () => {
    const r = await ai.models.countTokens({ model, contents: 'count me' });
    assert(r.totalTokens > 0, 'no totalTokens');
});
await check('genai.embed', async () => {
    const r = await ai.models.embedContent({ model: emb,
                                             contents: 'embed me' });
    assert(r.embeddings && r.embeddings[0].values.length > 0,
           'no embedding');
});
await check('genai.badkey', async () => {
    const bad = new GoogleGenAI({ apiKey: 'not-the-token',
                                  httpOptions: { baseUrl: base } });
    let status = 0;
    try {
        await bad.models.generateContent({ model, contents: 'x' });
    } catch (e) {
        status = e.status ?? 0;
        assert(/API key not valid/.test(e.message), 'message');
    }
    assert(status === 400, `status ${status}`);
});
await check('openai.chat', async () => {
    const r = await oa.chat.completions.create({
        model, messages: [{ role: 'user', content: 'hello' }] });
    assert(r.choices[0].message.content.length > 0, 'no content');
    assert(r.usage && r.usage.prompt_tokens > 0, 'no usage');
});
await check('openai.chat.stream', async () => {
    const s = await oa.chat.completions.create({
        model, messages: [{ role: 'user', content: 'hello' }],
        stream: true });
    let n = 0, text = '', usage = 0;
    for await (const ch of s) {
        n++;
        if (ch.usage) usage++;
        text += ch.choices?.[0]?.delta?.content ?? '';
    }
    assert(n >= 1 && text.length > 0, `${n} chunks, no text`);
    assert(usage === 0, 'usage the caller did not ask for');
});
await check('openai.chat.stream.usage', async () => {
    const s = await oa.chat.completions.create({
        model, messages: [{ role: 'user', content: 'hello' }],
        stream: true, stream_options: { include_usage: true } });
    let usage = null;
    for await (const ch of s)
        if (ch.usage) usage = ch.usage;
    assert(usage && usage.prompt_tokens > 0, 'no usage chunk');
});
await check('openai.embed', async () => {
    const r = await oa.embeddings.create({ model: emb, input: 'embed me' });
    assert(r.data[0].embedding.length > 0, 'no embedding');
});
done();
