/**
 * Zip members in compression methods only 7-Zip decodes (Deflate64, BZip2, LZMA, PPMd, XZ),
 * written by 7zz in the test: 7-Zip reads the archive again and those members are scanned;
 * members already read natively are not scanned twice. Without 7-Zip: ARCHIVE_UNSUPPORTED.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SevenZipTool, zipBySevenZipReader } from '../../../src/inspect/archive/seven-zip-tool.ts';
import { ZIP_BY_SEVEN_ZIP } from '../../../src/inspect/archive/unpack.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-zipm-'));
const tool = SevenZipTool.find('auto', 20_000, join(dir, 'work'));
// Large and repetitive, so 7-Zip really compresses it (a 68-byte file it would simply store).
const PAYLOAD = Buffer.concat([EICAR, Buffer.from('\r\n'), Buffer.alloc(20_000, 'z')]);
writeFileSync(join(dir, 'eicar.com'), PAYLOAD);
writeFileSync(join(dir, 'notes.txt'), 'plain words\n'.repeat(20));

let made = 0;
function zipWith(method: string): Buffer {
  const out = join(dir, `${method}-${++made}.zip`);
  execFileSync('7zz', ['a', '-tzip', `-mm=${method}`, out, 'eicar.com'], { cwd: dir, stdio: 'ignore' });
  execFileSync('7zz', ['a', '-tzip', '-mm=Copy', out, 'notes.txt'], { cwd: dir, stdio: 'ignore' }); // a stored member too
  return readFileSync(out);
}

const inspector = (withTool: boolean) => new Inspector({ engines: [new SignatureEngine()], readers: { [ZIP_BY_SEVEN_ZIP]: withTool ? zipBySevenZipReader(tool) : undefined } });

describe('zip methods only 7-Zip decodes', { skip: tool ? false : '7zz is not installed' }, () => {
  for (const method of ['Deflate64', 'BZip2', 'LZMA', 'PPMd', 'XZ']) {
    it(`${method}: the member is read through 7-Zip and scanned once`, async () => {
      const r = await inspector(true).scanBuffer(zipWith(method), false, 30_000, 'a.zip');
      const member = r.files.find((f) => f.path === 'a.zip/eicar.com');
      assert.equal(member?.sha256, createHash('sha256').update(PAYLOAD).digest('hex'), `${JSON.stringify(r.files.map((f) => f.path))} ${JSON.stringify(r.events)}`);
      assert.deepEqual(r.files.map((f) => f.path).sort(), ['a.zip', 'a.zip/eicar.com', 'a.zip/notes.txt']);
      assert.deepEqual(r.events, []);
    });
  }
  it('without 7-Zip: ARCHIVE_UNSUPPORTED', async () => {
    const r = await inspector(false).scanBuffer(zipWith('BZip2'), false, 30_000, 'a.zip');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && /compression method 12/.test(e.detail ?? '')), JSON.stringify(r.events));
  });
});
