/**
 * Splitting an mbox (mboxo/mboxrd, RFC 4155) into messages as it streams: a line starting
 * with "From " at the start of the file or after a blank line begins a message (the line
 * itself is the envelope, not part of the message; the blank line before it belongs to the
 * format). In mboxrd, body lines that read ">From ", ">>From ", … lose one ">".
 */

export interface MboxHandlers {
  /** Bytes of the current message, in order. */
  data(chunk: Buffer): void;
  /** The current message is complete. */
  end(): void;
}

const LF = 0x0a;
const FROM_ESCAPED = /^>+From /;

export class MboxSplitter {
  #carry: Buffer = Buffer.alloc(0);
  #open = false;
  /** A blank line held back: it is the separator's if a "From " line follows. */
  #heldBlank: Buffer | null = null;
  #previousBlank = true;

  constructor(private readonly h: MboxHandlers) {}

  write(chunk: Buffer): void {
    const buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    const out: Buffer[] = [];
    let start = 0;
    for (let nl = buf.indexOf(LF, start); nl !== -1; nl = buf.indexOf(LF, start)) {
      this.#line(buf.subarray(start, nl + 1), out);
      start = nl + 1;
    }
    this.#flush(out);
    this.#carry = Buffer.from(buf.subarray(start));
  }

  end(): void {
    const out: Buffer[] = [];
    if (this.#carry.length) this.#line(this.#carry, out);
    this.#carry = Buffer.alloc(0);
    if (this.#heldBlank) out.push(this.#heldBlank);
    this.#heldBlank = null;
    this.#flush(out);
    if (this.#open) this.h.end();
    this.#open = false;
  }

  #line(line: Buffer, out: Buffer[]): void {
    const blank = line.length <= 2 && (line[0] === LF || (line[0] === 0x0d && line[1] === LF));
    if (this.#previousBlank && line.subarray(0, 5).toString('latin1') === 'From ') {
      this.#heldBlank = null;
      this.#flush(out);
      if (this.#open) this.h.end();
      this.#open = true;
      this.#previousBlank = false;
      return;
    }
    this.#previousBlank = blank;
    if (!this.#open) return; // text before the first "From " line is not a message
    if (this.#heldBlank) {
      out.push(this.#heldBlank);
      this.#heldBlank = null;
    }
    if (blank) {
      this.#heldBlank = Buffer.from(line);
      return;
    }
    out.push(line[0] === 0x3e && FROM_ESCAPED.test(line.toString('latin1', 0, 64)) ? line.subarray(1) : line);
  }

  #flush(out: Buffer[]): void {
    if (out.length === 0) return;
    this.h.data(out.length === 1 ? out[0]! : Buffer.concat(out));
    out.length = 0;
  }
}
