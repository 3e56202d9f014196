/**
 * Clean input round-trips: any bytes, encoded the way mail software encodes them (base64 at
 * any line length, quoted-printable with soft breaks, uuencode inside a text part), come out
 * of the MIME walker and its decoders byte-identical — checked by the decoded file's SHA-256 —
 * whatever the chunking of the message (property-based, seed-fixed).
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { randomChunks } from '../../helpers/chunking.ts';

const inspector = new Inspector({ engines: [] });
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function base64Lines(data: Buffer, lineLength: number): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += lineLength) lines.push(b64.slice(i, i + lineLength));
  return lines.join('\r\n');
}

/** RFC 2045 §6.7: safe bytes literal, the rest =XX, soft breaks (`=` CRLF) under 76 chars. */
function quotedPrintable(data: Buffer): string {
  let out = '';
  let line = '';
  for (const b of data) {
    const lit = (b >= 33 && b <= 126 && b !== 61) || b === 32;
    let tok = lit ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (b === 32) tok = '=20'; // never trailing white space at a soft break
    if (line.length + tok.length > 75) {
      out += `${line}=\r\n`;
      line = '';
    }
    line += tok;
  }
  return out + line;
}

function uuencode(data: Buffer, name: string): string {
  const enc = (n: number): string => String.fromCharCode(n === 0 ? 96 : n + 32);
  const lines = [`begin 644 ${name}`];
  for (let i = 0; i < data.length; i += 45) {
    const chunk = data.subarray(i, i + 45);
    let line = enc(chunk.length);
    for (let j = 0; j < chunk.length; j += 3) {
      const [a = 0, b = 0, c = 0] = [chunk[j], chunk[j + 1], chunk[j + 2]];
      line += enc(a >> 2) + enc(((a & 3) << 4) | (b >> 4)) + enc(((b & 15) << 2) | (c >> 6)) + enc(c & 63);
    }
    lines.push(line);
  }
  lines.push('`', 'end');
  return lines.join('\r\n');
}

const message = (parts: string[]): Buffer =>
  Buffer.from(`Content-Type: multipart/mixed; boundary="rt"\r\n\r\n${parts.map((p) => `--rt\r\n${p}\r\n`).join('')}--rt--\r\n`, 'latin1');

describe('decoders: clean input round-trips byte-identical in any chunking', () => {
  it('base64 (any line length), quoted-printable and uuencode', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 1e9 }),
        async (bytes, lineLength, seed) => {
          const data = Buffer.from(bytes);
          const msg = message([
            `Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(data, lineLength)}`,
            `Content-Type: application/octet-stream; name=q.bin\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(data)}`,
            `Content-Type: text/plain\r\n\r\nsee below\r\n${uuencode(data, 'u.bin')}\r\nbye`,
          ]);
          const r = await inspector.scanBuffer(msg, true, 10_000);
          const chunked = inspector.begin();
          for (const c of randomChunks(msg, seed)) chunked.write(c);
          const r2 = await chunked.end(10_000);
          const want = sha256(data);
          for (const result of [r, r2]) {
            const byPath = new Map(result.files.map((f) => [f.path, f]));
            assert.equal(byPath.get('msg/1')?.sha256, want, 'base64');
            assert.equal(byPath.get('msg/2')?.sha256, want, 'quoted-printable');
            if (data.length > 0) assert.equal(byPath.get('msg/3/uu1')?.sha256, want, 'uuencode');
          }
        },
      ),
      { seed: 23, numRuns: Number(process.env.FUZZ_RUNS ?? 150) },
    );
  });
});
