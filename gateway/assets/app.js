// app.js - the gemroute dashboard: polls api/state every second and
// api/history every ten, draws the pool, the cells, the last hour, and
// sends operator actions (with the session's CSRF token) after a
// confirmation.  Plain DOM, no library; nothing is loaded from elsewhere.
'use strict';

(function () {
  const DIMS = ['rpm', 'tpm', 'rpd', 'ipm', 'tpd'];
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel) => document.querySelector(sel);
  let state = null;
  let fetchedAt = 0;
  let prev = {};                 // model -> {t, admitted, rejected, quota_429}
  let rates = {};                // model -> {adm, rej, q429}
  let sortKey = 'project';
  let sortDir = 1;
  let history = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else if (k === 'text') e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids) if (c != null) e.append(c);
    return e;
  }

  function num(v) {
    if (v < 0) return '\u221e';
    if (v < 10000) return String(v);
    const u = ['k', 'M', 'G'];
    let x = v, i = -1;
    while (x >= 1000 && i < 2) { x /= 1000; i++; }
    return (x >= 100 || x === Math.floor(x) ? x.toFixed(0) : x.toFixed(1)) + u[i];
  }

  function dur(s) {
    s = Math.ceil(s);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  }

  function toast(text, err) {
    const t = $('#toast');
    t.textContent = text;
    t.className = 'show' + (err ? ' err' : '');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.className = ''; }, 6000);
  }

  // A bar: used / limit, the learned limit marked.
  function bar(dim, used, limit, configLimit, learned, label) {
    const b = el('div', {class: 'bar ' + dim, 'data-dim': dim, 'data-used': used,
                         'data-limit': limit, 'data-config': configLimit});
    if (limit === 0) {
      b.classList.add('none');
      b.append(el('span', {class: 'txt muted', text: '\u2014'}));
      return b;
    }
    const fill = el('div', {class: 'fill'});
    const pct = limit > 0 ? Math.min(100, 100 * used / limit) : 0;
    fill.style.width = pct.toFixed(1) + '%';
    if (limit > 0 && used >= limit) b.classList.add('full');
    b.append(fill);
    if (learned >= 0 && configLimit > 0 && learned !== configLimit) {
      const m = el('div', {class: 'learned', title: 'learned limit ' + learned});
      m.style.left = Math.min(100, 100 * learned / configLimit).toFixed(1) + '%';
      b.append(m);
    }
    b.append(el('span', {class: 'txt', text: label || num(used) + ' / ' + num(limit)}));
    return b;
  }

  // ---- the pool ----------------------------------------------------------

  function updateRates(s) {
    const now = s.now_ms;
    for (const m of s.models) {
      const p = prev[m.name];
      if (p && now > p.t) {
        const dt = (now - p.t) / 1000;
        rates[m.name] = {
          adm: Math.max(0, m.admitted - p.admitted) / dt,
          rej: Math.max(0, m.rejected - p.rejected) / dt,
          q429: Math.max(0, m.quota_429 - p.quota_429) / dt,
        };
      }
      prev[m.name] = {t: now, admitted: m.admitted, rejected: m.rejected,
                      quota_429: m.quota_429};
    }
  }

  function renderModels(s) {
    const box = $('#models');
    box.replaceChildren();
    for (const m of s.models) {
      const c = el('div', {class: 'card', 'data-model': m.name});
      c.append(el('h3', {}, el('span', {text: m.name})));
      DIMS.forEach((d, i) => {
        if (m.capacity[i] === 0 && !m.unlimited[i]) return;
        const cap = m.unlimited[i] ? -1 : m.capacity[i];
        const used = cap > 0 ? cap - m.room[i] : 0;
        const b = bar(d, used, cap, cap, -1, cap < 0 ? 'no limit' :
                      'room ' + num(m.room[i]) + ' of ' + num(cap));
        b.title = 'headroom: what the cells taking calls now can still admit';
        c.append(el('div', {class: 'dimrow'}, el('span', {text: d.toUpperCase()}), b));
      });
      const r = rates[m.name] || {adm: 0, rej: 0, q429: 0};
      const waiting = history && history.waiting.length ?
        history.waiting[history.waiting.length - 1] : 0;
      c.append(el('div', {class: 'rates'},
        el('span', {}, 'admitted ', el('b', {text: r.adm.toFixed(1)}), '/s'),
        el('span', {}, 'refused ', el('b', {text: r.rej.toFixed(1)}), '/s'),
        el('span', {}, '429s ', el('b', {text: r.q429.toFixed(2)}), '/s'),
        el('span', {}, 'in flight ', el('b', {text: String(m.in_flight)})),
        el('span', {}, 'queued ', el('b', {text: String(waiting)})),
        el('span', {}, '429s total ', el('b', {text: String(m.quota_429)}))));
      box.append(c);
    }
  }

  // ---- the cells -----------------------------------------------------------

  function coolOf(c) {
    let s = Math.max(c.cell_cool_s, c.circuit_s), what = c.cell_cool_s > 0 ? 'cell' :
      c.circuit_s > 0 ? 'circuit' : '';
    DIMS.forEach((d, i) => { if (c.cooldown_s[i] > s) { s = c.cooldown_s[i]; what = d; } });
    return {s, what};
  }

  function sortValue(c, k) {
    const i = DIMS.indexOf(k);
    if (i >= 0) return c.limit[i] > 0 ? c.used[i] / c.limit[i] : -1;
    if (k === 'cool') return coolOf(c).s;
    if (k === 'errors') return c.errors + c.quota_429;
    return c[k];
  }

  function actionButtons(target, what) {
    const span = el('span', {class: 'actions'});
    for (const a of ['drain', 'disable', 'enable', 'reset']) {
      const b = el('button', {type: 'button', 'data-action': a,
                              'data-target': target, text: a});
      b.addEventListener('click', () => confirmAction(a, target, what));
      span.append(b);
    }
    return span;
  }

  function renderCells(s) {
    const tbody = $('#cells tbody');
    const f = $('#filter').value.trim().toLowerCase();
    const cells = s.cells.filter((c) => !f ||
      [c.project, c.model, c.health, c.op, c.key].concat(c.reasons)
        .join(' ').toLowerCase().includes(f));
    cells.sort((a, b) => {
      const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir ||
        (a.project + a.model < b.project + b.model ? -1 : 1);
    });
    const rows = cells.map((c) => {
      const cool = coolOf(c);
      const tr = el('tr', {'data-project': c.project, 'data-model': c.model,
                           'data-health': c.health});
      tr.append(el('td', {text: c.project}), el('td', {text: c.model}),
        el('td', {}, el('code', {text: c.key})));
      const h = el('td', {}, el('span', {class: 'pill ' + c.health, text: c.health}));
      if (c.reasons.length) h.append(el('span', {class: 'why', text: c.reasons.join('; ')}));
      tr.append(h);
      DIMS.forEach((d, i) => tr.append(el('td', {},
        bar(d, c.used[i], c.limit[i], c.config_limit[i], c.learned[i]))));
      const cd = el('td', {});
      if (cool.s > 0) {
        const span = el('span', {class: 'cd', 'data-until': String(fetchedAt + cool.s * 1000),
                                 'data-what': cool.what});
        span.textContent = cool.what + ' ' + dur(cool.s);
        cd.append(span);
      }
      tr.append(cd, el('td', {class: 'num', text: String(c.in_flight)}),
        el('td', {class: 'num', text: c.errors + ' / ' + c.quota_429 + ' 429',
                  title: 'last status ' + c.last_status + (c.last_qid ? ', ' + c.last_qid : '')}),
        el('td', {}, actionButtons(c.project + '/' + c.model,
                                   'the cell ' + c.project + ' / ' + c.model)));
      return tr;
    });
    tbody.replaceChildren(...rows);
    $('#shown').textContent = cells.length + ' of ' + s.cells.length + ' cells';
    document.querySelectorAll('#cells th').forEach((th) => {
      th.classList.toggle('asc', th.dataset.k === sortKey && sortDir > 0);
      th.classList.toggle('desc', th.dataset.k === sortKey && sortDir < 0);
    });
  }

  function renderProjects(s) {
    const box = $('#projects');
    box.replaceChildren(...s.projects.map((p) => el('div',
      {class: 'card', 'data-project': p.name},
      el('h3', {}, el('span', {text: p.name}),
        el('span', {class: 'pill ' + p.state, text: p.state}),
        el('code', {class: 'muted', text: p.key + (p.keys > 1 ? ' (+' + (p.keys - 1) + ')' : '')})),
      actionButtons(p.name, 'the project ' + p.name + ' (every model)'))));
  }

  function tickCountdowns() {
    const now = Date.now();
    document.querySelectorAll('.cd').forEach((e) => {
      const left = (Number(e.dataset.until) - now) / 1000;
      e.textContent = left > 0 ? e.dataset.what + ' ' + dur(left) : 'over';
    });
  }

  function render() {
    const s = state;
    const r = $('#router');
    r.textContent = s.router.alive ? 'router ' + s.router.pid + ' up' : 'router down';
    r.className = 'pill ' + (s.router.alive ? 'alive' : 'dead');
    $('#updated').textContent = s.shm + ' \u00b7 ' + s.counts.healthy + ' healthy, ' +
      s.counts.cooling + ' cooling, ' + s.counts.disabled + ' disabled, ' +
      s.counts.draining + ' draining \u00b7 ' + new Date(s.now_ms).toLocaleTimeString();
    renderModels(s);
    renderCells(s);
    renderProjects(s);
  }

  // ---- charts --------------------------------------------------------------

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  const COLORS = {rpm: '#3b82f6', tpm: '#10b981', rpd: '#8b5cf6', ipm: '#f59e0b', tpd: '#0ea5e9',
                  adm: '#16a34a', off: '#6b7280'};

  // series: [{key, values}] over t (ms); marks: [{i, color}]
  function chart(t, series, marks, ymax, yfmt) {
    const W = 400, H = 130, L = 34, R = 6, T = 8, B = 16;
    const s = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img'});
    // The last hour, or less while the router has sampled less (at
    // least ten minutes, so a young history is not stretched).
    const end = t.length ? t[t.length - 1] : Date.now();
    const span = Math.min(3600e3, Math.max(600e3, t.length ? end - t[0] : 0));
    const start = end - span;
    const mins = Math.round(span / 60e3);
    const x = (ms) => L + (W - L - R) * Math.max(0, ms - start) / (end - start);
    const y = (v) => T + (H - T - B) * (1 - Math.min(1, v / ymax));
    for (const f of [0, 0.5, 1]) {
      s.append(svg('line', {class: 'grid', x1: L, x2: W - R, y1: y(f * ymax), y2: y(f * ymax)}));
      const lab = svg('text', {class: 'axis', x: 2, y: y(f * ymax) + 3});
      lab.textContent = yfmt(f * ymax);
      s.append(lab);
    }
    [['-' + mins + 'm', start], ['-' + Math.round(mins / 2) + 'm', start + span / 2],
     ['now', end]].forEach(([txt, ms], i) => {
      const lab = svg('text', {class: 'axis', x: x(ms) - (i === 2 ? 18 : i === 1 ? 12 : 0), y: H - 4});
      lab.textContent = txt;
      s.append(lab);
    });
    for (const se of series) {
      if (!se.values.length) continue;
      const pts = se.values.map((v, i) => x(t[i]).toFixed(1) + ',' + y(v).toFixed(1)).join(' ');
      s.append(svg('polyline', {points: pts, stroke: COLORS[se.key]}));
    }
    for (const m of marks) {
      s.append(svg('rect', {x: x(t[m.i]) - 1, y: m.top ? T : H - B - 6, width: 2.5,
                            height: 6, fill: m.color}));
    }
    return s;
  }

  function keysRow(keys) {
    return el('div', {class: 'keys'}, ...keys.map(([k, label]) =>
      el('span', {}, el('i', {class: 'k-' + k}), label)));
  }

  function renderCharts() {
    const h = history;
    const box = $('#charts');
    if (!h || !h.samples) {
      box.replaceChildren(el('p', {class: 'muted', text: 'No history yet: the router samples every ' +
        (h ? h.period_s : 5) + ' s.'}));
      return;
    }
    const t = h.t_ms, n = t.length, cards = [];
    const projects = [...new Set(h.cells.map((c) => c.project))];
    for (const p of projects) {
      const cells = h.cells.filter((c) => c.project === p);
      const series = DIMS.map((d, di) => ({key: d, values: Array.from({length: n}, (_, i) =>
        Math.max(0, ...cells.map((c) => c.limit[di] > 0 ? 100 * c.used[di][i] / c.limit[di] : 0)))}))
        .filter((se) => cells.some((c) => c.limit[DIMS.indexOf(se.key)] > 0));
      const marks = [];
      for (let i = 0; i < n; i++) {
        if (cells.some((c) => c.quota_429[i] > 0)) marks.push({i, color: '#dc2626', top: true});
        if (cells.some((c) => c.errors[i] > 0)) marks.push({i, color: '#d97706', top: false});
      }
      cards.push(el('div', {class: 'card', 'data-chart': 'project:' + p},
        el('h3', {text: p}), chart(t, series, marks, 100, (v) => v.toFixed(0) + '%'),
        keysRow(series.map((se) => [se.key, se.key.toUpperCase()]))));
    }
    const models = [...new Set(h.cells.map((c) => c.model))];
    for (const m of models) {
      const cells = h.cells.filter((c) => c.model === m);
      const adm = Array.from({length: n}, (_, i) =>
        cells.reduce((a, c) => a + c.admitted[i], 0) / h.period_s);
      const off = Array.from({length: n}, (_, i) =>
        cells.reduce((a, c) => a + c.admitted[i] + c.rejected[i], 0) / h.period_s);
      const ymax = Math.max(1, ...off, ...adm) * 1.1;
      cards.push(el('div', {class: 'card', 'data-chart': 'pool:' + m},
        el('h3', {text: 'pool ' + m}),
        chart(t, [{key: 'off', values: off}, {key: 'adm', values: adm}], [], ymax,
              (v) => v.toFixed(v < 10 ? 1 : 0) + '/s'),
        keysRow([['off', 'offered'], ['adm', 'admitted']])));
    }
    box.replaceChildren(...cards);
  }

  // ---- network -------------------------------------------------------------

  async function poll() {
    try {
      const r = await fetch('api/state', {cache: 'no-store', credentials: 'same-origin'});
      if (r.status === 401) { location.reload(); return; }
      if (!r.ok) throw new Error('api/state: ' + r.status);
      state = await r.json();
      fetchedAt = Date.now();
      updateRates(state);
      render();
    } catch (e) {
      const r = $('#router');
      r.textContent = 'no answer';
      r.className = 'pill dead';
    }
  }

  async function pollHistory() {
    try {
      const r = await fetch('api/history', {cache: 'no-store', credentials: 'same-origin'});
      if (!r.ok) return;
      history = await r.json();
      renderCharts();
    } catch (e) {
      // the next poll tries again
    }
  }

  async function send(action, target) {
    const body = new URLSearchParams({action, target});
    const r = await fetch('api/action', {method: 'POST', body, credentials: 'same-origin',
      headers: {'x-csrf-token': csrf}});
    let j = {};
    try { j = await r.json(); } catch (e) { j = {text: 'status ' + r.status}; }
    toast((j.ok ? '' : 'refused: ') + (j.text || j.error || r.status) +
          (j.notes ? '\n' + j.notes : ''), !j.ok);
    poll();
  }

  function confirmAction(action, target, what) {
    const d = $('#confirm');
    $('#confirm-text').textContent = action.charAt(0).toUpperCase() + action.slice(1) +
      ' ' + what + '?' + (action === 'reset' ? ' Cooldowns, learned limits and the circuit are ' +
      'cleared; counts are kept.' : '');
    d.dataset.action = action;
    d.dataset.target = target;
    d.returnValue = '';
    d.showModal();
  }

  $('#confirm').addEventListener('close', () => {
    const d = $('#confirm');
    if (d.returnValue === 'ok') send(d.dataset.action, d.dataset.target);
  });

  $('#logout').addEventListener('click', async () => {
    await fetch('logout', {method: 'POST', credentials: 'same-origin',
                           headers: {'x-csrf-token': csrf}});
    location.reload();
  });

  $('#filter').addEventListener('input', () => { if (state) renderCells(state); });
  document.querySelectorAll('#cells th[data-k]').forEach((th) =>
    th.addEventListener('click', () => {
      if (sortKey === th.dataset.k) sortDir = -sortDir;
      else { sortKey = th.dataset.k; sortDir = 1; }
      if (state) renderCells(state);
    }));

  poll();
  pollHistory();
  setInterval(poll, 1000);
  setInterval(pollHistory, 10000);
  setInterval(tickCountdowns, 250);
})();
