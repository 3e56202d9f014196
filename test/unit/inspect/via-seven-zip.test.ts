/**
 * Containers opened through 7-Zip, each written by the real tool in the test (xz, bzip2, zstd,
 * cpio, ar, dpkg-deb, tar): an EICAR inside is found in every one, nested
 * ones (a .tar.xz) are unpacked to the end, a clean look-alike gives no event, and without
 * 7-Zip — or for a format it cannot read (lz4) — the container is never passed silently:
 * ARCHIVE_UNSUPPORTED. The recogniser is checked against each format's magic bytes.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BsdcatStreams, BsdtarTool } from '../../../src/inspect/archive/bsdtar-tool.ts';
import { otherFormatsReader, SevenZipTool, sevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { VIA_SEVEN_ZIP } from '../../../src/inspect/archive/unpack.ts';
import { sevenZipFormat } from '../../../src/inspect/archive/via-seven-zip.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-via7z-'));
const tool = SevenZipTool.find('auto', 20_000, join(dir, 'work'));
const streams = BsdcatStreams.of(BsdtarTool.find('auto', 20_000, join(dir, 'bsdtar-work')));
const have = (bin: string): boolean => ['/usr/bin', '/bin', '/usr/sbin'].some((d) => existsSync(join(d, bin)));
const sh = (cmd: string, cwd = dir): void => void execFileSync('/bin/sh', ['-c', cmd], { cwd, stdio: 'ignore' });

function inspector(withTool: boolean): Inspector {
  const t = withTool ? tool : null;
  return new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(t), [VIA_SEVEN_ZIP]: otherFormatsReader(t) } });
}

/** Write `content` as eicar.com (or clean.txt) in a fresh folder and pack it with `cmd` into `out`. */
function packed(name: string, cmd: string, out: string, clean = false): Buffer {
  const d = join(dir, name + (clean ? '-clean' : ''));
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, clean ? 'clean.txt' : 'eicar.com'), clean ? 'nothing to see here\n'.repeat(50) : EICAR);
  sh(cmd.replaceAll('FILE', clean ? 'clean.txt' : 'eicar.com'), d);
  return readFileSync(join(d, out));
}

// format, tool that writes it, command (FILE is the file packed), output file
const FORMATS: ReadonlyArray<readonly [string, string, string, string]> = [
  ['xz', 'xz', 'xz -k -c FILE > out', 'out'],
  ['tar.xz', 'xz', 'tar cf t.tar FILE && xz -c t.tar > out', 'out'],
  ['bzip2', 'bzip2', 'bzip2 -c FILE > out', 'out'],
  ['lzma', 'xz', 'xz --format=lzma -c FILE > out', 'out'],
  ['zstd', 'zstd', 'zstd -q -c FILE > out', 'out'],
  ['cpio', 'cpio', 'echo FILE | cpio -o -H newc > out 2>/dev/null', 'out'],
  ['ar', 'ar', 'ar rc out FILE', 'out'],
  ['ext2 image', 'mke2fs', 'mkdir -p root && cp FILE root/ && mke2fs -q -F -t ext2 -d root out 1024 >/dev/null 2>&1', 'out'],
  ['deb', 'dpkg-deb', 'mkdir -p pkg/DEBIAN pkg/usr && printf "Package: x\\nVersion: 1\\nArchitecture: all\\nMaintainer: t <t@x>\\nDescription: t\\n" > pkg/DEBIAN/control && cp FILE pkg/usr/ && dpkg-deb -Zxz -b pkg out >/dev/null', 'out'],
];

describe('containers opened through 7-Zip', { skip: tool ? false : '7zz is not installed (apt-get install 7zip; .ci/run does it)' }, () => {
  for (const [format, bin, cmd, out] of FORMATS) {
    it(`${format}: the file inside is found; a clean one gives no event`, { skip: have(bin) ? false : `${bin} is not installed` }, async () => {
      const bytes = packed(format, cmd, out);
      const r = await inspector(true).scanBuffer(bytes, false, 30_000, `a.${format}`);
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.startsWith(`a.${format}/`)), `${format}: ${JSON.stringify(r.files.map((f) => f.path))} ${JSON.stringify(r.events)}`);
      const clean = await inspector(true).scanBuffer(packed(format, cmd, out, true), false, 30_000, `c.${format}`);
      assert.deepEqual(clean.findings, []);
      assert.deepEqual(clean.events.map((e) => e.name), [], `${format}: ${JSON.stringify(clean.events)}`);
      assert.ok(clean.files.length >= 2, 'the member was opened');
    });
  }
});

describe('containers 7-Zip would open, without it', () => {
  it('xz without 7-Zip: ARCHIVE_UNSUPPORTED, never passed silently', { skip: have('xz') ? false : 'xz is not installed' }, async () => {
    const r = await inspector(false).scanBuffer(packed('xz-no7z', 'xz -c FILE > out', 'out'), false, 30_000, 'a.xz');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && /xz: .*7-Zip/.test(e.detail ?? '')), JSON.stringify(r.events));
  });
  it('lz4 without bsdcat: ARCHIVE_UNSUPPORTED', { skip: have('lz4') ? false : 'lz4 is not installed' }, async () => {
    const r = await inspector(true).scanBuffer(packed('lz4', 'lz4 -q -c FILE > out', 'out'), false, 30_000, 'a.lz4');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && /lz4: .*bsdcat/.test(e.detail ?? '')), JSON.stringify(r.events));
  });
});

describe('the compressors 7-Zip lacks, through libarchive\'s bsdcat', { skip: streams ? false : 'bsdcat is not installed (apt-get install libarchive-tools)' }, () => {
  const withStreams = new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(tool), [VIA_SEVEN_ZIP]: otherFormatsReader(tool, streams) } });
  // format, tool that writes it, command, the member path under the file's name
  const STREAMS: ReadonlyArray<readonly [string, string, string, string]> = [
    ['lz', 'lzip', 'lzip -k -c FILE > out', 'a'],
    ['tar.lz', 'lzip', 'tar cf t.tar FILE && lzip -c t.tar > out', 'a.tar/eicar.com'],
    ['lz4', 'lz4', 'lz4 -q -c FILE > out', 'a'],
    ['tar.lz4', 'lz4', 'tar cf t.tar FILE && lz4 -q -c t.tar > out', 'a.tar/eicar.com'],
  ];
  for (const [ext, bin, cmd, inner] of STREAMS) {
    it(`${ext}: decompressed, what is inside found; a clean one gives no event`, { skip: have(bin) ? false : `${bin} is not installed` }, async () => {
      const r = await withStreams.scanBuffer(packed(`s-${ext}`, cmd, 'out'), false, 30_000, `a.${ext}`);
      const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
      assert.equal(f?.file.path, `a.${ext}/${inner}`, `${JSON.stringify(r.files.map((x) => x.path))} ${JSON.stringify(r.events)}`);
      const clean = await withStreams.scanBuffer(packed(`s-${ext}`, cmd, 'out', true), false, 30_000, `c.${ext}`);
      assert.deepEqual(clean.findings, []);
      assert.deepEqual(clean.events, []);
    });
  }
});

describe('recognising the formats by their magic bytes', () => {
  const b = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
  const CASES: ReadonlyArray<readonly [string, Buffer]> = [
    ['xz', b([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'rest')],
    ['bzip2', b('BZh9', [0x31, 0x41])],
    ['zstd', b([0x28, 0xb5, 0x2f, 0xfd, 0])],
    ['lzip', b('LZIP', [1])],
    ['lz4', b([0x04, 0x22, 0x4d, 0x18])],
    ['compress', b([0x1f, 0x9d, 0x90])],
    ['cab', b('MSCF\0\0\0\0')],
    ['arj', b([0x60, 0xea, 0x20])],
    ['lzh', b('xx-lh5-')],
    ['cpio', b('070701000')],
    ['ar', b('!<arch>\ndebian-binary')],
    ['rpm', b([0xed, 0xab, 0xee, 0xdb, 3])],
    ['wim', b('MSWIM\0\0\0')],
    ['xar', b('xar!\0')],
    ['vhdx', b('vhdxfile')],
    ['vhd', b('conectix')],
    ['squashfs', b('hsqs', [0, 0, 0, 0])],
    ['cramfs', b([0x45, 0x3d, 0xcd, 0x28])],
    ['qcow', b([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])],
    ['vdi', b('<<< Oracle VM VirtualBox Disk Image >>>\n'.padEnd(64, '\0'), [0x7f, 0x10, 0xda, 0xbe])],
    ['vmdk', b('KDMV', [1, 0, 0, 0])],
    ['chm', b('ITSF\x03\0\0\0')],
    ['mslz', b('SZDD\x88\xf0\x27\x33A')],
    ['apfs', b(Array(32).fill(0), 'NXSB')],
    ['hfs', b(Array(1024).fill(0), 'H+\0\x04')],
    ['ext', b(Array(1080).fill(0), [0x53, 0xef])],
    ['gpt', b(Array(512).fill(0), 'EFI PART')],
    ['udf', b(Array(32769).fill(0), 'BEA01', Array(2043).fill(0), 'NSR03')],
  ];
  for (const [name, head] of CASES) it(name, () => assert.equal(sevenZipFormat(head)?.name, name));
  it('a FAT boot sector is a disk image; text and a gzip are none of these', () => {
    const fat = Buffer.alloc(512);
    fat.write('FAT16   ', 54, 'latin1');
    fat[510] = 0x55;
    fat[511] = 0xaa;
    assert.equal(sevenZipFormat(fat)?.name, 'img');
    assert.equal(sevenZipFormat(Buffer.from('BZh is a word here, not bzip2')), null);
    assert.equal(sevenZipFormat(Buffer.from('Dear colleague,\r\n')), null);
    assert.equal(sevenZipFormat(Buffer.from([0x1f, 0x8b, 8, 0])), null);
  });
});

describe('archives recognised, not opened', () => {
  it('WinACE, StuffIt and Zoo are ARCHIVE_UNSUPPORTED, never plain binary data', async () => {
    const cases: ReadonlyArray<readonly [string, Buffer]> = [
      ['ace', Buffer.concat([Buffer.from('0000310000009f', 'hex'), Buffer.from('**ACE**'), Buffer.alloc(60, 1)])],
      ['sit', Buffer.concat([Buffer.from('SIT!'), Buffer.alloc(6), Buffer.from('rLau'), Buffer.alloc(60, 1)])],
      ['zoo', Buffer.concat([Buffer.from('ZOO 2.10 Archive.\x1a\0\0', 'latin1'), Buffer.from([0xdc, 0xa7, 0xc4, 0xfd]), Buffer.alloc(60, 1)])],
    ];
    for (const [name, bytes] of cases) {
      assert.equal(sevenZipFormat(bytes)?.name, name);
      const r = await inspector(true).scanBuffer(bytes, false, 10_000, `x.${name}`);
      assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && e.detail?.startsWith(`${name}: `)), `${name}: ${JSON.stringify(r.events)}`);
    }
  });
});
