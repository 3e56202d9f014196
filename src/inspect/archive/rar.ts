/**
 * RAR (4.x and 5.x) without bsdtar (bsdtar-tool.ts unpacks it when installed): recognised and
 * walked far enough to tell whether it is encrypted, not unpacked (no maintained pure-JS RAR
 * decompressor installs here, and RAR's licence forbids writing a decompressor from its code). An encrypted RAR becomes `encrypted-rar` with
 * ARCHIVE_ENCRYPTED; any other RAR is ARCHIVE_UNSUPPORTED, so the policy decides
 * (`on-unscannable`) instead of the members passing unseen. clamd, when configured, still
 * unpacks it from the whole file.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';

/** Whether the archive (or a member) is encrypted, from its headers. */
export function rarEncrypted(b: Buffer): boolean {
  return b[6] === 0x01 ? rar5Encrypted(b) : rar4Encrypted(b);
}

export async function inspectRar(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  if (rarEncrypted(b)) {
    ctx.event('ARCHIVE_ENCRYPTED', 'rar');
    return { type: 'encrypted-rar' };
  }
  ctx.event('ARCHIVE_UNSUPPORTED', 'rar members are not unpacked (bsdtar is not installed: apt-get install libarchive-tools)');
  return {};
}

/** RAR 4: the archive header's "headers encrypted" flag, or a file header's "encrypted" flag. */
function rar4Encrypted(b: Buffer): boolean {
  for (let p = 7, n = 0; p + 7 <= b.length && n < 100_000; n++) {
    const type = b[p + 2]!;
    const flags = b.readUInt16LE(p + 3);
    const size = b.readUInt16LE(p + 5);
    if (size < 7) return false;
    if (type === 0x73 && (flags & 0x0080) !== 0) return true;
    if (type === 0x74 && (flags & 0x0004) !== 0) return true;
    const add = (flags & 0x8000) !== 0 && p + 11 <= b.length ? b.readUInt32LE(p + 7) : 0;
    p += size + add;
  }
  return false;
}

/** RAR 5: an archive encryption header (type 4), or a file header with an encryption record. */
function rar5Encrypted(b: Buffer): boolean {
  let p = 8;
  const vint = (): number => {
    let n = 0;
    for (let shift = 0; p < b.length && shift < 63; shift += 7) {
      const x = b[p++]!;
      n += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) return n;
    }
    return -1;
  };
  for (let count = 0; p + 4 < b.length && count < 100_000; count++) {
    p += 4; // CRC32
    const headerSize = vint();
    if (headerSize <= 0) return false;
    const headerStart = p;
    const type = vint();
    if (type === 4) return true;
    const flags = vint();
    const extraSize = (flags & 1) !== 0 ? vint() : 0;
    const dataSize = (flags & 2) !== 0 ? vint() : 0;
    if (type === 2 && extraSize > 0) {
      const extraStart = headerStart + headerSize - extraSize;
      for (let q = extraStart; q < headerStart + headerSize; ) {
        p = q;
        const recordSize = vint();
        const recordStart = p;
        if (recordSize <= 0) break;
        if (vint() === 1) return true; // file encryption record
        q = recordStart + recordSize;
      }
    }
    if (type === 5) return false; // end of archive
    p = headerStart + headerSize + Math.max(0, dataSize);
  }
  return false;
}
