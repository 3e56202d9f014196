/**
 * uuencoded files inside text (the `begin 644 name` … `end` blocks old mailers and malware
 * still use): found in a decoded text body, in any chunking, and decoded to a file of their
 * own, so that a payload cannot hide in a text part as printable characters.
 *
 * Outside a block only `begin ` at a line start is looked for (a native indexOf); inside, each
 * line (at most MAX_UU_LINE bytes; real ones are 61) is decoded: its first character gives the
 * byte count, then every 4 characters give 3 bytes. The block ends at `end`, at a line that is
 * not uuencoding, or at the end of the text.
 */

import { Base64Decoder } from './base64.ts';

const MAX_UU_LINE = 1024;
/** `begin 644 name` (classic) and `begin-base64 644 name` (uuencode -m, ends at `====`). */
const BEGIN = Buffer.from('begin');
const LF = 10;

export interface UuSink {
  write(chunk: Buffer): void;
  end(): void;
}

export class UuExtractor {
  #carry: Buffer | null = null;
  #atLineStart = true;
  #inBlock: UuSink | null = null;
  /** The block is `begin-base64`: its lines are base64 until `====`. */
  #base64: Base64Decoder | null = null;
  /** Bytes of an over-long line being skipped (cannot be a begin or uu line). */
  #skipping = false;

  constructor(private readonly onFile: (name: string) => UuSink) {}

  write(chunk: Buffer): void {
    let buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = null;
    let pos = 0;
    while (pos < buf.length) {
      if (!this.#inBlock && !this.#skipping) {
        // Jump to the next candidate `begin ` at a line start; everything before is plain text.
        const at = this.#nextBegin(buf, pos);
        if (at === -1) {
          // No block starts here. Keep only a last partial line that may still become
          // "begin " once the next chunk arrives.
          const lastLf = buf.lastIndexOf(LF);
          const tailStart = lastLf >= pos ? lastLf + 1 : pos;
          const tailAtLineStart = lastLf >= pos || (pos > 0 ? buf[pos - 1] === LF : this.#atLineStart);
          const tail = buf.subarray(tailStart);
          this.#atLineStart = tail.length === 0 && tailAtLineStart;
          if (tailAtLineStart && tail.length > 0 && tail.length < BEGIN.length && BEGIN.subarray(0, tail.length).equals(tail)) {
            this.#carry = Buffer.from(tail);
            this.#atLineStart = true;
          }
          return;
        }
        pos = at;
      }
      const lf = buf.indexOf(LF, pos);
      if (lf === -1) {
        if (buf.length - pos > MAX_UU_LINE) {
          this.#endBlock();
          this.#skipping = true;
          this.#atLineStart = false;
          return;
        }
        this.#carry = Buffer.from(buf.subarray(pos));
        return;
      }
      const end = lf > pos && buf[lf - 1] === 13 ? lf - 1 : lf;
      if (this.#skipping) this.#skipping = false;
      else this.#line(buf.subarray(pos, end));
      pos = lf + 1;
      this.#atLineStart = true;
    }
  }

  end(): void {
    if (this.#carry && this.#inBlock) this.#line(this.#carry);
    this.#carry = null;
    this.#endBlock();
  }

  #nextBegin(buf: Buffer, from: number): number {
    let at = buf.indexOf(BEGIN, from);
    while (at !== -1) {
      if ((at === from && (from > 0 || this.#atLineStart)) || (at > 0 && buf[at - 1] === LF)) return at;
      at = buf.indexOf(BEGIN, at + 1);
    }
    return -1;
  }

  #line(line: Buffer): void {
    const text = line.toString('latin1');
    if (!this.#inBlock) {
      const m = /^begin(-base64)? [0-7]{3,4} (.+?)\s*$/.exec(text);
      if (m) {
        const sink = (this.#inBlock = this.onFile(m[2]!));
        if (m[1]) this.#base64 = new Base64Decoder((chunk) => sink.write(chunk));
      }
      return;
    }
    if (this.#base64) {
      if (text.trimEnd() === '====') return this.#endBlock();
      this.#base64.write(line);
      return;
    }
    if (text === 'end' || text.trimEnd() === 'end') return this.#endBlock();
    const decoded = decodeUuLine(text);
    if (decoded === null) return this.#endBlock();
    if (decoded.length) this.#inBlock.write(decoded);
  }

  #endBlock(): void {
    const b = this.#inBlock;
    this.#inBlock = null;
    this.#base64?.end();
    this.#base64 = null;
    b?.end();
  }
}

/** One uuencoded line, or null if the line is not uuencoding. */
export function decodeUuLine(text: string): Buffer | null {
  if (text.length === 0) return Buffer.alloc(0);
  const n = (text.charCodeAt(0) - 32) & 63;
  if (n === 0) return Buffer.alloc(0); // the "`" or " " line before `end`
  const needed = Math.ceil(n / 3) * 4;
  if (text.length - 1 < needed - 2) return null; // too short even allowing trimmed padding
  const out = Buffer.alloc(Math.ceil(n / 3) * 3);
  for (let i = 0, o = 0; i < needed; i += 4, o += 3) {
    const c = (k: number): number => {
      const ch = text.charCodeAt(1 + i + k);
      if (Number.isNaN(ch)) return 0; // trailing spaces trimmed by a mailer
      if (ch < 32 || ch > 96) return -1;
      return (ch - 32) & 63;
    };
    const a = c(0), b = c(1), d = c(2), e = c(3);
    if (a < 0 || b < 0 || d < 0 || e < 0) return null;
    out[o] = (a << 2) | (b >> 4);
    out[o + 1] = ((b & 15) << 4) | (d >> 2);
    out[o + 2] = ((d & 3) << 6) | e;
  }
  return out.subarray(0, n);
}
