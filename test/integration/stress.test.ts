/**
 * Floods of idle connections (issue 20 §1), as an attacker would send them: greeted, then
 * silent, from many loopback addresses, each under the per-client limit. Stress mode must keep
 * the listener open for real senders — a new client is served at once, sessions in a
 * transaction are never cut, the gateway never holds more than max-sessions sessions (and so
 * upstream connections), memory stays bounded — and say when it starts and ends.
 */

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import type { LogFn } from '../../src/logs/process-log.ts';
import { RawClient, startGateway, startUpstream } from '../helpers/peers.ts';

interface Flooder {
  socket: Socket;
  /** The first reply line's code (220 greeted, 421 refused), once it came. */
  first: Promise<string>;
  /** Whether the gateway later closed it with a 421 (to make room, or the stress idle timeout). */
  evicted: boolean;
  closed: Promise<void>;
}

/** The gateway's log lines, and a wait for the first (new or past) matching one. */
function logCollector(): { lines: string[]; log: LogFn; logged(re: RegExp): Promise<string> } {
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  return {
    lines,
    log: (level, msg, fields) => {
      const line = `${level} ${msg} ${JSON.stringify(fields ?? {})}`;
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.re.test(line)) w.resolve(line);
        else waiters.push(w);
      }
    },
    logged: (re) => {
      const seen = lines.find((l) => re.test(l));
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ re, resolve }));
    },
  };
}

/** One attacker connection from `localAddress`: read the greeting, then say nothing. */
function flooder(port: number, localAddress: string): Flooder {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  let text = '';
  let resolveFirst: (s: string) => void = () => {};
  const f: Flooder = {
    socket,
    first: new Promise<string>((r) => (resolveFirst = r)),
    evicted: false,
    closed: new Promise<void>((r) => socket.once('close', () => r())),
  };
  socket.on('data', (d) => {
    text += d;
    if (text.includes('\n')) resolveFirst(text.slice(0, 3));
    if (/\n421 4\.[47]\.[02] /.test(text)) f.evicted = true; // closed to make room, or timed out (stress idle)
  });
  socket.on('error', () => resolveFirst('ERR'));
  socket.on('close', () => resolveFirst('CLOSED'));
  return f;
}

/** `n` flooders from `addresses` loopback addresses (127.0.1.x, 127.0.2.x, …), opened `batch` at a time. */
async function flood(port: number, n: number, addresses: number, batch = 50): Promise<Flooder[]> {
  const all: Flooder[] = [];
  for (let i = 0; i < n; i += batch) {
    const wave = Array.from({ length: Math.min(batch, n - i) }, (_, j) => {
      const k = (i + j) % addresses;
      return flooder(port, `127.0.${1 + Math.floor(k / 250)}.${1 + (k % 250)}`);
    });
    await Promise.all(wave.map((f) => f.first));
    all.push(...wave);
  }
  return all;
}

/** A transaction opened before the flood and finished after it: EHLO, MAIL, RCPT, DATA, half a body. */
async function openTransaction(port: number, n: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  assert.match((await c.reply())!, /^220 /);
  await c.cmd('EHLO inflight.example');
  assert.match((await c.cmd('MAIL FROM:<inflight@example.org>'))!, /^250 /);
  assert.match((await c.cmd(`RCPT TO:<r${n}@example.com>`))!, /^250 /);
  assert.match((await c.cmd('DATA'))!, /^354 /);
  c.write(`Subject: in flight ${n}\r\n\r\nfirst half\r\n`);
  return c;
}

for (const [total, addresses] of [[1000, 100], [5000, 500]] as const) {
  describe(`a flood of ${total} idle connections from ${addresses} addresses`, { timeout: 180_000 }, () => {
    it('a real client is served at once, transactions in flight are delivered, sessions and upstream connections stay within max-sessions, memory bounded', async (t) => {
      const up = await startUpstream();
      const { lines, log, logged } = logCollector();
      const gw = await startGateway({
        upstreamPort: up.port,
        extra: 'limits: { max-sessions: 200, max-sessions-per-client: 20, stress-occupancy: 80 }\ntimeouts: { stress-client-idle: 2s }\n',
        log,
      });
      const flooders: Flooder[] = [];
      try {
        const inflight = await Promise.all([1, 2, 3].map((n) => openTransaction(gw.port, n)));
        const rss0 = process.memoryUsage().rss;
        let peakSessions = 0;
        let peakUpstream = 0;
        const watch = setInterval(() => {
          peakSessions = Math.max(peakSessions, gw.gateway.sessions().length);
          peakUpstream = Math.max(peakUpstream, up.opened - up.closed);
        }, 20);
        const started = Date.now();
        flooders.push(...(await flood(gw.port, total, addresses)));
        clearInterval(watch);
        const rss = process.memoryUsage().rss - rss0;
        // Attacker connections are greeted as long as an idle session can make room (one still
        // waiting for its upstream greeting cannot); none is left unanswered.
        const firsts = await Promise.all(flooders.map((f) => f.first));
        const greeted = firsts.filter((c) => c === '220').length;
        const refused = firsts.filter((c) => c === '421').length;
        assert.equal(greeted + refused, total, 'every connection got a greeting or a 421');
        assert.ok(greeted > total / 2, `most got a session: room was made (${greeted} of ${total})`);
        assert.ok(lines.some((l) => l.startsWith('warn stress mode on')), 'stress mode was logged');
        // A real client now: greeted at once, its message delivered.
        const t0 = Date.now();
        const real = await RawClient.connect(gw.port);
        assert.match((await real.reply(2000))!, /^220 /);
        const waited = Date.now() - t0;
        await real.cmd('EHLO real.example');
        await real.cmd('MAIL FROM:<real@example.org>');
        await real.cmd('RCPT TO:<bob@example.com>');
        assert.match((await real.cmd('DATA'))!, /^354 /);
        real.write('Subject: during the flood\r\n\r\nhello\r\n.\r\n');
        assert.match((await real.reply(10_000))!, /^250 /);
        // The transactions opened before the flood were never cut: finished now, delivered.
        for (const c of inflight) {
          c.write('second half\r\n.\r\n');
          assert.match((await c.reply(10_000))!, /^250 /);
        }
        const subjects = up.messages.map((m) => /^Subject: (.*)$/m.exec(m.data.toString('latin1'))?.[1]);
        for (const s of ['during the flood', 'in flight 1', 'in flight 2', 'in flight 3']) assert.ok(subjects.includes(s), `${s} delivered`);
        // A blocked message is still blocked under stress.
        const bad = await RawClient.connect(gw.port);
        assert.match((await bad.begin())!, /^354/);
        bad.write(`Subject: x\r\n\r\n${EICAR.toString('latin1')}\r\n.\r\n`);
        assert.match((await bad.reply(10_000))!, /^541 5\.4\.1 /);
        const evicted = flooders.filter((f) => f.evicted).length;
        t.diagnostic(`${total} flooders: ${greeted} greeted, ${refused} refused, ${evicted} closed again; peak ${peakSessions} sessions, ${peakUpstream} upstream connections (max-sessions 200); RSS +${(rss / 2 ** 20).toFixed(0)} MiB; flood ${Date.now() - started} ms; a real client waited ${waited} ms for its greeting`);
        assert.ok(evicted >= greeted - 210, `idle sessions were closed to make room (${evicted})`);
        assert.ok(peakSessions <= 200 + 5, `sessions stayed within max-sessions (peak ${peakSessions})`);
        assert.ok(peakUpstream <= 200 + 10, `upstream connections stayed within max-sessions (peak ${peakUpstream})`);
        assert.ok(rss < 200 * 2 ** 20, `RSS grew by ${(rss / 2 ** 20).toFixed(0)} MiB`);
        for (const c of [real, bad, ...inflight]) c.destroy();
        // The flood ends: stress mode ends, with a line.
        const off = logged(/^info stress mode off/);
        for (const f of flooders) f.socket.destroy();
        await off;
      } finally {
        for (const f of flooders) f.socket.destroy();
        await gw.stop();
        await up.close();
      }
    });
  });
}

describe('stress mode below full', { timeout: 60_000 }, () => {
  it('at the occupancy threshold idle sessions get the short timeout, one bad command ends a session, and it ends with a log line', async () => {
    const up = await startUpstream();
    const { lines, log, logged } = logCollector();
    const gw = await startGateway({
      upstreamPort: up.port,
      extra: 'limits: { max-sessions: 20, max-sessions-per-client: 20, stress-occupancy: 50, max-bad-commands: 5 }\ntimeouts: { stress-client-idle: 500ms }\n',
      log,
    });
    try {
      // Below the threshold: nothing changes (a bad command is just a bad command).
      const early = await RawClient.connect(gw.port);
      assert.match((await early.reply())!, /^220 /);
      assert.match((await early.cmd('BOGUS'))!, /^500 /);
      assert.match((await early.cmd('NOOP'))!, /^250 /);
      const idle = await Promise.all(Array.from({ length: 11 }, () => RawClient.connect(gw.port)));
      for (const c of idle) assert.match((await c.reply())!, /^220 /);
      assert.ok(lines.some((l) => l.startsWith('warn stress mode on')));
      // Under stress: one bad command ends the session.
      const clumsy = await RawClient.connect(gw.port);
      assert.match((await clumsy.reply())!, /^220 /);
      assert.match((await clumsy.cmd('BOGUS'))!, /^500 /);
      assert.match((await clumsy.reply())!, /^421 4\.7\.0 .*too many errors/);
      // Idle sessions past stress-client-idle are closed — by the sweep (421 4.7.0) those that
      // were waiting with the long timeout, by the short timeout (421 4.4.2) the others.
      const off = logged(/^info stress mode off/);
      for (const c of [early, ...idle]) {
        assert.match((await c.reply(5000))!, /^421 4\.(7\.0 .*idle session closed|4\.2 .*timeout)/);
        await c.closed;
      }
      // Occupancy fell: stress mode ends, and says how many idle sessions it closed to make room.
      assert.match(await off, /"idle sessions closed":\d+/);
      assert.ok(lines.some((l) => /idle session closed to make room/.test(l)), 'the sweep closed the sessions that waited with the long timeout');
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});
