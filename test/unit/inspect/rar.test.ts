/**
 * RAR through libarchive's bsdtar (bsdtar-tool.ts): members found and scanned with their
 * paths, nested containers unpacked, the archive budget applied; an encrypted RAR is
 * ARCHIVE_ENCRYPTED without running anything; without bsdtar, ARCHIVE_UNSUPPORTED. The RAR
 * files are written by a helper to the specification and read by bsdtar first (the reference).
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BsdtarTool, parseListing, rarReader } from '../../../src/inspect/archive/bsdtar-tool.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { rar4StoredVolumes, rar5, rar5Stored, zip } from '../../helpers/archives.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-rar-'));
const tool = BsdtarTool.find('auto', 20_000, join(dir, 'work'));
const skip = tool ? false : 'bsdtar is not installed (apt-get install libarchive-tools)';

const inspector = (t: BsdtarTool | null, limits: Partial<{ maxFiles: number }> = {}): Inspector =>
  new Inspector({
    engines: [new SignatureEngine()],
    readers: { rar: rarReader(t) },
    ...(limits.maxFiles ? { archives: { maxDepth: 10, maxFiles: limits.maxFiles, maxTotalBytes: 1e9, maxRatio: 1000, maxTimeMs: 10_000, maxContainerBytes: 50e6 } } : {}),
  });

describe('RAR through bsdtar', { skip }, () => {
  const archive = rar5Stored([
    { name: 'docs/readme.txt', data: Buffer.from('hello\n') },
    { name: 'tools/invoice.com', data: EICAR },
    { name: 'inner.zip', data: zip([{ name: 'deep.com', data: EICAR }]) },
  ]);

  it('the reference reader (bsdtar) reads the test archive as written', () => {
    writeFileSync(join(dir, 'ref.rar'), archive);
    // From a pipe, as the reader runs it (from a seekable file, libarchive prefers the stored inner zip).
    const listing = execFileSync('/bin/sh', ['-c', `cat ${join(dir, 'ref.rar')} | /usr/bin/bsdtar -tvf -`], { encoding: 'utf8' });
    assert.deepEqual(parseListing(listing).map((m) => [m.path, m.size]), [['docs/readme.txt', 6], ['tools/invoice.com', EICAR.length], ['inner.zip', zip([{ name: 'deep.com', data: EICAR }]).length]]);
  });

  it('every member is scanned under its path, nested containers too', async () => {
    const r = await inspector(tool).scanBuffer(archive, false, 20_000, 'a.rar');
    // The stored inner.zip ends the file, so zip readers (unzip, Python's zipfile) open the
    // RAR itself as that zip behind a prefix: its member is read that way too (a.rar/deep.com).
    assert.deepEqual(r.files.map((f) => f.path), ['a.rar', 'a.rar/docs/readme.txt', 'a.rar/tools/invoice.com', 'a.rar/inner.zip', 'a.rar/deep.com', 'a.rar/inner.zip/deep.com']);
    assert.deepEqual(r.findings.map((f) => f.file.path).sort(), ['a.rar/deep.com', 'a.rar/inner.zip/deep.com', 'a.rar/tools/invoice.com']);
    assert.deepEqual(r.events, []);
  });

  it('the archive budget applies to RAR members', async () => {
    const many = rar5Stored(Array.from({ length: 6 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from(`file ${i}\n`) })));
    const r = await inspector(tool, { maxFiles: 3 }).scanBuffer(many, false, 20_000, 'm.rar');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_FILES_EXCEEDED'), JSON.stringify(r.events));
  });

  it('encrypted: ARCHIVE_ENCRYPTED (libarchive cannot decrypt RAR); damaged: ARCHIVE_CORRUPT', async () => {
    const enc = await inspector(tool).scanBuffer(rar5(true), false, 20_000, 'e.rar');
    assert.deepEqual(enc.events.map((e) => e.name), ['ARCHIVE_ENCRYPTED']);
    assert.equal(enc.files[0]!.detectedType, 'encrypted-rar');
    const bad = Buffer.concat([archive.subarray(0, 60), Buffer.alloc(40, 0x41)]);
    const r = await inspector(tool).scanBuffer(bad, false, 20_000, 'b.rar');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT'), JSON.stringify(r.events));
  });
});

describe('RAR without bsdtar', () => {
  it('recognised, never passed silently: ARCHIVE_UNSUPPORTED naming the fix', async () => {
    const r = await inspector(null).scanBuffer(rar5Stored([{ name: 'x.com', data: EICAR }]), false, 20_000, 'x.rar');
    assert.equal(r.events[0]?.name, 'ARCHIVE_UNSUPPORTED');
    assert.match(r.events[0]?.detail ?? '', /libarchive-tools/);
  });

  it('a volume of a multi-volume set says so in the event', async () => {
    const [first] = rar4StoredVolumes('big.exe', Buffer.alloc(3000, 0x41), 2);
    const r = await inspector(null).scanBuffer(first!, false, 20_000, 'big.rar');
    assert.match(r.events[0]?.detail ?? '', /a volume of a multi-volume RAR without the volumes after it: big\.exe continues in them/);
  });
});

