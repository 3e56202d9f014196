/**
 * The clamd engine against a real clamd (Debian's clamav-daemon) with a test database: files
 * and messages streamed over INSTREAM, findings named by clamd, and every failure of the
 * scanner turned into the on-error action, never into a pass.
 */

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ClamdEngine } from '../../src/inspect/engines/clamd.ts';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../src/inspect/inspector.ts';
import { zip } from '../helpers/archives.ts';
import { CLAMD_MARKER, type ClamdPeer, clamdUnavailable, startClamd } from '../helpers/clamd.ts';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const attachment = (data: Buffer): string =>
  `Subject: clamd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n` +
  `--zz\r\nContent-Type: application/octet-stream; name="x.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${data.toString('base64')}\r\n--zz--\r\n`;

describe('clamd engine', { skip: clamdUnavailable() ?? false, timeout: 60_000 }, () => {
  let clamd: ClamdPeer;
  let up: UpstreamPeer;
  before(async () => {
    clamd = await startClamd();
    up = await startUpstream();
  });
  after(async () => {
    await clamd.stop();
    await up.close();
  });

  it('finds the test signatures in files and in a whole message, and passes clean data', async () => {
    const inspector = new Inspector({ engines: [new ClamdEngine({ address: { host: '127.0.0.1', port: clamd.port }, timeoutMs: 5000, objects: 'all' })] });
    const hit = await inspector.scanBuffer(Buffer.from(`junk ${CLAMD_MARKER} junk`), false, 10_000, 'f');
    assert.deepEqual(hit.findings.map((f) => [f.engine, f.threat]), [['clamd', 'Smtpwall.Test.Marker.UNOFFICIAL']]);
    const hash = await inspector.scanBuffer(EICAR, false, 10_000, 'e');
    assert.deepEqual(hash.findings.map((f) => f.threat), ['Smtpwall.Test.Eicar.UNOFFICIAL']);
    assert.deepEqual((await inspector.scanBuffer(Buffer.alloc(100_000, 7), false, 10_000)).findings, []);
    const scan = inspector.begin();
    scan.write(Buffer.from(attachment(Buffer.from(CLAMD_MARKER)), 'latin1'));
    const r = await scan.end(10_000);
    assert.ok(r.findings.some((f) => f.file.path === 'msg/2' && f.threat === 'Smtpwall.Test.Marker.UNOFFICIAL'));
  });

  it('over the unix socket too; sessions are pooled (one per concurrent object, not one per object)', async () => {
    const engine = new ClamdEngine({ address: { path: clamd.socket }, timeoutMs: 5000, objects: 'all' });
    const inspector = new Inspector({ engines: [engine] });
    try {
      const msg = Buffer.from(attachment(zip([{ name: 'm.bin', data: Buffer.from(`x ${CLAMD_MARKER} x`) }, { name: 'e.com', data: EICAR }])), 'latin1');
      for (let i = 0; i < 5; i++) {
        const scan = inspector.begin();
        scan.write(msg);
        const r = await scan.end(10_000);
        assert.deepEqual(
          r.findings.map((f) => `${f.threat}@${f.file.path}`).sort(),
          ['Smtpwall.Test.Eicar.UNOFFICIAL@msg/2/x.bin/e.com', 'Smtpwall.Test.Marker.UNOFFICIAL@msg/2/x.bin/m.bin'],
        );
      }
      assert.ok(engine.sessionsOpened <= 10, `5 messages × 5 objects took ${engine.sessionsOpened} sessions`);
    } finally {
      await engine.close();
    }
  });

  for (const mode of ['store-and-forward', 'cut-through'] as const) {
    it(`gateway with clamd (${mode}): blocks what clamd finds with 541, delivers clean mail`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding: mode, extra: `engines: { clamd: { address: "127.0.0.1:${clamd.port}" } }\n` });
      try {
        const before = up.messages.length;
        const c = await RawClient.connect(gw.port);
        assert.match((await c.begin())!, /^354/);
        c.write(`${attachment(Buffer.from(`payload ${CLAMD_MARKER}`))}.\r\n`);
        assert.match((await c.reply())!, /^541 5\.4\.1 Content blocked by smtpwall \(threat: Smtpwall\.Test\.Marker\.UNOFFICIAL, id: /);
        const c2 = await RawClient.connect(gw.port);
        assert.match((await c2.begin())!, /^354/);
        c2.write(`${attachment(Buffer.from('harmless'))}.\r\n`);
        assert.match((await c2.reply())!, /^250 /);
        await c2.cmd('QUIT');
        assert.equal(up.messages.length, before + 1);
        const logs = gw.logs();
        const threat = logs.listThreats(10).find((t) => t.engine === 'clamd');
        logs.close();
        assert.equal(threat?.threat, 'Smtpwall.Test.Marker.UNOFFICIAL');
        assert.equal(threat?.filePath, 'msg/2');
      } finally {
        await gw.stop();
      }
    });
  }
});

describe('clamd killed mid-scan', { skip: clamdUnavailable() ?? false, timeout: 60_000 }, () => {
  it('the message in flight gets 451 (on-error), nothing delivered; the next one too while clamd is gone', async () => {
    const clamd = await startClamd();
    const up = await startUpstream();
    const gw = await startGateway({ upstreamPort: up.port, extra: `engines: { clamd: { address: "127.0.0.1:${clamd.port}", timeout: 2s } }\n` });
    try {
      const c = await RawClient.connect(gw.port);
      assert.match((await c.begin())!, /^354/);
      c.write(`Subject: big\r\n\r\n${'a line for clamd to chew on\r\n'.repeat(20_000)}`);
      await new Promise((r) => setTimeout(r, 200));
      clamd.kill();
      c.write('the end\r\n.\r\n');
      assert.match((await c.reply(10_000))!, /^451 4\.7\.1 /);
      const c2 = await RawClient.connect(gw.port);
      assert.match((await c2.begin())!, /^354/);
      c2.write('Subject: small\r\n\r\nhello\r\n.\r\n');
      assert.match((await c2.reply(10_000))!, /^451 4\.7\.1 /);
      assert.equal(up.messages.length, 0);
    } finally {
      await gw.stop();
      await up.close();
      await clamd.stop();
    }
  });
});

describe('clamd failures never pass mail', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('clamd unreachable: 451 (on-error tempfail)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gw = await startGateway({ upstreamPort: up.port, extra: `engines: { clamd: { address: "127.0.0.1:${port}" } }\n` });
    try {
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write('Subject: x\r\n\r\nclean\r\n.\r\n');
      assert.match((await c.reply())!, /^451 4\.7\.1 /);
      assert.equal(up.messages.length, 0);
    } finally {
      await gw.stop();
    }
  });

  for (const [name, behave] of [
    ['answers garbage', (s: import('node:net').Socket) => s.on('data', (d) => d.includes(Buffer.alloc(4)) && s.end('I am not clamd\0'))],
    ['closes mid-scan', (s: import('node:net').Socket) => s.once('data', () => s.destroy())],
    ['is too slow', (_s: import('node:net').Socket) => {}],
  ] as const) {
    it(`clamd that ${name}: 451, nothing delivered`, async () => {
      const fake = createServer((s) => {
        s.on('error', () => {});
        behave(s);
      });
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
      const port = (fake.address() as { port: number }).port;
      const gw = await startGateway({ upstreamPort: up.port, extra: `engines: { clamd: { address: "127.0.0.1:${port}", timeout: 300ms } }\n` });
      try {
        const before = up.messages.length;
        const c = await RawClient.connect(gw.port);
        await c.begin();
        c.write('Subject: x\r\n\r\nclean\r\n.\r\n');
        assert.match((await c.reply(5000))!, /^451 4\.7\.1 /);
        assert.equal(up.messages.length, before);
      } finally {
        await gw.stop();
        fake.close();
      }
    });
  }
});
