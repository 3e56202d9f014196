/**
 * The text of a PDF, so that data filtering (and body signatures) see what a reader shows,
 * not compressed streams: a PDF is unpacked like a container with one member, `(text)`.
 *
 * What it reads (PDF 1.7, ISO 32000-1 §7.3.8, §9.4): every stream but images and fonts,
 * inflated when its filter is FlateDecode (capped per stream and per PDF; past a cap a stream
 * is skipped, so a PDF bomb costs the cap — and, this being best-effort text, no verdict); in
 * content streams the strings shown by `Tj`, `TJ`, `'` and `"` between `BT` and `ET`, literal
 * (escapes, octal) and hex; ToUnicode CMaps (`bfchar`, `bfrange`) to turn 2-byte glyph codes
 * back into characters. Simplifications, stated: one CMap table for the whole file (fonts are
 * not tracked per text object), other filters (LZW, ASCII85, images) skipped, object streams
 * not entered, encrypted PDFs give no text. Text positioning becomes spaces and line breaks
 * only where a `TJ` gap or a line operator suggests one.
 */

import { promisify } from 'node:util';
import { inflateRaw, constants as zlibConstants } from 'node:zlib';
import { cleanMemberName, type UnpackContext, type UnpackOutcome } from '../archive/types.ts';
import { decodeStream, unescapeNames } from './pdf-filters.ts';

const inflateRawAsync = promisify(inflateRaw);

/** Streams looked at per PDF (each is a regex pass and maybe an inflate). */
const MAX_STREAMS = 5000;
/** Text kept per PDF: data filtering needs the words, not a novel. */
const MAX_TEXT = 8 * 1024 * 1024;
/** Bytes inflated per stream, and per PDF: text extraction is bounded on its own. */
const MAX_STREAM = 16 * 1024 * 1024;
const MAX_INFLATE = 64 * 1024 * 1024;
/** How far before `stream` its dictionary is looked for. */
const DICT_WINDOW = 8192;
/** ToUnicode entries written per PDF (a bfrange may span 65,536 codes; thousands of them, more). */
const MAX_CMAP = 100_000;
/** Largest embedded file decoded (mail carries far less; beyond it: ARCHIVE_TOO_LARGE). */
const MAX_EMBEDDED = 64 * 1024 * 1024;

export async function extractPdfText(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const src = b.toString('latin1');
  const cmap = new Map<number, string>();
  const cmapBudget = { left: MAX_CMAP };
  const contents: string[] = [];
  let streams = 0;
  let inflateLeft = MAX_INFLATE;
  /** Embedded files (attachments, file-attachment annotations), named at the end. */
  const embedded: Array<{ readonly obj: string | null; readonly data: Buffer }> = [];
  /** Object streams' contents: filespecs (with the files' names) may live only there. */
  const objectStreams: string[] = [];
  const encrypted = /\/Encrypt\s*(\d+\s+\d+\s+R|<<)/.test(src);
  for (let at = src.indexOf('stream'); at !== -1 && streams < MAX_STREAMS && !ctx.stopped; at = src.indexOf('stream', at + 6)) {
    if (src.startsWith('endstream', at - 3)) continue;
    const dataStart = src[at + 6] === '\r' && src[at + 7] === '\n' ? at + 8 : src[at + 6] === '\n' ? at + 7 : -1;
    if (dataStart === -1) continue;
    const end = src.indexOf('endstream', dataStart);
    if (end === -1) break;
    streams++;
    // The stream's dictionary: the nearest `<<` before it, looked for in a bounded window
    // (a file of "stream" keywords without dictionaries must not cost a scan to the start each).
    const window = src.slice(Math.max(0, at - DICT_WINDOW), at);
    const dict = window.slice(Math.max(0, window.lastIndexOf('<<')));
    const raw = b.subarray(dataStart, end);
    at = end;
    // The whole object header, nested dictionaries (/Params, /DecodeParms) included.
    const objAt = window.lastIndexOf('obj');
    const names = unescapeNames(objAt === -1 ? dict : window.slice(objAt));
    if (/\/Type\s*\/EmbeddedFile\b/.test(names)) {
      if (encrypted) {
        ctx.event('ARCHIVE_ENCRYPTED', 'PDF: encrypted, its embedded files cannot be read');
        continue;
      }
      const d = await decodeStream(raw, names, MAX_EMBEDDED);
      const obj = objAt === -1 ? null : (/(\d+)\s+\d+\s*$/.exec(window.slice(Math.max(0, objAt - 24), objAt))?.[1] ?? null);
      if (d.ok) embedded.push({ obj, data: d.data });
      else if (d.why === 'unsupported') ctx.event('ARCHIVE_UNSUPPORTED', `PDF embedded file with filter ${d.filter}`);
      else if (d.why === 'too large') ctx.event('ARCHIVE_TOO_LARGE', `PDF embedded file over ${MAX_EMBEDDED} bytes (${d.filter})`);
      else ctx.event('ARCHIVE_CORRUPT', `PDF embedded file: ${d.filter} data damaged`);
      continue;
    }
    if (/\/Type\s*\/ObjStm\b/.test(names) && !encrypted) {
      const d = await decodeStream(raw, names, MAX_STREAM);
      if (d.ok) objectStreams.push(d.data.toString('latin1'));
      continue;
    }
    // Images and embedded fonts hold no text; a page-sized bitmap of one colour inflates a
    // thousandfold, which is ordinary in a PDF and no bomb.
    if (/\/Subtype\s*\/Image\b|\/Length[123]\b|\/Subtype\s*\/(Type1C|CIDFontType0C|OpenType)\b/.test(dict)) continue;
    let data: Buffer | null = raw;
    if (/\/Filter\s*\[?\s*\/(FlateDecode|Fl)\b/.test(dict)) {
      const cap = Math.min(MAX_STREAM, inflateLeft);
      data = await inflateZlib(raw, cap);
      inflateLeft -= data?.length ?? cap; // a stream past the cap cost the cap
      if (inflateLeft <= 0) break;
    } else if (/\/Filter/.test(dict)) data = null; // other filters: not text we can read
    if (data === null) continue;
    const text = data.toString('latin1');
    if (text.includes('begincmap')) readCmap(text, cmap, cmapBudget);
    else if (/\bBT\b/.test(text)) contents.push(text);
  }
  if (embedded.length > 0) {
    const named = filespecNames([src, ...objectStreams].join('\n'));
    embedded.forEach((e, i) => {
      const sink = ctx.member(cleanMemberName((e.obj !== null ? named.get(e.obj) : undefined) ?? `(embedded ${i + 1})`));
      if (sink === null) return;
      ctx.copy(sink, e.data);
      sink.end();
    });
  }
  let out = '';
  for (const c of contents) {
    out += showText(c, cmap);
    if (out.length > MAX_TEXT) break;
  }
  const text = out.replace(/[ \t]+\n/g, '\n').trim();
  if (text === '') return {};
  const sink = ctx.member('(text)');
  if (sink === null) return {};
  ctx.copy(sink, Buffer.from(text.slice(0, MAX_TEXT), 'utf8'));
  sink.end();
  return {};
}

/**
 * FlateDecode is zlib (RFC 1950): a 2-byte header, then raw deflate. Inflated on the thread
 * pool with an output cap; a stream past the cap is skipped (a bomb, or a bitmap) — text
 * extraction is best effort and never an archive-limit verdict that would block the mail.
 * A truncated or damaged stream gives what inflated before the damage.
 */
async function inflateZlib(raw: Buffer, cap: number): Promise<Buffer | null> {
  const body = raw.length > 2 && (raw[0]! & 0x0f) === 8 && ((raw[0]! << 8) | raw[1]!) % 31 === 0 ? raw.subarray(2) : raw;
  try {
    return await inflateRawAsync(body, { maxOutputLength: Math.max(1, cap), finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch {
    return null;
  }
}

/**
 * `bfchar` and `bfrange` entries: glyph code → Unicode text. At most MAX_CMAP entries are
 * written per PDF, counting rewrites: ranges that cover the same codes again and again must
 * not cost 65,536 writes each.
 */
function readCmap(text: string, cmap: Map<number, string>, budget: { left: number }): void {
  for (const block of sections(text, 'beginbfchar', 'endbfchar')) {
    for (const m of block.matchAll(/<([0-9a-fA-F]{1,8})>\s*<([0-9a-fA-F]{1,64})>/g)) {
      if (--budget.left < 0) return;
      cmap.set(parseInt(m[1]!, 16), utf16(m[2]!));
    }
  }
  for (const block of sections(text, 'beginbfrange', 'endbfrange')) {
    for (const m of block.matchAll(/<([0-9a-fA-F]{1,8})>\s*<([0-9a-fA-F]{1,8})>\s*(?:<([0-9a-fA-F]{1,8})>|\[([^\]]{0,65536})\])/g)) {
      const lo = parseInt(m[1]!, 16);
      const hi = Math.min(parseInt(m[2]!, 16), lo + 65535);
      const list = m[3] === undefined ? [...m[4]!.matchAll(/<([0-9a-fA-F]{1,64})>/g)].map((x) => utf16(x[1]!)) : null;
      const base = m[3] === undefined ? 0 : parseInt(m[3], 16);
      for (let c = lo; c <= hi; c++) {
        if (--budget.left < 0) return;
        if (list === null) cmap.set(c, String.fromCodePoint(Math.min(0x10ffff, base + (c - lo))));
        else if (c - lo < list.length) cmap.set(c, list[c - lo]!);
        else break;
      }
    }
  }
}

/** The text between each `begin` and its `end`, found with indexOf: linear in the text. */
function* sections(text: string, begin: string, end: string): Generator<string> {
  for (let at = text.indexOf(begin); at !== -1; ) {
    const stop = text.indexOf(end, at + begin.length);
    if (stop === -1) return;
    yield text.slice(at + begin.length, stop);
    at = text.indexOf(begin, stop + end.length);
  }
}

function utf16(hex: string): string {
  const units: number[] = [];
  for (let i = 0; i + 4 <= hex.length; i += 4) units.push(parseInt(hex.slice(i, i + 4), 16));
  if (units.length === 0 && hex.length > 0) units.push(parseInt(hex, 16));
  return String.fromCharCode(...units);
}

/** The strings a content stream shows, in order, with spaces and line breaks where implied. */
function showText(content: string, cmap: ReadonlyMap<number, string>): string {
  let out = '';
  let inArray = false;
  let pending: string[] = [];
  /** Numeric operands since the last operator (outside arrays), and the current line's y. */
  let nums: number[] = [];
  let lineY: number | null = null;
  const newline = (): void => {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
  };
  for (const t of tokens(content)) {
    if (t.kind === 'string') {
      pending.push(t.value);
      continue;
    }
    if (t.kind === 'hex') {
      pending.push(hexString(t.value, cmap));
      continue;
    }
    const v = t.value;
    if (v === '[') {
      inArray = true;
      continue;
    }
    if (v === ']') {
      inArray = false;
      continue;
    }
    if (t.kind === 'number') {
      if (inArray) {
        if (Number(v) < -200) pending.push(' '); // a wide negative kern is a word gap
      } else nums.push(Number(v));
      continue;
    }
    if (v === 'Tj' || v === 'TJ' || v === "'" || v === '"') {
      if (v === "'" || v === '"') out += '\n';
      out += pending.join('');
      pending = [];
      if (out.length > MAX_TEXT) return out;
    } else if (v === 'Td' || v === 'TD') {
      // A move along the line (kerning, word placement) is no line break; a move down is.
      if ((nums.at(-1) ?? 0) !== 0) newline();
    } else if (v === 'Tm') {
      const y = nums.at(-1) ?? null;
      if (y !== lineY) newline();
      lineY = y;
    } else if (v === 'T*') {
      newline();
    } else if (v === 'ET') {
      pending = [];
      newline();
    }
    if (!inArray) nums = [];
  }
  return out;
}

type Token = { readonly kind: 'string' | 'hex' | 'number' | 'other'; readonly value: string };

/**
 * Content stream tokens, in one pass with no backtracking (a regular expression for balanced
 * parentheses took seconds on crafted input): literal strings with nesting and escapes
 * (unbalanced ones end at the end of the stream), hex strings, numbers, names, operators.
 */
function* tokens(s: string): Generator<Token> {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x28 /* ( */) {
      let depth = 1;
      let j = i + 1;
      while (j < n && depth > 0) {
        const d = s.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else {
          if (d === 0x28) depth++;
          else if (d === 0x29) depth--;
          j++;
        }
      }
      yield { kind: 'string', value: literal(s.slice(i + 1, depth === 0 ? j - 1 : n)) };
      i = Math.min(j, n);
    } else if (c === 0x3c /* < */ && s.charCodeAt(i + 1) !== 0x3c) {
      const end = s.indexOf('>', i + 1);
      const stop = end === -1 ? n : end;
      yield { kind: 'hex', value: s.slice(i + 1, stop).replace(/[^0-9a-fA-F]/g, '') };
      i = stop + 1;
    } else if (c === 0x5b /* [ */ || c === 0x5d /* ] */) {
      yield { kind: 'other', value: s[i]! };
      i++;
    } else if (c === 0x2d || c === 0x2b || c === 0x2e || isDigit(c)) {
      let j = i + 1;
      while (j < n && (isDigit(s.charCodeAt(j)) || s.charCodeAt(j) === 0x2e)) j++;
      yield { kind: 'number', value: s.slice(i, j) };
      i = j;
    } else if (c === 0x2f /* / */) {
      let j = i + 1;
      while (j < n && !isDelimiter(s.charCodeAt(j))) j++;
      i = j; // names are operands the text does not need
    } else if (isOperatorChar(c)) {
      let j = i + 1;
      while (j < n && (isOperatorChar(s.charCodeAt(j)) || isDigit(s.charCodeAt(j)))) j++;
      yield { kind: 'other', value: s.slice(i, j) };
      i = j;
    } else if (c === 0x25 /* % comment */) {
      const eol = s.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else i++;
  }
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/** Letters and the quote operators (' and "), and `*` of T*. */
const isOperatorChar = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x27 || c === 0x22 || c === 0x2a;
/** White space and the delimiters of §7.2.2: ( ) < > [ ] { } / %. */
const isDelimiter = (c: number): boolean =>
  c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x00 || c === 0x28 || c === 0x29 || c === 0x3c || c === 0x3e || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d || c === 0x2f || c === 0x25;

/** A literal string's escapes (§7.3.4.2): \n \r \t \b \f \( \) \\ \ddd and line continuation. */
function literal(s: string): string {
  return s.replace(/\\(\r\n|\n|\r|[0-7]{1,3}|[\s\S])/g, (_, e: string) => {
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    if (e === '\n' || e === '\r' || e === '\r\n') return '';
    return ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' } as Record<string, string>)[e] ?? e;
  });
}

/** A hex string: 2-byte codes through the CMap when one maps them, else bytes as Latin-1. */
function hexString(hex: string, cmap: ReadonlyMap<number, string>): string {
  const even = hex.length % 2 === 0 ? hex : `${hex}0`;
  if (cmap.size > 0 && even.length % 4 === 0) {
    let out = '';
    let mapped = 0;
    for (let i = 0; i < even.length; i += 4) {
      const c = cmap.get(parseInt(even.slice(i, i + 4), 16));
      if (c !== undefined) mapped++;
      out += c ?? '';
    }
    if (mapped > 0) return out;
  }
  return Buffer.from(even, 'hex').toString('latin1');
}

/**
 * File names of embedded files: filespec dictionaries (`/EF << /F 12 0 R >>` with `/UF` or
 * `/F` strings) mapped to the number of the stream they name. Bounded windows around each
 * `/EF`: a filespec is a small dictionary.
 */
function filespecNames(text: string): Map<string, string> {
  const names = new Map<string, string>();
  const plain = unescapeNames(text);
  for (const m of plain.matchAll(/\/EF\s*<<([^>]{0,200})>>/g)) {
    const ref = /\/(?:UF|F)\s+(\d+)\s+\d+\s+R/.exec(m[1]!)?.[1];
    if (!ref || names.has(ref)) continue;
    const start = Math.max(0, plain.lastIndexOf('<<', Math.max(0, m.index! - 1)) - 2000);
    const around = plain.slice(start, m.index! + m[0].length + 2000);
    const str = /\/UF\s*\(((?:\\.|[^\\)]){0,1000})\)/.exec(around)?.[1] ?? /\/F\s*\(((?:\\.|[^\\)]){0,1000})\)/.exec(around)?.[1];
    if (str !== undefined) names.set(ref, pdfString(str));
  }
  return names;
}

/** A PDF literal string's text: escapes undone, UTF-16BE (with its BOM) decoded. */
function pdfString(s: string): string {
  const raw = s.replace(/\\([0-7]{1,3}|[nrtbf()\\])/g, (_, e: string) =>
    /^[0-7]/.test(e) ? String.fromCharCode(parseInt(e, 8) & 255) : ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' } as Record<string, string>)[e] ?? e,
  );
  if (raw.startsWith('\xfe\xff')) {
    const be = Buffer.from(raw.slice(2), 'latin1');
    return be.subarray(0, be.length & ~1).swap16().toString('utf16le');
  }
  return raw;
}
