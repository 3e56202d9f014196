/**
 * NSIS installers, written in the test by Debian's makensis (a real installer: the NSIS stub
 * and the compressed data in its overlay) and opened through 7-Zip: an EICAR payload is found
 * whatever the compressor (LZMA solid, zlib, bzip2) — before, an LZMA installer passed as a
 * plain program, its payload unseen —, a clean installer gives no finding and no event, and
 * without 7-Zip the installer is never passed silently: ARCHIVE_UNSUPPORTED.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { nsisReader, SevenZipTool } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { NSIS } from '../../../src/inspect/archive/sfx.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-nsis-'));
const tool = SevenZipTool.find('auto', 20_000, join(dir, 'work'));
const makensis = existsSync('/usr/bin/makensis');
const skip = !makensis ? 'makensis is not installed (apt-get install nsis; .ci/run does it)' : !tool ? '7-Zip is not installed (apt-get install 7zip)' : false;

/** An installer of `payload` (named payload.com) built with `compressor`. */
function installer(name: string, compressor: string, payload: Buffer): Buffer {
  writeFileSync(join(dir, `${name}.com`), payload);
  writeFileSync(join(dir, `${name}.nsi`), `SetCompressor ${compressor}\nOutFile "${name}.exe"\nInstallDir "$TEMP\\t"\nSection\nSetOutPath $INSTDIR\nFile /oname=payload.com "${name}.com"\nSectionEnd\n`);
  execFileSync('makensis', ['-V1', `${name}.nsi`], { cwd: dir, stdio: 'ignore' });
  return readFileSync(join(dir, `${name}.exe`));
}

// EICAR at the start of 40 KB that compresses well: stored compressed, never raw in the installer.
const PAYLOAD = Buffer.concat([EICAR, Buffer.alloc(20_000, 0x20), Buffer.from('filler text '.repeat(2000))]);

describe('NSIS installers', { skip }, () => {
  const scan = (b: Buffer, withTool = true) => new Inspector({ engines: [new SignatureEngine()], readers: withTool ? { [NSIS]: nsisReader(tool) } : {} }).scanBuffer(b, false, 30_000, 'setup.exe');

  for (const compressor of ['/SOLID lzma', 'lzma', 'zlib', 'bzip2']) {
    it(`${compressor}: the payload is unpacked and found`, async () => {
      const exe = installer(`e-${compressor.replace(/\W/g, '')}`, compressor, PAYLOAD);
      assert.equal(exe.indexOf('EICAR-STANDARD', 0, 'latin1'), -1, 'the payload is compressed in the installer');
      const r = await scan(exe);
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'setup.exe/payload.com'), JSON.stringify({ files: r.files.map((f) => f.path), events: r.events }));
      assert.equal(r.files[0]!.openedBy, '7-Zip (7zz)');
    });
  }

  it('a clean installer: no finding, no event; without 7-Zip: ARCHIVE_UNSUPPORTED', async () => {
    const exe = installer('clean', '/SOLID lzma', Buffer.from('readme '.repeat(5000)));
    const r = await scan(exe);
    assert.deepEqual(r.findings, []);
    assert.deepEqual(r.events, []);
    assert.ok(r.files.some((f) => f.path === 'setup.exe/payload.com'));
    const without = await scan(exe, false);
    assert.ok(without.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && /nsis/.test(e.detail ?? '')), JSON.stringify(without.events));
  });
});

describe('NSIS recognition', () => {
  it("a program that merely holds NSIS's signature (a tool that detects installers) is no installer: no event", async () => {
    const pe = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(1000, 0x90), Buffer.from('\x00\x00\x00\x00\xef\xbe\xad\xdeNullsoftInst', 'latin1'), Buffer.alloc(3000, 0x90)]);
    const r = await new Inspector({ engines: [new SignatureEngine()], readers: {} }).scanBuffer(pe, false, 10_000, 'detector.exe');
    assert.deepEqual(r.events, []);
  });
});
