// sdk_files.mjs - the real @google/genai SDK against gemroute-gateway's
// Files routes: upload a file (the resumable protocol, through the
// gateway), then use it in generateContent N times.  Prints "ok NAME"
// per check passed, "FAIL NAME: why" on stderr per check failed, and
// "file NAME" (the file's name) and "project P" once per answer (from the
// x-gemroute-project header) for the shell to count.  Run by
// tests/affinity/run_affinity.sh with GW_BASE, GW_TOKEN, GW_MODEL, N.
import { assert, base, check, done, model, require, token }
    from '../sdk_lib.mjs';

const { GoogleGenAI, createPartFromUri, createUserContent } =
    require('@google/genai');

const n = Number(process.env.N ?? 50);

const ai = new GoogleGenAI({ apiKey: token, httpOptions: { baseUrl: base } });
let file;

await check('upload', async () => {
    const blob = new Blob(['gemroute affinity test: a small text file\n'],
                          { type: 'text/plain' });
    file = await ai.files.upload({ file: blob,
                                   config: { mimeType: 'text/plain',
                                             displayName: 'affinity' } });
    assert(file && typeof file.name === 'string' &&
           file.name.startsWith('files/'), 'no file name');
    assert(typeof file.uri === 'string', 'no uri');
    console.log(`file ${file.name}`);
});
await check('get', async () => {
    const f = await ai.files.get({ name: file.name });
    assert(f.name === file.name, 'another file');
});
await check(`generate x${n}`, async () => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
        const r = await ai.models.generateContent({
            model,
            contents: createUserContent([
                createPartFromUri(file.uri, file.mimeType),
                `question ${i} about the file`,
            ]),
        });
        assert(typeof r.text === 'string' && r.text.length > 0, 'no text');
        const p = r.sdkHttpResponse?.headers?.['x-gemroute-project'];
        console.log(`project ${p}`);
        ok++;
    }
    assert(ok === n, `${ok} of ${n}`);
});
done();
