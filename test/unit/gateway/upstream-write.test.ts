import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { Upstream } from '../../../src/gateway/upstream.ts';

/** A server that greets, then reads nothing until told: the gateway's writes back up. */
async function stallingServer(): Promise<{ port: number; peer: Promise<Socket>; close: () => void }> {
  let give!: (s: Socket) => void;
  const peer = new Promise<Socket>((r) => (give = r));
  const server = createServer((s) => {
    s.pause();
    s.write('220 stalling ESMTP\r\n');
    give(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return { port, peer, close: () => server.close() };
}

test('several buffers written corked arrive whole and in order, through backpressure', async () => {
  const srv = await stallingServer();
  const { upstream } = await Upstream.connect('127.0.0.1', srv.port, 5000);
  const peer = await srv.peer;
  // 512 × 64 KiB (32 MiB): beyond what the kernel buffers for a reader that reads nothing,
  // so the write waits for the drain (the next test shows that wait ending in a reset).
  const chunks = Array.from({ length: 512 }, (_, i) => Buffer.alloc(64 * 1024, 0x30 + (i % 10)));
  const written = upstream.writeData(chunks, 10_000);
  const got: Buffer[] = [];
  let bytes = 0;
  const all = 512 * 64 * 1024;
  const received = new Promise<void>((resolve) => {
    peer.on('data', (d: Buffer) => {
      got.push(d);
      bytes += d.length;
      if (bytes >= all) resolve();
    });
  });
  peer.resume();
  await written;
  await received;
  assert.equal(Buffer.compare(Buffer.concat(got), Buffer.concat(chunks)), 0);
  upstream.close();
  peer.destroy();
  srv.close();
});

test('a server that never reads is reset after the timeout: the corked write rejects', async () => {
  const srv = await stallingServer();
  const { upstream } = await Upstream.connect('127.0.0.1', srv.port, 5000);
  const peer = await srv.peer;
  const chunks = Array.from({ length: 512 }, () => Buffer.alloc(64 * 1024, 0x41));
  await assert.rejects(upstream.writeData(chunks, 200), /took no data/);
  peer.destroy();
  srv.close();
});
