/**
 * ZipCrypto's header ends in one check byte: one wrong password in 256 passes it. Such a
 * password must not "open" the member (garbage, then ARCHIVE_CORRUPT): the decrypted data is
 * verified (CRC of a stored member, inflation and CRC of a deflated one), and the member stays
 * ARCHIVE_ENCRYPTED. Found as a 1-in-128 failure of the real-archive test (7-Zip salts anew
 * each run); here the colliding password is searched for, so the case is certain.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tryPasswords } from '../../../src/inspect/archive/zipcrypto.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { zip } from '../../helpers/archives.ts';

/** A zip with one member under `right`, and a wrong password whose check byte matches. */
function collision(method: 'stored' | 'deflate'): { archive: Buffer; wrong: string } {
  const archive = zip([{ name: 'invoice.com', data: EICAR, method, password: 'right-password' }]);
  // The member data starts after the local header (30 bytes + name) and is 12 + n bytes long.
  const data = archive.subarray(30 + 'invoice.com'.length);
  const crc = archive.readUInt32LE(14);
  for (let i = 0; i < 100_000; i++) {
    const wrong = `wrong-${i}`;
    if (tryPasswords(data, crc >>> 24, [wrong]) !== null) return { archive, wrong };
  }
  throw new Error('no colliding password found');
}

const scan = (archive: Buffer, text: string) => {
  const msg = `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--b\r\nContent-Type: application/zip; name=a.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n${archive.toString('base64')}\r\n--b--\r\n`;
  return new Inspector({ engines: [new SignatureEngine()] }).scanBuffer(Buffer.from(msg, 'latin1'), true, 10_000);
};

describe('ZipCrypto: a wrong password that passes the check byte', () => {
  for (const method of ['stored', 'deflate'] as const) {
    it(`${method}: refused by the data's CRC, the member stays ARCHIVE_ENCRYPTED; the right one still opens it`, async () => {
      const { archive, wrong } = collision(method);
      const r = await scan(archive, `the password is: ${wrong}`);
      assert.deepEqual(r.events.map((e) => e.name), ['ARCHIVE_ENCRYPTED'], JSON.stringify(r.events));
      const ok = await scan(archive, `the password is: ${wrong} or right-password`);
      assert.ok(ok.findings.some((f) => f.threat === 'EICAR-Test-File'), JSON.stringify(ok.events));
      assert.ok(ok.events.some((e) => e.name === 'ARCHIVE_DECRYPTED'));
    });
  }
});
