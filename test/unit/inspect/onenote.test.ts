/**
 * OneNote sections (archive/onenote.ts): the files pasted into a section come out as members,
 * typed and scanned like any file — the HTA behind a "double-click to view" picture, a
 * program, EICAR — in any chunking; a length past the end gives what is there and
 * ARCHIVE_CORRUPT; a section with only a picture is clean.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import type { ScanResult } from '../../../src/inspect/types.ts';
import { randomChunks } from '../../helpers/chunking.ts';
import { fileDataStoreObject, oneNoteSection } from '../../helpers/onenote.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
async function scanFile(bytes: Buffer, chunks: Buffer[] = [bytes]): Promise<ScanResult> {
  const f = inspector.beginFile('notes.one');
  for (const c of chunks) f.write(c);
  return f.end(10_000);
}
const HTA = Buffer.from('<html><head><hta:application id="x"/></head><script>new ActiveXObject("WScript.Shell").Run("cmd /c calc")</script></html>');
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(200, 7)]);
const PE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(300, 0x90)]);

describe('OneNote sections', () => {
  it('every embedded file is a member: typed, scanned, found', async () => {
    const one = oneNoteSection([PNG, HTA, EICAR, PE]);
    const r = await scanFile(one);
    const types = Object.fromEntries(r.files.map((f) => [f.path, f.detectedType]));
    assert.equal(types['notes.one'], 'one');
    assert.equal(types['notes.one/embedded1'], 'png');
    assert.equal(types['notes.one/embedded2'], 'hta');
    assert.equal(types['notes.one/embedded4'], 'exe');
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'notes.one/embedded3'), JSON.stringify(r.findings));
    for (const seed of [1, 2, 3]) assert.deepEqual((await scanFile(one, randomChunks(one, seed, 97))).files.map((f) => f.sha256), r.files.map((f) => f.sha256));
  });

  it('a length past the end: what is there is scanned, ARCHIVE_CORRUPT; a later object is still its own member', async () => {
    const cut = Buffer.concat([oneNoteSection([]), fileDataStoreObject(Buffer.concat([Buffer.alloc(16, 0x41)]), 1 << 30), fileDataStoreObject(EICAR)]);
    const r = await scanFile(cut);
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /runs past the end/.test(e.detail ?? '')), JSON.stringify(r.events));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'notes.one/embedded2'), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('a section with only a picture: no finding, no event', async () => {
    const r = await scanFile(oneNoteSection([PNG]));
    assert.deepEqual(r.findings, []);
    assert.deepEqual(r.events, []);
  });
});

describe('OneNote sections in the analysis engine', () => {
  it('a section carrying an HTA or a program is malicious; one with pictures only is benign', async () => {
    const { analyze } = await import('../../../src/inspect/engines/analysis/analyze.ts');
    const judge = (b: Buffer) => analyze({ bytes: b, detectedType: 'one', name: 'notes.one', flags: [] });
    const bad = judge(oneNoteSection([PNG, HTA]));
    assert.equal(bad.verdict, 'malicious', JSON.stringify(bad.indicators));
    assert.ok(bad.indicators.some((i) => /carrying a file that runs \(an HTML application/.test(i.reason)));
    assert.equal(judge(oneNoteSection([PNG, PE])).verdict, 'malicious');
    assert.equal(judge(oneNoteSection([PNG, PNG])).verdict, 'benign');
  });
});
