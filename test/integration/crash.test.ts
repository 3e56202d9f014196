/**
 * The gateway killed with SIGKILL in the middle of a transaction (a crash, the OOM killer):
 * the client sees its connection drop without a 2xx (so its MTA keeps the message and
 * retries), and the receiving server never completes the message — in both forwarding modes,
 * including cut-through, where the server already holds most of the bytes.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { outputMatches, RawClient, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const BIN = join(import.meta.dirname, '../../bin/smtpwall.js');

describe('SIGKILL mid-transaction', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    it(`${forwarding}: the client sees a dropped connection, no 2xx; the server completes nothing`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'smtpwall-crash-'));
      const cfg = join(dir, 'gw.yaml');
      writeFileSync(cfg, `data-dir: ./data\nlisteners:\n  - { name: in, listen: "127.0.0.1:0", upstream: "127.0.0.1:${up.port}", forwarding: ${forwarding} }\n`);
      const child = spawn(process.execPath, [BIN, 'start', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await outputMatches([child.stdout], () => out, /listening .*address=127\.0\.0\.1:\d+/, 1, 20_000);
      const port = Number(/address=127\.0\.0\.1:(\d+)/.exec(out)![1]);
      const before = up.messages.length;
      const c = await RawClient.connect(port);
      assert.match((await c.begin())!, /^354/);
      const closedBefore = up.closed;
      // Handed to the kernel on loopback: the bytes are at the gateway's socket (it may or may
      // not have read them all; either way it dies in the middle of the message).
      await c.writeFlushed(`Subject: half\r\n\r\n${'a line of the message\r\n'.repeat(5000)}`);
      process.kill(child.pid!, 'SIGKILL');
      assert.equal(await c.reply(5000), null, 'no reply at all, certainly no 250');
      assert.notEqual(await c.end(), 'open');
      // The receiving server has seen the gateway's connection go: whatever it would complete, it has.
      await up.waitClosed(closedBefore + 1);
      assert.equal(up.messages.length, before, 'the receiving server completed nothing');
    });
  }
});
