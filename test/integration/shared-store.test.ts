/**
 * Many gateways, one store: two `smtpwall start` processes (instances gw-a and gw-b) on one
 * private PostgreSQL server (initdb in a temp directory), each with its own data directory.
 * One log across instances, a manual verdict set on A blocking the file on B within a second,
 * a message quarantined by A released from B exactly once — and the faults: PostgreSQL
 * stopped under traffic (records buffered in order, written once when it is back, or 451 in
 * tempfail mode), connections killed mid-write, down at start, a schema newer than the code.
 */

import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { basic, EICAR_MSG, freePort, send, spawnGateway, type SpawnedGateway } from '../helpers/admin-gateway.ts';
import { hashPassword } from '../../src/admin/passwords.ts';
import { outputMatches, RawClient, sha256, startUpstream, type UpstreamPeer, until } from '../helpers/peers.ts';
import { type PrivatePostgres, postgresBin, startPostgres } from '../helpers/postgres.ts';
import { pdf } from '../helpers/analysis-fixtures.ts';

const BIN = join(import.meta.dirname, '../../bin/smtpwall.js');
const run = promisify(execFile);

interface Instance extends SpawnedGateway {
  readonly name: string;
  readonly config: string;
  readonly smtp: number;
}

async function startInstance(dir: string, name: string, url: string, upstream: number, storeExtra = '', topExtra = ''): Promise<Instance> {
  const smtp = await freePort();
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    `data-dir: ${JSON.stringify(join(dir, name))}
instance: ${name}
store: { url: "${url}", statement-timeout: 2s, connect-timeout: 1s${storeExtra} }
listeners:
  - { name: inbound, listen: "127.0.0.1:${smtp}", upstream: "127.0.0.1:${upstream}" }
profiles:
  antivirus:
    av: { action: block, quarantine: true }
rules:
  - { name: scan-all, profiles: { antivirus: av } }
capture: { when: threats }
${topExtra}`,
  );
  return { name, config, smtp, ...(await spawnGateway(config, [[/listening listener=inbound/, 1]])) };
}

const cli = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const r = await run(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

/** A message with one attachment whose bytes are `content` (a text file: no analysis type). */
function withAttachment(subject: string, content: string): string {
  return `From: a@example.org\r\nTo: b@example.com\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(content).toString('base64')}\r\n--b--\r\n.\r\n`;
}

describe('shared PostgreSQL store', { skip: postgresBin() ? false : 'PostgreSQL is not installed' }, () => {
  let pg: PrivatePostgres;
  let upstream: UpstreamPeer;
  let dir: string;
  const running: Instance[] = [];

  before(async () => {
    pg = await startPostgres();
    upstream = await startUpstream();
    dir = mkdtempSync('/tmp/smtpwall-shared-');
  });

  after(async () => {
    await Promise.all(running.map((i) => i.stop()));
    await upstream?.close();
    pg?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (name: string, extra = '', topExtra = ''): Promise<Instance> => {
    const i = await startInstance(dir, name, pg.url, upstream.port, extra, topExtra);
    running.push(i);
    return i;
  };

  it('two instances: one log, a verdict on A blocks on B within a second, A quarantines and B releases once', async () => {
    const adminPort = await freePort();
    const [a, b] = [
      await start('gw-a'),
      await start('gw-b', '', `admin:\n  listen: "127.0.0.1:${adminPort}"\n  users: [{ name: alice, password-hash: "${await hashPassword('alice-secret')}", role: admin }]\n`),
    ];
    const api = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, { headers: { authorization: basic('alice', 'alice-secret') } });
      return { status: res.status, body: (res.headers.get('content-type') ?? '').includes('json') ? ((await res.json()) as Record<string, unknown>) : { bytes: (await res.arrayBuffer()).byteLength } };
    };
    const blocked = await send(a.smtp, EICAR_MSG);
    assert.match(blocked, /^541 5\.4\.1 /);
    const id = /id: ([A-Z2-7]{16}\.\d+)/.exec(blocked)![1]!;
    assert.match(await send(b.smtp, 'Subject: clean via b\r\n\r\nhello\r\n.\r\n'), /^250 /);

    // One log: both instances' records, named, from either config; filterable by instance.
    await until('both traffic records in PostgreSQL', () => Number(pg.psql('SELECT count(*) FROM traffic')) >= 2);
    const all = (await cli('logs', 'traffic', '-c', b.config, '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { instance: string; transactionId: string; action: string });
    assert.deepEqual(all.map((r) => [r.instance, r.action]).sort(), [['gw-a', 'block'], ['gw-b', 'allow']]);
    const table = (await cli('logs', 'traffic', '-c', a.config)).stdout;
    assert.match(table, /^time\s+instance\s+transaction/);
    assert.match(table, /gw-b\s+\S+\.1\s/);
    const onlyB = (await cli('logs', 'traffic', '-c', a.config, '--json', '--instance', 'gw-b')).stdout.trim().split('\n');
    assert.equal(onlyB.length, 1);
    assert.equal(JSON.parse(onlyB[0]!).instance, 'gw-b');
    const threats = (await cli('logs', 'threats', '-c', b.config, '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l) as { instance: string; threat: string });
    assert.deepEqual(threats.map((t) => [t.instance, t.threat]), [['gw-a', 'EICAR-Test-File']]);

    // B's admin plane reads the same store: A's threat, filterable by instance, and A's capture.
    const viaB = await api('/api/v1/threats?instance=gw-a');
    assert.equal(viaB.status, 200);
    assert.deepEqual((viaB.body.records as Array<{ instance: string; transactionId: string }>).map((r) => [r.instance, r.transactionId]), [['gw-a', id]]);
    assert.deepEqual((await api('/api/v1/threats?instance=gw-b')).body.records, []);
    await until('the capture of A\'s blocked session in PostgreSQL', () => pg.psql(`SELECT count(*) FROM captures WHERE session_id = '${id.split('.')[0]}'`) === '1');
    const pcap = await api(`/api/v1/transactions/${id}/capture.pcap`);
    assert.equal(pcap.status, 200);
    assert.ok((pcap.body.bytes as number) > 100);
    // status: the probe of the store, and the last hour's figures counted over both instances.
    const status = JSON.parse((await cli('status', '-c', a.config, '--json')).stdout) as { probes: Array<{ what: string; ok: boolean; detail: string }>; recent: Record<string, { messages: number }> };
    const probe = status.probes.find((p) => p.what.startsWith('store postgresql://'));
    assert.ok(probe?.ok, JSON.stringify(status.probes));
    assert.match(probe.detail, /^PostgreSQL \d+\.\d+.*, schema \d+$/);
    assert.equal(status.recent['last hour']!.messages, 2);
    const stats = await api('/api/v1/stats?range=hour');
    assert.equal((stats.body.traffic as Array<{ n: number }>).reduce((n, x) => n + x.n, 0), 2);

    // A manual verdict set with A's config, for a file no instance has seen, of a type analysis
    // does not judge (text): B blocks it within one second.
    const content = `harmless looking notes ${Date.now()}\n`;
    const message = withAttachment('notes', content);
    const set = await cli('verdicts', 'set', sha256(Buffer.from(content)), 'malicious', '--reason', 'seen in a campaign', '-c', a.config);
    assert.equal(set.code, 0, set.stderr);
    const setAt = Date.now();
    let reply = '';
    while (!reply.startsWith('541')) {
      reply = await send(b.smtp, message);
      assert.ok(Date.now() - setAt < 1000 || reply.startsWith('541'), `B still passes the file ${Date.now() - setAt} ms after the verdict: ${reply}`);
    }
    assert.ok(Date.now() - setAt < 1000, `B blocked after ${Date.now() - setAt} ms`);
    assert.match(reply, /Analysis\.Malicious/);

    // The EICAR message quarantined by A is listed and released from B, exactly once even when
    // A and B release it at the same moment.
    await until('the quarantine entry in PostgreSQL', () => pg.psql(`SELECT count(*) FROM quarantine WHERE id = '${id}'`) === '1');
    assert.match((await cli('quarantine', 'list', '-c', b.config)).stdout, new RegExp(id.replace('.', '\\.')));
    const before = upstream.messages.length;
    const [r1, r2] = await Promise.all([cli('quarantine', 'release', id, '-c', b.config), cli('quarantine', 'release', id, '-c', a.config)]);
    const outcomes = [r1, r2].map((r) => `${r.code} ${r.stdout}${r.stderr}`);
    assert.equal([r1, r2].filter((r) => r.code === 0).length, 1, outcomes.join('\n'));
    assert.ok(outcomes.some((o) => /being released by another command|already released/.test(o)), outcomes.join('\n'));
    await until('the released message upstream', () => upstream.messages.length > before);
    const again = await cli('quarantine', 'release', id, '-c', b.config);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /already released/);
    assert.equal(upstream.messages.length - before, 1, 'the quarantined message was delivered once');
    const release = (await cli('logs', 'traffic', '-c', a.config, '--json', '--action', 'release')).stdout.trim().split('\n');
    assert.equal(release.length, 1);
    assert.equal(JSON.parse(release[0]!).instance, r1.code === 0 ? 'gw-b' : 'gw-a', 'the release is recorded by the instance that made it');
    await Promise.all([a.stop(), b.stop()]);
  });

  /** Subjects of the traffic records of `instance`, in the order they were written (row ids). */
  const subjects = (instance: string): string[] => {
    const out = pg.psql(`SELECT subject FROM traffic WHERE instance = '${instance}' ORDER BY id`);
    return out === '' ? [] : out.split('\n');
  };
  const message = (subject: string): string => `Subject: ${subject}\r\n\r\nhello\r\n.\r\n`;

  it('PostgreSQL stopped under traffic: mail flows, records wait in order and are written once within 10 s of the restart', async () => {
    const c = await start('gw-c');
    assert.match(await send(c.smtp, message('c-0')), /^250 /);
    await until('the first record', () => subjects('gw-c').length === 1);
    pg.stop();
    for (let i = 1; i <= 20; i++) assert.match(await send(c.smtp, message(`c-${i}`)), /^250 /, `message ${i} while PostgreSQL is down`);
    await outputMatches([c.child.stdout, c.child.stderr], c.output, /shared store cannot be written; records are kept in memory/);
    // A file analysis judges (a PDF) while the verdict store is away: analysed here, delivered.
    assert.match(await send(c.smtp, withAttachment('c-pdf', pdf(`1 0 obj << /Type /Catalog >> endobj % ${Date.now()}`).toString('latin1'))), /^250 /);
    assert.equal(c.output().match(/shared store cannot be written/g)!.length, 1, 'the outage is logged once, not per record');
    pg.start();
    const restarted = Date.now();
    await until('every buffered record in PostgreSQL', () => subjects('gw-c').length >= 22, 10_000);
    assert.ok(Date.now() - restarted < 10_000);
    await outputMatches([c.child.stdout, c.child.stderr], c.output, /shared store writable again/);
    assert.deepEqual(subjects('gw-c'), [...Array.from({ length: 21 }, (_, i) => `c-${i}`), 'c-pdf'], 'in order, none twice, none lost');
    await c.stop();
  });

  it('store.on-failure: tempfail answers 451 while records cannot be written, and takes mail again after', async () => {
    const t = await start('gw-t', ', on-failure: tempfail');
    pg.stop();
    assert.match(await send(t.smtp, message('t-0')), /^250 /, 'the first message after the stop: the outage is not known yet');
    await outputMatches([t.child.stdout, t.child.stderr], t.output, /shared store cannot be written/);
    assert.match(await mailReply(t.smtp), /^451 /);
    pg.start();
    await outputMatches([t.child.stdout, t.child.stderr], t.output, /shared store writable again/);
    assert.match(await send(t.smtp, message('t-1')), /^250 /);
    await until('both records', () => subjects('gw-t').length === 2, 10_000);
    await t.stop();
  });

  it('connections killed with pg_terminate_backend under traffic: no record lost or written twice', async () => {
    const k = await start('gw-k');
    for (let i = 0; i < 60; i++) {
      assert.match(await send(k.smtp, message(`k-${i}`)), /^250 /);
      if (i % 10 === 5) pg.psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'smtpwall/gw-k'`);
    }
    await until('every record', () => subjects('gw-k').length >= 60, 10_000);
    assert.deepEqual(subjects('gw-k'), Array.from({ length: 60 }, (_, i) => `k-${i}`));
    await k.stop();
  });

  it('PostgreSQL down at start: the gateway starts and says so (or refuses, per store.down-at-start)', async () => {
    pg.stop();
    try {
      const refused = await startInstance(dir, 'gw-r', pg.url, upstream.port, ', down-at-start: refuse').then(
        () => assert.fail('started although down-at-start is refuse'),
        (err: Error) => err.message,
      );
      assert.match(refused, /store\.url: PostgreSQL cannot be used: .*\(store\.down-at-start: refuse\)/);
      assert.doesNotMatch(refused, /\n\s+at /, 'one clear line, no stack');
      const d = await start('gw-d');
      assert.match(d.output(), /shared store \(PostgreSQL\) unreachable at start: starting anyway/);
      assert.match(await send(d.smtp, message('d-0')), /^250 /);
      pg.start();
      await until('the record kept since the start', () => subjects('gw-d').length === 1, 10_000);
      await d.stop();
    } finally {
      try {
        pg.start();
      } catch {
        // already running
      }
    }
  });

  it('a schema newer than the code is refused with a clear message, by the gateway and the CLI', async () => {
    pg.psql('UPDATE smtpwall_schema SET version = version + 1');
    try {
      const refused = await startInstance(dir, 'gw-n', pg.url, upstream.port).then(
        () => assert.fail('started on a newer schema'),
        (err: Error) => err.message,
      );
      assert.match(refused, /schema is version \d+, newer than this smtpwall knows \(\d+\): upgrade smtpwall/);
      const logs = await cli('logs', 'traffic', '-c', join(dir, 'gw-n.yaml'));
      assert.notEqual(logs.code, 0);
      assert.match(logs.stderr, /newer than this smtpwall knows/);
      assert.doesNotMatch(logs.stderr, /\n\s+at /);
    } finally {
      pg.psql('UPDATE smtpwall_schema SET version = version - 1');
    }
  });
});

/** The reply to MAIL FROM of a new session (then QUIT). */
async function mailReply(port: number): Promise<string> {
  const c = await RawClient.connect(port);
  await c.reply();
  await c.cmd('EHLO client.example.org');
  const r = (await c.cmd('MAIL FROM:<sender@example.org>')) ?? '';
  c.destroy();
  return r;
}
