/**
 * listeners[].upstream-reuse against smtp-server: one upstream session serves client after
 * client, each greeted from the upstream's own texts and named to it with XFORWARD, and
 * nothing of one client reaches the next — not an envelope left open, not XFORWARD or
 * XCLIENT attributes, not a session a block ended. An upstream that drops a parked session
 * is replaced without the client noticing.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { parseConfig } from '../../src/policy/load-config.ts';
import { type GatewayPeer, RawClient, startGateway, startUpstream, until, type UpstreamPeer } from '../helpers/peers.ts';

/** One message through the gateway as a fresh client; returns the client's greeting. */
async function sendOne(port: number, helo: string, from: string, to: string, body = 'hello'): Promise<string> {
  const c = await RawClient.connect(port);
  const greeting = (await c.reply())!;
  assert.match((await c.cmd(`EHLO ${helo}`))!, /^250/);
  assert.match((await c.cmd(`MAIL FROM:<${from}>`))!, /^250/);
  assert.match((await c.cmd(`RCPT TO:<${to}>`))!, /^250/);
  assert.match((await c.cmd('DATA'))!, /^354/);
  c.write(`Subject: ${helo}\r\n\r\n${body}\r\n.\r\n`);
  assert.match((await c.reply())!, /^250 /);
  assert.match((await c.cmd('QUIT'))!, /^221 /);
  await c.end();
  return greeting;
}

describe('upstream session reuse', () => {
  let up: UpstreamPeer;
  let gw: GatewayPeer;
  /** Per MAIL the upstream saw: its connection, and the client XFORWARD named. */
  const mails: Array<{ conn: string; helo: unknown; addr: unknown; from: string }> = [];
  before(async () => {
    up = await startUpstream({
      useXForward: true,
      onMailFrom(address, session, cb) {
        mails.push({ conn: session.id, helo: session.xForward.get('HELO'), addr: session.xForward.get('ADDR'), from: address.address });
        cb();
      },
    });
    gw = await startGateway({ upstreamPort: up.port, listener: 'upstream-reuse: true\ntrusted-clients: ["127.0.0.1"]' });
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  it('clients one after another share one upstream session, each named by XFORWARD', async () => {
    const opened = up.opened;
    const g1 = await sendOne(gw.port, 'first.example', 'a@example.org', 'x@example.com');
    const g2 = await sendOne(gw.port, 'second.example', 'b@example.org', 'y@example.com');
    assert.equal(up.opened, opened + 1, 'one upstream connection for both');
    assert.equal(g2, g1, "the second client is greeted with the upstream's own greeting");
    const [m1, m2] = mails.slice(-2);
    assert.equal(m1!.conn, m2!.conn);
    assert.deepEqual([m1!.helo, m2!.helo], ['first.example', 'second.example']);
    assert.equal(m2!.addr, '127.0.0.1');
    const [d1, d2] = up.messages.slice(-2);
    assert.deepEqual([d1!.from, d1!.to], ['a@example.org', ['x@example.com']]);
    assert.deepEqual([d2!.from, d2!.to], ['b@example.org', ['y@example.com']]);
  });

  it('an envelope left open by one client is reset before the next client gets the session', async () => {
    const opened = up.opened;
    const c = await RawClient.openTransaction(gw.port, { from: 'left@example.org', to: ['left-open@example.com'] });
    assert.match((await c.cmd('QUIT'))!, /^221 /);
    await c.end();
    await sendOne(gw.port, 'next.example', 'n@example.org', 'only-me@example.com');
    assert.equal(up.opened, opened, 'the same upstream session');
    const last = up.messages.at(-1)!;
    assert.deepEqual([last.from, last.to], ['n@example.org', ['only-me@example.com']]);
  });

  it("a client's XFORWARD or XCLIENT changes the upstream session: it is never reused", async () => {
    const opened = up.opened;
    const c = await RawClient.connect(gw.port);
    await c.reply();
    await c.cmd('EHLO trusted.example');
    assert.match((await c.cmd('XFORWARD NAME=spoofed.example'))!, /^250/);
    assert.match((await c.cmd('QUIT'))!, /^221 /);
    await c.end();
    await sendOne(gw.port, 'after.example', 'c@example.org', 'z@example.com');
    assert.equal(up.opened, opened + 1, 'a new upstream connection for the next client');
  });

  it('a session a block ended is not reused', async () => {
    await sendOne(gw.port, 'warm.example', 'w@example.org', 'w@example.com'); // a parked session exists
    const opened = up.opened;
    const c = await RawClient.openTransaction(gw.port);
    assert.match((await c.cmd('DATA'))!, /^354/);
    c.write(`Subject: eicar\r\n\r\n${EICAR.toString('latin1')}\r\n.\r\n`);
    assert.match((await c.reply())!, /^541 /);
    await c.end();
    await sendOne(gw.port, 'clean.example', 'd@example.org', 'v@example.com');
    assert.equal(up.opened, opened + 1, 'the blocked session went, a new one came');
  });

  it('transparent listeners refuse upstream-reuse', () => {
    assert.throws(
      () => parseConfig('listeners:\n  - { name: t, listen: "127.0.0.1:2525", mode: transparent, upstream-reuse: true }\n'),
      /upstream-reuse.*cannot be reused/s,
    );
  });
});

describe('upstream session reuse: the upstream drops a parked session', () => {
  it('the next client gets a new upstream session, unaware', async () => {
    const up = await startUpstream({ socketTimeout: 300 });
    const gw = await startGateway({ upstreamPort: up.port, listener: 'upstream-reuse: true' });
    try {
      await sendOne(gw.port, 'one.example', 'a@example.org', 'x@example.com');
      // The upstream times the parked session out (421, close): the positive signal it is gone.
      await until('the upstream to drop the idle session', () => up.closed >= 1);
      await sendOne(gw.port, 'two.example', 'b@example.org', 'y@example.com');
      assert.equal(up.opened, 2);
      assert.equal(up.messages.length, 2);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});
