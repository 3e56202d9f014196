/**
 * TNEF (winmail.dat) beyond attAttachData: attachments stored only as MAPI properties
 * (PR_ATTACH_DATA_BIN, and PR_ATTACH_DATA_OBJ holding an embedded TNEF message), named by
 * PR_ATTACH_LONG_FILENAME, and the message body as compressed RTF (PR_RTF_COMPRESSED, with a
 * back-reference into the format's initial dictionary) whose \objdata object is found. Debian's
 * `tnef` is the reference: what it extracts (attachments, `--save-body` RTF) is byte for byte
 * what the inspector scanned. Malformed property lists are ARCHIVE_CORRUPT, never a crash.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decompressRtf, mapiProperties } from '../../../src/inspect/archive/tnef.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { tnefAttribute } from '../../helpers/archives.ts';
import { hasCommand } from '../../helpers/tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-tnef-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const inspector = new Inspector({ engines: [new SignatureEngine()] });
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const haveTnef = hasCommand('tnef');

const attr = tnefAttribute;

const pad4 = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** A MAPI property list of variable-size (string, binary, object) properties. */
function props(list: ReadonlyArray<{ id: number; type: number; value: Buffer }>): Buffer {
  const parts = [u32(list.length)];
  for (const p of list) {
    const tag = Buffer.alloc(4);
    tag.writeUInt16LE(p.type, 0);
    tag.writeUInt16LE(p.id, 2);
    parts.push(tag, u32(1), u32(p.value.length), pad4(p.value));
  }
  return Buffer.concat(parts);
}

const TNEF_HEAD = Buffer.concat([Buffer.from([0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00]), attr(1, 0x00089006, Buffer.from([1, 0, 1, 0]))]);
const unicode = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf16le');

/** A TNEF whose one attachment lives only in its MAPI properties. */
function mapiOnly(name: string, data: Buffer, asObject = false): Buffer {
  const value = asObject ? Buffer.concat([Buffer.alloc(16, 0x11), data]) : data; // an object starts with its IID
  return Buffer.concat([
    TNEF_HEAD,
    attr(2, 0x00069002, Buffer.alloc(14)),
    attr(2, 0x00069005, props([
      { id: 0x3707, type: 0x001f, value: unicode(name) },
      { id: 0x3701, type: asObject ? 0x000d : 0x0102, value },
    ])),
  ]);
}

/** MS-OXRTFCP's CRC: CRC-32's table, initial value 0, no final inversion. */
function rtfCrc(b: Buffer): number {
  let crc = 0;
  for (const x of b) {
    let c = (crc ^ x) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (c ^ (crc >>> 8)) >>> 0;
  }
  return crc;
}

/** LZFu compressed RTF: a reference into the initial dictionary for `{\rtf1\ansi`, then literals, then the end. */
function compressRtf(rtf: Buffer): Buffer {
  const items: Buffer[] = [];
  const flags: boolean[] = [];
  const prefix = Buffer.from('{\\rtf1\\ansi', 'latin1');
  let w = 207;
  let at = 0;
  if (rtf.subarray(0, prefix.length).equals(prefix)) {
    const ref = Buffer.alloc(2);
    ref.writeUInt16BE((0 << 4) | (prefix.length - 2));
    items.push(ref);
    flags.push(true);
    at = prefix.length;
    w += prefix.length;
  }
  for (; at < rtf.length; at++, w++) {
    items.push(rtf.subarray(at, at + 1));
    flags.push(false);
  }
  const end = Buffer.alloc(2);
  end.writeUInt16BE((w & 4095) << 4);
  items.push(end);
  flags.push(true);
  const body: Buffer[] = [];
  for (let i = 0; i < items.length; i += 8) {
    let control = 0;
    for (let k = 0; k < 8 && i + k < items.length; k++) if (flags[i + k]) control |= 1 << k;
    body.push(Buffer.from([control]), ...items.slice(i, i + 8));
  }
  const data = Buffer.concat(body);
  const header = Buffer.alloc(16);
  header.writeUInt32LE(data.length + 12, 0);
  header.writeUInt32LE(rtf.length, 4);
  header.writeUInt32LE(0x75465a4c, 8);
  header.writeUInt32LE(rtfCrc(data), 12);
  return Buffer.concat([header, data]);
}

/** What `tnef` extracts into a fresh directory (with --save-body, the RTF body too). */
function tnefExtracts(file: Buffer, body = false): Buffer[] {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  mkdirSync(out);
  writeFileSync(join(out, '..', 'in.dat'), file);
  execFileSync('tnef', ['-f', join(out, '..', 'in.dat'), '-C', out, '--overwrite', ...(body ? ['--save-body=body', '--body-pref=R'] : [])], { stdio: 'ignore' });
  return readdirSync(out).map((n) => readFileSync(join(out, n)));
}

describe('TNEF: MAPI-only attachments and the compressed RTF body', () => {
  it('an attachment only in PR_ATTACH_DATA_BIN, named by PR_ATTACH_LONG_FILENAME: found, as tnef extracts it', async () => {
    const file = mapiOnly('Rechnung 2026.com', EICAR);
    const r = await inspector.scanBuffer(file, false, 10_000, 'winmail.dat');
    const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
    assert.equal(f?.file.path, 'winmail.dat/Rechnung 2026.com', JSON.stringify(r.files.map((x) => x.path)));
    if (haveTnef) assert.ok(tnefExtracts(file).some((b) => sha(b) === f.file.sha256), 'tnef extracts the same bytes');
  });

  it('an embedded message in PR_ATTACH_DATA_OBJ (a TNEF inside): its attachment is found', async () => {
    const inner = mapiOnly('inner.com', EICAR);
    const r = await inspector.scanBuffer(mapiOnly('forwarded', inner, true), false, 10_000, 'winmail.dat');
    assert.ok(r.findings.some((x) => x.threat === 'EICAR-Test-File' && x.file.path === 'winmail.dat/forwarded/inner.com'), JSON.stringify(r.files.map((x) => x.path)));
  });

  it('the body as compressed RTF: decompressed as tnef --save-body does, and its \\objdata object found', async () => {
    const ole = Buffer.concat([Buffer.from([1, 5, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0]), Buffer.from('Package\0', 'latin1'), Buffer.alloc(8), u32(EICAR.length), EICAR]);
    const rtf = Buffer.from(`{\\rtf1\\ansi\\deff0 Hello {\\object\\objemb{\\*\\objdata ${ole.toString('hex')}}}}`, 'latin1');
    const file = Buffer.concat([TNEF_HEAD, attr(1, 0x00069003, props([{ id: 0x1009, type: 0x0102, value: compressRtf(rtf) }]))]);
    assert.deepEqual(decompressRtf(compressRtf(rtf)), rtf);
    const r = await inspector.scanBuffer(file, false, 10_000, 'winmail.dat');
    const body = r.files.find((x) => x.path === 'winmail.dat/(body.rtf)');
    assert.equal(body?.sha256, sha(rtf));
    assert.ok(r.findings.some((x) => x.threat === 'EICAR-Test-File' && x.file.path.startsWith('winmail.dat/(body.rtf)/')), JSON.stringify([r.files.map((x) => x.path), r.events]));
    if (haveTnef) assert.ok(tnefExtracts(file, true).some((b) => b.equals(rtf)), 'tnef writes the same RTF body');
  });

  it('malformed MAPI property lists: ARCHIVE_CORRUPT, no crash, no hang', async () => {
    assert.equal(mapiProperties(Buffer.from([0xff, 0xff, 0xff, 0xff])), null, 'a count with nothing behind it');
    const huge = Buffer.concat([u32(0xffffffff), ...Array.from({ length: 20_000 }, () => Buffer.from([0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0]))]);
    assert.ok((mapiProperties(huge)?.length ?? 0) === 0, 'fixed-size properties carry no file; the count is bounded');
    const bad = Buffer.concat([TNEF_HEAD, attr(2, 0x00069002, Buffer.alloc(14)), attr(2, 0x00069005, Buffer.concat([u32(1), Buffer.from([0x02, 0x01, 0x01, 0x37]), u32(1), u32(1_000_000)]))]);
    const r = await inspector.scanBuffer(bad, false, 10_000, 'winmail.dat');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /MAPI/.test(e.detail ?? '')), JSON.stringify(r.events));
    assert.equal(decompressRtf(Buffer.alloc(10)), null);
    const truncated = compressRtf(Buffer.from('{\\rtf1\\ansi text', 'latin1')).subarray(0, 20);
    assert.ok(decompressRtf(truncated) !== null, 'a cut stream gives what it has');
  });
});
