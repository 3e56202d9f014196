/**
 * Archives written by a tool nobody here wrote — 7-Zip (Debian `7zip`, `7zz`) — read by the
 * inspector: AES-256/AES-128 and ZipCrypto zips opened with the password from the message,
 * deflated and stored members, and 7z archives recognised (encrypted names included).
 * Skipped where 7zz is not installed (`.ci/run` installs it).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

const SEVEN_ZIP = '/usr/bin/7zz';
const inspector = new Inspector({ engines: [new SignatureEngine()] });

function make(args: string[], files: Record<string, Buffer>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-7z-'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  const out = join(dir, 'out.archive');
  const r = spawnSync(SEVEN_ZIP, ['a', ...args, out, ...Object.keys(files)], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(out);
}

/** The archive attached to a message whose text gives the password. */
async function scanMail(archive: Buffer, text: string) {
  const msg =
    `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--b\r\n` +
    `Content-Type: application/octet-stream; name=parcel\r\nContent-Transfer-Encoding: base64\r\n\r\n${archive.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b--\r\n`;
  return inspector.scanBuffer(Buffer.from(msg, 'latin1'), true, 30_000);
}

const files = { 'report.txt': Buffer.from('quarterly numbers\n'.repeat(500)), 'invoice.com': EICAR };

describe('archives made by 7-Zip', { skip: existsSync(SEVEN_ZIP) ? false : '7zz is not installed (apt-get install 7zip; .ci/run does it)' }, () => {
  for (const mem of ['AES256', 'AES128', 'ZipCrypto']) {
    it(`zip encrypted with ${mem}: opened with the password from the message, EICAR found, the text member read`, async () => {
      const archive = make(['-tzip', `-mem=${mem}`, '-pWinter-2026'], files);
      const r = await scanMail(archive, 'Hello, the password is: Winter-2026 — regards');
      assert.deepEqual(r.findings.map((f) => f.file.path), ['msg/2/parcel/invoice.com']);
      assert.ok(r.files.some((f) => f.path === 'msg/2/parcel/report.txt' && f.size === files['report.txt'].length), 'the deflated member decrypted and inflated whole');
      assert.ok(r.events.some((e) => e.name === 'ARCHIVE_DECRYPTED'));
      assert.ok(!r.events.some((e) => e.name === 'ARCHIVE_CORRUPT'), JSON.stringify(r.events));
      const wrong = await scanMail(archive, 'the password is: Summer-2025');
      assert.deepEqual(wrong.findings, []);
      assert.ok(wrong.events.some((e) => e.name === 'ARCHIVE_ENCRYPTED'));
      assert.equal(wrong.files.find((f) => f.path === 'msg/2')?.detectedType, 'encrypted-zip');
    });
  }

  it('7z, plain and with encrypted names: recognised as 7z and encrypted-7z', async () => {
    const plain = await scanMail(make(['-t7z'], files), 'no password');
    assert.equal(plain.files.find((f) => f.path === 'msg/2')?.detectedType, '7z');
    const locked = await scanMail(make(['-t7z', '-pWinter-2026', '-mhe=on'], files), 'no password');
    assert.equal(locked.files.find((f) => f.path === 'msg/2')?.detectedType, 'encrypted-7z');
  });
});
