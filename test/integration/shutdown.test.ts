/**
 * Graceful shutdown: a stopping gateway accepts no new connection, lets a transaction in
 * flight finish within the grace period, and tells the idle rest 421 — nothing lost.
 */

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { it } from 'node:test';
import { RawClient, startGateway, startUpstream } from '../helpers/peers.ts';

it('stop: the transaction in flight completes, idle sessions get 421, new connections are refused', async () => {
  const up = await startUpstream();
  const gw = await startGateway({ upstreamPort: up.port });
  const busy = await RawClient.connect(gw.port);
  assert.match((await busy.begin())!, /^354/);
  busy.write('Subject: in flight\r\n\r\nfirst half\r\n');
  const idle = await RawClient.connect(gw.port);
  assert.match((await idle.reply())!, /^220 /);

  // stop() closes the listening socket before it returns to the event loop: no wait needed.
  const stopped = gw.gateway.stop(1500);
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect(gw.port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });
  assert.ok(refused, 'no new connections while stopping');

  busy.write('second half\r\n.\r\n');
  assert.match((await busy.reply())!, /^250 /, 'the transaction in flight was completed');
  assert.equal(up.messages.length, 1);
  assert.match((await idle.reply(5000))!, /^421 4\.3\.2 /, 'idle sessions are told to come back later');
  await stopped;
  rmSync(gw.dataDir, { recursive: true, force: true });
  await up.close();
});
