/**
 * The admin plane's HTTP API and /metrics, against `smtpwall start` as an admin runs it (one
 * process, and a supervisor with two workers): who may do what (Basic, bearer, viewer, admin,
 * failed logins rate-limited), the threat log and a blocked transaction's explanation, capture
 * and transcript, bad input answered 4xx with JSON, an audited reload, and metrics that rise by
 * exactly the number of transactions sent, whichever worker served them.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ADMIN, basic, EICAR_MSG, freePort, type Running, send, startAdminGateway, TOKEN, VIEWER } from '../helpers/admin-gateway.ts';
import { outputMatches, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';
import { hasCommand } from '../helpers/tools.ts';

/** A counter's value in a Prometheus text exposition (0 when the series is not there yet). */
function series(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

describe('admin API (one process)', () => {
  let up: UpstreamPeer;
  let gw: Running;
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-admin-'));
  const get = (path: string, auth?: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${gw.admin}${path}`, { ...init, headers: { ...(auth ? { authorization: auth } : {}), ...(init.headers ?? {}) } });
  before(async () => {
    up = await startUpstream();
    gw = await startAdminGateway(dir, up.port, 1);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/healthz answers without credentials; /api/v1 and /metrics need them; Basic and bearer work, any role reads', async () => {
    const h = await get('/healthz');
    assert.equal(h.status, 200, await h.clone().text());
    assert.equal(((await h.json()) as { ok: boolean }).ok, true);
    for (const path of ['/api/v1/status', '/metrics']) {
      const none = await get(path);
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Basic /);
      assert.equal((await get(path, basic('alice', 'wrong'))).status, 401);
      assert.equal((await get(path, basic('nobody', 'x'))).status, 401);
      assert.equal((await get(path, 'Digest abc')).status, 401);
      assert.equal((await get(path, 'Bearer wrong')).status, 401);
      for (const auth of [ADMIN, VIEWER, TOKEN]) assert.equal((await get(path, auth)).status, 200, `${path} ${auth}`);
    }
    const status = (await (await get('/api/v1/status', VIEWER)).json()) as { workers: Array<{ listeners: Array<{ name: string }> }> };
    assert.equal(status.workers[0]!.listeners[0]!.name, 'inbound');
  });

  it('a blocked transaction: in the threat log, explained, its capture as pcap and transcript', async () => {
    const reply = await send(gw.smtp, EICAR_MSG);
    assert.match(reply, /^541 5\.4\.1 /);
    const id = /id: ([A-Z0-9]+\.\d+)/.exec(reply)![1]!;
    let threats: { records: Array<{ transactionId: string; threat: string; action: string }> } = { records: [] };
    // The record is written in a batch within ~20 ms of the reply; the capture when the session ends.
    for (let i = 0; i < 200 && !threats.records.length; i++) {
      threats = (await (await get(`/api/v1/threats?id=${id}`, VIEWER)).json()) as typeof threats;
      if (!threats.records.length) await new Promise((r) => setImmediate(r));
    }
    assert.equal(threats.records[0]!.transactionId, id);
    assert.match(threats.records[0]!.threat, /EICAR/i);
    const detail = (await (await get(`/api/v1/threats/${id}`, VIEWER)).json()) as { explanation: string[]; threats: unknown[] };
    assert.match(detail.explanation[0]!, /EICAR.*security rule "scan-all".*decided block.*541 5\.4\.1/);
    let pcap: Response = await get(`/api/v1/transactions/${id}/capture.pcap`, VIEWER);
    for (let i = 0; i < 200 && pcap.status === 404; i++) pcap = await get(`/api/v1/transactions/${id}/capture.pcap`, VIEWER);
    assert.equal(pcap.status, 200);
    assert.match(pcap.headers.get('content-disposition') ?? '', /attachment; filename="smtpwall-.*\.pcap"/);
    const bytes = Buffer.from(await pcap.arrayBuffer());
    assert.equal(bytes.readUInt32LE(0), 0xa1b2c3d4, 'a classic pcap file');
    if (hasCommand('tshark')) {
      const file = join(dir, 'x.pcap');
      writeFileSync(file, bytes);
      const text = execFileSync('tshark', ['-n', '-r', file, '-d', `tcp.port==${gw.smtp},smtp`, '-Y', 'smtp.response.code == 541'], { encoding: 'utf8' });
      assert.match(text, /541/);
    }
    const transcript = await (await get(`/api/v1/transactions/${id}/transcript`, VIEWER)).text();
    assert.match(transcript, />client\s+541 5\.4\.1/);
  });

  it('bad input gets 4xx with one line of JSON, never 500', async () => {
    const cases: Array<[string, number, RegExp]> = [
      ['/api/v1/threats?limit=abc', 400, /limit must be an integer/],
      ['/api/v1/threats?limit=100000', 400, /limit must be an integer/],
      ['/api/v1/traffic?color=red', 400, /unknown filter "color"/],
      ['/api/v1/traffic?since=yesterday-ish', 400, /since: expected a time/],
      ['/api/v1/traffic?cursor=-4', 400, /cursor must be/],
      ['/api/v1/threats/..%2F..%2Fetc%2Fpasswd', 400, /not a transaction id/],
      ['/api/v1/threats/NOSUCHSESSION.1', 404, /no transaction or session/],
      ['/api/v1/transactions/NOSUCHSESSION.1/capture.pcap', 404, /no packet capture/],
      ['/api/v1/nothing', 404, /no such endpoint/],
    ];
    for (const [path, status, re] of cases) {
      const r = await get(path, VIEWER);
      assert.equal(r.status, status, path);
      assert.match(((await r.json()) as { error: string }).error, re, path);
    }
    const draft = await get('/api/v1/config/check', ADMIN, { method: 'POST', body: 'listeners:\n  - { name: x, listen: "nowhere" }\n' });
    assert.equal(draft.status, 422);
    assert.match(((await draft.json()) as { errors: string[] }).errors.join('\n'), /draft:2:\d+: .*listen/);
    // Checking a draft installs nothing: a viewer may.
    assert.equal((await get('/api/v1/config/check', VIEWER, { method: 'POST', body: 'listeners: []\n' })).status, 422);
  });

  it('a viewer changes nothing (403); an admin reloads, and the reload is an audit record naming the user', async () => {
    const denied = await get('/api/v1/reload', VIEWER, { method: 'POST' });
    assert.equal(denied.status, 403);
    assert.match(((await denied.json()) as { error: string }).error, /viewer role/);
    const ok = await get('/api/v1/reload', ADMIN, { method: 'POST' });
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(((await ok.json()) as { applied: boolean }).applied, true);
    const db = new Database(join(gw.dataDir, 'logs.sqlite'), { readonly: true });
    const rows = db.prepare("SELECT user, action, detail, client FROM audit WHERE action = 'reload'").all() as Array<{ user: string; action: string; detail: string; client: string }>;
    db.close();
    assert.deepEqual(rows.map((r) => [r.user, r.action, r.detail]), [['alice', 'reload', 'applied']]);
    assert.match(rows[0]!.client, /127\.0\.0\.1/);
  });

  it('quarantine: listed, inspected (headers and MIME structure, never rendered), released by an admin once, deleted; a viewer can do neither', async () => {
    const reply = await send(gw.smtp, EICAR_MSG);
    const id = /id: ([A-Z0-9]+\.\d+)/.exec(reply)![1]!;
    const list = (await (await get('/api/v1/quarantine', VIEWER)).json()) as { entries: Array<{ id: string }> };
    assert.ok(list.entries.some((e) => e.id === id), JSON.stringify(list));
    const shown = (await (await get(`/api/v1/quarantine/${id}`, VIEWER)).json()) as { headers: string[]; parts: Array<{ name: string | null; size: number }> };
    assert.ok(shown.headers.some((h) => /^Subject: /i.test(h)), JSON.stringify(shown.headers));
    assert.ok(shown.parts.some((p) => p.name !== null && p.size === 68), JSON.stringify(shown.parts));
    assert.equal((await get(`/api/v1/quarantine/${id}/release`, VIEWER, { method: 'POST' })).status, 403);
    assert.equal((await get(`/api/v1/quarantine/${id}`, VIEWER, { method: 'DELETE' })).status, 403);
    const before = up.messages.length;
    const released = await get(`/api/v1/quarantine/${id}/release`, ADMIN, { method: 'POST', body: JSON.stringify({ to: ['security@example.com'] }), headers: { 'content-type': 'application/json' } });
    assert.equal(released.status, 200, await released.clone().text());
    assert.equal(up.messages.length, before + 1, 'delivered upstream when the API answered');
    assert.deepEqual(up.messages.at(-1)!.to, ['security@example.com']);
    const again = await get(`/api/v1/quarantine/${id}/release`, ADMIN, { method: 'POST' });
    assert.equal(again.status, 409, 'released once; again only when asked');
    assert.equal(up.messages.length, before + 1);
    assert.equal((await get(`/api/v1/quarantine/${id}/release`, ADMIN, { method: 'POST', body: '{"to": "not a list"}' })).status, 400);
    assert.equal((await get(`/api/v1/quarantine/${id}`, ADMIN, { method: 'DELETE' })).status, 200);
    assert.equal((await get(`/api/v1/quarantine/${id}`, VIEWER)).status, 404);
    assert.equal((await get('/api/v1/quarantine/not-an-id', VIEWER)).status, 400);
    const db = new Database(join(gw.dataDir, 'logs.sqlite'), { readonly: true });
    const rows = db.prepare("SELECT user, action, target FROM audit WHERE action IN ('release', 'delete') ORDER BY id").all() as Array<{ user: string; action: string; target: string }>;
    db.close();
    assert.deepEqual(rows.map((r) => [r.user, r.action, r.target]), [['alice', 'release', id], ['alice', 'release', id], ['alice', 'delete', id]]);
  });

  it('verdicts: set by an admin (audited), shown to a viewer, refused with a clear 4xx when malformed', async () => {
    const sha = 'ab'.repeat(32);
    const put = (auth: string, body: string): Promise<Response> => get(`/api/v1/verdicts/${sha}`, auth, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    assert.equal((await put(VIEWER, '{"verdict":"malicious","reason":"x"}')).status, 403);
    assert.equal((await put(ADMIN, '{"verdict":"evil","reason":"x"}')).status, 400);
    assert.equal((await put(ADMIN, '{"verdict":"malicious"}')).status, 400);
    assert.equal((await put(ADMIN, 'not json')).status, 400);
    assert.equal((await get('/api/v1/verdicts/xyz', VIEWER)).status, 400);
    assert.equal((await get(`/api/v1/verdicts/${sha}`, VIEWER)).status, 404);
    const ok = await put(ADMIN, '{"verdict":"malicious","reason":"seen in a campaign"}');
    assert.equal(ok.status, 200, await ok.clone().text());
    const shown = (await (await get(`/api/v1/verdicts/${sha.toUpperCase()}`, VIEWER)).json()) as { verdict: { verdict: string; source: string } };
    assert.equal(shown.verdict.verdict, 'malicious');
    const list = (await (await get('/api/v1/verdicts', VIEWER)).json()) as { verdicts: Array<{ sha256: string }> };
    assert.ok(list.verdicts.some((v) => v.sha256 === sha));
    const db = new Database(join(gw.dataDir, 'logs.sqlite'), { readonly: true });
    const row = db.prepare("SELECT user, target, detail FROM audit WHERE action = 'verdict'").get() as { user: string; target: string; detail: string };
    db.close();
    assert.deepEqual(row, { user: 'alice', target: sha, detail: 'malicious: seen in a campaign' });
  });

  it('the effective configuration is shown with every secret masked', async () => {
    const cfg = (await (await get('/api/v1/config', VIEWER)).json()) as { admin: { users: Array<Record<string, string>> } };
    assert.equal(cfg.admin.users[0]!['password-hash'], '********');
    assert.equal(cfg.admin.users[0]!['token-hash'], '********');
    assert.equal(cfg.admin.users[0]!.name, 'alice');
  });

  it('/metrics: transactions and threats rise by exactly what was sent', async () => {
    const text = async (): Promise<string> => (await get('/metrics', VIEWER)).text();
    const before = await text();
    const allow = 'smtpwall_transactions_total{listener="inbound",action="allow"}';
    const block = 'smtpwall_transactions_total{listener="inbound",action="block"}';
    for (let i = 0; i < 5; i++) assert.match(await send(gw.smtp, `Subject: m${i}\r\n\r\nclean\r\n.\r\n`), /^250 /);
    assert.match(await send(gw.smtp, EICAR_MSG), /^541 /);
    let now = await text();
    for (let i = 0; i < 500 && series(now, block) - series(before, block) < 1; i++) now = await text();
    assert.equal(series(now, allow) - series(before, allow), 5);
    assert.equal(series(now, block) - series(before, block), 1);
    assert.match(now, /^smtpwall_threats_total\{engine="[^"]+",action="block"\} \d+$/m);
    assert.match(now, /^smtpwall_scan_duration_seconds_count \d+$/m);
    assert.match(now, /^smtpwall_sessions\{listener="inbound"\} \d+$/m);
    assert.match(now, /^process_resident_memory_bytes\{pid="\d+",role="gateway"\} \d+$/m);
    assert.ok(series(now, 'smtpwall_message_bytes_total') > series(before, 'smtpwall_message_bytes_total'));
  });

  it('the console: its page with a strict CSP, a cookie login (HttpOnly, SameSite=Strict), CSRF refused without the token, dashboard figures', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await page.text();
    assert.doesNotMatch(html, /<script>(?!<)/, 'no inline script');
    assert.doesNotMatch(html, /style=/, 'no inline style');
    assert.equal((await get('/console/app.js')).headers.get('content-type'), 'text/javascript; charset=utf-8');

    assert.equal((await get('/api/v1/session', undefined, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"alice"}' })).status, 400);
    const wrong = await get('/api/v1/session', undefined, { method: 'POST', headers: { 'content-type': 'application/json', 'x-smtpwall-console': '1' }, body: JSON.stringify({ user: 'alice', password: 'nope' }) });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('www-authenticate'), null, 'the console gets no Basic challenge (no browser dialog)');
    const login = await get('/api/v1/session', undefined, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: 'alice-secret' }) });
    assert.equal(login.status, 200);
    const setCookie = login.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^smtpwall_session=[\w-]{40,};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const { csrf, role } = (await login.json()) as { csrf: string; role: string };
    assert.equal(role, 'admin');
    const cookie = setCookie.split(';')[0]!;
    const who = await get('/api/v1/session', undefined, { headers: { cookie } });
    assert.deepEqual(await who.json(), { user: 'alice', role: 'admin', via: 'cookie', csrf });

    // A state change by cookie without the token (what a forged cross-site form sends): refused.
    const forged = await get('/api/v1/reload', undefined, { method: 'POST', headers: { cookie } });
    assert.equal(forged.status, 403);
    assert.match(((await forged.json()) as { error: string }).error, /X-CSRF-Token/);
    assert.equal((await get('/api/v1/reload', undefined, { method: 'POST', headers: { cookie, 'x-csrf-token': 'x'.repeat(csrf.length) } })).status, 403);
    assert.equal((await get('/api/v1/reload', undefined, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } })).status, 200);

    const stats = (await (await get('/api/v1/stats?range=hour', undefined, { headers: { cookie } })).json()) as { bucketSeconds: number; traffic: Array<{ action: string; n: number }>; topThreats: Array<{ key: string }> };
    assert.equal(stats.bucketSeconds, 60);
    assert.ok(stats.traffic.some((r) => r.action === 'block'), 'the EICAR sent above is in the figures');
    assert.ok(stats.topThreats.some((t) => /eicar/i.test(t.key)));
    assert.equal((await get('/api/v1/stats?range=week', ADMIN)).status, 400);

    // A viewer's cookie with a valid token still changes nothing.
    const vlogin = await get('/api/v1/session', undefined, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'victor', password: 'victor-secret' }) });
    const vcookie = (vlogin.headers.get('set-cookie') ?? '').split(';')[0]!;
    const vcsrf = ((await vlogin.json()) as { csrf: string }).csrf;
    assert.equal((await get('/api/v1/reload', undefined, { method: 'POST', headers: { cookie: vcookie, 'x-csrf-token': vcsrf } })).status, 403);

    // Logged out: the cookie is worth nothing.
    assert.equal((await get('/api/v1/session', undefined, { method: 'DELETE', headers: { cookie } })).status, 200);
    assert.equal((await get('/api/v1/status', undefined, { headers: { cookie } })).status, 401);
  });

  it('failed logins are rate-limited per address (429 with Retry-After) and logged', async () => {
    let last: Response | null = null;
    for (let i = 0; i < 12; i++) last = await get('/api/v1/status', basic('mallory', `guess${i}`));
    assert.equal(last!.status, 429);
    assert.ok(Number(last!.headers.get('retry-after')) > 0);
    // Even a right password waits out the window: the address is locked, not the user.
    assert.equal((await get('/api/v1/status', ADMIN)).status, 429);
    await outputMatches([gw.child.stdout, gw.child.stderr], gw.output, /admin login failed client=\S+ user=mallory/);
    const db = new Database(join(gw.dataDir, 'logs.sqlite'), { readonly: true });
    const failed = db.prepare("SELECT count(*) AS n FROM audit WHERE action = 'login-failed' AND user = 'mallory'").get() as { n: number };
    db.close();
    assert.equal(failed.n, 10, 'each checked failure is an audit row; those refused by the limit are not checked');
  });
});

describe('admin /metrics with two workers', () => {
  let up: UpstreamPeer;
  let gw: Running;
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-admin2-'));
  before(async () => {
    up = await startUpstream();
    gw = await startAdminGateway(dir, up.port, 2);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the supervisor sums the workers: the counter rises by exactly N whichever worker served', async () => {
    const text = async (): Promise<string> => (await fetch(`${gw.admin}/metrics`, { headers: { authorization: VIEWER } })).text();
    const allow = 'smtpwall_transactions_total{listener="inbound",action="allow"}';
    const before = await text();
    const N = 12;
    await Promise.all(Array.from({ length: N }, (_, i) => send(gw.smtp, `Subject: w${i}\r\n\r\nclean\r\n.\r\n`).then((r) => assert.match(r, /^250 /))));
    let now = await text();
    for (let i = 0; i < 500 && series(now, allow) - series(before, allow) < N; i++) now = await text();
    assert.equal(series(now, allow) - series(before, allow), N);
    assert.match(now, /role="supervisor"/);
    assert.equal((now.match(/^process_resident_memory_bytes\{pid="\d+",role="worker"\}/gm) ?? []).length, 2);
  });
});

describe('admin /healthz and engine_up with an engine down', () => {
  let up: UpstreamPeer;
  let gw: Running;
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-admin3-'));
  before(async () => {
    up = await startUpstream();
    gw = await startAdminGateway(dir, up.port, 1, `engines: { clamd: { address: "127.0.0.1:${await freePort()}" } }\n`);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('503 naming clamd, and smtpwall_engine_up 0 for it (1 for the stores that are up)', async () => {
    const h = await fetch(`${gw.admin}/healthz`);
    assert.equal(h.status, 503);
    const body = (await h.json()) as { ok: boolean; down: string[] };
    assert.equal(body.ok, false);
    assert.ok(body.down.some((d) => /^clamd /.test(d)), JSON.stringify(body.down));
    const text = await (await fetch(`${gw.admin}/metrics`, { headers: { authorization: VIEWER } })).text();
    assert.match(text, /^smtpwall_engine_up\{engine="clamd [^"]+"\} 0$/m);
    assert.match(text, /^smtpwall_engine_up\{engine="data-dir[^"]*"\} 1$/m);
  });
});
