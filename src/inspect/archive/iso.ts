/**
 * ISO 9660 disk images (with Joliet names when present): the files inside become members, so
 * an executable or shortcut mailed in an .iso/.img — a favourite way around mark-of-the-web —
 * is scanned and analyzed like any attachment.
 *
 * Layout (ECMA-119): volume descriptors from sector 16 (primary: type 1; Joliet: a
 * supplementary one, type 2, with a UCS-2 escape sequence); each names a root directory
 * record; a directory is an extent of records (length, extent LBA, data length, flags, name).
 * Files are contiguous extents. Everything is bounds-checked against the image: a record
 * pointing outside it, a directory loop or an absurd count is reported as ARCHIVE_CORRUPT and
 * the walk goes on with what is readable. UDF-only images (no ISO 9660 descriptor) are
 * reported as ARCHIVE_UNSUPPORTED.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

const SECTOR = 2048;
const FIRST_DESCRIPTOR = 16;
/** Descriptors looked at before giving up on a terminator. */
const MAX_DESCRIPTORS = 32;
/** Directories walked per image (a crafted image could point every record at a new one). */
const MAX_DIRECTORIES = 4096;
const MAX_DEPTH = 16;

interface Volume {
  readonly blockSize: number;
  readonly root: Buffer;
  readonly joliet: boolean;
}

export interface IsoListing {
  /** Files in walk order (directories first-level first), with where their bytes are. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly from: number; readonly size: number }>;
  /** The first damage found (the walk goes on past it), or null. */
  readonly corrupt: string | null;
}

/**
 * The files of an ISO 9660 image, from its directories alone (no file data is read): for
 * unpacking, and for the disk-image analyzer's list of what the image holds. Null when the
 * image has no ISO 9660 volume.
 */
export function listIso(b: Buffer, maxFiles = Infinity): IsoListing | null {
  const volume = findVolume(b);
  if (!volume) return null;
  const files: Array<{ path: string; from: number; size: number }> = [];
  const seen = new Set<number>();
  const queue: Array<{ record: Buffer; prefix: string; depth: number }> = [{ record: volume.root, prefix: '', depth: 0 }];
  let corrupt: string | null = null;
  while (queue.length > 0 && files.length < maxFiles) {
    const dir = queue.shift()!;
    const { lba, size } = extentOf(dir.record);
    const start = lba * volume.blockSize;
    if (seen.has(lba) || seen.size >= MAX_DIRECTORIES || dir.depth > MAX_DEPTH) {
      corrupt ??= `directory loop or too many directories at ${dir.prefix || '/'}`;
      continue;
    }
    seen.add(lba);
    if (start + size > b.length) {
      corrupt ??= `directory ${dir.prefix || '/'} outside the image`;
      continue;
    }
    for (const rec of records(b.subarray(start, start + size), volume.blockSize)) {
      const idLen = rec[32]!;
      const id = rec.subarray(33, 33 + idLen);
      if (idLen === 1 && (id[0] === 0 || id[0] === 1)) continue; // "." and ".."
      const name = nameOf(id, volume.joliet);
      const path = dir.prefix ? `${dir.prefix}/${name}` : name;
      if ((rec[25]! & 0x02) !== 0) {
        queue.push({ record: rec, prefix: path, depth: dir.depth + 1 });
        continue;
      }
      const file = extentOf(rec);
      const from = file.lba * volume.blockSize;
      if (from + file.size > b.length) corrupt ??= `${path}: outside the image or truncated`;
      if (from > b.length) continue;
      files.push({ path, from, size: file.size });
      if (files.length >= maxFiles) break;
    }
  }
  return { files, corrupt };
}

export async function unpackIso(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const listing = listIso(b);
  if (!listing) {
    ctx.event(b.indexOf('BEA01', 0, 'latin1') !== -1 ? 'ARCHIVE_UNSUPPORTED' : 'ARCHIVE_CORRUPT', 'no ISO 9660 volume descriptor (UDF-only images are not read)');
    return {};
  }
  for (const f of listing.files) {
    if (ctx.stopped) break;
    const sink = ctx.member(cleanMemberName(f.path));
    if (sink === null) break;
    ctx.copy(sink, b.subarray(f.from, Math.min(b.length, f.from + f.size)));
    sink.end();
  }
  if (listing.corrupt) ctx.event('ARCHIVE_CORRUPT', listing.corrupt);
  return {};
}

/** The Joliet volume when there is one (its names are the real ones), else the primary. */
function findVolume(b: Buffer): Volume | null {
  let primary: Volume | null = null;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const at = (FIRST_DESCRIPTOR + i) * SECTOR;
    if (at + SECTOR > b.length || b.toString('latin1', at + 1, at + 6) !== 'CD001') break;
    const type = b[at]!;
    if (type === 255) break;
    if (type !== 1 && type !== 2) continue;
    const blockSize = b.readUInt16LE(at + 128);
    if (blockSize < 512 || blockSize > 8192 || (blockSize & (blockSize - 1)) !== 0) continue;
    const root = b.subarray(at + 156, at + 156 + 34);
    // Joliet: escape sequence %/@, %/C or %/E (UCS-2 levels 1-3) in the supplementary descriptor.
    const joliet = type === 2 && /^%\/[@CE]/.test(b.toString('latin1', at + 88, at + 91));
    if (joliet) return { blockSize, root, joliet };
    if (type === 1) primary ??= { blockSize, root, joliet: false };
  }
  return primary;
}

function extentOf(record: Buffer): { lba: number; size: number } {
  return { lba: record.readUInt32LE(2), size: record.readUInt32LE(10) };
}

/** The records of a directory extent; a zero length byte pads to the next sector. */
function* records(dir: Buffer, blockSize: number): Generator<Buffer> {
  let p = 0;
  while (p < dir.length) {
    const len = dir[p]!;
    if (len === 0) {
      p = (Math.floor(p / blockSize) + 1) * blockSize;
      continue;
    }
    if (len < 34 || p + len > dir.length || 33 + dir[p + 32]! > len) return; // malformed: stop this directory
    yield dir.subarray(p, p + len);
    p += len;
  }
}

/** "SETUP.EXE;1" → "SETUP.EXE"; Joliet names are UCS-2 big-endian. */
function nameOf(id: Buffer, joliet: boolean): string {
  let s: string;
  if (joliet) {
    const chars: string[] = [];
    for (let i = 0; i + 1 < id.length; i += 2) chars.push(String.fromCharCode(id.readUInt16BE(i)));
    s = chars.join('');
  } else s = id.toString('latin1');
  return s.replace(/;\d+$/, '').replace(/\.$/, '');
}
