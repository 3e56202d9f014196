/**
 * Self-extracting executables: an archive appended to a program (a PE stub, then a zip, a 7z
 * or a RAR), at any offset — WinZip, 7-Zip and WinRAR SFX modules are from tens of KiB to
 * megabytes long, and a stub can be padded at will. Whoever runs the program (or opens it in
 * 7-Zip, which lists SFX archives) gets the members, so they are inspected.
 *
 * An archive signature inside a program may be chance (a zip library carries `PK\3\4` as a
 * constant), so each is checked before it counts: a zip must be complete (its central
 * directory, found from its end record: zip.ts in `embedded` mode), a 7z's start header and a
 * RAR's first header must pass their CRC. A checked archive that then fails to unpack is
 * reported like any other (`ARCHIVE_CORRUPT`, …); an unchecked signature is nothing.
 */

import { crc32 } from 'node:zlib';
import { inspectRar } from './rar.ts';
import { inspectSevenZip } from './sevenzip.ts';
import type { ContainerReader, UnpackContext, UnpackOutcome } from './types.ts';
import { unpackZip } from './zip.ts';

const SEVEN_ZIP = Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]);
const RAR = Buffer.from('Rar!\x1a\x07', 'latin1');
/** Signatures of one kind looked at per program (each checked by CRC): bounded work. */
const MAX_CANDIDATES = 64;

/** A 7z start header: signature, version, CRC of the next 20 bytes, next-header offset/size. */
export function sevenZipStartsAt(b: Buffer, at: number): boolean {
  if (at + 32 > b.length || b[at + 6] !== 0) return false;
  if ((crc32(b.subarray(at + 12, at + 32)) >>> 0) !== b.readUInt32LE(at + 8)) return false;
  const next = Number(b.readBigUInt64LE(at + 12));
  const size = Number(b.readBigUInt64LE(at + 20));
  return at + 32 + next + size <= b.length;
}

/** A RAR 4 archive header or a RAR 5 main header right after the signature, with its CRC. */
export function rarStartsAt(b: Buffer, at: number): boolean {
  if (b[at + 6] === 0x00) {
    // RAR 4: marker block (7 bytes), then the archive header: CRC16 (of CRC32), type 0x73, flags, size.
    const h = at + 7;
    if (h + 7 > b.length || b[h + 2] !== 0x73) return false;
    const size = b.readUInt16LE(h + 5);
    if (size < 7 || h + size > b.length) return false;
    return ((crc32(b.subarray(h + 2, h + size)) >>> 0) & 0xffff) === b.readUInt16LE(h);
  }
  if (b[at + 6] === 0x01 && b[at + 7] === 0x00) {
    // RAR 5: CRC32 of (header size vint + header), then the vint, then the header.
    const h = at + 8;
    if (h + 5 > b.length) return false;
    let size = 0;
    let len = 0;
    for (let shift = 0; len < 4; shift += 7) {
      const byte = b[h + 4 + len++];
      if (byte === undefined) return false;
      size += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) break;
    }
    const end = h + 4 + len + size;
    if (size === 0 || end > b.length) return false;
    return (crc32(b.subarray(h + 4, end)) >>> 0) === b.readUInt32LE(h);
  }
  return false;
}

/** Offsets after the start where a checked 7z or RAR archive begins. */
export function appendedArchives(b: Buffer): Array<{ readonly kind: '7z' | 'rar'; readonly offset: number }> {
  const found: Array<{ kind: '7z' | 'rar'; offset: number }> = [];
  for (const [kind, sig, ok] of [['7z', SEVEN_ZIP, sevenZipStartsAt], ['rar', RAR, rarStartsAt]] as const) {
    let n = 0;
    for (let at = b.indexOf(sig, 1); at !== -1 && n < MAX_CANDIDATES; at = b.indexOf(sig, at + 1), n++) {
      if (ok(b, at)) {
        found.push({ kind, offset: at });
        break; // the first checked archive of a kind is the SFX payload
      }
    }
  }
  return found;
}

/**
 * The reader for programs: a complete zip inside (zip.ts reads one behind any prefix), and a
 * checked 7z or RAR after the stub, each through the reader configured for it (7-Zip, bsdtar).
 */
export function unpackExecutable(readers: Readonly<Partial<Record<string, ContainerReader>>>): ContainerReader {
  return async (bytes: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> => {
    await unpackZip(bytes, ctx);
    for (const { kind, offset } of appendedArchives(bytes)) {
      if (ctx.stopped) break;
      const reader = readers[kind] ?? (kind === '7z' ? inspectSevenZip : inspectRar);
      await reader(bytes.subarray(offset), ctx);
    }
    // An NSIS installer: its files are compressed in the overlay (LZMA, bzip2, zlib), opened
    // by 7-Zip as the installer would unpack them.
    if (!ctx.stopped && nsisInstaller(bytes)) await (readers[NSIS] ?? nsisUnsupported)(bytes, ctx);
    return {};
  };
}

/** The key of ContainerReaders for NSIS installers (through 7-Zip: seven-zip-tool.ts). */
export const NSIS = 'nsis';
/** NSIS's first header: its signature 0xDEADBEEF and "NullsoftInst", in the installer's overlay. */
const NSIS_FIRST_HEADER = Buffer.from('\xef\xbe\xad\xdeNullsoftInst', 'latin1');

/**
 * An NSIS first header where the installer looks for it: at a 512-byte boundary, flags
 * (4 bytes, at most 15), the signature, and a length of the data from there that fits the
 * file — not merely the constant somewhere in a program (a tool that detects installers).
 */
function nsisInstaller(b: Buffer): boolean {
  let seen = 0;
  for (let p = b.indexOf(NSIS_FIRST_HEADER); p !== -1 && seen < MAX_CANDIDATES; p = b.indexOf(NSIS_FIRST_HEADER, p + 1), seen++) {
    const start = p - 4;
    if (start < 0 || start % 512 !== 0 || p + 24 > b.length) continue;
    const length = b.readUInt32LE(p + 20);
    if (b.readUInt32LE(start) <= 15 && length >= 28 && length <= b.length - start) return true;
  }
  return false;
}

const nsisUnsupported: ContainerReader = async (_b, ctx) => {
  ctx.event('ARCHIVE_UNSUPPORTED', 'nsis: an installer, opened through 7-Zip, which is not installed (apt-get install 7zip)');
  return {};
};
