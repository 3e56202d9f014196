/**
 * Clean large messages arrive byte-identical through each path a message's bytes can take:
 * store-and-forward's memory spool joined into one write (≤ 64 KiB), the memory spool written
 * corked as the socket reads it kept (up to spool-memory), the disk spool (beyond it), and
 * cut-through — with lines cut across the gateway's reads (the MIME walker's carried line) and
 * dot-stuffed lines (the DATA reader). The receiving server is smtp-server. An infected part
 * after a megabyte of text in such a message is still blocked (541), nothing delivered.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { dotStuff, RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

/** A text message of about `bytes`, lines of varying length (some start with a dot). */
function textMessage(bytes: number, seed: number): Buffer {
  const lines = ['From: <a@example.org>', 'To: <b@example.com>', `Subject: large ${bytes}`, ''];
  let size = 0;
  let x = seed;
  while (size < bytes) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const len = 1 + (x % 200);
    const line = (x % 17 === 0 ? '.' : '') + String.fromCharCode(0x61 + (x % 26)).repeat(len);
    lines.push(line);
    size += line.length + 2;
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}

/** One transaction, the message written in one piece (the gateway reads it as the kernel cuts it); the final reply. */
async function send(port: number, message: Buffer): Promise<string | null> {
  const c = await RawClient.openTransaction(port);
  try {
    assert.match((await c.cmd('DATA')) ?? '', /^354/);
    await c.writeFlushed(Buffer.from(`${dotStuff(message.toString('latin1'))}.\r\n`, 'latin1'));
    return await c.reply(60_000);
  } finally {
    c.destroy();
  }
}

describe('large clean messages are relayed byte-identical', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  // 40 KB: joined; 700 KB: corked from the memory spool (spool-memory is 1 MiB); 3 MB: the disk spool.
  const SIZES = [40_000, 700_000, 3_000_000];

  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    it(`${forwarding}: ${SIZES.map((s) => `${s / 1000} KB`).join(', ')}`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding });
      try {
        for (const [i, bytes] of SIZES.entries()) {
          const message = textMessage(bytes, i + 1);
          const before = up.messages.length;
          assert.match((await send(gw.port, message)) ?? '(connection closed)', /^250/, `${bytes} bytes`);
          assert.equal(up.messages.length, before + 1);
          assert.ok(up.messages.at(-1)!.data.equals(message), `${bytes} bytes: byte-identical`);
        }
      } finally {
        await gw.stop();
      }
    });

    it(`${forwarding}: EICAR attached after a megabyte of text is blocked (541), nothing delivered`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding });
      try {
        const text = textMessage(1_000_000, 9).toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
        const message = Buffer.from(
          'From: <a@example.org>\r\nTo: <b@example.com>\r\nSubject: late\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n' +
            `--z\r\nContent-Type: text/plain\r\n\r\n${text}--z\r\nContent-Type: application/octet-stream; name=r.com\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
            `${EICAR.toString('base64')}\r\n--z--\r\n`,
          'latin1',
        );
        const before = up.messages.length;
        assert.match((await send(gw.port, message)) ?? '(connection closed)', /^541 5\.4\.1 /);
        assert.equal(up.messages.length, before);
      } finally {
        await gw.stop();
      }
    });
  }
});
