// sdk_lib.mjs - what the SDK scripts (tests/*/sdk*.mjs) share: the
// packages pinned in tests/package.json, the gateway they talk to
// (GW_BASE, GW_TOKEN, GW_MODEL), and the checks: "ok NAME" on stdout per
// check passed, "FAIL NAME: why" on stderr per check failed, and done()
// exits 1 when any failed.
import { createRequire } from 'node:module';

export const require = createRequire(new URL('./package.json',
                                             import.meta.url));
export const base = process.env.GW_BASE;
export const token = process.env.GW_TOKEN;
export const model = process.env.GW_MODEL;
let failed = 0;

export async function check(name, fn) {
    try {
        await fn();
        console.log(`ok ${name}`);
    } catch (e) {
        failed++;
        // The message only: an SDK error object may carry request headers.
        console.error(`FAIL ${name}: ${String(e && e.message).slice(0, 300)}`);
    }
}

export function assert(cond, why) {
    if (!cond) throw new Error(why);
}

export function done() {
    process.exit(failed === 0 ? 0 : 1);
}
