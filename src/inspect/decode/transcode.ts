/**
 * Text in an encoding where ASCII is not ASCII bytes — UTF-16, UTF-32, UTF-7 — read as the
 * receiver's client reads it. A mail client renders a `text/html; charset=utf-16` part (or a
 * UTF-16 file with a byte-order mark, as Windows' Notepad writes "Unicode" text) as text; the
 * bytes on the wire put a NUL after every ASCII letter (or, in UTF-7, base64 in place of
 * letters), so byte signatures, data-filtering patterns and the HTML-smuggling extractor see
 * nothing there. The inspector opens the decoded text, in UTF-8, as an object of its own
 * (`P/(text)`), which every engine and extractor then reads like any text.
 *
 * Charsets where ASCII stays ASCII bytes (ISO 8859-x, windows-125x, KOI8, Shift_JIS, EUC,
 * GB 18030, Big5, ISO-2022-*) need no such object: patterns over ASCII match their raw bytes.
 *
 * Which encoding: a byte-order mark first (UTF-32 before UTF-16: FF FE 00 00 starts both),
 * then the declared charset (`utf-16` without a mark: the NUL pattern says the byte order,
 * big-endian by RFC 2781 when it cannot), then the NUL pattern alone (UTF-16 without a mark
 * and without a charset, as an attachment of ASCII text in UTF-16 is). Decided from the first
 * bytes, before anything is copied: other objects cost a look at their first bytes.
 */

import { TextDecoder } from 'node:util';
import type { LeafSink } from '../mime/body-decoders.ts';

export type TextEncoding = 'utf-16le' | 'utf-16be' | 'utf-32le' | 'utf-32be' | 'utf-7';

/** Bytes the NUL pattern is read over (and the most held before deciding). */
const SAMPLE = 4096;
/** Longest UTF-7 shift (base64 characters) held across chunks before its groups are decoded. */
const MAX_SHIFT = 4096;
/** Fewer bytes than this decide nothing by pattern (a short binary may look like anything). */
const MIN_PATTERN = 32;
/**
 * A first chunk this long without NUL (and without mark or declared charset) decides "no wide
 * text" before the sample is complete: nulPattern needs NULs in 70 % of the units of one
 * position across the sample, which more than 30 % of it without any NUL rules out (+ 8 for
 * the rounding to whole units). A shorter NUL-free start decides nothing — the text after it
 * may still be UTF-16 (`PK` and non-ASCII units first) — so the decision never depends on
 * where the chunks are cut.
 */
const NUL_FREE_DECIDES = Math.ceil(0.3 * SAMPLE) + 8;

const DECLARED: Readonly<Record<string, TextEncoding | 'utf-16' | 'utf-32'>> = {
  'utf-16': 'utf-16', 'ucs-2': 'utf-16', 'iso-10646-ucs-2': 'utf-16', 'csunicode': 'utf-16',
  'utf-16le': 'utf-16le', 'unicode': 'utf-16le', 'x-unicode': 'utf-16le',
  'utf-16be': 'utf-16be', 'unicodefffe': 'utf-16be',
  'utf-32': 'utf-32', 'ucs-4': 'utf-32', 'iso-10646-ucs-4': 'utf-32', 'csucs4': 'utf-32',
  'utf-32le': 'utf-32le', 'utf-32be': 'utf-32be',
  'utf-7': 'utf-7', 'unicode-1-1-utf-7': 'utf-7', 'csunicode11utf7': 'utf-7', 'x-unicode20utf7': 'utf-7', 'utf-7-imap': 'utf-7',
};

function bom(head: Buffer): TextEncoding | null {
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0xfe && head[2] === 0 && head[3] === 0) return 'utf-32le';
  if (head.length >= 4 && head[0] === 0 && head[1] === 0 && head[2] === 0xfe && head[3] === 0xff) return 'utf-32be';
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  if (head.length >= 4 && head[0] === 0x2b && head[1] === 0x2f && head[2] === 0x76 && [0x38, 0x39, 0x2b, 0x2f].includes(head[3]!)) return 'utf-7';
  return null;
}

/**
 * The byte order the zeros say: ASCII in UTF-16LE is `X 00 X 00`, in UTF-32LE `X 00 00 00`.
 * A position counts as "zero" at 70 % of its bytes, "text" at most 10 % zero.
 */
function nulPattern(head: Buffer): TextEncoding | null {
  const n = Math.min(head.length, SAMPLE) & ~3;
  if (n < MIN_PATTERN) return null;
  const zeros = [0, 0, 0, 0];
  for (let at = head.indexOf(0); at !== -1 && at < n; at = head.indexOf(0, at + 1)) zeros[at & 3]!++;
  const quarter = n / 4;
  const z = zeros.map((c) => c >= 0.7 * quarter);
  const t = zeros.map((c) => c <= 0.1 * quarter);
  if (t[0] && z[1] && z[2] && z[3]) return 'utf-32le';
  if (z[0] && z[1] && z[2] && t[3]) return 'utf-32be';
  if (t[0] && z[1] && t[2] && z[3]) return 'utf-16le';
  if (z[0] && t[1] && z[2] && t[3]) return 'utf-16be';
  return null;
}

/**
 * The encoding to decode an object's text from, or null: its first bytes (up to SAMPLE, or all
 * of a shorter object) and its declared charset (lower-cased, or null).
 */
export function textEncodingOf(head: Buffer, charset: string | null): TextEncoding | null {
  const marked = bom(head);
  if (marked) return marked;
  const declared = charset === null ? undefined : DECLARED[charset];
  const pattern = nulPattern(head);
  if (declared === 'utf-16') return pattern === 'utf-16le' ? 'utf-16le' : 'utf-16be';
  if (declared === 'utf-32') return pattern === 'utf-32le' ? 'utf-32le' : 'utf-32be';
  if (declared) return declared;
  return pattern;
}

/** Streams bytes in one of these encodings out as UTF-8. */
class Utf8Out {
  readonly #utf16: TextDecoder | null;
  #pending: Buffer = Buffer.alloc(0);
  #utf7 = '';
  #first = true;

  constructor(private readonly encoding: TextEncoding) {
    this.#utf16 = encoding === 'utf-16le' || encoding === 'utf-16be' ? new TextDecoder(encoding) : null;
  }

  decode(chunk: Buffer, final: boolean): string {
    if (this.#utf16) return this.#utf16.decode(chunk, { stream: !final });
    if (this.encoding === 'utf-7') return this.#decodeUtf7(chunk, final);
    return this.#decodeUtf32(chunk);
  }

  /** UTF-32 (no TextDecoder reads it): whole code units, the rest held for the next chunk. */
  #decodeUtf32(chunk: Buffer): string {
    const b = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const whole = b.length & ~3;
    this.#pending = Buffer.from(b.subarray(whole));
    const le = this.encoding === 'utf-32le';
    const points: number[] = [];
    let out = '';
    for (let i = 0; i < whole; i += 4) {
      const cp = le ? b.readUInt32LE(i) : b.readUInt32BE(i);
      if (this.#first && cp === 0xfeff) {
        this.#first = false;
        continue;
      }
      this.#first = false;
      points.push(cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? cp : 0xfffd);
      if (points.length === 4096) out += String.fromCodePoint(...points.splice(0));
    }
    return out + String.fromCodePoint(...points);
  }

  /**
   * UTF-7 (RFC 2152): `+` starts base64 of UTF-16BE, ended by `-` (absorbed) or any other
   * character; `+-` is a plus. A shift still open at a chunk's end waits for the next chunk.
   */
  #decodeUtf7(chunk: Buffer, final: boolean): string {
    let s = this.#utf7 + chunk.toString('latin1');
    this.#utf7 = '';
    if (!final) {
      const plus = s.lastIndexOf('+');
      if (plus !== -1 && /^\+[A-Za-z0-9+/]*$/.test(s.slice(plus))) {
        // An open shift waits for its end, bounded: past MAX_SHIFT its whole 8-character groups
        // (6 bytes, 3 UTF-16 units: nothing is cut) are decoded now, the rest held.
        const open = s.length - plus - 1;
        const now = open > MAX_SHIFT ? open - (open % 8) : 0;
        this.#utf7 = `+${s.slice(plus + 1 + now)}`;
        s = now > 0 ? `${s.slice(0, plus + 1 + now)}-` : s.slice(0, plus);
      }
    }
    let text = s.replace(/\+([A-Za-z0-9+/]*)-?/g, (_m, b64: string) => (b64 === '' ? '+' : utf16be(Buffer.from(b64, 'base64'))));
    if (this.#first) {
      this.#first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }
}

/** The first bytes of a text in this encoding, as UTF-8 (for typing it by its content). */
export function decodedHead(head: Buffer, encoding: TextEncoding): Buffer {
  return Buffer.from(new Utf8Out(encoding).decode(head, true), 'utf8');
}

function utf16be(b: Buffer): string {
  const even = b.subarray(0, b.length & ~1);
  const swapped = Buffer.from(even);
  swapped.swap16();
  return swapped.toString('utf16le');
}

/**
 * A sink that decides from an object's first bytes whether its text is in one of these
 * encodings; if so, `open(encoding)` gives the sink for the decoded UTF-8 text, which gets
 * all of it. Objects in other encodings cost the look at their first bytes and no copy.
 */
export class TextTranscoder implements LeafSink {
  #held: Buffer[] = [];
  #heldBytes = 0;
  #decided = false;
  #out: { sink: LeafSink; utf8: Utf8Out } | null = null;

  readonly declared: boolean;

  constructor(
    private readonly charset: string | null,
    private readonly open: (encoding: TextEncoding) => LeafSink,
  ) {
    this.declared = charset !== null && DECLARED[charset] !== undefined;
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#decided) {
      if (this.#out) this.#emit(chunk, false);
      return;
    }
    if (this.#held.length === 0) {
      if (chunk.length >= SAMPLE) return this.#decide(chunk, [chunk]);
      // Nearly every object: no mark, no encoding declared, no NUL in its first chunk (ASCII in
      // UTF-16/32 has one in every unit): decided before anything is copied.
      if (chunk.length >= NUL_FREE_DECIDES && !this.declared && bom(chunk) === null && chunk.indexOf(0) === -1) {
        this.#decided = true;
        return;
      }
    }
    this.#held.push(Buffer.from(chunk));
    this.#heldBytes += chunk.length;
    if (this.#heldBytes >= SAMPLE) this.#decide(Buffer.concat(this.#held), this.#held);
  }

  end(): void {
    if (!this.#decided) this.#decide(Buffer.concat(this.#held), this.#held);
    if (this.#out) {
      this.#emit(Buffer.alloc(0), true);
      this.#out.sink.end();
    }
  }

  #decide(head: Buffer, chunks: Buffer[]): void {
    this.#decided = true;
    this.#held = [];
    const encoding = textEncodingOf(head.subarray(0, SAMPLE), this.charset);
    if (encoding === null) return;
    this.#out = { sink: this.open(encoding), utf8: new Utf8Out(encoding) };
    for (const c of chunks) this.#emit(c, false);
  }

  #emit(chunk: Buffer, final: boolean): void {
    const text = this.#out!.utf8.decode(chunk, final);
    if (text.length) this.#out!.sink.write(Buffer.from(text, 'utf8'));
  }
}
