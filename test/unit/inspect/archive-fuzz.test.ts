/**
 * Archive readers under hostile bytes (seed-fixed; `npm run fuzz` runs more): valid zips, tars,
 * gzips, TNEF, ISO 9660 images, PDFs and XML (their text), OLE2 compound files, RTF objects,
 * Apple disk images, OneNote sections, rar and 7z heads with random bytes flipped, cut short or spliced together, and
 * pure noise behind each magic number. Properties: the inspector never throws and always
 * finishes, every member path stays under its container, and the result does not depend on how
 * the container's bytes were chunked.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { DEFAULT_ARCHIVE_LIMITS } from '../../../src/inspect/archive/unpack.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import type { ScanResult } from '../../../src/inspect/types.ts';
import { gzip, isoImage, rar4, rar4StoredVolumes, rar5, rar5Stored, rar5StoredVolumes, sevenZip, tar, tnef, tnefMapiOnly, zip } from '../../helpers/archives.ts';
import { cfb, ole10Native } from '../../helpers/cfb.ts';
import { randomChunks } from '../../helpers/chunking.ts';
import { udif } from '../../helpers/dmg.ts';
import { oneNoteSection } from '../../helpers/onenote.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()], archives: { ...DEFAULT_ARCHIVE_LIMITS, maxTimeMs: 2000 } });

async function scanFile(bytes: Buffer, chunks?: Buffer[]): Promise<ScanResult> {
  const f = inspector.beginFile('x');
  for (const c of chunks ?? [bytes]) f.write(c);
  return f.end(10_000);
}

const summary = (r: ScanResult) => ({
  files: r.files.map((f) => `${f.path}:${f.detectedType}:${f.size}:${f.sha256}`).sort(),
  findings: r.findings.map((f) => `${f.threat}@${f.file.path}`).sort(),
  events: r.events.map((e) => `${e.name}@${e.where}`).sort(),
});

const SEEDS: readonly Buffer[] = [
  zip([{ name: 'a.txt', data: Buffer.from('hello world '.repeat(50)) }, { name: 'e.com', data: EICAR, method: 'stored' }, { name: 'd/z.bin', data: Buffer.alloc(3000, 7), zip64: true }]),
  zip([{ name: 'in.zip', data: zip([{ name: 'x', data: Buffer.from('inner') }]) }], { prefix: Buffer.from('MZ prefix') }),
  zip([{ name: 'dd', data: Buffer.from('descriptor '.repeat(40)), descriptor: true }], { noCentral: true }),
  tar([{ name: 'a', data: Buffer.from('tar member') }, { name: `${'long/'.repeat(30)}b`, data: EICAR }]),
  gzip(tar([{ name: 't', data: Buffer.from('tgz') }]), 'x.tar'),
  tnef([{ name: 'a.doc', data: Buffer.from('doc') }, { name: 'e.com', data: EICAR }]),
  tnefMapiOnly('mapi.com', EICAR),
  Buffer.concat([Buffer.from('MZ'), Buffer.alloc(5000, 0x90), rar5Stored([{ name: 'sfx.com', data: EICAR }]), zip([{ name: 'z.com', data: EICAR }])]),
  Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`utf-16 text ${EICAR.toString('latin1')}`, 'utf16le')]),
  rar4(true),
  rar5(false),
  // Volumes of multi-volume RARs, one alone and two joined (rar.ts walks their volume flags).
  rar4StoredVolumes('v.com', Buffer.concat([EICAR, Buffer.alloc(2000, 0x41)]), 3)[1]!,
  Buffer.concat(rar5StoredVolumes('v.com', Buffer.concat([EICAR, Buffer.alloc(2000, 0x41)]), 3).slice(0, 2)),
  sevenZip(true),
  isoImage([{ name: 'r.txt', data: Buffer.from('iso member') }, { name: 'd/e.com', data: EICAR }], { joliet: true }),
  Buffer.concat([Buffer.from('%PDF-1.7\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n'), deflateSync(Buffer.from(`begincmap 1 beginbfchar <0001> <0041> endbfchar endcmap BT (a\\(b) Tj [(c) -300 (d)] TJ <0001> Tj ET`)), Buffer.from('\nendstream\nendobj\n%%EOF\n')]),
  Buffer.from('<?xml version="1.0"?><w:document><w:p><w:r><w:t>a &amp; b</w:t><w:tab/></w:r></w:p><!-- c --><![CDATA[d]]></w:document>'),
  // Documents that carry files: an OLE2 compound file with a package (fragmented mini
  // stream), an RTF object in hex, an Apple disk image (its trailer at the end).
  cfb([{ name: 'WordDocument', data: Buffer.alloc(300, 0x41) }, { name: '\x01Ole10Native', data: ole10Native('run.bat', EICAR) }], { fragment: true }),
  Buffer.from(`{\\rtf1{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata ${ole10Native('e.com', EICAR).toString('hex').replace(/(.{9})/g, '$1 \r\n')}}}}`, 'latin1'),
  udif(isoImage([{ name: 'd.com', data: EICAR }]), 'zlib'),
  oneNoteSection([Buffer.from('<html><hta:application/></html>'), EICAR]),
];

/** A valid archive damaged: bytes flipped, cut, duplicated or spliced with another. */
const damaged = fc
  .tuple(
    fc.integer({ min: 0, max: SEEDS.length - 1 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.option(fc.tuple(fc.integer({ min: 0, max: SEEDS.length - 1 }), fc.nat()), { nil: undefined }),
  )
  .map(([i, flips, cut, splice]) => {
    let b = Buffer.from(SEEDS[i]!);
    for (const [pos, value] of flips) b[pos % b.length] = value;
    if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
    if (splice) b = Buffer.concat([b, SEEDS[splice[0]]!.subarray(splice[1] % SEEDS[splice[0]]!.length)]);
    return b;
  });

/** Noise behind a magic number: each reader must refuse it gracefully. */
const noisy = fc
  .tuple(fc.constantFrom('PK\x03\x04', 'PK\x05\x06', '\x1f\x8b\x08', 'Rar!\x1a\x07\x00', 'Rar!\x1a\x07\x01\x00', '7z\xbc\xaf\x27\x1c', '\x78\x9f\x3e\x22'), fc.uint8Array({ maxLength: 600 }))
  .map(([magic, rest]) => Buffer.concat([Buffer.from(magic, 'latin1'), Buffer.from(rest)]));

describe('archive readers under hostile bytes (seed-fixed)', () => {
  it('never throw, always finish, keep member paths under their container, ignore chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(damaged, noisy), fc.integer({ min: 1, max: 1e9 }), async (bytes, seed) => {
        const whole = await scanFile(bytes);
        for (const f of whole.files) assert.ok(f.path === 'x' || f.path.startsWith('x/'), f.path);
        assert.deepEqual(summary(await scanFile(bytes, randomChunks(bytes, seed, 97))), summary(whole));
      }),
      { seed: Number(process.env.FUZZ_SEED ?? 5), numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});
