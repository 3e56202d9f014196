/**
 * Zip archives that readers read differently (the central directory for Explorer and 7-Zip,
 * the local headers for streaming readers, the last end record or the first): every reading is
 * inspected and ARCHIVE_AMBIGUOUS says why. Checked against `unzip` where installed: whatever
 * it extracts, the inspector scanned. An ordinary zip raises nothing.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32, deflateRawSync } from 'node:zlib';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { createHash } from 'node:crypto';

interface Member {
  name: string;
  data: Buffer;
  method?: 0 | 8;
  /** What the local header claims instead (method, packed size). */
  local?: { method?: number; size?: number };
  /** Left out of the central directory. */
  hidden?: boolean;
}

/** A zip with exactly these local headers and central records. */
function build(members: Member[], opts: { comment?: Buffer; after?: Buffer } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const method = m.method ?? 0;
    const packed = method === 8 ? deflateRawSync(m.data) : m.data;
    const name = Buffer.from(m.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m.local?.method ?? method, 8);
    local.writeUInt32LE(crc32(m.data), 14);
    local.writeUInt32LE(m.local?.size ?? packed.length, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, packed);
    if (!m.hidden) {
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(20, 4);
      c.writeUInt16LE(20, 6);
      c.writeUInt16LE(method, 10);
      c.writeUInt32LE(crc32(m.data), 16);
      c.writeUInt32LE(packed.length, 20);
      c.writeUInt32LE(m.data.length, 24);
      c.writeUInt16LE(name.length, 28);
      c.writeUInt32LE(offset, 42);
      central.push(c, name);
    }
    offset += 30 + name.length + packed.length;
  }
  const cd = Buffer.concat(central);
  const comment = opts.comment ?? Buffer.alloc(0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  const count = members.filter((m) => !m.hidden).length;
  eocd.writeUInt16LE(count, 8);
  eocd.writeUInt16LE(count, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...parts, cd, eocd, comment, opts.after ?? Buffer.alloc(0)]);
}

const CLEAN = { name: 'readme.txt', data: Buffer.from('nothing here\n') };
const inspector = new Inspector({ engines: [new SignatureEngine()] });
const scan = (b: Buffer) => inspector.scanBuffer(b, false, 20_000, 'a.zip');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'smtpwall-zipread-'));

/** Every file `unzip` extracts from the archive (it may complain: only its output counts). */
function unzipped(b: Buffer, name: string): Buffer[] {
  if (!existsSync('/usr/bin/unzip')) return [];
  const out = join(dir, name);
  writeFileSync(`${out}.zip`, b);
  try {
    execFileSync('/usr/bin/unzip', ['-qq', '-o', '-d', out, `${out}.zip`], { stdio: 'ignore' });
  } catch {
    // unzip exits non-zero on the oddities these archives are made of
  }
  return existsSync(out) ? readdirSync(out, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => readFileSync(join(e.parentPath, e.name))) : [];
}

describe('zip: every reading', () => {
  const cases: ReadonlyArray<readonly [string, Buffer, RegExp]> = [
    ['an entry with a local header only (hidden from Explorer)', build([CLEAN, { name: 'eicar.com', data: EICAR, hidden: true }]), /local header and no central directory entry/],
    ['the local header names another method than the central directory', build([{ name: 'eicar.com', data: EICAR, method: 0, local: { method: 8 } }]), /local header says method 8/],
    ['the local header gives another size', build([{ name: 'x.bin', data: Buffer.concat([Buffer.from('pad'), EICAR]), local: { size: 3 } }]), /local header says method 0, 3 bytes/],
    ['a second archive in the end-record comment', build([CLEAN], { comment: build([{ name: 'eicar.com', data: EICAR }]) }), /another archive in the comment or after|more than one end-of-central-directory/],
    ['a second archive after the end record', build([CLEAN], { after: build([{ name: 'eicar.com', data: EICAR }]) }), /another archive in the comment or after|more than one end-of-central-directory/],
  ];
  for (const [name, bytes, why] of cases) {
    it(`${name}: inspected, ARCHIVE_AMBIGUOUS`, async () => {
      const r = await scan(bytes);
      assert.ok(r.events.some((e) => e.name === 'ARCHIVE_AMBIGUOUS' && why.test(e.detail ?? '')), JSON.stringify(r.events));
      const scanned = new Set(r.files.map((f) => f.sha256));
      for (const f of unzipped(bytes, name.replace(/\W+/g, '-'))) assert.ok(scanned.has(sha(f)), `unzip extracted a file the inspector did not scan (${f.length} bytes)`);
    });
  }

  it('in both two-archive cases the second archive\'s malware is found', async () => {
    for (const opts of [{ comment: build([{ name: 'eicar.com', data: EICAR }]) }, { after: build([{ name: 'eicar.com', data: EICAR }]) }]) {
      const r = await scan(build([CLEAN], opts));
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File'), JSON.stringify(r.files.map((f) => f.path)));
    }
  });

  it('where the hidden entry is malware, it is found', async () => {
    const r = await scan(build([CLEAN, { name: 'eicar.com', data: EICAR, hidden: true }]));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'a.zip/eicar.com'));
  });

  it('an ordinary zip (stored and deflated members) raises nothing', async () => {
    const r = await scan(build([CLEAN, { name: 'big.txt', data: Buffer.from('words '.repeat(1000)), method: 8 }]));
    assert.deepEqual(r.events, []);
    assert.equal(r.files.length, 3);
  });
});
