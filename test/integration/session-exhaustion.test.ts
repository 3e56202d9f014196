/**
 * Long and large sessions: thousands of transactions and RSETs in one session cost time
 * linear in their number (no per-session state that grows), 1,000 recipients pass (the
 * default cap), and a 100 MB message over the size limit is read to its end and refused
 * without being kept in memory. (Floods of connections: stress.test.ts.)
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

describe('long and large sessions', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('3,000 MAIL/RSET pairs in one session: the last thousand take no longer than the first (linear)', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    try {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO client.example.org');
      const batch = async (n: number): Promise<number> => {
        const t0 = Date.now();
        for (let i = 0; i < n; i++) {
          c.write('MAIL FROM:<a@example.org>\r\nRSET\r\n');
          assert.match((await c.reply())!, /^250 /);
          assert.match((await c.reply())!, /^250 /);
        }
        return Date.now() - t0;
      };
      const first = await batch(1000);
      await batch(1000);
      const last = await batch(1000);
      assert.ok(last < first * 2 + 500, `first 1000: ${first} ms, last 1000: ${last} ms`);
      assert.match((await c.cmd('NOOP'))!, /^250 /);
    } finally {
      await gw.stop();
    }
  });

  it('1,000 recipients in one transaction are relayed; the 1,001st gets 452 4.5.3', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    try {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO client.example.org');
      await c.cmd('MAIL FROM:<a@example.org>');
      let batch = '';
      for (let i = 0; i < 1001; i++) batch += `RCPT TO:<r${i}@example.com>\r\n`;
      c.write(batch);
      const codes: string[] = [];
      for (let i = 0; i < 1001; i++) codes.push((await c.reply())!.slice(0, 9));
      assert.equal(codes.filter((x) => x.startsWith('250')).length, 1000);
      assert.equal(codes[1000], '452 4.5.3');
      assert.match((await c.cmd('DATA'))!, /^354/);
      c.write('Subject: many\r\n\r\nhello\r\n.\r\n');
      assert.match((await c.reply(10_000))!, /^250 /);
      assert.equal(up.messages.at(-1)!.to.length, 1000);
      assert.equal(up.messages.length, before + 1);
    } finally {
      await gw.stop();
    }
  });

  it('a 100 MB message over the 25 MiB limit: read to its end, 552 5.3.4, memory bounded, nothing delivered', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    try {
      const before = up.messages.length;
      const rss0 = process.memoryUsage().rss;
      const c = await RawClient.connect(gw.port);
      assert.match((await c.begin())!, /^354/);
      const block = Buffer.from(`${'y'.repeat(998)}\r\n`.repeat(1024)); // ~1 MB
      let peak = 0;
      for (let i = 0; i < 100; i++) {
        if (!c.socket.write(block)) await new Promise((r) => c.socket.once('drain', r));
        peak = Math.max(peak, process.memoryUsage().rss - rss0);
      }
      c.write('.\r\n');
      assert.match((await c.reply(60_000))!, /^552 5\.3\.4 /);
      assert.equal(up.messages.length, before);
      assert.ok(peak < 200 * 2 ** 20, `RSS grew by ${(peak / 2 ** 20).toFixed(0)} MiB`);
      assert.match((await c.cmd('NOOP'))!, /^250 /, 'the session goes on');
    } finally {
      await gw.stop();
    }
  });
});
