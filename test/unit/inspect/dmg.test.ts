/**
 * Apple disk images (UDIF, `.dmg`): known only by the 512-byte `koly` trailer at their end.
 * No tool writes one on Linux, so the test writes its own — the data fork in chunks listed by a
 * `mish` block table in the XML property list, raw (UDRW) or zlib-compressed (UDZO) — around a
 * FAT image that mkfs.fat and mcopy made, and 7-Zip (the reader the gateway uses) opens it:
 * EICAR inside is found; a clean one gives no event; one not named .dmg, whose bytes went by
 * before its trailer said what it was, is reported, not passed as opened.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { otherFormatsReader, SevenZipTool, sevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { VIA_SEVEN_ZIP } from '../../../src/inspect/archive/unpack.ts';
import { isDmg } from '../../../src/inspect/archive/via-seven-zip.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-dmg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tool = SevenZipTool.find('auto', 20_000, join(dir, 'work'));
const haveFat = existsSync('/usr/sbin/mkfs.fat') || existsSync('/sbin/mkfs.fat');
const haveMtools = existsSync('/usr/bin/mcopy');

const inspector = (withTool: boolean): Inspector =>
  new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(withTool ? tool : null), [VIA_SEVEN_ZIP]: otherFormatsReader(withTool ? tool : null) } });

/** A 1.44 MB FAT image holding one file. */
function fatImage(name: string, content: string | Buffer): Buffer {
  const img = join(dir, `${name}.img`);
  rmSync(img, { force: true });
  execFileSync('mkfs.fat', ['-C', img, '1440'], { stdio: 'ignore' });
  writeFileSync(join(dir, name), content);
  execFileSync('mcopy', ['-i', img, join(dir, name), `::${name}`]);
  return readFileSync(img);
}

/** UDIF around `data`: chunks of CHUNK sectors, raw (type 1) or zlib (0x80000005). */
export function udif(data: Buffer, method: 'raw' | 'zlib'): Buffer {
  const CHUNK = 256; // sectors
  const sectors = Math.ceil(data.length / 512);
  const chunks: Buffer[] = [];
  const table: Array<{ type: number; sector: number; count: number; offset: number; length: number }> = [];
  let offset = 0;
  for (let s = 0; s < sectors; s += CHUNK) {
    const count = Math.min(CHUNK, sectors - s);
    const plain = data.subarray(s * 512, (s + count) * 512);
    const stored = method === 'raw' ? plain : deflateSync(plain);
    table.push({ type: method === 'raw' ? 1 : 0x80000005, sector: s, count, offset, length: stored.length });
    chunks.push(stored);
    offset += stored.length;
  }
  table.push({ type: 0xffffffff, sector: sectors, count: 0, offset, length: 0 });
  const mish = Buffer.alloc(204 + 40 * table.length);
  mish.write('mish', 0, 'latin1');
  mish.writeUInt32BE(1, 4);
  mish.writeBigUInt64BE(BigInt(sectors), 16);
  mish.writeUInt32BE(table.length, 200);
  table.forEach((c, i) => {
    const p = 204 + 40 * i;
    mish.writeUInt32BE(c.type, p);
    mish.writeBigUInt64BE(BigInt(c.sector), p + 8);
    mish.writeBigUInt64BE(BigInt(c.count), p + 16);
    mish.writeBigUInt64BE(BigInt(c.offset), p + 24);
    mish.writeBigUInt64BE(BigInt(c.length), p + 32);
  });
  const fork = Buffer.concat(chunks);
  const part = 'disk image (DOS_FAT_12 : 0)';
  const xml = Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
      `<plist version="1.0"><dict><key>resource-fork</key><dict><key>blkx</key><array><dict>` +
      `<key>Attributes</key><string>0x0050</string><key>CFName</key><string>${part}</string><key>Data</key><data>${mish.toString('base64')}</data>` +
      `<key>ID</key><string>0</string><key>Name</key><string>${part}</string></dict></array></dict></dict></plist>\n`,
  );
  const koly = Buffer.alloc(512);
  koly.write('koly', 0, 'latin1');
  koly.writeUInt32BE(4, 4);
  koly.writeUInt32BE(512, 8);
  koly.writeUInt32BE(1, 12);
  koly.writeBigUInt64BE(BigInt(fork.length), 32);
  koly.writeUInt32BE(1, 56);
  koly.writeUInt32BE(1, 60);
  koly.writeBigUInt64BE(BigInt(fork.length), 216);
  koly.writeBigUInt64BE(BigInt(xml.length), 224);
  koly.writeUInt32BE(1, 488);
  koly.writeBigUInt64BE(BigInt(sectors), 492);
  return Buffer.concat([fork, xml, koly]);
}

describe('Apple disk images (DMG)', { skip: !tool ? '7zz is not installed' : !haveFat || !haveMtools ? 'mkfs.fat/mcopy (dosfstools, mtools) are not installed' : false }, () => {
  for (const method of ['raw', 'zlib'] as const) {
    it(`${method} chunks: the file inside is found; a clean image gives no event`, async () => {
      const bad = udif(fatImage('eicar.com', EICAR), method);
      assert.ok(isDmg(bad));
      const r = await inspector(true).scanBuffer(bad, false, 30_000, 'installer.dmg');
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.startsWith('installer.dmg/')), JSON.stringify({ files: r.files.map((f) => f.path), events: r.events }));
      assert.equal(r.files[0]!.detectedType, 'dmg');
      const clean = await inspector(true).scanBuffer(udif(fatImage('notes.txt', 'nothing to see here\n'), method), false, 30_000, 'clean.dmg');
      assert.deepEqual(clean.findings, []);
      assert.deepEqual(clean.events.map((e) => e.name), [], JSON.stringify(clean.events));
      assert.ok(clean.files.some((f) => f.name === 'notes.txt'), 'the member was opened');
    });
  }

  it('a small image not named .dmg is opened all the same (its trailer is in the bytes looked at first)', async () => {
    const r = await inspector(true).scanBuffer(udif(fatImage('eicar.com', EICAR), 'zlib'), false, 30_000, 'download.bin');
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File'), JSON.stringify(r.events));
  });

  it('a large compressed image not named .dmg: recognised by its trailer, reported, never passed as opened', async () => {
    // Incompressible content: the compressed image is larger than the bytes looked at first,
    // so its bytes went by before the trailer at its end said what it was.
    const r = await inspector(true).scanBuffer(udif(fatImage('random.bin', randomBytes(400_000)), 'zlib'), false, 30_000, 'download.bin');
    assert.equal(r.files[0]!.detectedType, 'dmg');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && /disk image/.test(e.detail ?? '')), JSON.stringify(r.events));
  });

  it('without 7-Zip: ARCHIVE_UNSUPPORTED', async () => {
    const r = await inspector(false).scanBuffer(udif(fatImage('eicar.com', EICAR), 'zlib'), false, 30_000, 'installer.dmg');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED'), JSON.stringify(r.events));
  });
});
