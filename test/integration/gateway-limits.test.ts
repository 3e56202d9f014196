/**
 * Limits and engine failures: each gives its SMTP reply and never a 2xx for a message that
 * was not inspected (DESIGN.md invariants 1 and 4).
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EngineError } from '../../src/errors.ts';
import type { Engine, EngineScan } from '../../src/inspect/engines/engine.ts';
import { SignatureEngine } from '../../src/inspect/engines/signatures.ts';
import { type GatewayPeer, RawClient, startGateway, startUpstream, until, type UpstreamPeer } from '../helpers/peers.ts';

/** An engine that never answers, or fails: what a hung or crashed scanner looks like. */
function brokenEngine(kind: 'hang' | 'fail'): Engine {
  return {
    name: `broken-${kind}`,
    open(): EngineScan {
      return {
        write() {},
        end: () => (kind === 'hang' ? new Promise(() => {}) : Promise.reject(new EngineError(`broken-${kind}`, 'scanner crashed'))),
      };
    },
  };
}

describe('limits', () => {
  let up: UpstreamPeer;
  let gw: GatewayPeer;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      upstreamPort: up.port,
      extra: 'limits: { max-sessions-per-client: 2, max-bad-commands: 3 }\ntimeouts: { client-idle: 300ms, message: 1500ms }\n',
    });
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  it('per-client session limit: 421 4.7.0', async () => {
    const a = await RawClient.connect(gw.port);
    const b = await RawClient.connect(gw.port);
    assert.match((await a.reply())!, /^220 /);
    assert.match((await b.reply())!, /^220 /);
    const c = await RawClient.connect(gw.port);
    assert.match((await c.reply())!, /^421 4\.7\.0 .*too many connections from your address/);
    a.destroy();
    b.destroy();
    // Once the gateway has seen them close (their sessions are gone), the address may connect again.
    await until('the sessions of the closed clients to end', () => gw.gateway.sessions().length === 0);
    const d = await RawClient.connect(gw.port);
    assert.match((await d.reply())!, /^220 /, 'the per-client count went down');
    d.destroy();
  });

  it('idle client: 421 4.4.2 timeout, upstream released', async () => {
    const closedBefore = up.closed;
    const c = await RawClient.connect(gw.port);
    await c.reply();
    assert.match((await c.reply(2000))!, /^421 4\.4\.2 .*timeout/);
    await up.waitClosed(closedBefore + 1);
  });

  it('idle client in the middle of DATA: 421, nothing delivered', async () => {
    const before = up.messages.length;
    const c = await RawClient.connect(gw.port);
    assert.match((await c.begin())!, /^354/);
    c.write('Subject: slow\r\n\r\nhalf');
    assert.match((await c.reply(2000))!, /^421 4\.4\.2/);
    assert.equal(up.messages.length, before);
  });

  it('slowloris: a command trickled byte by byte times out like a silent client (421)', async () => {
    const c = await RawClient.connect(gw.port);
    assert.match((await c.reply())!, /^220 /);
    // A byte every 50 ms is never idle for client-idle (300 ms): only a deadline for the whole
    // line can cut it off, so the 421 itself proves that deadline.
    const trickle = setInterval(() => !c.socket.destroyed && c.write('X'), 50);
    try {
      assert.match((await c.reply(5000))!, /^421 4\.4\.2 /);
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
  });

  it('slow DATA: a message trickling in faster than client-idle is cut off at timeouts.message; nothing delivered', async () => {
    const before = up.messages.length;
    const c = await RawClient.connect(gw.port);
    assert.match((await c.begin())!, /^354/);
    // A line every 100 ms is never idle for client-idle (300 ms): the 421 is timeouts.message's.
    let lines = 0;
    const trickle = setInterval(() => !c.socket.destroyed && (c.write('a slow line\r\n'), lines++), 100);
    try {
      assert.match((await c.reply(6000))!, /^421 4\.4\.2 /);
      assert.ok(lines >= 3, `${lines} lines: the client kept sending until it was cut off`);
      assert.equal(up.messages.length, before);
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
  });

  it('too many bad commands: 421 and close', async () => {
    const c = await RawClient.connect(gw.port);
    await c.reply();
    await c.cmd('BOGUS1');
    await c.cmd('BOGUS2');
    c.write('BOGUS3\r\n');
    assert.match((await c.reply())!, /^500 /);
    assert.match((await c.reply())!, /^421 4\.7\.0 .*too many errors/);
  });
});

for (const kind of ['hang', 'fail'] as const) {
  for (const mode of ['store-and-forward', 'cut-through'] as const) {
    it(`engine that ${kind === 'hang' ? 'never answers' : 'fails'} (${mode}): on-error tempfail 451, nothing delivered, logged`, async () => {
      const up = await startUpstream();
      const gw = await startGateway({
        upstreamPort: up.port,
        forwarding: mode,
        engines: [new SignatureEngine(), brokenEngine(kind)],
        extra: 'timeouts: { scan: 300ms }\n',
      });
      try {
        const c = await RawClient.connect(gw.port);
        assert.match((await c.begin())!, /^354/);
        c.write('Subject: clean\r\n\r\nclean\r\n.\r\n');
        assert.match((await c.reply(3000))!, /^451 4\.7\.1 .*\(id: [A-Z2-7]{16}\.1\)$/);
        assert.equal(up.messages.length, 0);
        const logs = gw.logs();
        const [t] = logs.listTraffic(1);
        logs.close();
        assert.equal(t!.action, 'tempfail');
        assert.match(t!.reason, kind === 'hang' ? /no verdict within 300 ms/ : /scanner crashed/);
      } finally {
        await gw.stop();
        await up.close();
      }
    });
  }
}

it('refused connections are closed by the gateway, so a stop completes (found by fuzzing)', { timeout: 20_000 }, async () => {
  // Refused sockets used to be half-closed and never read: they stayed open for the life of
  // the process (a descriptor leak under a flood) and server.close() never called back.
  const up = await startUpstream();
  const gw = await startGateway({ upstreamPort: up.port, extra: 'limits: { max-sessions-per-client: 1 }\n' });
  const a = await RawClient.connect(gw.port);
  assert.match((await a.reply())!, /^220 /);
  const refused = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(gw.port)));
  // Clients that talk before reading the greeting leave bytes the gateway never reads.
  for (const r of refused) r.write('EHLO eager.example\r\nMAIL FROM:<a@example.org>\r\n');
  for (const r of refused) assert.match((await r.reply())!, /^421 4\.7\.0/);
  a.destroy();
  // A leaked socket would keep server.close() from calling back: stop() would never resolve
  // (and the test runner's timeout would name this test).
  await gw.stop();
  await up.close();
});
