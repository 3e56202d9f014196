/**
 * Archives written by a tool nobody here wrote — 7-Zip (Debian `7zip`, `7zz`) — read by the
 * inspector: AES-256/AES-128 and ZipCrypto zips opened with the password from the message,
 * deflated and stored members; 7z archives unpacked through 7-Zip itself (passwords from the
 * message, a bomb stopped at the limit), or only recognised without it.
 * Skipped where 7zz is not installed (`.ci/run` installs it).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { SevenZipTool, sevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
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

  it('7z through 7-Zip: members (directories, empty files) unpacked; encrypted names opened with the password from the message', async () => {
    const withTool = new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(SevenZipTool.find('auto', 30_000)) } });
    const scan7z = async (archive: Buffer, text: string) => {
      const msg =
        `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--b\r\n` +
        `Content-Type: application/x-7z-compressed; name=parcel.7z\r\nContent-Transfer-Encoding: base64\r\n\r\n${archive.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b--\r\n`;
      return withTool.scanBuffer(Buffer.from(msg, 'latin1'), true, 30_000);
    };
    const plain = await scan7z(make(['-t7z'], { ...files, 'empty.txt': Buffer.alloc(0) }), 'no password here');
    assert.equal(plain.files.find((f) => f.path === 'msg/2')?.detectedType, '7z');
    assert.deepEqual(plain.findings.map((f) => f.file.path), ['msg/2/parcel.7z/invoice.com']);
    assert.equal(plain.files.find((f) => f.path === 'msg/2/parcel.7z/report.txt')?.size, files['report.txt'].length, 'members cut at their listed sizes');
    const locked = make(['-t7z', '-pWinter-2026', '-mhe=on'], files);
    const opened = await scan7z(locked, 'Passwort: Winter-2026');
    assert.equal(opened.files.find((f) => f.path === 'msg/2')?.detectedType, 'encrypted-7z');
    assert.deepEqual(opened.findings.map((f) => f.file.path), ['msg/2/parcel.7z/invoice.com']);
    assert.ok(opened.events.some((e) => e.name === 'ARCHIVE_DECRYPTED'));
    const shut = await scan7z(locked, 'password: Summer-2025');
    assert.deepEqual(shut.findings, []);
    assert.ok(shut.events.some((e) => e.name === 'ARCHIVE_ENCRYPTED'));
  });

  it('a 7z bomb: 7-Zip is stopped at the unpacked-size limit, not at its expanded size', async () => {
    const { DEFAULT_ARCHIVE_LIMITS } = await import('../../../src/inspect/archive/unpack.ts');
    const small = new Inspector({
      engines: [new SignatureEngine()],
      archives: { ...DEFAULT_ARCHIVE_LIMITS, maxTotalBytes: 4 * 1024 * 1024 },
      readers: { '7z': sevenZipReader(SevenZipTool.find('auto', 30_000)) },
    });
    const bomb = make(['-t7z', '-mx=9'], { 'zeros.bin': Buffer.alloc(64 * 1024 * 1024) });
    assert.ok(bomb.length < 64 * 1024, `${bomb.length} bytes packed`);
    const t0 = Date.now();
    const r = await small.scanBuffer(bomb, false, 30_000, 'bomb.7z');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_SIZE_EXCEEDED'), JSON.stringify(r.events));
    assert.ok((r.files.find((f) => f.path === 'bomb.7z/zeros.bin')?.size ?? 0) <= 4 * 1024 * 1024);
    assert.ok(Date.now() - t0 < 20_000);
  });

  it('a 7z declaring a 3.75 GiB dictionary: 7-Zip fails within its memory limit, the archive is reported', async () => {
    // A real 7z with a plain header, its LZMA dictionary size patched and the CRCs redone.
    const b = Buffer.from(make(['-t7z', '-mhc=off', '-m0=lzma', '-md=64k'], { 't.txt': Buffer.from('hello\n') }));
    const coder = b.indexOf(Buffer.from([0x23, 0x03, 0x01, 0x01, 0x05]));
    assert.ok(coder > 0, 'LZMA coder properties in the header');
    b.writeUInt32LE(0xf000_0000, coder + 6);
    const next = 32 + Number(b.readBigUInt64LE(12));
    b.writeUInt32LE(crc32(b.subarray(next, next + Number(b.readBigUInt64LE(20)))), 28);
    b.writeUInt32LE(crc32(b.subarray(12, 32)), 8);
    const tool = new SevenZipTool('/usr/bin/7zz', 20_000, tmpdir(), 256 * 1024 * 1024);
    const limited = new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(tool) } });
    const rssBefore = process.memoryUsage().rss;
    const r = await limited.scanBuffer(b, false, 30_000, 'dict.7z');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /7-Zip reported an error/.test(e.detail ?? '')), JSON.stringify(r.events));
    assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024);
  });

  it('without 7-Zip (seven-zip: off) a 7z is recognised, encrypted names included, not unpacked', async () => {
    const plain = await scanMail(make(['-t7z'], files), 'no password');
    assert.equal(plain.files.find((f) => f.path === 'msg/2')?.detectedType, '7z');
    assert.ok(plain.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED'));
    const locked = await scanMail(make(['-t7z', '-pWinter-2026', '-mhe=on'], files), 'no password');
    assert.equal(locked.files.find((f) => f.path === 'msg/2')?.detectedType, 'encrypted-7z');
  });
});
