/**
 * OneNote sections (`.one`, [MS-ONESTORE]): a section carries the files pasted into it — the
 * "double-click to open" attachments that made OneNote a mail-malware carrier in 2023 (an
 * .hta, .cmd or .wsf behind a picture of a button) — and its pictures, each as a
 * FileDataStoreObject: a header GUID, the data's length (64 bits), 12 reserved bytes, the
 * data, padding to 8 bytes, a footer GUID. Every such object is a member (`embedded1`, …; the
 * names live in the page's property sets, which are not parsed here), found by its header
 * GUID anywhere in the file, so a section whose file-node lists are damaged on purpose still
 * gives its files, as ClamAV's reader does. A length that runs past the end gives what is
 * there, and ARCHIVE_CORRUPT.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';

/** {7B5C52E4-D88C-4DA7-AEB1-5378D02996D3}: a .one section's first 16 bytes. */
export const ONENOTE_MAGIC = Buffer.from('e4525c7b8cd8a74daeb15378d02996d3', 'hex');
/** {BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC}: FileDataStoreObject.guidHeader. */
const FILE_DATA_HEADER = Buffer.from('e716e3bd65261145a4c48d4d0b7a9eac', 'hex');
/** guidHeader, cbLength (8), unused (4), reserved (8): the data starts after them. */
const DATA_OFFSET = 16 + 8 + 4 + 8;

export async function unpackOneNote(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  let n = 0;
  for (let at = b.indexOf(FILE_DATA_HEADER, ONENOTE_MAGIC.length); at !== -1; ) {
    if (at + DATA_OFFSET > b.length) {
      ctx.event('ARCHIVE_CORRUPT', `onenote: a file data object cut short at ${at}`);
      break;
    }
    const length = Number(b.readBigUInt64LE(at + 16));
    const start = at + DATA_OFFSET;
    const end = Math.min(b.length, start + length);
    if (start + length > b.length) ctx.event('ARCHIVE_CORRUPT', `onenote: embedded${n + 1} runs past the end (${length} bytes declared at ${at})`);
    if (ctx.stopped) break;
    const sink = ctx.member(`embedded${++n}`);
    if (sink === null) break;
    ctx.copy(sink, b.subarray(start, end));
    sink.end();
    // The next object starts after this one's data. A length past the end may hide the
    // objects after it inside this one: then they are looked for from here too. The search
    // only ever moves forward.
    at = b.indexOf(FILE_DATA_HEADER, start + length <= b.length ? Math.max(at + 1, end) : at + 1);
  }
  return {};
}
