/**
 * Faults on the gateway's own side: a log database another process holds locked, and a spool
 * that cannot be written (disk full, broken directory). Mail either flows (logging is not
 * worth losing mail over) or gets a 4xx — never a 2xx for a message that was not delivered,
 * never a crash.
 */

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

describe('faults on the gateway side', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  it('log database locked by another process: mail is still delivered; the gateway keeps working', async () => {
    const gw = await startGateway({ upstreamPort: up.port });
    const locker = new Database(join(gw.dataDir, 'logs.sqlite'));
    try {
      locker.exec('BEGIN EXCLUSIVE');
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write('Subject: while locked\r\n\r\nclean\r\n.\r\n');
      assert.match((await c.reply(15_000))!, /^250 /);
      assert.equal(up.messages.length, before + 1);
      locker.exec('COMMIT');
      const c2 = await RawClient.connect(gw.port);
      await c2.begin();
      c2.write('Subject: after\r\n\r\nclean\r\n.\r\n');
      assert.match((await c2.reply())!, /^250 /);
      const logs = gw.logs();
      const subjects = logs.listTraffic(10).map((t) => t.subject);
      logs.close();
      assert.ok(subjects.includes('after'), 'records are written again once the lock is gone');
    } finally {
      locker.close();
      await gw.stop();
    }
  });

  it('spool cannot be written (store-and-forward, beyond spool-memory): 452 4.3.1, nothing delivered', async () => {
    const gw = await startGateway({ upstreamPort: up.port, extra: 'limits: { spool-memory: 64kb }\n' });
    writeFileSync(join(gw.dataDir, 'spool'), 'a file where the spool directory should be');
    try {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write(`Subject: big\r\n\r\n${'line of text for the spool\r\n'.repeat(10_000)}.\r\n`);
      assert.match((await c.reply(15_000))!, /^452 4\.3\.1 Insufficient system storage/);
      assert.equal(up.messages.length, before);
      const c2 = await RawClient.connect(gw.port);
      await c2.begin();
      c2.write('Subject: small\r\n\r\nfits in memory\r\n.\r\n');
      assert.match((await c2.reply())!, /^250 /, 'small messages still pass: the gateway is fine');
    } finally {
      await gw.stop();
    }
  });
});
