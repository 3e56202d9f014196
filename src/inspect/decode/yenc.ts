/**
 * yEnc blocks inside text (`=ybegin … name=x` … `=yend`), the binary-in-text encoding of
 * Usenet that mail clients and unpackers still decode: found in any chunking and decoded to a
 * file of their own. Each block is one file (a part of a multi-part post is a file too: the
 * parts of one file rarely travel in one message, and each part is scanned on its own).
 *
 * Outside a block only `=ybegin ` at a line start is looked for (a native indexOf); inside,
 * each line is decoded: byte − 42, and `=` escapes the next byte (− 64 more). Lines beyond
 * MAX_YENC_LINE end the block (real ones are 128 or 256 characters).
 */

const MAX_YENC_LINE = 8192;
const BEGIN = Buffer.from('=ybegin ');
const LF = 10;

export interface FileSink {
  write(chunk: Buffer): void;
  end(): void;
}

export class YencExtractor {
  #carry: Buffer | null = null;
  #atLineStart = true;
  #inBlock: FileSink | null = null;
  #skipping = false;

  constructor(private readonly onFile: (name: string) => FileSink) {}

  write(chunk: Buffer): void {
    const buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = null;
    let pos = 0;
    while (pos < buf.length) {
      if (!this.#inBlock && !this.#skipping) {
        const at = nextAtLineStart(buf, BEGIN, pos, this.#atLineStart);
        if (at === -1) {
          this.#keepPossibleStart(buf, pos);
          return;
        }
        pos = at;
      }
      const lf = buf.indexOf(LF, pos);
      if (lf === -1) {
        if (buf.length - pos > MAX_YENC_LINE) {
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

  /** No block starts in buf[pos..]: keep a last partial line that may still become one. */
  #keepPossibleStart(buf: Buffer, pos: number): void {
    const lastLf = buf.lastIndexOf(LF);
    const tailStart = lastLf >= pos ? lastLf + 1 : pos;
    const tailAtLineStart = lastLf >= pos || (pos > 0 ? buf[pos - 1] === LF : this.#atLineStart);
    const tail = buf.subarray(tailStart);
    this.#atLineStart = tail.length === 0 && tailAtLineStart;
    if (tailAtLineStart && tail.length > 0 && tail.length < BEGIN.length && BEGIN.subarray(0, tail.length).equals(tail)) {
      this.#carry = Buffer.from(tail);
      this.#atLineStart = true;
    }
  }

  #line(line: Buffer): void {
    if (!this.#inBlock) {
      const text = line.toString('latin1');
      const m = /\bname=(.*)$/.exec(text);
      if (text.startsWith('=ybegin ')) this.#inBlock = this.onFile(m ? m[1]!.trim() : 'yenc');
      return;
    }
    if (line[0] === 0x3d && line[1] === 0x79) {
      // `=ypart …` goes on, `=yend …` ends the block; `=y` never starts a data line.
      if (line.toString('latin1', 0, 5) === '=yend') this.#endBlock();
      return;
    }
    this.#inBlock.write(decodeYencLine(line));
  }

  #endBlock(): void {
    const b = this.#inBlock;
    this.#inBlock = null;
    b?.end();
  }
}

/** One yEnc data line (without its line end). */
export function decodeYencLine(line: Buffer): Buffer {
  const out = Buffer.allocUnsafe(line.length);
  let o = 0;
  for (let i = 0; i < line.length; i++) {
    let c = line[i]!;
    if (c === 0x3d && i + 1 < line.length) c = (line[++i]! - 64) & 255;
    out[o++] = (c - 42) & 255;
  }
  return out.subarray(0, o);
}

/** The next `marker` at a line start in buf[from..], or -1. */
export function nextAtLineStart(buf: Buffer, marker: Buffer, from: number, atLineStart: boolean): number {
  let at = buf.indexOf(marker, from);
  while (at !== -1) {
    if ((at === from && (from > 0 ? buf[from - 1] === LF : atLineStart)) || (at > 0 && buf[at - 1] === LF)) return at;
    at = buf.indexOf(marker, at + 1);
  }
  return -1;
}
