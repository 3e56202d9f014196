/**
 * OLE2 / Compound File Binary ([MS-CFB]): the container of .doc, .xls, .ppt, .msg, .msi and
 * of the OLE objects OOXML documents embed (`word/embeddings/oleObject1.bin`). Every stream
 * is a member, named by its storage path; streams below the mini-stream cutoff are read from
 * the mini stream through the mini FAT, so a stream fragmented across mini sectors is
 * reassembled as a reader does. On top:
 *   - an `\x01Ole10Native` stream (an OLE Package: what "insert object → file" makes) gives
 *     the packaged file itself, under its own file name;
 *   - an Outlook .msg attachment's data (`__substg1.0_37010102`) is named by the
 *     attachment's file name (`3707001F` / `3704001F`).
 *
 * Bounded: chains stop at a sector seen twice or beyond the file; at most MAX_ENTRIES
 * directory entries. A file that is not a readable compound file: ARCHIVE_CORRUPT.
 */

import { cleanMemberName, type UnpackContext, type UnpackOutcome } from './types.ts';

const SIGNATURE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const END_OF_CHAIN = 0xfffffffe;
const FREE = 0xffffffff;
const MAX_ENTRIES = 10_000;

interface DirEntry {
  readonly name: string;
  readonly type: number; // 1 storage, 2 stream, 5 root
  readonly left: number;
  readonly right: number;
  readonly child: number;
  readonly start: number;
  readonly size: number;
}

class Cfb {
  readonly sectorSize: number;
  readonly miniSectorSize: number;
  readonly miniCutoff: number;
  readonly fat: Uint32Array;
  readonly miniFat: Uint32Array;
  readonly entries: DirEntry[];
  readonly miniStream: Buffer;

  constructor(private readonly b: Buffer) {
    if (b.length < 512 || b.compare(SIGNATURE, 0, 8, 0, 8) !== 0) throw new Error('no compound file header');
    const shift = b.readUInt16LE(0x1e);
    const miniShift = b.readUInt16LE(0x20);
    if (shift < 7 || shift > 16 || miniShift < 2 || miniShift >= shift) throw new Error(`sector shift ${shift}/${miniShift}`);
    this.sectorSize = 1 << shift;
    this.miniSectorSize = 1 << miniShift;
    this.miniCutoff = b.readUInt32LE(0x38) || 4096;
    this.fat = this.#readFat(b.readUInt32LE(0x2c), b.readUInt32LE(0x44), b.readUInt32LE(0x48));
    const dir = this.chain(b.readUInt32LE(0x30), Infinity);
    this.entries = [];
    for (let at = 0; at + 128 <= dir.length && this.entries.length < MAX_ENTRIES; at += 128) {
      const nameLen = Math.min(64, dir.readUInt16LE(at + 0x40));
      this.entries.push({
        name: dir.toString('utf16le', at, at + Math.max(0, nameLen - 2)),
        type: dir[at + 0x42]!,
        left: dir.readUInt32LE(at + 0x44),
        right: dir.readUInt32LE(at + 0x48),
        child: dir.readUInt32LE(at + 0x4c),
        start: dir.readUInt32LE(at + 0x74),
        size: dir.readUInt32LE(at + 0x78), // the high half is 0 for any stream that fits in mail
      });
    }
    const root = this.entries[0];
    if (!root || root.type !== 5) throw new Error('no root entry');
    this.miniFat = toU32(this.chain(b.readUInt32LE(0x3c), Infinity));
    this.miniStream = this.chain(root.start, root.size);
  }

  /** FAT from the header's 109 DIFAT entries and the DIFAT chain. */
  #readFat(fatSectors: number, difatStart: number, difatCount: number): Uint32Array {
    const ids: number[] = [];
    for (let i = 0; i < 109 && ids.length < fatSectors; i++) ids.push(this.b.readUInt32LE(0x4c + 4 * i));
    const per = this.sectorSize / 4 - 1;
    const seen = new Set<number>();
    for (let s = difatStart, n = 0; n < difatCount && s < END_OF_CHAIN && !seen.has(s) && ids.length < fatSectors; n++) {
      seen.add(s);
      const at = this.#offset(s);
      if (at + this.sectorSize > this.b.length) break;
      for (let i = 0; i < per && ids.length < fatSectors; i++) ids.push(this.b.readUInt32LE(at + 4 * i));
      s = this.b.readUInt32LE(at + 4 * per);
    }
    const parts: Buffer[] = [];
    for (const id of ids) {
      const at = this.#offset(id);
      if (id >= END_OF_CHAIN || at + this.sectorSize > this.b.length) break;
      parts.push(this.b.subarray(at, at + this.sectorSize));
    }
    return toU32(Buffer.concat(parts));
  }

  #offset(sector: number): number {
    return (sector + 1) * this.sectorSize;
  }

  /** A chain of sectors (the FAT), at most `size` bytes; stops at a loop or beyond the file. */
  chain(start: number, size: number): Buffer {
    const parts: Buffer[] = [];
    const seen = new Set<number>();
    let total = 0;
    for (let s = start; s !== END_OF_CHAIN && s !== FREE && total < size && !seen.has(s); s = this.fat[s] ?? END_OF_CHAIN) {
      seen.add(s);
      const at = this.#offset(s);
      if (at + this.sectorSize > this.b.length) break;
      parts.push(this.b.subarray(at, at + this.sectorSize));
      total += this.sectorSize;
    }
    const all = Buffer.concat(parts);
    return Number.isFinite(size) ? all.subarray(0, size) : all;
  }

  /** A stream's bytes, from the mini stream when it is small, else from the sectors. */
  stream(e: DirEntry): Buffer {
    if (e.size >= this.miniCutoff) return this.chain(e.start, e.size);
    const parts: Buffer[] = [];
    const seen = new Set<number>();
    let total = 0;
    for (let s = e.start; s !== END_OF_CHAIN && s !== FREE && total < e.size && !seen.has(s); s = this.miniFat[s] ?? END_OF_CHAIN) {
      seen.add(s);
      const at = s * this.miniSectorSize;
      if (at + this.miniSectorSize > this.miniStream.length) break;
      parts.push(this.miniStream.subarray(at, at + this.miniSectorSize));
      total += this.miniSectorSize;
    }
    return Buffer.concat(parts).subarray(0, e.size);
  }
}

const toU32 = (b: Buffer): Uint32Array => {
  const out = new Uint32Array(Math.floor(b.length / 4));
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(i * 4);
  return out;
};

/** Every stream with its storage path, walking the red-black trees (each entry once). */
function paths(cfb: Cfb): Array<{ path: string; entry: DirEntry; parent: string }> {
  const out: Array<{ path: string; entry: DirEntry; parent: string }> = [];
  const seen = new Set<number>();
  const walk = (id: number, parent: string): void => {
    const stack = [id];
    while (stack.length) {
      const i = stack.pop()!;
      if (i >= cfb.entries.length || seen.has(i)) continue;
      seen.add(i);
      const e = cfb.entries[i]!;
      stack.push(e.left, e.right);
      const path = parent ? `${parent}/${e.name}` : e.name;
      if (e.type === 2) out.push({ path, entry: e, parent });
      else if (e.type === 1) walk(e.child, path);
    }
  };
  walk(cfb.entries[0]!.child, '');
  return out;
}

/** An OLE Package (`\x01Ole10Native`): the packaged file's name and bytes. */
export function ole10Native(s: Buffer): { name: string; data: Buffer } | null {
  if (s.length < 12) return null;
  let at = 6; // total size (u32), flags (u16)
  const cstr = (): string | null => {
    const end = s.indexOf(0, at);
    if (end === -1) return null;
    const v = s.toString('latin1', at, end);
    at = end + 1;
    return v;
  };
  const label = cstr();
  const file = cstr();
  if (label === null || file === null || at + 8 > s.length) return null;
  at += 4; // unknown (u16 u16)
  const tmpLen = s.readUInt32LE(at);
  at += 4 + tmpLen;
  if (at + 4 > s.length) return null;
  const size = s.readUInt32LE(at);
  at += 4;
  const data = s.subarray(at, Math.min(s.length, at + size));
  const base = (label || file).split(/[\\/]/).pop() || 'package';
  return { name: base, data };
}

export async function unpackOle(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  let cfb: Cfb;
  try {
    cfb = new Cfb(b);
  } catch (err) {
    ctx.event('ARCHIVE_CORRUPT', `OLE2: ${(err as Error).message}`);
    return {};
  }
  const streams = paths(cfb);
  // Outlook attachments: each __attach storage's data stream is named by its file name.
  const attachNames = new Map<string, string>();
  for (const s of streams) {
    if (/__substg1\.0_370(7|4)001F$/i.test(s.path) && !attachNames.has(s.parent)) attachNames.set(s.parent, cfb.stream(s.entry).toString('utf16le').replace(/\0+$/, ''));
  }
  for (const s of streams) {
    if (ctx.stopped) break;
    const data = cfb.stream(s.entry);
    const attach = /__substg1\.0_37010102$/i.test(s.path) ? attachNames.get(s.parent) : undefined;
    const sink = ctx.member(cleanMemberName(attach ? `${s.parent}/${attach}` : s.path.replace(/[\x00-\x1f]/g, '')));
    if (sink === null) break;
    if (!ctx.copy(sink, data)) break;
    sink.end();
    if (s.entry.name === '\x01Ole10Native') {
      const pkg = ole10Native(data);
      if (!pkg) {
        ctx.event('ARCHIVE_CORRUPT', `OLE2: ${s.path.replace(/[\x00-\x1f]/g, '')}: an OLE package that cannot be read`);
        continue;
      }
      const inner = ctx.member(cleanMemberName(`${s.parent ? `${s.parent}/` : ''}${pkg.name}`));
      if (inner === null) break;
      if (!ctx.copy(inner, pkg.data)) break;
      inner.end();
    }
  }
  return {};
}
