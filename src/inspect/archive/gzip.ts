/**
 * gzip (RFC 1952): one member file, named by the header's FNAME or after the container
 * (`report.txt.gz` → `report.txt`, `x.tgz` → `x.tar`). Concatenated gzip members are one
 * file, as gunzip reads them; bytes after the last member that are no gzip member are
 * ignored, as gunzip and 7-Zip do ("trailing garbage"), after the data before them was read
 * (another archive there is read by its own reader: a zip after the gzip is opened as a zip
 * too). The result is typed by its content like any file, so a tar inside is unpacked in turn.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

export async function unpackGzip(bytes: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const sink = ctx.member(cleanMemberName(memberName(bytes, ctx.name)));
  if (sink === null) return {};
  let at = 0;
  for (let n = 0; at < bytes.length; n++) {
    const data = dataStart(bytes, at);
    if (data === -1) {
      if (n === 0) ctx.event('ARCHIVE_CORRUPT', 'bad gzip header');
      break; // not another member: trailing bytes, ignored as gunzip does
    }
    const used = { consumed: 0 };
    const r = await ctx.inflate('raw', bytes.subarray(data), sink, used);
    if (r === 'corrupt') ctx.event('ARCHIVE_CORRUPT', 'bad gzip data');
    if (r !== 'ok') break;
    at = data + used.consumed + 8; // CRC32 and ISIZE
  }
  sink.end();
  return {};
}

/** Where a member's deflate data starts (after its header and optional fields), or -1. */
function dataStart(b: Buffer, at: number): number {
  if (at + 10 > b.length || b[at] !== 0x1f || b[at + 1] !== 0x8b || b[at + 2] !== 8) return -1;
  const flags = b[at + 3]!;
  let p = at + 10;
  if ((flags & FEXTRA) !== 0) {
    if (p + 2 > b.length) return -1;
    p += 2 + b.readUInt16LE(p);
  }
  for (const f of [FNAME, FCOMMENT]) {
    if ((flags & f) === 0) continue;
    const end = b.indexOf(0, p);
    if (end === -1) return -1;
    p = end + 1;
  }
  if ((flags & FHCRC) !== 0) p += 2;
  return p <= b.length ? p : -1;
}

function memberName(b: Buffer, container: string | null): string {
  const flags = b.length > 3 ? b[3]! : 0;
  if ((flags & FNAME) !== 0) {
    let p = 10;
    if ((flags & FEXTRA) !== 0 && p + 2 <= b.length) p += 2 + b.readUInt16LE(p);
    const end = b.indexOf(0, p);
    if (end > p && end - p <= 1024) return b.toString('latin1', p, end);
  }
  if (container === null) return '(gunzipped)';
  if (/\.tgz$/i.test(container)) return container.replace(/\.tgz$/i, '.tar');
  return container.replace(/\.gz$/i, '') || '(gunzipped)';
}
