/**
 * gzip (RFC 1952): one member file, named by the header's FNAME or after the container
 * (`report.txt.gz` → `report.txt`, `x.tgz` → `x.tar`). Concatenated gzip members are one
 * file, as gunzip reads them. The result is typed by its content like any file, so a tar
 * inside is unpacked in turn.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

const FEXTRA = 4;
const FNAME = 8;

export async function unpackGzip(bytes: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const sink = ctx.member(cleanMemberName(memberName(bytes, ctx.name)));
  if (sink === null) return {};
  const r = await ctx.inflate('gzip', bytes, sink);
  sink.end();
  if (r === 'corrupt') ctx.event('ARCHIVE_CORRUPT', 'bad gzip data');
  return {};
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
