// browser.js - the dashboard in a real browser: Debian's chromium, driven
// headless by playwright-core (pinned in tests/package.json; it never
// downloads a browser).  Run by tests/dashboard/run_dashboard.sh, which
// starts the mock, the router, the gateway and a load, and passes:
//   GR_DASH_BASE  http://127.0.0.1:PORT      GR_DASH_ADMIN  the admin token
//   GR_DASH_SHM   the table                   GR_DASH_BIN    bin/
//   GR_DASH_OUT   where screenshots go        CHROMIUM       the browser
// Prints "PASS: name" or "FAIL: name: why" per check; never a token.
// Every wait is a bounded poll for a condition, never a timed assertion.
'use strict';

const {chromium} = require('playwright-core');
const {execFileSync} = require('child_process');
const path = require('path');

const base = process.env.GR_DASH_BASE;
const admin = process.env.GR_DASH_ADMIN;
const shm = process.env.GR_DASH_SHM;
const bin = process.env.GR_DASH_BIN || 'bin';
const out = process.env.GR_DASH_OUT;
let failed = 0;

function pass(name) { console.log('PASS: ' + name); }
function fail(name, why) {
  failed++;
  console.log('FAIL: ' + name + ': ' + String(why).split(admin).join('<admin>'));
}
async function check(name, fn) {
  try {
    const r = await fn();
    if (r === false) fail(name, 'condition false');
    else pass(name);
  } catch (e) {
    fail(name, e && e.message ? e.message.split('\n')[0] : e);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Poll fn until it returns a truthy value; at most tries x every ms.
async function until(fn, tries, every) {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await sleep(every);
  }
  throw new Error('condition not met after ' + tries + ' tries');
}
function status() {
  return JSON.parse(execFileSync(path.join(bin, 'gemroute'),
    ['status', '--shm', shm, '--json'], {encoding: 'utf8'}));
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({viewport: {width: 1440, height: 1000}});
  ctx.setDefaultTimeout(5000);
  const page = await ctx.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const outside = [];
  page.on('request', (r) => { if (!r.url().startsWith(base)) outside.push(r.url()); });

  await page.goto(base + '/gemroute/');
  await check('without a session the login form is shown', async () =>
    (await page.locator('#login input[name=token]').count()) === 1);
  await page.screenshot({path: path.join(out, 'login.png')});

  // A wrong token is refused.
  await page.fill('#token', 'dash-admin-wrong-00000000');
  const [wrong] = await Promise.all([
    page.waitForNavigation(),
    page.click('#login button[type=submit]'),
  ]);
  await check('a wrong token is refused (401)', async () => wrong.status() === 401);
  await check('the refusal says why', async () =>
    (await page.textContent('#error')).includes('not an admin token'));
  await check('a wrong token sets no cookie', async () =>
    (await ctx.cookies()).length === 0);

  // The right one logs in.
  await page.fill('#token', admin);
  await Promise.all([page.waitForNavigation(), page.click('#login button[type=submit]')]);
  await check('login shows the dashboard', async () =>
    until(async () => (await page.locator('#cells tbody tr').count()) >= 3, 100, 100));
  await check('the session cookie is HttpOnly and SameSite=Strict', async () => {
    const c = (await ctx.cookies()).find((k) => k.name === 'gr_session');
    return c && c.httpOnly && c.sameSite === 'Strict' && c.path === '/gemroute/' &&
      c.expires > Date.now() / 1000;
  });
  await check('the page cannot read the session cookie', async () =>
    !(await page.evaluate(() => document.cookie)).includes('gr_session'));

  for (const p of ['alpha', 'bravo', 'charlie']) {
    await check(`project ${p} appears with its limits (30 rpm, 5000 rpd)`, async () => {
      const row = page.locator(`#cells tbody tr[data-project="${p}"]`);
      return (await row.count()) === 1 &&
        (await row.locator('.bar[data-dim=rpm]').getAttribute('data-config')) === '30' &&
        (await row.locator('.bar[data-dim=rpd]').getAttribute('data-config')) === '5000' &&
        /\/ 5000$/.test(await row.locator('.bar[data-dim=rpd] .txt').textContent()) &&
        (await page.locator(`#projects .card[data-project="${p}"]`).count()) === 1;
    });
  }
  await check('keys are shown as their last four characters', async () => {
    const keys = await page.locator('#cells tbody td code').allTextContents();
    return keys.length === 3 && keys.every((k) => /^\.\.\..{4}$/.test(k));
  });
  await check('the pool card of the model is shown', async () =>
    (await page.locator('#models .card[data-model="gemini-2.5-flash"] .bar').count()) >= 3);

  // A bar moves as the load runs.
  const rpdUsed = async () => (await page.locator('#cells .bar[data-dim=rpd]')
    .evaluateAll((bs) => bs.map((b) => Number(b.dataset.used)))).reduce((a, b) => a + b, 0);
  const first = await rpdUsed();
  await check('a bar moves under load', async () =>
    until(async () => (await rpdUsed()) > first, 150, 200));
  await check('the bar is drawn in proportion', async () => {
    const w = await page.locator('#cells tbody tr[data-project="alpha"] .bar[data-dim=rpm] .fill')
      .evaluate((f) => f.style.width);
    return /%$/.test(w);
  });

  // The mock's 429s cool charlie: its countdown shows and counts down.
  const cd = page.locator('#cells tbody tr[data-project="charlie"] .cd');
  await check('a cooldown forced by the mock shows its countdown', async () =>
    until(async () => (await cd.count()) === 1 &&
      /\d+(m\d\d)?s$/.test(await cd.textContent()), 300, 200));
  let firstCd = '';
  try { firstCd = await cd.textContent(); } catch (e) { firstCd = ''; }
  await check('the countdown counts down', async () =>
    until(async () => {
      const t = await cd.textContent().catch(() => '');
      return t !== '' && t !== firstCd;
    }, 100, 200));
  await check('the learned limit is marked on charlie\'s bar', async () =>
    until(async () => (await page.locator(
      '#cells tbody tr[data-project="charlie"] .bar[data-dim=rpm] .learned').count()) === 1,
    100, 200));
  await check('the pool shows rates per second', async () =>
    until(async () => /admitted \d+\.\d\/s/.test(
      await page.locator('#models .card .rates').first().textContent()), 50, 200));

  // Charts of the last hour, from the router's history.
  await check('the last hour is drawn per project and per pool', async () =>
    until(async () =>
      (await page.locator('#charts [data-chart="project:alpha"] polyline').count()) >= 1 &&
      (await page.locator('#charts [data-chart="pool:gemini-2.5-flash"] polyline').count()) === 2,
    150, 200));
  // GR_DASH_SAMPLES=N: wait for N samples of history first (for the
  // README's picture; the default takes it at once).
  const want = Number(process.env.GR_DASH_SAMPLES || 0);
  if (want > 0) {
    await until(async () => page.evaluate(async (n) =>
      (await (await fetch('api/history')).json()).samples >= n, want), want * 10, 1000);
    await sleep(1500);    // one more poll of the page (a picture only)
  }
  await page.screenshot({path: path.join(out, 'dashboard-load.png'), fullPage: true});
  pass('screenshot under load saved');

  // Filter and sort.
  await page.fill('#filter', 'charlie');
  await check('the filter keeps matching rows only', async () =>
    until(async () => (await page.locator('#cells tbody tr').count()) === 1, 20, 100));
  await page.fill('#filter', '');
  await page.click('#cells th[data-k=project]');
  await check('sorting by project reverses the order', async () =>
    until(async () => (await page.locator('#cells tbody tr').first()
      .getAttribute('data-project')) === 'charlie', 20, 100));

  // CSRF: a POST from the page without the token is refused.
  await check('a POST without the CSRF token is refused (403)', async () =>
    (await page.evaluate(async () => (await fetch('api/action', {method: 'POST',
      body: new URLSearchParams({action: 'drain', target: 'alpha'})})).status)) === 403);
  await check('alpha was not drained by it', async () =>
    status().projects.find((p) => p.name === 'alpha').state !== 'draining');

  // Drain bravo from the page: a confirmation, then the router's state.
  await page.click('#projects .card[data-project="bravo"] button[data-action=drain]');
  await check('drain asks for a confirmation', async () =>
    page.locator('#confirm').evaluate((d) => d.open));
  await page.screenshot({path: path.join(out, 'confirm.png')});
  await page.click('#confirm-cancel');
  await check('cancel sends nothing', async () =>
    status().projects.find((p) => p.name === 'bravo').state !== 'draining');
  await page.click('#projects .card[data-project="bravo"] button[data-action=drain]');
  await page.click('#confirm-ok');
  await check('drain from the page changes the router\'s state (gemroute status --json)',
    async () => until(() => {
      const p = status().projects.find((q) => q.name === 'bravo');
      return p && p.state === 'draining';
    }, 100, 100));
  await check('the page shows bravo draining', async () =>
    until(async () => (await page.locator(
      '#projects .card[data-project="bravo"] .pill').textContent()) === 'draining', 50, 200));
  await check('the answer is shown', async () =>
    (await page.textContent('#toast')).includes('draining'));
  // And back.
  await page.click('#projects .card[data-project="bravo"] button[data-action=enable]');
  await page.click('#confirm-ok');
  await check('enable from the page undoes it', async () => until(() =>
    status().projects.find((q) => q.name === 'bravo').state !== 'draining', 100, 100));

  // A phone.
  const phone = await ctx.newPage();
  phone.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  phone.on('pageerror', (e) => errors.push(String(e)));
  await phone.setViewportSize({width: 390, height: 844});
  await phone.goto(base + '/gemroute/');
  await check('on a phone the page fits its width (the table scrolls inside)', async () =>
    until(async () => (await phone.locator('#cells tbody tr').count()) === 3 &&
      await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
    50, 200));
  await phone.screenshot({path: path.join(out, 'phone.png'), fullPage: true});
  await phone.close();

  // Log out.
  await page.click('#logout');
  await check('logout brings the login form back', async () =>
    until(async () => (await page.locator('#login').count()) === 1, 50, 100));

  // The browser logs the two refusals this test provoked (the wrong
  // login's 401, the CSRF-less POST's 403); anything else is an error.
  await check('no console errors but the refusals provoked', async () => {
    const rest = errors.slice();
    for (const code of ['401', '403']) {
      const i = rest.findIndex((e) => e.includes('status of ' + code));
      if (i < 0) throw new Error('the provoked ' + code + ' was not seen');
      rest.splice(i, 1);
    }
    if (rest.length) throw new Error(rest.slice(0, 3).join(' | '));
    return true;
  });
  await check('nothing was requested from elsewhere', async () => {
    if (outside.length) throw new Error(outside.slice(0, 3).join(' '));
    return true;
  });
  await browser.close();
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log('FAIL: browser.js: ' + String(e && e.message || e).split(admin).join('<admin>').split('\n')[0]);
  process.exit(1);
});
