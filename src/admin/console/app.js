// smtpwall console: a single page over the admin API (/api/v1). Plain modules, no framework.
// Everything from the log or a message is put on the page as text (textContent), never as
// HTML: a subject line or a file name is an attacker's string.

import { stackedBars } from './charts.js';

const POLL_MS = 2000;
const ACTIONS = ['allow', 'alert', 'block', 'reject', 'drop', 'reset-client', 'reset-server', 'reset-both', 'tempfail', 'quarantine'];
const FILTERS = ['from', 'to', 'client', 'id', 'action', 'rule', 'threat', 'instance', 'since', 'until'];

const state = { user: null, role: null, csrf: null, timer: null, view: null };
const $ = (id) => document.getElementById(id);

/** An element: h('td', { class: 'num' }, 'text', otherNode). Strings become text nodes. */
function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One call to the API; a 401 sends the user back to the login form. */
async function api(path, { method = 'GET', body, raw = false, accept } = {}) {
  const headers = { 'X-Smtpwall-Console': '1' };
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  if (accept) headers.Accept = accept;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string') {
      payload = body;
      headers['Content-Type'] = 'text/plain; charset=utf-8';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  if (res.status === 401 && path !== '/api/v1/session') {
    showLogin('Your session has ended: log in again.');
    throw new ApiError(401, 'not logged in');
  }
  if (raw) return res;
  const data = await res.json().catch(() => ({}));
  if (!res.ok && !(res.status === 422 || res.status === 409)) throw new ApiError(res.status, data.error ?? `${res.status} ${res.statusText}`);
  return Object.assign(data, { httpStatus: res.status });
}

function notice(text, isError = false) {
  const n = $('notice');
  n.textContent = text;
  n.className = isError ? 'error' : '';
}

const failed = (err) => {
  if (!(err instanceof ApiError && err.status === 401)) notice(err.message, true);
};

// --- login ---------------------------------------------------------------------------------

function showLogin(message = '') {
  stopPolling();
  state.user = state.role = state.csrf = null;
  $('shell').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('login-user').focus();
}

async function showShell(session) {
  state.user = session.user;
  state.role = session.role;
  state.csrf = session.csrf ?? null;
  $('login').hidden = true;
  $('shell').hidden = false;
  $('whoami').textContent = `${session.user} (${session.role})`;
  document.body.classList.toggle('viewer', session.role !== 'admin');
  route();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').textContent = '';
  const res = await fetch('/api/v1/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Smtpwall-Console': '1' },
    body: JSON.stringify({ user: $('login-user').value, password: $('login-password').value }),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    $('login-error').textContent = data.error ?? `login failed (${res.status})`;
    return;
  }
  $('login-password').value = '';
  await showShell(data);
});

$('logout').addEventListener('click', async () => {
  await api('/api/v1/session', { method: 'DELETE' }).catch(() => {});
  showLogin('Logged out.');
});

const isAdmin = () => state.role === 'admin';

// --- routing and polling -------------------------------------------------------------------

const VIEWS = { dashboard, threats: (a, m) => logView('threats', a, m), traffic: (a, m) => logView('traffic', a, m), details, quarantine, message, verdicts, config };

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

/** Run `tick` now and every POLL_MS while this view is shown: the live update. */
function poll(tick) {
  stopPolling();
  const run = () => tick().catch(failed);
  state.timer = setInterval(run, POLL_MS);
  return run();
}

function route() {
  if (!state.user) return;
  const [name = 'dashboard', ...args] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const view = VIEWS[name] ? name : 'dashboard';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('current', a.dataset.view === view || (view === 'details' && a.dataset.view === 'threats') || (view === 'message' && a.dataset.view === 'quarantine'));
  stopPolling();
  notice('');
  const main = $('view');
  main.replaceChildren();
  main.dataset.view = view;
  Promise.resolve(VIEWS[view](args.filter(Boolean), main)).catch(failed);
}
window.addEventListener('hashchange', route);

// --- shared pieces -------------------------------------------------------------------------

const actionBadge = (a) => h('span', { class: `action act-${a}` }, a);
const fmtTime = (t) => (t ? t.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '');
const fmtBytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

function table(columns, rows, { onRow, rowClass, key } = {}) {
  const tbody = h('tbody');
  const t = h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c.title)))), tbody);
  const add = (r, { top = false, fresh = false } = {}) => {
    const tr = h('tr', { class: [onRow ? 'link' : '', rowClass ? rowClass(r) : '', fresh ? 'fresh' : ''].join(' ').trim() || undefined, dataset: key ? { key: key(r) } : undefined }, columns.map((c) => h('td', { class: c.cls }, c.cell(r))));
    if (onRow) tr.addEventListener('click', (ev) => {
      if (!(ev.target instanceof HTMLInputElement)) onRow(r);
    });
    if (top) tbody.prepend(tr);
    else tbody.append(tr);
    return tr;
  };
  for (const r of rows) add(r);
  return { el: t, add, tbody };
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== '' && v !== undefined && v !== null).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// --- dashboard -----------------------------------------------------------------------------

async function dashboard(_args, main) {
  let range = 'hour';
  const seg = h('span', { class: 'seg' });
  const setRange = (r) => {
    range = r;
    for (const b of seg.children) b.classList.toggle('current', b.dataset.range === r);
    tick().catch(failed);
  };
  for (const [r, label] of [['hour', 'Last hour'], ['day', 'Last day']]) seg.append(h('button', { type: 'button', dataset: { range: r }, onclick: () => setRange(r) }, label));
  seg.firstChild.classList.add('current');

  const cards = h('div', { class: 'cards', id: 'cards' });
  const trafficChart = h('div', { id: 'chart-traffic' });
  const threatChart = h('div', { id: 'chart-threats' });
  const legend = h('div', { class: 'legend' });
  const engines = h('div', { class: 'engines', id: 'engines' });
  const tops = { topThreats: h('ol', { class: 'top', id: 'top-threats' }), topSenders: h('ol', { class: 'top', id: 'top-senders' }), topRecipients: h('ol', { class: 'top', id: 'top-recipients' }) };
  const recent = table(
    [
      { title: 'Time (UTC)', cell: (r) => fmtTime(r.time) },
      { title: 'Action', cell: (r) => actionBadge(r.action) },
      { title: 'Threat', cell: (r) => r.threat },
      { title: 'Engine', cell: (r) => r.engine },
      { title: 'From', cell: (r) => r.mailFrom },
      { title: 'File', cell: (r) => r.filePath || r.fileName, cls: 'mono' },
    ],
    [],
    { onRow: (r) => (location.hash = `#/details/${encodeURIComponent(r.transactionId)}`), rowClass: (r) => `row-${r.action}`, key: (r) => r.transactionId },
  );
  recent.el.id = 'recent-threats';

  main.append(
    h('div', { class: 'toolbar' }, h('h1', {}, 'Dashboard'), seg, h('span', { class: 'muted', id: 'updated' })),
    cards,
    h('div', { class: 'grid' },
      h('div', { class: 'panel' }, h('h2', {}, 'Messages by action'), trafficChart, legend),
      h('div', { class: 'panel' }, h('h2', {}, 'Threat records'), threatChart),
    ),
    h('div', { class: 'grid' },
      h('div', { class: 'panel' }, h('h2', {}, 'Top threats'), tops.topThreats),
      h('div', { class: 'panel' }, h('h2', {}, 'Top blocked senders'), tops.topSenders),
      h('div', { class: 'panel' }, h('h2', {}, 'Top blocked recipients'), tops.topRecipients),
      h('div', { class: 'panel' }, h('h2', {}, 'Engines and stores'), engines),
    ),
    h('h2', {}, 'Latest threats'),
    recent.el,
  );

  let cursor = null;
  let healthAt = 0;
  // Three independent questions: one that fails (the log database not there yet) must not
  // hold back the others.
  const figures = async () => drawStats(await api(`/api/v1/stats?range=${range}`), { cards, trafficChart, threatChart, legend, tops });
  const latest = async () => {
    // New threat records since the last look: on top, highlighted.
    const t = await api(cursor === null ? '/api/v1/threats?limit=15' : `/api/v1/threats?cursor=${cursor}&limit=100`);
    for (const r of t.records) recent.add(r, { top: true, fresh: cursor !== null });
    while (recent.tbody.children.length > 15) recent.tbody.lastChild.remove();
    cursor = t.cursor;
  };
  const health = async () => {
    if (Date.now() - healthAt < 10_000) return;
    healthAt = Date.now();
    const hz = await (await api('/healthz', { raw: true })).json();
    engines.replaceChildren(...hz.checks.map((c) => h('span', { class: `engine ${c.ok ? 'up' : 'down'}`, title: c.detail }, c.what)), ...(hz.down.some((d) => d.startsWith('listeners')) ? [h('span', { class: 'engine down' }, 'listeners')] : []));
  };
  async function tick() {
    const results = await Promise.allSettled([figures(), latest(), health()]);
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    if ($('notice').className === 'error') notice(''); // the trouble of an earlier look is over
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  }
  await poll(tick);
}

function bucketsOf(s) {
  const chars = s.bucketSeconds === 60 ? 16 : 15;
  const out = [];
  for (let t = Date.parse(s.since); t <= Date.parse(s.now); t += s.bucketSeconds * 1000) out.push(new Date(t).toISOString().slice(0, chars));
  return out;
}

function drawStats(s, { cards, trafficChart, threatChart, legend, tops }) {
  const buckets = bucketsOf(s);
  const label = (b) => (b.length === 16 ? b.slice(11, 16) : `${b.slice(11, 15)}0`);
  const byAction = new Map();
  let total = 0;
  let stopped = 0;
  for (const r of s.traffic) {
    const cls = ACTIONS.includes(r.action) ? r.action : 'other';
    if (!byAction.has(cls)) byAction.set(cls, new Map());
    const m = byAction.get(cls);
    m.set(r.bucket, (m.get(r.bucket) ?? 0) + r.n);
    total += r.n;
    if (r.action !== 'allow' && r.action !== 'alert') stopped += r.n;
  }
  const ordered = new Map([...byAction].sort(([a], [b]) => ACTIONS.indexOf(a) - ACTIONS.indexOf(b)));
  const threats = new Map(s.threats.map((r) => [r.bucket, r.n]));
  const threatTotal = s.threats.reduce((n, r) => n + r.n, 0);
  const per = s.bucketSeconds === 60 ? 'per minute' : 'per 10 minutes';
  trafficChart.replaceChildren(stackedBars(buckets, ordered, { label, title: `messages ${per} by action` }));
  threatChart.replaceChildren(stackedBars(buckets, new Map([['threats', threats]]), { label, title: `threat records ${per}` }));
  legend.replaceChildren(...[...ordered.keys()].map((a) => h('span', { class: `l-${a}` }, a)), h('em', { class: 'muted' }, `(${per}, UTC)`));
  const card = (id, figure, text) => h('div', { class: 'card', id }, h('div', { class: 'figure' }, String(figure)), h('div', { class: 'label' }, text));
  const range = s.range === 'hour' ? 'last hour' : 'last day';
  cards.replaceChildren(card('card-messages', total, `messages, ${range}`), card('card-stopped', stopped, `stopped, ${range}`), card('card-threats', threatTotal, `threat records, ${range}`));
  for (const [k, ol] of Object.entries(tops)) {
    ol.replaceChildren(...(s[k].length ? s[k].map((r) => h('li', {}, h('span', {}, r.key || '<>'), h('span', { class: 'num' }, String(r.n)))) : [h('li', { class: 'muted' }, 'none')]));
  }
}

// --- threat and traffic logs ---------------------------------------------------------------

function logView(kind, args, main) {
  const params = new URLSearchParams(args[0] ?? '');
  const form = h('form', { class: 'filters', id: 'filters' },
    FILTERS.map((f) => h('label', {}, f, f === 'action'
      ? h('select', { name: f }, h('option', { value: '' }, 'any'), ACTIONS.map((a) => h('option', { value: a, selected: params.get(f) === a }, a)))
      : h('input', { name: f, value: params.get(f) ?? '', placeholder: f === 'since' || f === 'until' ? '2h or 2026-12-01T10:00' : '' }))),
    h('label', {}, 'limit', h('input', { name: 'limit', type: 'number', min: 1, max: 1000, value: params.get('limit') ?? '100' })),
    h('button', { type: 'submit', class: 'primary' }, 'Filter'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) p.set(k, String(v).trim());
    location.hash = `#/${kind}/${encodeURIComponent(p.toString())}`;
  });
  const columns = kind === 'threats'
    ? [
        { title: 'Time (UTC)', cell: (r) => fmtTime(r.time) },
        { title: 'Action', cell: (r) => actionBadge(r.action) },
        { title: 'Threat', cell: (r) => r.threat },
        { title: 'Engine', cell: (r) => r.engine },
        { title: 'Rule', cell: (r) => r.rule },
        { title: 'From', cell: (r) => r.mailFrom },
        { title: 'To', cell: (r) => r.rcptTo.join(', ') },
        { title: 'File', cell: (r) => r.filePath || r.fileName, cls: 'mono' },
        { title: 'Instance', cell: (r) => r.instance || '' },
        { title: 'Id', cell: (r) => r.transactionId, cls: 'mono' },
      ]
    : [
        { title: 'Time (UTC)', cell: (r) => fmtTime(r.time) },
        { title: 'Action', cell: (r) => actionBadge(r.action) },
        { title: 'From', cell: (r) => r.mailFrom },
        { title: 'To', cell: (r) => r.rcptTo.join(', ') },
        { title: 'Subject', cell: (r) => r.subject },
        { title: 'Size', cell: (r) => fmtBytes(r.size), cls: 'num' },
        { title: 'Rule', cell: (r) => r.rule },
        { title: 'Client', cell: (r) => r.client, cls: 'mono' },
        { title: 'Reply', cell: (r) => r.clientReply, cls: 'mono' },
        { title: 'Instance', cell: (r) => r.instance || '' },
        { title: 'Id', cell: (r) => r.transactionId, cls: 'mono' },
      ];
  const t = table(columns, [], { onRow: (r) => (location.hash = `#/details/${encodeURIComponent(r.transactionId)}`), rowClass: (r) => `row-${r.action}`, key: (r) => r.transactionId });
  t.el.id = `${kind}-table`;
  const count = h('span', { class: 'muted', id: 'row-count' });
  main.append(h('h1', {}, kind === 'threats' ? 'Threat log' : 'Traffic log'), form, h('div', { class: 'toolbar' }, count, h('span', { class: 'muted' }, 'newest first; new records appear on top')), t.el);

  let cursor = null;
  let rows = 0;
  const base = new URLSearchParams(params);
  return poll(async () => {
    const q = new URLSearchParams(base);
    if (cursor !== null) {
      q.set('cursor', String(cursor));
      q.set('limit', '1000');
    }
    const r = await api(`/api/v1/${kind}?${q}`);
    // The API gives oldest first; the table shows newest first.
    for (const rec of r.records) t.add(rec, { top: true, fresh: cursor !== null });
    rows += r.records.length;
    cursor = r.cursor;
    count.textContent = `${rows} record${rows === 1 ? '' : 's'}`;
  });
}

// --- details of one transaction ------------------------------------------------------------

async function details([id], main) {
  const d = await api(`/api/v1/threats/${encodeURIComponent(id)}`);
  main.append(h('h1', {}, `Transaction ${id}`));
  for (const e of d.explanation) main.append(h('p', { class: 'explanation', id: 'explanation' }, e));
  for (const t of d.transactions) {
    main.append(h('div', { class: 'panel' }, facts([
      ['Time (UTC)', fmtTime(t.time)], ['Action', actionBadge(t.action)], ['Rule', t.rule], ['Profile', t.profile], ['Reason', t.reason],
      ['Listener', t.listener], ['Client', t.client], ['HELO', t.helo], ['Upstream', t.server], ['Forwarding', t.forwarding],
      ['From', t.mailFrom], ['To', t.rcptTo.join(', ')], ['Subject', t.subject], ['Message-ID', t.messageId], ['Size', fmtBytes(t.size)],
      ['Client was told', t.clientReply], ['Upstream said', t.upstreamReply], ['Duration', `${t.durationMs} ms`], ['Anomalies', t.events.join(', ')],
    ])));
  }
  if (d.threats.length) {
    main.append(h('h2', {}, 'Findings'), table([
      { title: 'Deciding', cell: (r) => (r.deciding ? 'yes' : '') },
      { title: 'Engine', cell: (r) => r.engine },
      { title: 'Threat', cell: (r) => r.threat },
      { title: 'Signature', cell: (r) => r.signature, cls: 'mono' },
      { title: 'File inside the message', cell: (r) => r.filePath || r.fileName, cls: 'mono' },
      { title: 'Declared / detected type', cell: (r) => `${r.declaredType || '?'} / ${r.detectedType || '?'}` },
      { title: 'Flags', cell: (r) => r.fileFlags.join(', ') },
      { title: 'SHA-256', cell: (r) => (r.sha256 ? h('a', { href: `#/verdicts/${r.sha256}` }, r.sha256) : ''), cls: 'mono' },
      { title: 'Action', cell: (r) => actionBadge(r.action) },
    ], d.threats).el);
  }
  const session = (d.transactions[0] ?? d.threats[0])?.transactionId ?? id;
  const pcap = h('a', { href: `/api/v1/transactions/${encodeURIComponent(session)}/capture.pcap`, download: `smtpwall-${session}.pcap`, id: 'download-pcap' }, 'Download the packet capture (pcap)');
  const transcript = h('div', { id: 'transcript' }, h('p', { class: 'muted' }, 'loading the capture…'));
  main.append(h('h2', {}, 'Capture'), h('div', { class: 'toolbar' }, pcap, h('span', { class: 'muted' }, 'both legs, opens in Wireshark: Follow TCP stream')), transcript);
  // The capture is kept when the session ends, which can be a moment after its records: ask
  // again on the poll until it is there (or say why there is none).
  pcap.hidden = true;
  await poll(async () => {
    try {
      const c = await api(`/api/v1/transactions/${encodeURIComponent(session)}/transcript`, { accept: 'application/json' });
      const cls = (l) => (l.marker ? 'l-marker' : l.dir === 'client>' ? 'l-client-in' : l.dir === '>client' ? 'l-client-out' : l.dir === 'upstream>' ? 'l-upstream-in' : 'l-upstream-out');
      transcript.replaceChildren(h('pre', {}, c.lines.map((l) => h('span', { class: cls(l) }, `${(l.time || '').slice(11, 23).padEnd(12)} #${l.conn} ${l.dir.padEnd(9)} ${l.text}\n`))));
      pcap.hidden = false;
      stopPolling();
    } catch (err) {
      if (err.status !== 404) throw err;
      transcript.replaceChildren(h('p', { class: 'muted' }, err.message));
    }
  });
}

// --- quarantine ----------------------------------------------------------------------------

async function quarantine(_args, main) {
  const selected = new Set();
  const to = h('input', { id: 'release-to', placeholder: 'another recipient (optional)', size: 30 });
  const releaseBtn = h('button', { type: 'button', class: 'primary', id: 'release-selected', disabled: true, onclick: () => act('release') }, 'Release selected');
  const deleteBtn = h('button', { type: 'button', class: 'danger', id: 'delete-selected', disabled: true, onclick: () => act('delete') }, 'Delete selected');
  const result = h('div', { id: 'quarantine-result' });
  const refresh = () => {
    releaseBtn.disabled = deleteBtn.disabled = selected.size === 0;
  };
  const columns = [
    ...(isAdmin() ? [{ title: '', cell: (r) => h('input', { type: 'checkbox', class: 'pick', dataset: { id: r.id }, onchange: (ev) => (ev.target.checked ? selected.add(r.id) : selected.delete(r.id), refresh()) }) }] : []),
    { title: 'Time (UTC)', cell: (r) => fmtTime(r.time) },
    { title: 'Threat', cell: (r) => r.threat },
    { title: 'From', cell: (r) => r.mailFrom },
    { title: 'To', cell: (r) => r.rcptTo.join(', ') },
    { title: 'Subject', cell: (r) => r.subject },
    { title: 'Size', cell: (r) => fmtBytes(r.size), cls: 'num' },
    { title: 'Released', cell: (r) => (r.released ? `${fmtTime(r.released.time)}: ${r.released.reply}` : '') },
    { title: 'Id', cell: (r) => r.id, cls: 'mono' },
  ];
  const list = await api('/api/v1/quarantine');
  const entries = list.entries.slice().reverse();
  const t = table(columns, entries, { onRow: (r) => (location.hash = `#/message/${encodeURIComponent(r.id)}`), key: (r) => r.id });
  t.el.id = 'quarantine-table';
  main.append(h('h1', {}, 'Quarantine'));
  if (isAdmin()) main.append(h('div', { class: 'toolbar' }, releaseBtn, to, deleteBtn), result);
  main.append(entries.length ? t.el : h('p', { class: 'muted', id: 'quarantine-empty' }, 'Nothing is quarantined.'));

  async function act(what) {
    const ids = [...selected];
    if (what === 'delete' && !confirm(`Delete ${ids.length} quarantined message(s)? This cannot be undone.`)) return;
    const lines = [];
    for (const id of ids) {
      try {
        const r = what === 'release'
          ? await api(`/api/v1/quarantine/${encodeURIComponent(id)}/release`, { method: 'POST', body: to.value.trim() ? { to: to.value.trim().split(/[\s,]+/) } : {} })
          : await api(`/api/v1/quarantine/${encodeURIComponent(id)}`, { method: 'DELETE' });
        lines.push(what === 'release' ? `${id}: ${r.outcome} to ${r.to.join(', ')} — ${r.reply}` : `${id}: deleted`);
      } catch (err) {
        if (err.status === 401) return;
        lines.push(`${id}: ${err.message}`);
      }
    }
    route();
    notice(lines.join(' · '));
  }
}

async function message([id], main) {
  const m = await api(`/api/v1/quarantine/${encodeURIComponent(id)}`);
  const e = m.entry;
  main.append(
    h('h1', {}, `Quarantined message ${e.id}`),
    h('div', { class: 'panel' }, facts([
      ['Time (UTC)', fmtTime(e.time)], ['Threat', e.threat], ['Rule', e.rule], ['Action', actionBadge(e.action)], ['Reason', e.reason],
      ['From', e.mailFrom], ['To', e.rcptTo.join(', ')], ['Subject', e.subject], ['Size', fmtBytes(e.size)], ['Client', e.client],
      ['Meant for', e.upstream], ['SHA-256', e.sha256], ['Released', e.released ? `${fmtTime(e.released.time)} to ${(e.released.to ?? e.rcptTo).join(', ')}: ${e.released.reply}` : 'no'],
    ])),
    h('p', {}, h('a', { href: `#/details/${encodeURIComponent(e.id)}` }, 'The log records and capture of this transaction')),
    h('h2', {}, 'MIME structure'),
    table([
      { title: 'Part', cell: (r) => r.path, cls: 'mono' },
      { title: 'Content-Type', cell: (r) => r.contentType ?? '' },
      { title: 'File name', cell: (r) => r.name ?? '' },
      { title: 'Encoding', cell: (r) => r.encoding ?? '' },
      { title: 'Decoded size', cell: (r) => fmtBytes(r.size), cls: 'num' },
    ], m.parts).el,
    m.events.length ? h('p', { class: 'muted' }, `Structure anomalies: ${m.events.join(', ')}`) : '',
    h('h2', {}, 'Header (as text; the message is never rendered)'),
    h('pre', { id: 'message-headers' }, m.headers.join('\n')),
  );
}

// --- verdicts ------------------------------------------------------------------------------

async function verdicts([sha], main) {
  const search = h('input', { id: 'verdict-search', placeholder: 'SHA-256 (64 hex digits)', size: 70, value: sha ?? '' });
  const form = h('form', { class: 'toolbar' }, search, h('button', { type: 'submit', class: 'primary' }, 'Look up'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/verdicts/${encodeURIComponent(search.value.trim().toLowerCase())}`;
  });
  main.append(h('h1', {}, 'Verdicts'), form);
  const verdictColumns = [
    { title: 'SHA-256', cell: (r) => h('a', { href: `#/verdicts/${r.sha256}` }, r.sha256), cls: 'mono' },
    { title: 'Verdict', cell: (r) => r.verdict },
    { title: 'Source', cell: (r) => r.source },
    { title: 'Score', cell: (r) => String(r.score), cls: 'num' },
    { title: 'Type', cell: (r) => r.fileType },
    { title: 'Name', cell: (r) => r.fileName },
    { title: 'Seen', cell: (r) => String(r.seen), cls: 'num' },
    { title: 'Last seen (UTC)', cell: (r) => fmtTime(r.lastSeen) },
    { title: 'Reasons', cell: (r) => r.reasons.join('; ') },
  ];
  if (sha) {
    const box = h('div', { class: 'panel', id: 'verdict-detail' });
    main.append(box);
    try {
      const v = await api(`/api/v1/verdicts/${encodeURIComponent(sha)}`);
      box.append(v.verdict ? facts([['SHA-256', v.sha256], ['Verdict', v.verdict.verdict], ['Source', v.verdict.source], ['Reasons', v.verdict.reasons.join('; ')], ['First seen', fmtTime(v.verdict.firstSeen)], ['Last seen', fmtTime(v.verdict.lastSeen)]]) : h('p', {}, 'No verdict yet; seen in:'));
      if (v.sightings.length) box.append(h('h2', {}, 'Sightings'), table([
        { title: 'Time (UTC)', cell: (r) => fmtTime(r.time) },
        { title: 'Action', cell: (r) => actionBadge(r.action) },
        { title: 'Delivered', cell: (r) => (r.delivered ? 'yes' : 'no') },
        { title: 'From', cell: (r) => r.mailFrom },
        { title: 'To', cell: (r) => r.rcptTo.join(', ') },
        { title: 'File', cell: (r) => r.filePath, cls: 'mono' },
      ], v.sightings, { onRow: (r) => (location.hash = `#/details/${encodeURIComponent(r.transactionId)}`) }).el);
    } catch (err) {
      if (err.status !== 404) throw err;
      box.append(h('p', { class: 'muted' }, err.message));
    }
    if (isAdmin()) {
      const verdict = h('select', { id: 'verdict-class' }, ['malicious', 'phishing', 'grayware', 'benign'].map((c) => h('option', { value: c }, c)));
      const reason = h('input', { id: 'verdict-reason', placeholder: 'why (required)', size: 40, required: true });
      const set = h('form', { class: 'toolbar', id: 'verdict-set' }, h('strong', {}, 'Set the verdict:'), verdict, reason, h('button', { type: 'submit', class: 'primary' }, 'Set'));
      set.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        await api(`/api/v1/verdicts/${encodeURIComponent(sha)}`, { method: 'PUT', body: { verdict: verdict.value, reason: reason.value } }).then(() => {
          route();
          notice(`verdict of ${sha} set to ${verdict.value}`);
        }, failed);
      });
      main.append(set);
    }
  }
  const list = await api('/api/v1/verdicts?limit=100');
  main.append(h('h2', {}, 'Latest verdicts'), list.verdicts.length ? table(verdictColumns, list.verdicts).el : h('p', { class: 'muted' }, 'No verdicts yet.'));
}

// --- configuration -------------------------------------------------------------------------

async function config(_args, main) {
  const cfg = await api('/api/v1/config');
  delete cfg.httpStatus;
  const draft = h('textarea', { id: 'config-draft', rows: 14, spellcheck: 'false', placeholder: 'Paste a configuration draft (YAML) to check it before you install it.' });
  const out = h('div', { id: 'config-check-result' });
  const check = h('button', { type: 'button', id: 'config-check', onclick: async () => {
    const r = await api('/api/v1/config/check', { method: 'POST', body: draft.value }).catch(failed);
    if (!r) return;
    out.replaceChildren(r.ok ? h('p', { class: 'ok' }, 'The draft is valid.') : h('ul', { class: 'error' }, r.errors.map((e) => h('li', {}, e))));
  } }, 'Check the draft');
  main.append(h('h1', {}, 'Configuration'));
  if (isAdmin()) {
    const reload = h('button', { type: 'button', class: 'primary', id: 'config-reload', onclick: async () => {
      if (!confirm('Reload the configuration file from disk now?')) return;
      const r = await api('/api/v1/reload', { method: 'POST' }).catch(failed);
      if (r) notice(r.applied ? 'configuration reloaded' : `reload refused: ${r.error ?? ''}`, !r.applied);
    } }, 'Reload from disk');
    main.append(h('div', { class: 'toolbar' }, reload, h('span', { class: 'muted' }, 'reads the configuration file again, as smtpwall reload does')));
  }
  // A draft check changes nothing, so every role may do it (the API is a POST for the body's size).
  main.append(h('h2', {}, 'Check a draft'), draft, h('div', { class: 'toolbar' }, check), out);
  main.append(h('h2', {}, 'In effect (secrets masked)'), h('pre', { id: 'config-effective' }, JSON.stringify(cfg, null, 2)));
}

// --- start ---------------------------------------------------------------------------------

fetch('/api/v1/session', { headers: { 'X-Smtpwall-Console': '1' }, credentials: 'same-origin' })
  .then(async (res) => {
    const s = res.ok ? await res.json() : null;
    return s && s.user ? showShell(s) : showLogin();
  })
  .catch(() => showLogin('The gateway cannot be reached.'));
