/**
 * Quarantine end to end: a profile with `quarantine: true` keeps a copy of what it blocks (in
 * both forwarding modes), `smtpwall quarantine list/show/release/delete` work on it, a release
 * reaches smtp-server as upstream byte for byte through a fresh SMTP session and is logged,
 * and retention deletes by age and by total size.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { QuarantineStore, unstuff } from '../../src/quarantine/store.ts';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const BIN = join(import.meta.dirname, '../../bin/smtpwall.js');
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [BIN, ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('quarantine', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    it(`${forwarding}: a blocked message is kept; list, show, release (byte-identical, logged), delete`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding, action: 'block, quarantine: true' });
      try {
        const body = `Subject: held for review\r\n\r\n.leading dot line\r\n${EICAR.toString('latin1')}\r\nend\r\n`;
        const c = await RawClient.connect(gw.port);
        await c.begin('alice@example.org', ['bob@example.com', 'carol@example.com']);
        c.write(`${body.replace(/^\./gm, '..')}.\r\n`);
        const reply = (await c.reply())!;
        assert.match(reply, /^541 5\.4\.1 /);
        const id = /id: ([A-Z2-7]{16}\.\d+)\)/.exec(reply)![1]!;
        const before = up.messages.length;
        const cfg = join(gw.dataDir, 'gw.yaml');
        writeFileSync(cfg, `data-dir: ${JSON.stringify(gw.dataDir)}\nlisteners:\n  - { name: test, listen: "127.0.0.1:0", upstream: "127.0.0.1:${up.port}" }\n`);
        const list = await run(['quarantine', 'list', '-c', cfg]);
        assert.equal(list.code, 0, list.stderr);
        assert.match(list.stdout, /^id +time +from +to +threat +action +released +subject$/m, 'a header row');
        assert.match(list.stdout, new RegExp(`^${id.replace('.', '\\.')} +\\S+ +alice@example\\.org +bob@example\\.com,carol@example\\.com +EICAR-Test-File +block +- +held for review$`, 'm'));
        const show = await run(['quarantine', 'show', id, '-c', cfg]);
        assert.ok(show.stdout.endsWith(body), 'show prints the message as received (dots unstuffed)');
        const rel = await run(['quarantine', 'release', id, '-c', cfg]);
        assert.equal(rel.code, 0, rel.stdout + rel.stderr);
        assert.match(rel.stdout, new RegExp(`^released ${id.replace('.', '\\.')} to bob@example\\.com, carol@example\\.com via 127\\.0\\.0\\.1:\\d+: 250 `));
        assert.equal(up.messages.length, before + 1);
        // Released once: a second release says when and to whom, and sends nothing.
        const again = await run(['quarantine', 'release', id, '-c', cfg]);
        assert.equal(again.code, 1);
        assert.match(again.stdout, new RegExp(`^NOT released ${id.replace('.', '\\.')}: already released \\d{4}-\\d\\d-\\d\\dT\\S+ to bob@example\\.com, carol@example\\.com \\(250 .*\\); --again sends it once more`));
        assert.equal(up.messages.length, before + 1, 'nothing sent the second time');
        // --to: to another recipient, on purpose, with --again.
        const other = await run(['quarantine', 'release', id, '--again', '--to', 'security@example.com', '-c', cfg]);
        assert.equal(other.code, 0, other.stdout + other.stderr);
        assert.deepEqual(up.messages.at(-1)!.to, ['security@example.com']);
        assert.equal(up.messages.at(-1)!.data.toString('latin1'), body);
        up.messages.pop();
        const got = up.messages.at(-1)!;
        assert.deepEqual([got.from, got.to], ['alice@example.org', ['bob@example.com', 'carol@example.com']]);
        assert.equal(got.data.toString('latin1'), body);
        const logs = gw.logs();
        const release = logs.listTraffic(10).at(-2)!;
        logs.close();
        assert.equal(release.transactionId, `${id}.release`);
        assert.equal(release.action, 'release');
        assert.match((await run(['quarantine', 'list', '-c', cfg])).stdout, / block +\d{4}-\d\d-\d\dT/);
        assert.equal((await run(['quarantine', 'delete', id, '-c', cfg])).code, 0);
        assert.match((await run(['quarantine', 'list', '-c', cfg])).stdout, /\n\(no records\)\n$/);
        const missing = await run(['quarantine', 'show', id, '-c', cfg]);
        assert.equal(missing.code, 2);
        assert.match(missing.stderr, /^smtpwall quarantine: no quarantined message /);
      } finally {
        await gw.stop();
      }
    });
  }

  it('nothing is kept without quarantine: true, nor for alert', async () => {
    const gw = await startGateway({ upstreamPort: up.port, action: 'alert, quarantine: true' });
    try {
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write(`Subject: x\r\n\r\n${EICAR.toString('latin1')}\r\n.\r\n`);
      assert.match((await c.reply())!, /^250 /);
      const store = new QuarantineStore(gw.dataDir, { maxAgeMs: 1e12, maxBytes: 1e12 });
      assert.deepEqual(await store.list(), []);
    } finally {
      await gw.stop();
    }
  });

  it('retention: by age, then oldest first beyond the total size; identical messages share one copy', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-q-'));
    const store = new QuarantineStore(dir, { maxAgeMs: 60_000, maxBytes: 250 });
    const meta = (n: number, ageMs: number) => ({
      id: `AAAAAAAAAAAAAAAA.${n}`, time: new Date(Date.now() - ageMs).toISOString(), listener: 'l', client: 'c', upstream: 'u:25',
      mailFrom: 'a@x', rcptTo: ['b@y'], subject: '', rule: 'r', action: 'block', reason: 'r', threat: 't',
    });
    async function* bytes(s: string) {
      yield Buffer.from(s);
    }
    await store.put(meta(1, 120_000), bytes('x'.repeat(100)));
    assert.deepEqual((await store.list()).map((e) => e.id), [], 'too old: pruned at once');
    await store.put(meta(2, 3000), bytes('a'.repeat(100)));
    await store.put(meta(3, 2000), bytes('a'.repeat(100)));
    await store.put(meta(4, 1000), bytes('b'.repeat(100)));
    assert.deepEqual((await store.list()).map((e) => e.id), ['AAAAAAAAAAAAAAAA.2', 'AAAAAAAAAAAAAAAA.3', 'AAAAAAAAAAAAAAAA.4'], '200 bytes stored: 2 and 3 share');
    await store.put(meta(5, 0), bytes('c'.repeat(100)));
    assert.deepEqual((await store.list()).map((e) => e.id), ['AAAAAAAAAAAAAAAA.4', 'AAAAAAAAAAAAAAAA.5']);
    assert.equal(unstuff(Buffer.from('..a\r\n.\r\nb\r\n...c')).toString(), '.a\r\n\r\nb\r\n..c');
  });
});
