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
  const missing = missingVolumes(b);
  ctx.event('ARCHIVE_UNSUPPORTED', `rar members are not unpacked (bsdtar is not installed: apt-get install libarchive-tools)${missing ? `; ${missing}` : ''}`);
  return {};
}

/**
 * Whether a RAR (one volume, or volumes joined in order) is missing volumes of a multi-volume
 * set: its first file continues from a volume before it, or its last volume says more follow
 * (the end header's "not last volume" flag, or a file that continues in the next). A reader
 * given it alone stops where the data stops, so the whole of that member is never seen: the
 * detail for ARCHIVE_CORRUPT, or null when nothing is missing (or it is no volume at all).
 */
export function missingVolumes(b: Buffer): string | null {
  const volumes = b[6] === 0x01 ? rar5Volumes(b) : rar4Volumes(b);
  if (volumes.length === 0) return null;
  const first = volumes[0]!;
  const last = volumes[volumes.length - 1]!;
  const joined = volumes.length > 1 ? `${volumes.length} joined volumes of a multi-volume RAR` : `a volume${first.number !== null ? ` (number ${first.number + 1})` : ''} of a multi-volume RAR`;
  if (first.fromPrevious !== null) return `${joined} without the volumes before it: ${first.fromPrevious} begins in one of them; what is here was inspected, the whole member cannot be`;
  if (last.intoNext !== null || last.more) return `${joined} without the volumes after it${last.intoNext !== null ? `: ${last.intoNext} continues in them` : ''}; what is here was inspected, the whole cannot be`;
  return null;
}

/**
 * Whether these files are the first volumes of one multi-volume RAR, in order: each a single
 * RAR volume, every one but the last saying that more follow. Only then are they joined (a
 * reader given the concatenation reads from one into the next; if the last still says more,
 * the joined archive reports the missing rest, missingVolumes); two unrelated archives named
 * like volumes are each read alone.
 */
export function isRarVolumeChain(pieces: readonly Buffer[]): boolean {
  return pieces.every((b, i) => {
    const v = b[6] === 0x01 ? rar5Volumes(b) : b[6] === 0x00 ? rar4Volumes(b) : [];
    return v.length === 1 && (v[0]!.more || i === pieces.length - 1);
  });
}

interface VolumeFacts {
  /** The main header's volume number (RAR 5; 0 = the first), null when not given. */
  number: number | null;
  /** The first file header continues from the previous volume: its name. */
  fromPrevious: string | null;
  /** A file header continues in the next volume: its name. */
  intoNext: string | null;
  /** The end header says this is not the last volume. */
  more: boolean;
}

const RAR4_SIGNATURE = Buffer.from('Rar!\x1a\x07\x00', 'latin1');
const RAR5_SIGNATURE = Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1');

/** RAR 4 volumes from the start of `b`, one after the other; [] when the archive is no volume. */
function rar4Volumes(b: Buffer): VolumeFacts[] {
  const out: VolumeFacts[] = [];
  let p = 0;
  let isVolume = false;
  while (p + 7 <= b.length && b.compare(RAR4_SIGNATURE, 0, 7, p, p + 7) === 0 && out.length < 10_000) {
    const v: VolumeFacts = { number: null, fromPrevious: null, intoNext: null, more: false };
    out.push(v);
    let files = 0;
    p += 7;
    for (let n = 0; p + 7 <= b.length && n < 100_000; n++) {
      const type = b[p + 2]!;
      const flags = b.readUInt16LE(p + 3);
      const size = b.readUInt16LE(p + 5);
      if (size < 7) return isVolume ? out : [];
      if (type === 0x73 && (flags & 0x0001) !== 0) isVolume = true;
      if (type === 0x74 && p + 32 <= b.length) {
        const name = b.toString('latin1', p + 32, Math.min(p + 32 + b.readUInt16LE(p + 26), b.length));
        if (files === 0 && (flags & 0x01) !== 0) v.fromPrevious = name;
        if ((flags & 0x02) !== 0) v.intoNext = name;
        files++;
      }
      const add = (flags & 0x8000) !== 0 && p + 11 <= b.length ? b.readUInt32LE(p + 7) : 0;
      p += size + add;
      if (type === 0x7b) {
        v.more = (flags & 0x0001) !== 0;
        break;
      }
    }
  }
  return isVolume ? out : [];
}

/** A position in a RAR 5 archive, and its variable-length integers (vint: 7 bits a byte). */
class Rar5Cursor {
  constructor(
    readonly b: Buffer,
    public p: number,
  ) {}

  /** The vint at the position, which moves past it; -1 if it runs off the end. */
  vint(): number {
    let n = 0;
    for (let shift = 0; this.p < this.b.length && shift < 63; shift += 7) {
      const x = this.b[this.p++]!;
      n += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) return n;
    }
    return -1;
  }
}

/** RAR 5 volumes from the start of `b`, one after the other; [] when the archive is no volume. */
function rar5Volumes(b: Buffer): VolumeFacts[] {
  const out: VolumeFacts[] = [];
  const c = new Rar5Cursor(b, 0);
  let isVolume = false;
  const vint = (): number => c.vint();
  while (c.p + 8 <= b.length && b.compare(RAR5_SIGNATURE, 0, 8, c.p, c.p + 8) === 0 && out.length < 10_000) {
    const v: VolumeFacts = { number: null, fromPrevious: null, intoNext: null, more: false };
    out.push(v);
    let files = 0;
    c.p += 8;
    for (let count = 0; c.p + 4 < b.length && count < 100_000; count++) {
      c.p += 4; // CRC32
      const headerSize = vint();
      if (headerSize <= 0) return isVolume ? out : [];
      const headerStart = c.p;
      const type = vint();
      const flags = vint();
      if ((flags & 1) !== 0) vint(); // extra area size
      const dataSize = (flags & 2) !== 0 ? vint() : 0;
      if (type === 1) {
        const archiveFlags = vint();
        if ((archiveFlags & 0x0001) !== 0) isVolume = true;
        v.number = (archiveFlags & 0x0002) !== 0 ? vint() : 0;
      } else if (type === 2) {
        const fileFlags = vint();
        vint(); // unpacked size
        vint(); // attributes
        if ((fileFlags & 0x02) !== 0) c.p += 4; // mtime
        if ((fileFlags & 0x04) !== 0) c.p += 4; // data CRC32
        vint(); // compression
        vint(); // host OS
        const nameLength = vint();
        const name = nameLength > 0 ? b.toString('utf8', c.p, Math.min(c.p + nameLength, b.length)) : '';
        if (files === 0 && (flags & 0x0008) !== 0) v.fromPrevious = name;
        if ((flags & 0x0010) !== 0) v.intoNext = name;
        files++;
      } else if (type === 5) {
        v.more = (vint() & 0x0001) !== 0;
        c.p = headerStart + headerSize;
        break;
      }
      c.p = headerStart + headerSize + Math.max(0, dataSize);
    }
  }
  return isVolume ? out : [];
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
  const c = new Rar5Cursor(b, 8);
  const vint = (): number => c.vint();
  for (let count = 0; c.p + 4 < b.length && count < 100_000; count++) {
    c.p += 4; // CRC32
    const headerSize = vint();
    if (headerSize <= 0) return false;
    const headerStart = c.p;
    const type = vint();
    if (type === 4) return true;
    const flags = vint();
    const extraSize = (flags & 1) !== 0 ? vint() : 0;
    const dataSize = (flags & 2) !== 0 ? vint() : 0;
    if (type === 2 && extraSize > 0) {
      const extraStart = headerStart + headerSize - extraSize;
      for (let q = extraStart; q < headerStart + headerSize; ) {
        c.p = q;
        const recordSize = vint();
        const recordStart = c.p;
        if (recordSize <= 0) break;
        if (vint() === 1) return true; // file encryption record
        q = recordStart + recordSize;
      }
    }
    if (type === 5) return false; // end of archive
    c.p = headerStart + headerSize + Math.max(0, dataSize);
  }
  return false;
}
