/**
 * TNEF (winmail.dat, MS-OXTNEF): Outlook's wrapper that hides attachments from any gateway
 * that does not open it. Attributes are (level, id, length, data, checksum); an attachment
 * starts at attAttachRendData, is named by attAttachTitle and carries its bytes in
 * attAttachData — or only in its MAPI properties (attAttachment: PR_ATTACH_DATA_BIN, or
 * PR_ATTACH_DATA_OBJ for an embedded message or OLE object), named by PR_ATTACH_LONG_FILENAME.
 * The message's own MAPI properties (attMsgProps) may carry its body as compressed RTF
 * (PR_RTF_COMPRESSED, MS-OXRTFCP: Outlook's "rich text", which can embed objects) and as
 * HTML: both are members too, `(body.rtf)` and `(body.html)`, so the RTF reader finds their
 * embedded objects and the smuggling extractor reads the page. Debian's `tnef` is the
 * reference (test/unit/inspect/tnef.test.ts). No maintained npm library reads TNEF
 * (node-tnef is unmaintained and pulls a logger and a CLI parser), so this is our own.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

const ATT_ATTACH_REND_DATA = 0x00069002;
const ATT_ATTACH_TITLE = 0x00018010;
const ATT_ATTACH_DATA = 0x0006800f;
const ATT_ATTACHMENT = 0x00069005;
const ATT_MSG_PROPS = 0x00069003;

// MAPI property ids (MS-OXPROPS) and types.
const PR_ATTACH_DATA = 0x3701; // PT_BINARY (…_BIN) or PT_OBJECT (…_OBJ)
const PR_ATTACH_FILENAME = 0x3704;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PR_DISPLAY_NAME = 0x3001;
const PR_RTF_COMPRESSED = 0x1009;
const PR_HTML = 0x1013;
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;
/** Bytes of each fixed-size property type's value (padded to 4). */
const FIXED: Readonly<Record<number, number>> = { 0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000a: 4, 0x000b: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16, 0x0001: 0 };
/** Properties read from one list: a crafted count must not mean a billion iterations. */
const MAX_PROPERTIES = 10_000;

interface Attachment {
  name: string | null;
  data: Buffer | null;
  /** From its MAPI properties (attAttachment). */
  mapiName: string | null;
  mapiData: Buffer | null;
}

export async function unpackTnef(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const attachments: Attachment[] = [];
  const bodies: Array<{ name: string; data: Buffer }> = [];
  let current: Attachment | null = null;
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
    if (id === ATT_ATTACH_REND_DATA) attachments.push((current = { name: null, data: null, mapiName: null, mapiData: null }));
    else if (current && id === ATT_ATTACH_TITLE) current.name = data.toString('latin1').replace(/\0.*$/s, '');
    else if (current && id === ATT_ATTACH_DATA) current.data = data;
    else if (id === ATT_ATTACHMENT || id === ATT_MSG_PROPS) {
      const props = mapiProperties(data);
      if (props === null) ctx.event('ARCHIVE_CORRUPT', `TNEF attribute 0x${id.toString(16)}: bad MAPI property list`);
      else if (id === ATT_ATTACHMENT) {
        // An attachment whose properties come without attAttachRendData still is one.
        const a: Attachment = current ?? (attachments.push((current = { name: null, data: null, mapiName: null, mapiData: null })), current);
        for (const prop of props) {
          if (prop.id === PR_ATTACH_DATA && (prop.type === PT_BINARY || prop.type === PT_OBJECT)) a.mapiData = prop.type === PT_OBJECT ? prop.value.subarray(16) : prop.value; // an object starts with its IID
          else if ((prop.id === PR_ATTACH_LONG_FILENAME || (prop.id === PR_ATTACH_FILENAME && !a.mapiName) || (prop.id === PR_DISPLAY_NAME && !a.mapiName)) && isText(prop.type)) a.mapiName = text(prop);
        }
      } else {
        for (const prop of props) {
          if (prop.id === PR_RTF_COMPRESSED && prop.type === PT_BINARY) {
            const rtf = decompressRtf(prop.value);
            if (rtf === null) ctx.event('ARCHIVE_CORRUPT', 'TNEF: bad compressed RTF body');
            else bodies.push({ name: '(body.rtf)', data: rtf });
          } else if (prop.id === PR_HTML && (prop.type === PT_BINARY || isText(prop.type))) bodies.push({ name: '(body.html)', data: prop.value });
        }
      }
    }
    p = start + len + 2; // checksum
  }
  const members: Array<{ name: string; data: Buffer }> = [...bodies];
  for (const [i, a] of attachments.entries()) {
    const name = a.name || a.mapiName || `attachment-${i + 1}`;
    if (a.data) members.push({ name, data: a.data });
    // The MAPI copy when there is no other, or when it differs (each reading is read).
    if (a.mapiData && (!a.data || !a.mapiData.equals(a.data))) members.push({ name: a.data ? `${a.mapiName || name}~mapi` : a.mapiName || name, data: a.mapiData });
  }
  for (const m of members) {
    if (ctx.stopped) break;
    const sink = ctx.member(cleanMemberName(m.name));
    if (sink === null) break;
    ctx.copy(sink, m.data);
    sink.end();
  }
  return {};
}

const isText = (type: number): boolean => type === PT_STRING8 || type === PT_UNICODE;
const text = (prop: { type: number; value: Buffer }): string => prop.value.toString(prop.type === PT_UNICODE ? 'utf16le' : 'latin1').replace(/\0.*$/s, '');

/** A MAPI property list (MS-OXTNEF 2.1.3.4): the first value of each property; null if malformed. */
export function mapiProperties(b: Buffer): Array<{ id: number; type: number; value: Buffer }> | null {
  if (b.length < 4) return null;
  const count = b.readUInt32LE(0);
  const out: Array<{ id: number; type: number; value: Buffer }> = [];
  let p = 4;
  const need = (n: number): boolean => p + n <= b.length;
  for (let i = 0; i < count && i < MAX_PROPERTIES; i++) {
    if (!need(4)) return null;
    const type = b.readUInt16LE(p);
    const id = b.readUInt16LE(p + 2);
    p += 4;
    if (id >= 0x8000) {
      // A named property: GUID, kind, then an id or a UTF-16 name (padded to 4).
      if (!need(20)) return null;
      const kind = b.readUInt32LE(p + 16);
      p += 20;
      if (kind === 0) p += 4;
      else {
        if (!need(4)) return null;
        const size = b.readUInt32LE(p);
        p += 4 + size + ((4 - (size % 4)) % 4);
      }
    }
    const base = type & ~MV_FLAG;
    const variable = base === PT_STRING8 || base === PT_UNICODE || base === PT_BINARY || base === PT_OBJECT;
    let values = 1;
    if (variable || (type & MV_FLAG) !== 0) {
      if (!need(4)) return null;
      values = b.readUInt32LE(p);
      p += 4;
    }
    for (let v = 0; v < values; v++) {
      if (variable) {
        if (!need(4)) return null;
        const size = b.readUInt32LE(p);
        p += 4;
        if (!need(size)) return null;
        if (v === 0) out.push({ id, type: base, value: b.subarray(p, p + size) });
        p += size + ((4 - (size % 4)) % 4);
      } else {
        const size = FIXED[base];
        if (size === undefined || !need(size)) return null;
        p += size;
      }
    }
  }
  return out;
}

/** MS-OXRTFCP's initial dictionary: the RTF text every compressed body starts from. */
const RTF_PREBUF = Buffer.from(
  '{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx',
  'latin1',
);
const LZFU = 0x75465a4c;
const MELA = 0x414c454d;
/** Largest RTF body decompressed (mail bodies are far smaller). */
const MAX_RTF = 64 * 1024 * 1024;

/**
 * Compressed RTF (MS-OXRTFCP): a 16-byte header (sizes, `LZFu` or `MELA` for uncompressed),
 * then LZ77 over a 4 KiB ring pre-filled with RTF_PREBUF: each control byte says, bit by bit
 * from the lowest, whether the next item is a literal byte or a 2-byte reference (12-bit
 * offset, 4-bit length + 2); a reference to the write position ends the data. Null if
 * malformed. (A byte loop: the format is a stream of one-byte decisions; bounded by MAX_RTF.)
 */
export function decompressRtf(b: Buffer): Buffer | null {
  if (b.length < 16) return null;
  const rawSize = b.readUInt32LE(4);
  const kind = b.readUInt32LE(8);
  if (kind === MELA) return b.subarray(16, 16 + Math.min(rawSize, b.length - 16));
  if (kind !== LZFU || rawSize > MAX_RTF) return null;
  const ring = Buffer.alloc(4096);
  RTF_PREBUF.copy(ring);
  let w = RTF_PREBUF.length;
  // At most 17 bytes come out of every 2 in (a reference), so a header that claims more than
  // that gets no buffer of the size it claims.
  const out = Buffer.alloc(Math.min(rawSize, 9 * b.length + 64));
  let o = 0;
  let p = 16;
  const limit = out.length;
  while (p < b.length && o < limit) {
    const control = b[p++]!;
    for (let bit = 0; bit < 8 && o < limit; bit++) {
      if ((control & (1 << bit)) === 0) {
        if (p >= b.length) return out.subarray(0, o);
        const c = b[p++]!;
        out[o++] = c;
        ring[w] = c;
        w = (w + 1) & 4095;
        continue;
      }
      if (p + 2 > b.length) return out.subarray(0, o);
      const ref = b.readUInt16BE(p);
      p += 2;
      const offset = ref >> 4;
      if (offset === w) return out.subarray(0, o);
      const length = (ref & 15) + 2;
      for (let k = 0; k < length && o < limit; k++) {
        const c = ring[(offset + k) & 4095]!;
        out[o++] = c;
        ring[w] = c;
        w = (w + 1) & 4095;
      }
    }
  }
  return out.subarray(0, o);
}
