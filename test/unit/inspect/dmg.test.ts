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
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { otherFormatsReader, SevenZipTool, sevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { VIA_SEVEN_ZIP } from '../../../src/inspect/archive/unpack.ts';
import { isDmg } from '../../../src/inspect/archive/via-seven-zip.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { udif } from '../../helpers/dmg.ts';

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
