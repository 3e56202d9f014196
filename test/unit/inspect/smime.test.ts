/**
 * S/MIME opaque signed data (`application/pkcs7-mime; smime-type=signed-data`), written by
 * openssl in the test: the signed entity inside is walked as a message — DER (`openssl smime`)
 * and BER with indefinite lengths (`openssl cms -stream`) — so an attachment inside it is
 * found; a signed mail with only text is clean. Detached signatures (multipart/signed) carry
 * the content in the clear and need nothing of this.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { makeCert } from '../../helpers/certs.ts';

const cert = makeCert('signer.example');
const inspector = new Inspector({ engines: [new SignatureEngine()] });

function signed(inner: string, how: 'smime' | 'cms-stream'): Buffer {
  const file = join(cert.dir, `inner-${how}.eml`);
  writeFileSync(file, inner);
  const args = how === 'smime'
    ? ['smime', '-sign', '-nodetach', '-binary', '-signer', cert.certFile, '-inkey', cert.keyFile, '-in', file, '-outform', 'DER']
    : ['cms', '-sign', '-nodetach', '-binary', '-stream', '-signer', cert.certFile, '-inkey', cert.keyFile, '-in', file, '-outform', 'DER'];
  return execFileSync('openssl', args);
}

function message(der: Buffer): Buffer {
  const b64 = der.toString('base64').replace(/(.{76})/g, '$1\r\n');
  return Buffer.from(
    'From: a@example.org\r\nTo: b@example.com\r\nSubject: signed\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n' +
      `Content-Disposition: attachment; filename=smime.p7m\r\n\r\n${b64}\r\n`,
  );
}

const INNER =
  'Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n' +
  `--in\r\nContent-Type: application/octet-stream; name=x.com\r\nContent-Transfer-Encoding: base64\r\n\r\n${EICAR.toString('base64')}\r\n--in--\r\n`;

describe('S/MIME opaque signed data', () => {
  for (const how of ['smime', 'cms-stream'] as const) {
    it(`the signed entity is walked (${how === 'smime' ? 'DER' : 'BER, indefinite lengths'})`, async () => {
      const r = await inspector.scanBuffer(message(signed(INNER, how)), true, 20_000, 'msg');
      const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
      assert.ok(f, JSON.stringify(r.files.map((x) => x.path)));
      assert.match(f.file.path, /\/signed\//);
    });
  }

  it('a signed mail with only text is clean', async () => {
    const r = await inspector.scanBuffer(message(signed('Content-Type: text/plain\r\n\r\nHello, signed.\r\n', 'smime')), true, 20_000, 'msg');
    assert.deepEqual(r.findings, []);
    assert.ok(r.files.some((x) => /\/signed/.test(x.path)), 'the signed text was walked');
  });
});
