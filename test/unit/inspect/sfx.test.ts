/**
 * Self-extracting executables: a zip, 7z or RAR appended to a program at any offset (here 1 MiB
 * of stub, far past the bytes the inspector sniffs) is unpacked and its members scanned. The
 * archives are written by real tools where installed (Python's zipfile appending to a program,
 * as `copy /b stub + archive` and zip -A do; 7-Zip's 7zz) and read through the gateway's own
 * readers (7-Zip, bsdtar). Chance signatures inside a program (`PK\3\4` as a constant, bytes
 * that look like a 7z or RAR signature) are checked by CRC and stay nothing; a large program
 * without an archive is no "too large to scan".
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rarReader, BsdtarTool } from '../../../src/inspect/archive/bsdtar-tool.ts';
import { appendedArchives } from '../../../src/inspect/archive/sfx.ts';
import { SevenZipTool, sevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { rar5Stored, zip } from '../../helpers/archives.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-sfx-'));
const sevenZip = SevenZipTool.find('auto', 20_000, join(dir, '7z-work'));
const bsdtar = BsdtarTool.find('auto', 20_000, join(dir, 'bsdtar-work'));
const inspector = new Inspector({ engines: [new SignatureEngine()], readers: { '7z': sevenZipReader(sevenZip), rar: rarReader(bsdtar) } });
const scan = (b: Buffer) => inspector.scanBuffer(b, false, 30_000, 'setup.exe');

/** A program's first bytes (MZ header pointing at a PE header), then `size` bytes of code-like filler. */
function stub(size: number): Buffer {
  const b = Buffer.alloc(size);
  let s = 7;
  for (let i = 0; i < size; i++) b[i] = (s = (s * 1103515245 + 12345) & 0x7fffffff) >>> 16;
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x0102, 0x80 + 22); // characteristics: executable image, not a DLL
  return b;
}

const STUB = stub(1 << 20);

describe('self-extracting executables', () => {
  it('a zip appended 1 MiB into a program by Python\'s zipfile (offsets from the file start, as real SFX tools write)', async () => {
    const file = join(dir, 'py-sfx.exe');
    writeFileSync(file, STUB);
    execFileSync('python3', ['-c', `import zipfile,sys; z = zipfile.ZipFile(sys.argv[1], 'a'); z.writestr('docs/eicar.com', sys.stdin.buffer.read()); z.close()`, file], { input: EICAR });
    const r = await scan(readFileSync(file));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'setup.exe/docs/eicar.com'), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('a zip simply concatenated after the stub (offsets from the archive start)', async () => {
    const r = await scan(Buffer.concat([STUB, zip([{ name: 'payload.com', data: EICAR }])]));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'setup.exe/payload.com'));
  });

  it('a 7z written by 7-Zip appended to the stub: its members through 7-Zip', { skip: sevenZip ? false : '7zz is not installed (apt-get install 7zip)' }, async () => {
    writeFileSync(join(dir, 'eicar.com'), EICAR);
    execFileSync('7zz', ['a', '-bd', '-y', join(dir, 'p.7z'), 'eicar.com'], { cwd: dir, stdio: 'ignore' });
    const r = await scan(Buffer.concat([STUB, readFileSync(join(dir, 'p.7z'))]));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'setup.exe/eicar.com'), JSON.stringify([r.files.map((f) => f.path), r.events]));
  });

  it('a RAR appended to the stub: its members through bsdtar (or ARCHIVE_UNSUPPORTED without it, never silence)', async () => {
    const r = await scan(Buffer.concat([STUB, rar5Stored([{ name: 'run.com', data: EICAR }])]));
    if (bsdtar) assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'setup.exe/run.com'), JSON.stringify([r.files.map((f) => f.path), r.events]));
    else assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED'));
  });

  it('chance signatures in a program are nothing: no member, no event', async () => {
    const b = Buffer.from(STUB);
    b.write('PK\x03\x04', 5000, 'latin1'); // a zip library's constant
    b.write('7z\xbc\xaf\x27\x1c\x00\x04', 9000, 'latin1'); // a 7z signature without a valid start header
    b.write('Rar!\x1a\x07\x00', 13000, 'latin1');
    b.write('Rar!\x1a\x07\x01\x00', 17000, 'latin1');
    b.write('PK\x05\x06', b.length - 22, 'latin1'); // an end record pointing nowhere
    assert.deepEqual(appendedArchives(b), []);
    const r = await scan(b);
    assert.deepEqual(r.events, []);
    assert.deepEqual(r.files.map((f) => f.path), ['setup.exe']);
  });

  it('a program larger than the archive budget, with no archive in it, is not "too large to scan"', async () => {
    const small = new Inspector({ engines: [new SignatureEngine()], archives: { maxDepth: 10, maxFiles: 100, maxTotalBytes: 1e9, maxRatio: 1000, maxTimeMs: 10_000, maxContainerBytes: 64 * 1024 } });
    const r = await small.scanBuffer(STUB, false, 30_000, 'big.exe');
    assert.deepEqual(r.events, []);
    // …but one whose end is a zip's end record is, since its members cannot be read.
    const withZip = await small.scanBuffer(Buffer.concat([STUB, zip([{ name: 'a.com', data: EICAR }])]), false, 30_000, 'big.exe');
    assert.ok(withZip.events.some((e) => e.name === 'ARCHIVE_TOO_LARGE'), JSON.stringify(withZip.events));
  });
});

describe('a zip appended to a file that is no container (a "GIFAR")', () => {
  /** A JPEG-like file: its markers, then 200 KB of entropy-coded-looking bytes. */
  const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0', 'latin1'), stub(200_000).subarray(2), Buffer.from([0xff, 0xd9])]);

  it('past the sniffed head: unzip and Python open it as a zip, so its members are read', async () => {
    const file = join(dir, 'pic.jpg');
    writeFileSync(file, jpeg);
    execFileSync('python3', ['-c', `import zipfile,sys; z = zipfile.ZipFile(sys.argv[1], 'a'); z.writestr('run.com', sys.stdin.buffer.read()); z.close()`, file], { input: EICAR });
    const bytes = readFileSync(file);
    // The reference: Python reads the member back from the polyglot.
    const back = execFileSync('python3', ['-c', `import zipfile,sys; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('run.com'))`, file]);
    assert.ok(back.equals(EICAR));
    const r = await inspector.scanBuffer(bytes, false, 30_000, 'pic.jpg');
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'pic.jpg/run.com'), JSON.stringify([r.files.map((f) => f.path), r.events]));
  });

  it('a zip signature inside a file without a zip behind it is nothing', async () => {
    const b = Buffer.from(jpeg);
    b.write('PK\x03\x04', 100_000, 'latin1');
    const r = await inspector.scanBuffer(b, false, 30_000, 'pic.jpg');
    assert.deepEqual(r.events, []);
    assert.deepEqual(r.files.map((f) => f.path), ['pic.jpg']);
  });
});
