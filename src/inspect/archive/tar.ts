/**
 * tar (POSIX ustar, GNU and pax): 512-byte headers, each followed by its member's bytes
 * padded to 512. Long names come from GNU `L` records and pax `path=` records. Only regular
 * files are members; links, directories and devices carry no content. A header whose checksum
 * is wrong ends the walk and is reported (tar itself stops there too).
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

const BLOCK = 512;

export async function unpackTar(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  let longName: string | null = null;
  for (let p = 0; p + BLOCK <= b.length && !ctx.stopped; ) {
    const header = b.subarray(p, p + BLOCK);
    if (header.every((x) => x === 0)) break; // end of archive
    if (!checksumOk(header)) {
      ctx.event('ARCHIVE_CORRUPT', `bad tar header checksum at byte ${p}`);
      break;
    }
    const size = readSize(header);
    const type = String.fromCharCode(header[156]!);
    const dataStart = p + BLOCK;
    const data = b.subarray(dataStart, Math.min(b.length, dataStart + size));
    p = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1]!;
      continue;
    }
    if (type !== '0' && type !== '\0' && type !== '7') {
      longName = null;
      continue;
    }
    const name = longName ?? ustarName(header);
    longName = null;
    const sink = ctx.member(cleanMemberName(name));
    if (sink === null) break;
    ctx.copy(sink, data);
    sink.end();
    if (data.length < size) ctx.event('ARCHIVE_CORRUPT', `${cleanMemberName(name)}: truncated`);
  }
  return {};
}

function field(h: Buffer, at: number, len: number): string {
  const s = h.subarray(at, at + len);
  const nul = s.indexOf(0);
  return s.toString('utf8', 0, nul === -1 ? len : nul);
}

function ustarName(h: Buffer): string {
  const name = field(h, 0, 100);
  const prefix = h.toString('latin1', 257, 262) === 'ustar' ? field(h, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** Octal, or GNU base-256 (high bit of the first byte set) for sizes of 8 GiB and more. */
function readSize(h: Buffer): number {
  if ((h[124]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i]!;
    return n;
  }
  return parseInt(field(h, 124, 12).trim() || '0', 8) || 0;
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(field(h, 148, 8).trim(), 8);
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += h[i]!;
  return sum === stored;
}
