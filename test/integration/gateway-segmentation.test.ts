/**
 * The verdict does not depend on how the sender's bytes are cut into TCP segments. Every EICAR
 * message class — the encodings, the ambiguous readings, a zip, a page that smuggles the file
 * in a `data:` URI — is sent in small segments of random sizes, each flushed to the gateway's
 * socket before the next is written (so the gateway reads the message in many small pieces),
 * and must be blocked with 541 in both forwarding modes, exactly as in one piece
 * (gateway-readings, gateway-inspection). A clean control sent the same way arrives
 * byte-identical. The same classes cut into BDAT chunks of random sizes are blocked at LAST.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { READING_CASES } from '../fixtures/readings.ts';
import { zip } from '../helpers/archives.ts';
import { randomChunks } from '../helpers/chunking.ts';
import { CLEAN_MESSAGES, EICAR_MESSAGES } from '../helpers/messages.ts';
import { dotStuff, RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const HEAD = 'From: <a@example.org>\r\nTo: <b@example.com>\r\nSubject: segments\r\nMIME-Version: 1.0\r\n';
const lines = (b64: string): string => b64.replace(/(.{76})/g, '$1\r\n');

const CASES: ReadonlyArray<readonly [string, Buffer]> = [
  ...Object.entries(EICAR_MESSAGES),
  ...READING_CASES.filter((c) => c.infected).map((c) => [c.name, c.message] as const),
  [
    'a zip attachment',
    Buffer.from(
      `${HEAD}Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--z\r\n` +
        `Content-Type: application/zip; name=r.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${lines(zip([{ name: 'r.com', data: EICAR }]).toString('base64'))}\r\n--z--\r\n`,
      'latin1',
    ),
  ],
  [
    'a page that smuggles the file in a data: URI',
    Buffer.from(
      `${HEAD}Content-Type: text/html\r\n\r\nDear customer,\r\nplease see below.\r\n<html><body><a download="r.com" href="data:application/octet-stream;base64,${EICAR.toString('base64')}">open</a></body></html>\r\n`,
      'latin1',
    ),
  ],
];

/** One transaction with `message` written in random segments of at most `max` bytes; the final reply. */
async function sendInSegments(port: number, message: Buffer, seed: number, max: number): Promise<string | null> {
  const c = await RawClient.openTransaction(port);
  try {
    c.socket.setNoDelay(true);
    const go = await c.cmd('DATA');
    assert.match(go ?? '', /^354/);
    const text = dotStuff(message.toString('latin1'));
    const wire = Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
    for (const segment of randomChunks(wire, seed, max)) await c.writeFlushed(segment);
    return await c.reply(20_000);
  } finally {
    c.destroy();
  }
}

/** The same message as BDAT chunks of random sizes (RFC 3030): each chunk answered 250, LAST's reply returned. */
async function sendInBdatChunks(port: number, message: Buffer, seed: number, max: number): Promise<string | null> {
  const c = await RawClient.openTransaction(port);
  try {
    const chunks = randomChunks(message, seed, max);
    for (const [i, chunk] of chunks.entries()) {
      const last = i === chunks.length - 1;
      await c.writeFlushed(Buffer.concat([Buffer.from(`BDAT ${chunk.length}${last ? ' LAST' : ''}\r\n`, 'latin1'), chunk]));
      const r = await c.reply(20_000);
      if (last) return r;
      assert.match(r ?? '(connection closed)', /^250 /, `BDAT chunk ${i + 1} of ${chunks.length}`);
    }
    return null;
  } finally {
    c.destroy();
  }
}

/** A bare LF is refused in BDAT (550, gateway-protocol): such messages are for DATA only. */
const bareLf = (b: Buffer): boolean => /(^|[^\r])\n/.test(b.toString('latin1'));

describe('the verdict does not depend on TCP segmentation', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    it(`${forwarding}: every EICAR class in small random segments is blocked (541); a clean control arrives intact`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding });
      try {
        for (const [i, [name, message]] of CASES.entries()) {
          const before = up.messages.length;
          const reply = await sendInSegments(gw.port, message, i + 1, 23);
          assert.match(reply ?? '(connection closed)', /^541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File/, name);
          assert.equal(up.messages.length, before, `${name}: nothing delivered`);
        }
        for (const [name, message] of Object.entries(CLEAN_MESSAGES)) {
          const before = up.messages.length;
          assert.match((await sendInSegments(gw.port, message, 7, 23)) ?? '', /^250/, name);
          assert.equal(up.messages.length, before + 1);
          // (SMTP cannot carry a message without a final line end: the terminator adds one.)
          const sent = message.subarray(-2).equals(Buffer.from('\r\n')) ? message : Buffer.concat([message, Buffer.from('\r\n')]);
          assert.ok(up.messages.at(-1)!.data.equals(sent), `${name}: byte-identical`);
        }
      } finally {
        await gw.stop();
      }
    });

    it(`${forwarding}: every EICAR class in BDAT chunks of random sizes is blocked at LAST (541)`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding });
      try {
        for (const [i, [name, message]] of CASES.entries()) {
          if (bareLf(message)) continue;
          const before = up.messages.length;
          const reply = await sendInBdatChunks(gw.port, message, i + 1, 41);
          assert.match(reply ?? '(connection closed)', /^541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File/, name);
          assert.equal(up.messages.length, before, `${name}: nothing delivered`);
        }
      } finally {
        await gw.stop();
      }
    });
  }
});
