/**
 * ISO 9660 images as containers: the files inside are members (Joliet names when present),
 * scanned and analyzed like attachments; damaged directories are reported, never followed
 * outside the image or around in circles.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalysisEngine } from '../../../src/inspect/engines/analysis/engine.ts';
import { listIso } from '../../../src/inspect/archive/iso.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { iso } from '../../helpers/analysis-fixtures.ts';
import { isoImage, zip } from '../../helpers/archives.ts';
import { randomChunks } from '../../helpers/chunking.ts';

const inspector = new Inspector({ engines: [new SignatureEngine(), new AnalysisEngine(null)] });
const scan = async (bytes: Buffer, name = 'image.iso', chunks: Buffer[] = [bytes]) => {
  const f = inspector.beginFile(name);
  for (const c of chunks) f.write(c);
  return f.end(10_000);
};

describe('ISO 9660 images', () => {
  it('members with their Joliet names and directories; EICAR inside is found in any chunking', async () => {
    const image = isoImage([{ name: 'Read Me.txt', data: Buffer.from('hello') }, { name: 'docs/Invoice 2026.com', data: EICAR }], { joliet: true });
    const r = await scan(image);
    assert.deepEqual(r.files.map((f) => f.path), ['image.iso', 'image.iso/Read Me.txt', 'image.iso/docs/Invoice 2026.com']);
    assert.deepEqual(r.findings.filter((f) => f.engine === 'signatures').map((f) => f.file.path), ['image.iso/docs/Invoice 2026.com']);
    assert.equal(r.files[0]!.detectedType, 'iso');
    const chunked = await scan(image, 'image.iso', randomChunks(image, 5));
    assert.deepEqual(chunked.findings.map((f) => `${f.threat}@${f.file.path}`).sort(), r.findings.map((f) => `${f.threat}@${f.file.path}`).sort());
  });

  it('without Joliet, the primary names (8.3 upper case, ";1" removed)', () => {
    const listing = listIso(isoImage([{ name: 'setup.exe', data: Buffer.from('MZ') }]));
    assert.deepEqual(listing?.files.map((f) => [f.path, f.size]), [['SETUP.EXE', 2]]);
  });

  it('an image holding a downloader and a shortcut: the image and both files are judged, each with its path', async () => {
    const r = await scan(iso(['setup.exe', 'readme.lnk', 'notes.txt']), 'invoice.iso');
    const analysis = r.findings.filter((f) => f.engine === 'analysis').map((f) => `${f.threat}@${f.file.path}`).sort();
    assert.deepEqual(analysis, ['Analysis.Malicious.iso@invoice.iso', 'Analysis.Malicious.lnk@invoice.iso/readme.lnk', 'Analysis.Grayware.exe@invoice.iso/setup.exe'].sort());
  });

  it('a zip holding an ISO holding EICAR: found three levels down', async () => {
    const r = await scan(zip([{ name: 'parcel.iso', data: isoImage([{ name: 'x.com', data: EICAR }]) }]), 'parcel.zip');
    assert.deepEqual(r.findings.filter((f) => f.engine === 'signatures').map((f) => f.file.path), ['parcel.zip/parcel.iso/X.COM']);
  });

  it('a directory pointing at itself, a file beyond the end, no volume: reported, bounded, no throw', async () => {
    const image = isoImage([{ name: 'a/b.txt', data: Buffer.from('b') }, { name: 'c.txt', data: Buffer.from('c') }]);
    // Point directory "A" at the root extent: a loop.
    const looped = Buffer.from(image);
    const root = looped.readUInt32LE(16 * 2048 + 156 + 2);
    const aRecord = looped.indexOf(Buffer.from('A', 'latin1'), root * 2048 + 68) - 33;
    looped.writeUInt32LE(root, aRecord + 2);
    const r1 = await scan(looped);
    assert.ok(r1.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /loop/.test(e.detail ?? '')), JSON.stringify(r1.events));
    // A file record whose extent lies past the end of the image.
    const beyond = Buffer.from(image);
    const cRecord = beyond.indexOf(Buffer.from('C.TXT;1', 'latin1'), root * 2048) - 33;
    beyond.writeUInt32LE(1_000_000, cRecord + 2);
    const r2 = await scan(beyond);
    assert.ok(r2.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /C\.TXT/.test(e.detail ?? '')), JSON.stringify(r2.events));
    // The descriptor's signature wiped: no volume.
    const none = Buffer.from(image);
    none.write('XXXXX', 16 * 2048 + 1, 'latin1');
    assert.equal(listIso(none), null);
  });
});
