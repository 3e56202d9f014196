/**
 * SessionCapture's lifetime: a session's bytes are forgotten when the session is over
 * (release), and a socket that another capture took over (a reused upstream connection) keeps
 * reporting to that one. Real loopback sockets: the capture hooks Node's own push and write.
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { SessionCapture, tapSocket } from '../../../src/gateway/capture.ts';

async function socketPair(): Promise<{ gateway: Socket; peer: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const gateway = connect(port, '127.0.0.1');
  await once(gateway, 'connect');
  const [peer] = await accepted;
  return {
    gateway,
    peer,
    close: () => {
      gateway.destroy();
      peer.destroy();
      server.close();
    },
  };
}

/** Resolves with the next `n` bytes that arrive on `socket`. */
function receive(socket: Socket, n: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let have = 0;
  return new Promise((resolve) => {
    const on = (b: Buffer): void => {
      got.push(b);
      have += b.length;
      if (have >= n) {
        socket.off('data', on);
        resolve(Buffer.concat(got));
      }
    };
    socket.on('data', on);
  });
}

test('release forgets the bytes and unhooks the sockets: later traffic is not kept', async () => {
  const { gateway, peer, close } = await socketPair();
  try {
    const capture = new SessionCapture(1 << 20);
    capture.tap(gateway, 'client');
    const read = receive(gateway, 6);
    peer.write('EHLO\r\n');
    await read;
    const sent = receive(peer, 5);
    gateway.write('250\r\n');
    await sent;
    const before = capture.snapshot();
    assert.deepEqual(
      before.events.filter((e) => e.kind === 'data').map((e) => `${e.from}:${e.bytes!.toString()}`),
      ['peer:EHLO\r\n', 'gateway:250\r\n'],
    );
    capture.release();
    assert.equal(capture.snapshot().events.length, 0);
    assert.equal(capture.snapshot().connections.length, 0);
    // Bytes after the release: they arrive (the positive signal), and are not kept.
    const late = receive(peer, 6);
    gateway.write('QUIT\r\n');
    assert.equal((await late).toString(), 'QUIT\r\n');
    assert.equal(capture.snapshot().events.length, 0);
  } finally {
    close();
  }
});

test("release does not unhook a socket that another session's capture has taken over", async () => {
  const { gateway, peer, close } = await socketPair();
  try {
    const first = new SessionCapture(1 << 20);
    first.tap(gateway, 'upstream');
    const second = new SessionCapture(1 << 20);
    // A reused upstream connection changes owner (upstream.ts sets its capture).
    tapSocket(gateway, { capture: second, conn: 0 });
    first.release();
    const sent = receive(peer, 6);
    gateway.write('RSET\r\n');
    await sent;
    assert.deepEqual(
      second.snapshot().events.map((e) => `${e.from}:${e.kind}:${e.bytes?.toString()}`),
      ['gateway:data:RSET\r\n'],
    );
  } finally {
    close();
  }
});
