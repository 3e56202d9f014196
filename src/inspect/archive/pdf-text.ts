/**
 * The text of a PDF, so that data filtering (and body signatures) see what a reader shows,
 * not compressed streams: a PDF is unpacked like a container with one member, `(text)`.
 *
 * What it reads (PDF 1.7, ISO 32000-1 §7.3.8, §9.4): every stream, inflated when its filter is
 * FlateDecode (through the message's archive budget, so a PDF bomb costs the limit); in
 * content streams the strings shown by `Tj`, `TJ`, `'` and `"` between `BT` and `ET`, literal
 * (escapes, octal) and hex; ToUnicode CMaps (`bfchar`, `bfrange`) to turn 2-byte glyph codes
 * back into characters. Simplifications, stated: one CMap table for the whole file (fonts are
 * not tracked per text object), other filters (LZW, ASCII85, images) skipped, object streams
 * not entered, encrypted PDFs give no text. Text positioning becomes spaces and line breaks
 * only where a `TJ` gap or a line operator suggests one.
 */

import type { MemberSink, UnpackContext, UnpackOutcome } from './unpack.ts';

/** Streams looked at per PDF (each is a regex pass and maybe an inflate). */
const MAX_STREAMS = 5000;
/** Text kept per PDF: data filtering needs the words, not a novel. */
const MAX_TEXT = 8 * 1024 * 1024;

export async function extractPdfText(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const src = b.toString('latin1');
  const cmap = new Map<number, string>();
  const contents: string[] = [];
  let streams = 0;
  for (let at = src.indexOf('stream'); at !== -1 && streams < MAX_STREAMS && !ctx.stopped; at = src.indexOf('stream', at + 6)) {
    if (src.startsWith('endstream', at - 3)) continue;
    const dataStart = src[at + 6] === '\r' && src[at + 7] === '\n' ? at + 8 : src[at + 6] === '\n' ? at + 7 : -1;
    if (dataStart === -1) continue;
    const end = src.indexOf('endstream', dataStart);
    if (end === -1) break;
    streams++;
    const dict = src.slice(Math.max(0, src.lastIndexOf('<<', at)), at);
    const raw = b.subarray(dataStart, end);
    at = end;
    let data: Buffer | null = raw;
    if (/\/Filter\s*\[?\s*\/(FlateDecode|Fl)\b/.test(dict)) data = await inflateZlib(raw, ctx);
    else if (/\/Filter/.test(dict)) data = null; // other filters: not text we can read
    if (data === null) continue;
    const text = data.toString('latin1');
    if (text.includes('begincmap')) readCmap(text, cmap);
    else if (/\bBT\b/.test(text)) contents.push(text);
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

/** FlateDecode is zlib (RFC 1950): a 2-byte header, then raw deflate, which the budget inflates. */
async function inflateZlib(raw: Buffer, ctx: UnpackContext): Promise<Buffer | null> {
  const body = raw.length > 2 && (raw[0]! & 0x0f) === 8 && ((raw[0]! << 8) | raw[1]!) % 31 === 0 ? raw.subarray(2) : raw;
  const parts: Buffer[] = [];
  const collect: MemberSink = { write: (c) => void parts.push(c), end: () => {} };
  const r = await ctx.inflate('raw', body, collect);
  // A truncated or damaged stream still gives what inflated; a limit stops the reading.
  return r === 'limit' ? null : Buffer.concat(parts);
}

/** `bfchar` and `bfrange` entries: glyph code → Unicode text. */
function readCmap(text: string, cmap: Map<number, string>): void {
  for (const block of text.matchAll(/beginbfchar([\s\S]*?)endbfchar/g)) {
    for (const m of block[1]!.matchAll(/<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>/g)) cmap.set(parseInt(m[1]!, 16), utf16(m[2]!));
  }
  for (const block of text.matchAll(/beginbfrange([\s\S]*?)endbfrange/g)) {
    for (const m of block[1]!.matchAll(/<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*(<([0-9a-fA-F]+)>|\[([^\]]*)\])/g)) {
      const lo = parseInt(m[1]!, 16);
      const hi = Math.min(parseInt(m[2]!, 16), lo + 65535);
      if (m[4] !== undefined) {
        const base = parseInt(m[4], 16);
        for (let c = lo; c <= hi; c++) cmap.set(c, String.fromCodePoint(Math.min(0x10ffff, base + (c - lo))));
      } else {
        const list = [...m[5]!.matchAll(/<([0-9a-fA-F]+)>/g)].map((x) => utf16(x[1]!));
        for (let c = lo; c <= hi && c - lo < list.length; c++) cmap.set(c, list[c - lo]!);
      }
    }
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
  // Tokens: literal strings (balanced parentheses, escapes), hex strings, arrays, operators.
  const token = /\((?:\\[\s\S]|[^\\()]|\((?:\\[\s\S]|[^\\()])*\))*\)|<[0-9a-fA-F\s]*>|\[|\]|-?\d*\.?\d+|\/[^\s/<>[\]()]+|[A-Za-z'"*]+/g;
  let inArray = false;
  let pending: string[] = [];
  /** Numeric operands since the last operator (outside arrays), and the current line's y. */
  let nums: number[] = [];
  let lineY: number | null = null;
  const newline = (): void => {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
  };
  for (const m of content.matchAll(token)) {
    const t = m[0];
    if (!inArray && /^-?\d*\.?\d+$/.test(t)) {
      nums.push(Number(t));
      continue;
    }
    if (t === '[') {
      inArray = true;
      continue;
    }
    if (t === ']') {
      inArray = false;
      continue;
    }
    if (t.startsWith('(')) pending.push(literal(t.slice(1, -1)));
    else if (t.startsWith('<')) pending.push(hexString(t.slice(1, -1).replace(/\s+/g, ''), cmap));
    else if (inArray && /^-?\d/.test(t)) {
      if (Number(t) < -200) pending.push(' '); // a wide negative kern is a word gap
    } else if (t === 'Tj' || t === 'TJ' || t === "'" || t === '"') {
      if (t === "'" || t === '"') out += '\n';
      out += pending.join('');
      pending = [];
    } else if (t === 'Td' || t === 'TD') {
      // A move along the line (kerning, word placement) is no line break; a move down is.
      if ((nums.at(-1) ?? 0) !== 0) newline();
    } else if (t === 'Tm') {
      const y = nums.at(-1) ?? null;
      if (y !== lineY) newline();
      lineY = y;
    } else if (t === 'T*') {
      newline();
    } else if (t === 'ET') {
      pending = [];
      newline();
    }
    if (!inArray) nums = [];
  }
  return out;
}

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
