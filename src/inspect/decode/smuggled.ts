/**
 * HTML smuggling, decoded statically: a page (or SVG, or script) that carries a file as a
 * `data:` URI (in a link, an `img`, CSS `url()`, `fetch`) or as a long base64 or hex string
 * that script turns into a Blob and saves. The browser assembles the file on the recipient's
 * machine, after every gateway; here each such payload is decoded and becomes an object of its
 * own (`P/data1`, `P/b64-1`, `P/hex1`, `P/esc1` for `\x..`/`%..` escapes, `P/bytes1` for a
 * list of byte values), named by a nearby `download="…"`, and scanned like any
 * file. A payload that decodes to an executable, an archive or a disk image raises
 * HTML_SMUGGLING (suspicious structure: `on-unscannable` decides, default block) — an image
 * in a `data:` URI is only scanned.
 *
 * Bounded: only objects that say they are pages or scripts (by type or name: `pageLike`), or
 * whose first kilobyte looks like markup or script, are held, at most MAX_HELD bytes of each;
 * at most MAX_PAYLOADS payloads per object.
 */

import type { AnomalyEvent } from '../../events.ts';
import { typeForWindows } from '../file-flags.ts';
import type { LeafSink } from '../mime/body-decoders.ts';
import { decodeCharRefs } from '../text/char-refs.ts';

const MAX_HELD = 16 * 1024 * 1024;
const MAX_PAYLOADS = 64;
/** The first bytes that say whether an object is markup or script. */
const SNIFF = 1024;
/** Base64 or hex string literals shorter than this are ordinary script data, not files. */
const MIN_B64 = 256;
const MIN_HEX = 256;
/** `data:` and its media type and parameters, up to the comma (the payload is measured apart). */
const DATA_URI = /data:([\w.+-]{1,100}\/[\w.+-]{1,100})?((?:;[\w.+-]{1,100}=[^;,"'\s]{0,200}){0,10})(;base64)?,/gi;
/** The first character that ends a data: URI's payload. */
const URI_END = /["'`()<>\s\\]/g;
/** Sticky: at least the minimum run right after a quote; then where the run ends. */
const LITERALS: ReadonlyArray<readonly ['b64-' | 'hex', RegExp, RegExp, string]> = [
  ['hex', new RegExp(`[0-9a-fA-F]{${MIN_HEX}}`, 'y'), /[^0-9a-fA-F]/g, 'a hex string in script'],
  ['b64-', new RegExp(`[A-Za-z0-9+/]{${MIN_B64}}`, 'y'), /[^A-Za-z0-9+/=]/g, 'a base64 string in script'],
];

/** Index of the first match of `foreign` at or after `from` (the end of a run), or the text's end. */
function runEnd(foreign: RegExp, text: string, from: number): number {
  foreign.lastIndex = from;
  const m = foreign.exec(text);
  return m ? m.index : text.length;
}
/** How each kind of payload was encoded, as FileInfo.encoding names it. */
const ENCODING = { data: 'data-uri', 'b64-': 'script-base64', hex: 'script-hex', esc: 'script-escapes', bytes: 'script-bytes' } as const;
const MARKUP = /<(?:!doctype|html|head|body|script|svg|a\s|div|iframe|form|meta)\b|\bfunction\b|\bconst\s|\bvar\s|\blet\s/i;

/** Magic bytes of what a page must not hand a user to save. */
function dangerous(b: Buffer): string | null {
  const s = b.toString('latin1', 0, 8);
  if (s.startsWith('MZ')) return 'an executable (MZ)';
  if (s.startsWith('\x7fELF')) return 'an executable (ELF)';
  if (s.startsWith('PK\x03\x04')) return 'a zip archive';
  if (s.startsWith('Rar!')) return 'a rar archive';
  if (s.startsWith("7z\xbc\xaf'\x1c")) return 'a 7z archive';
  if (s.startsWith('\xd0\xcf\x11\xe0')) return 'an OLE2 file (msi, doc)';
  if (b.length > 0x8006 && b.toString('latin1', 0x8001, 0x8006) === 'CD001') return 'an ISO image';
  if (s.startsWith('\x1f\x8b')) return 'a gzip archive';
  if (s.startsWith('L\0\0\0')) return 'a Windows shortcut (lnk)';
  return null;
}

/** Declared types of what a browser or Windows' script host opens as a page or a script. */
const PAGE_TYPES = /^(text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/javascript|application\/(x-)?javascript|application\/hta|text\/x-component)$/i;
/** What a text named so is to Windows (file-flags.ts): a page or a script, which runs what it carries. */
const PAGE_KINDS: ReadonlySet<string> = new Set(['html', 'svg', 'hta', 'js', 'vbs']);

/**
 * Whether a part says it is a page or a script: its declared type, or any of its names (a
 * client may use any of them), by the program Windows opens it with.
 */
export function pageLike(contentType: string | null, names: ReadonlyArray<string | null>): boolean {
  return (contentType !== null && PAGE_TYPES.test(contentType)) || PAGE_KINDS.has(typeForWindows('text', names));
}

export class SmuggledObjectExtractor implements LeafSink {
  #held: Buffer[] | null = [];
  #bytes = 0;
  #decided = false;

  constructor(
    private readonly path: string,
    private readonly open: (path: string, name: string | null, encoding: string) => LeafSink,
    private readonly onEvent: (e: AnomalyEvent) => void,
    /**
     * The part says it is a page or a script (its type or its name): read whatever its first
     * bytes are — a browser renders a page behind a kilobyte of prose or junk all the same.
     */
    page = false,
  ) {
    this.#decided = page;
  }

  write(chunk: Buffer): void {
    if (this.#held === null) return;
    // A first piece long enough to judge is judged before any copy (most parts are no markup).
    if (!this.#decided && this.#bytes === 0 && chunk.length >= SNIFF && !this.#judge(chunk)) return;
    if (this.#bytes + chunk.length > MAX_HELD) {
      chunk = chunk.subarray(0, MAX_HELD - this.#bytes);
      if (chunk.length === 0) return;
    }
    this.#held.push(Buffer.from(chunk));
    this.#bytes += chunk.length;
    if (!this.#decided && this.#bytes >= SNIFF) this.#judge(Buffer.concat(this.#held));
  }

  /**
   * Markup or script, by its first SNIFF bytes — however they were cut into pieces (a decoder
   * may hand them over a few at a time); anything else is let go. False: let go.
   */
  #judge(head: Buffer): boolean {
    this.#decided = true;
    if (MARKUP.test(head.toString('latin1', 0, SNIFF))) return true;
    this.#held = null;
    return false;
  }

  end(): void {
    if (!this.#decided && this.#held?.length) this.#judge(Buffer.concat(this.#held));
    const held = this.#held;
    this.#held = null;
    if (!held || held.length === 0) return;
    // Character references decoded as a browser decodes them in an attribute (`&#100;ata:`,
    // `data&colon;`, `&#43;` in the payload): the URI the browser follows, not its spelling.
    const text = decodeCharRefs(Buffer.concat(held).toString('latin1'), NAMED_REFS, true);
    let n = 0;
    const emit = (kind: keyof typeof ENCODING, bytes: Buffer, at: number, end: number, how: string): void => {
      if (bytes.length === 0 || n >= MAX_PAYLOADS) return;
      n++;
      const name = downloadName(text, at, end);
      const path = `${this.path}/${kind}${n}`;
      const sink = this.open(path, name, ENCODING[kind]);
      sink.write(bytes);
      sink.end();
      const what = dangerous(bytes);
      if (what) this.onEvent({ name: 'HTML_SMUGGLING', where: path, detail: `${how} decodes to ${what}` });
    };
    // data: URIs, base64 or percent-encoded, up to the first character that ends an attribute
    // or a string. Every long run is measured by a search for its first foreign character, never
    // by a quantifier over the run: a greedy quantifier over megabytes overflows the regex stack.
    const dataUris: Array<readonly [number, number]> = [];
    for (const m of text.matchAll(DATA_URI)) {
      if (n >= MAX_PAYLOADS) break;
      const start = m.index! + m[0].length;
      // In a quoted attribute (or url("…")) the URI runs to the closing quote, and the URL
      // parser drops tabs and line breaks inside it (forgiving base64 any whitespace):
      // `base64,TVqQ` + newline + `AAMA…` is one payload. Unquoted, it ends at whitespace.
      const quote = quoteBefore(text, m.index!);
      const end = quote === null ? runEnd(URI_END, text, start) : closingQuote(text, start, quote);
      const payload = quote === null ? text.slice(start, end) : text.slice(start, end).replace(m[3] ? /[\t\n\f\r ]/g : /[\t\n\r]/g, '');
      const bytes = m[3] ? Buffer.from(payload.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'base64') : percentDecoded(payload);
      // A tiny inline image is everyday mail: scanned, but not worth an object each.
      if (!m[3] && bytes.length < 64) continue;
      dataUris.push([start, end]);
      emit('data', bytes, m.index!, end, `a data: URI (${m[1] ?? 'no type'})`);
    }
    // Long base64 or hex string literals in script: the makings of a Blob, between equal quotes.
    for (const q of text.matchAll(/["'`]/g)) {
      if (n >= MAX_PAYLOADS) break;
      const start = q.index! + 1;
      for (const [kind, min, foreign, how] of LITERALS) {
        min.lastIndex = start;
        if (!min.test(text)) continue;
        const end = runEnd(foreign, text, start);
        if (text[end] !== q[0] || text.slice(Math.max(0, start - 31), start).includes('data:')) continue;
        const run = text.slice(start, end);
        if (kind === 'hex' && run.length % 2 !== 0) continue;
        emit(kind, Buffer.from(run, kind === 'hex' ? 'hex' : 'base64'), start, end, how);
        break;
      }
    }
    // Bytes written as escapes (`"\x4d\x5a\x90…"`, `unescape("%4d%5a…")`) or as a list of
    // numbers (`new Uint8Array([77, 90, 144, …])`, `String.fromCharCode(77, 90, …)`).
    for (const run of escapedRuns(text)) {
      if (n >= MAX_PAYLOADS) break;
      if (dataUris.some(([a, b]) => run.start >= a && run.start < b)) continue; // a data: URI's payload, taken above
      emit('esc', run.bytes, run.start, run.end, 'an escaped string in script');
    }
    for (const run of byteLists(text)) {
      if (n >= MAX_PAYLOADS) break;
      emit('bytes', run.bytes, run.start, run.end, 'a list of byte values in script');
    }
    // The same strings cut into short pieces that script joins (`"TVqQ" + "AAMA" + …`,
    // `["TVqQ", "AAMA"].join("")`, a data: URI's payload added to its prefix).
    for (const run of joinedLiterals(text)) {
      if (n >= MAX_PAYLOADS) break;
      const hex = /^[0-9a-fA-F]+$/.test(run.value) && run.value.length % 2 === 0;
      emit(hex ? 'hex' : 'b64-', Buffer.from(run.value, hex ? 'hex' : 'base64'), run.start, run.end, `a ${hex ? 'hex' : 'base64'} string joined from ${run.pieces} pieces in script`);
    }
  }
}

/** Fewest escapes or numbers that make a file (EICAR is 68 bytes). */
const MIN_BYTES = 64;
/** The start of a run of byte escapes: MIN_BYTES of them in a row (fixed count: no backtracking over a run). */
const ESCAPES_START = new RegExp(`(?:\\\\x[0-9a-fA-F]{2}|\\\\u00[0-9a-fA-F]{2}|%u00[0-9a-fA-F]{2}|%[0-9a-fA-F]{2}){${MIN_BYTES}}`, 'g');
const NOT_IN_ESCAPES = /[^\\xu%0-9a-fA-F]/g;
const ONE_ESCAPE = /\\x([0-9a-fA-F]{2})|\\u00([0-9a-fA-F]{2})|%u00([0-9a-fA-F]{2})|%([0-9a-fA-F]{2})/g;

/** Runs of at least MIN_BYTES byte escapes, decoded (the escapes in a row from the run's start). */
function* escapedRuns(text: string): Generator<{ bytes: Buffer; start: number; end: number }> {
  ESCAPES_START.lastIndex = 0;
  for (let m = ESCAPES_START.exec(text); m; m = ESCAPES_START.exec(text)) {
    const start = m.index;
    const run = text.slice(start, runEnd(NOT_IN_ESCAPES, text, start));
    const codes: number[] = [];
    let at = 0;
    for (const e of run.matchAll(ONE_ESCAPE)) {
      if (e.index !== at) break; // a stray character ends the escapes
      codes.push(parseInt((e[1] ?? e[2] ?? e[3] ?? e[4])!, 16));
      at += e[0].length;
    }
    ESCAPES_START.lastIndex = start + Math.max(at, 1);
    yield { bytes: Buffer.from(codes), start, end: start + at };
  }
}

/** The start of a list of MIN_BYTES numbers 0–255 (decimal or 0x), in brackets or a call's parentheses. */
const LIST_START = new RegExp(`[[(]\\s*(?:(?:0x[0-9a-fA-F]{1,2}|\\d{1,3})\\s*,\\s*){${MIN_BYTES - 1}}`, 'g');
const NOT_IN_LIST = /[^0-9a-fA-Fx,\s]/g;

/** Lists of at least MIN_BYTES byte values, as bytes; a value above 255 ends nothing but is not a byte list. */
function* byteLists(text: string): Generator<{ bytes: Buffer; start: number; end: number }> {
  LIST_START.lastIndex = 0;
  for (let m = LIST_START.exec(text); m; m = LIST_START.exec(text)) {
    const start = m.index + 1;
    const end = runEnd(NOT_IN_LIST, text, start);
    LIST_START.lastIndex = end;
    const values = text.slice(start, end).split(',').map((v) => v.trim()).filter((v) => v !== '').map((v) => Number(v));
    if (values.length < MIN_BYTES || values.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) continue;
    yield { bytes: Buffer.from(values), start, end };
  }
}

/** A string literal of base64 (or hex) characters; and one more joined to it by `+` or `,`. */
const PIECE = /(["'`])([A-Za-z0-9+/=]{2,})\1/g;
const NEXT_PIECE = /\s*[+,]\s*(["'`])([A-Za-z0-9+/=]*)\1/y;

/**
 * Runs of two or more such literals joined by `+` or `,`, whose joined text is long enough to
 * be a file and looks like encoded data (both letter cases: a list of lower-case words or
 * identifiers is not). Linear: each literal is read once, and neither pattern can backtrack over a run.
 */
function* joinedLiterals(text: string): Generator<{ value: string; start: number; end: number; pieces: number }> {
  PIECE.lastIndex = 0;
  for (let m = PIECE.exec(text); m; m = PIECE.exec(text)) {
    const start = m.index + 1;
    let value = m[2]!;
    let pieces = 1;
    let end = PIECE.lastIndex;
    NEXT_PIECE.lastIndex = end;
    for (let x = NEXT_PIECE.exec(text); x; x = NEXT_PIECE.exec(text)) {
      value += x[2]!;
      pieces++;
      end = NEXT_PIECE.lastIndex;
    }
    PIECE.lastIndex = end;
    if (pieces >= 2 && value.length >= MIN_B64 && /[a-z]/.test(value) && /[A-Z]/.test(value)) yield { value, start, end: end - 1, pieces };
  }
}

/**
 * The name a page gives the file: a `download` attribute in the same tag, else the nearest
 * `download="…"` or `.download = "…"` within 400 characters (script sets it on a link).
 */
function downloadName(text: string, at: number, end: number): string | null {
  const tagStart = text.lastIndexOf('<', at);
  const tagEnd = text.indexOf('>', end);
  if (tagStart !== -1 && tagEnd !== -1 && !text.slice(tagStart, at).includes('>')) {
    // Inside a tag: its own download attribute, or none (an img borrows no other tag's name).
    return /\bdownload\s*=\s*["']([^"'<>]{1,255})["']/i.exec(text.slice(tagStart, Math.min(tagEnd, tagStart + 64 * 1024)))?.[1] ?? null;
  }
  let best: { d: number; name: string } | null = null;
  const from = Math.max(0, at - 400);
  for (const m of text.slice(from, end + 600).matchAll(/\.?\bdownload\s*=\s*["']([^"'<>]{1,255})["']/gi)) {
    const d = Math.abs(from + m.index! - at);
    if (!best || d < best.d) best = { d, name: m[1]! };
  }
  return best?.name ?? null;
}

/** The quote that opens the attribute value or url() argument a match starts, or null. */
function quoteBefore(text: string, at: number): string | null {
  const c = text[at - 1];
  return c === '"' || c === "'" ? c : null;
}

/** Where a quoted value ends: its closing quote, or the end of the (held, bounded) page. */
function closingQuote(text: string, from: number, quote: string): number {
  const end = text.indexOf(quote, from);
  return end === -1 ? text.length : end;
}

/** Named references a URI can be spelled with (HTML's names for the characters that matter). */
const NAMED_REFS: Readonly<Record<string, string>> = {
  colon: ':', sol: '/', comma: ',', semi: ';', plus: '+', equals: '=', period: '.', quot: '"', apos: "'",
  amp: '&', lt: '<', gt: '>', lpar: '(', rpar: ')', percnt: '%', num: '#', Tab: '\t', NewLine: '\n',
};

function percentDecoded(s: string): Buffer {
  return Buffer.from(s.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
}
