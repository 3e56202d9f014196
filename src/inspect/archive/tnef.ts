/**
 * TNEF (winmail.dat, MS-OXTNEF): Outlook's wrapper that hides attachments from any gateway
 * that does not open it. Attributes are (level, id, length, data, checksum); an attachment
 * starts at attAttachRendData, is named by attAttachTitle and carries its bytes in
 * attAttachData. No maintained npm library reads TNEF (node-tnef is unmaintained and pulls a
 * logger and a CLI parser), and the format needs thirty lines, so this is our own.
 *
 * Not read (reported nowhere, since the bytes are still scanned as part of winmail.dat by the
 * engines): attachments stored only as MAPI properties (embedded messages, PR_ATTACH_DATA_OBJ).
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

const ATT_ATTACH_REND_DATA = 0x00069002;
const ATT_ATTACH_TITLE = 0x00018010;
const ATT_ATTACH_DATA = 0x0006800f;

export async function unpackTnef(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const attachments: { name: string | null; data: Buffer | null }[] = [];
  let current: { name: string | null; data: Buffer | null } | null = null;
  let p = 6; // signature, legacy key
  while (p + 9 <= b.length) {
    const id = b.readUInt32LE(p + 1);
    const len = b.readUInt32LE(p + 5);
    const start = p + 9;
    if (start + len > b.length) {
      ctx.event('ARCHIVE_CORRUPT', `TNEF attribute 0x${id.toString(16)} runs past the end`);
      break;
    }
    const data = b.subarray(start, start + len);
    if (id === ATT_ATTACH_REND_DATA) attachments.push((current = { name: null, data: null }));
    else if (current && id === ATT_ATTACH_TITLE) current.name = data.toString('latin1').replace(/\0.*$/s, '');
    else if (current && id === ATT_ATTACH_DATA) current.data = data;
    p = start + len + 2; // checksum
  }
  for (const [i, a] of attachments.entries()) {
    if (a.data === null || ctx.stopped) continue;
    const sink = ctx.member(cleanMemberName(a.name || `attachment-${i + 1}`));
    if (sink === null) break;
    ctx.copy(sink, a.data);
    sink.end();
  }
  return {};
}
