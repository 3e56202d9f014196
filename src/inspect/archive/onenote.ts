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

/** One embedded file of a section: its bytes (what is there of them), and whether its length ran past the end. */
export interface OneNoteFile {
  readonly data: Buffer;
  readonly at: number;
  readonly declared: number;
  readonly cut: boolean;
}

/**
 * Every FileDataStoreObject of a section, in order. The next object is looked for after this
 * one's data; a length past the end may hide the objects after it inside this one, so then
 * they are looked for from here too. The search only ever moves forward.
 */
export function* oneNoteFiles(b: Buffer): Generator<OneNoteFile | 'truncated'> {
  for (let at = b.indexOf(FILE_DATA_HEADER, ONENOTE_MAGIC.length); at !== -1; ) {
    if (at + DATA_OFFSET > b.length) {
      yield 'truncated';
      return;
    }
    const declared = Number(b.readBigUInt64LE(at + 16));
    const start = at + DATA_OFFSET;
    const cut = start + declared > b.length;
    const end = cut ? b.length : start + declared;
    yield { data: b.subarray(start, end), at, declared, cut };
    at = b.indexOf(FILE_DATA_HEADER, cut ? at + 1 : Math.max(at + 1, end));
  }
}

export async function unpackOneNote(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  let n = 0;
  for (const f of oneNoteFiles(b)) {
    if (f === 'truncated') {
      ctx.event('ARCHIVE_CORRUPT', 'onenote: a file data object cut short');
      break;
    }
    if (f.cut) ctx.event('ARCHIVE_CORRUPT', `onenote: embedded${n + 1} runs past the end (${f.declared} bytes declared at ${f.at})`);
    if (ctx.stopped) break;
    const sink = ctx.member(`embedded${++n}`);
    if (sink === null) break;
    ctx.copy(sink, f.data);
    sink.end();
  }
  return {};
}
