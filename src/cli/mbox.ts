/**
 * Splitting an mbox (mboxo/mboxrd, RFC 4155) into messages as it streams: a line starting
 * with "From " at the start of the file or after a blank line begins a message (the line
 * itself is the envelope, not part of the message; the blank line before it belongs to the
 * format). In mboxrd, body lines that read ">From ", ">>From ", … lose one ">".
 */

import { open } from 'node:fs/promises';
import { messageHeaderFacts } from '../inspect/mime/header-text.ts';

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

/** How a file is read: an mbox (many messages), one message, or a plain file. */
export async function inputKind(path: string): Promise<'mbox' | 'message' | 'file'> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(2048);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const text = head.toString('latin1', 0, bytesRead);
    if (/^From \S+.*\r?\n/.test(text) && looksLikeMessage(text.replace(/^From [^\n]*\n/, ''))) return 'mbox';
    if (/\.(eml|msg\.txt)$/i.test(path) || looksLikeMessage(text)) return 'message';
    return 'file';
  } finally {
    await fh.close();
  }
}

/** Text that starts with RFC 5322 header fields, among them a usual one. */
function looksLikeMessage(head: string): boolean {
  return /^(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*){2,}/.test(head) && /^(from|to|subject|date|message-id|mime-version|received|return-path):/im.test(head);
}

/** The messages of an mbox held in memory (analyze reads whole files anyway). */
export function splitMbox(bytes: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  let current: Buffer[] = [];
  const s = new MboxSplitter({
    data: (c) => current.push(Buffer.from(c)),
    end: () => {
      messages.push(Buffer.concat(current));
      current = [];
    },
  });
  s.write(bytes);
  s.end();
  return messages;
}

/**
 * How an mbox message is named in output: its number, and its Message-ID or else its Subject,
 * so `inbox.mbox#2 <x@example.org>` can be found in a mail client.
 */
export function messageLabel(path: string, n: number, head: Buffer): string {
  const { messageId, subject } = messageHeaderFacts(head);
  const name = messageId || (subject ? `"${subject.length > 60 ? `${subject.slice(0, 59)}…` : subject}"` : '');
  return `${path}#${n}${name ? ` ${name}` : ''}`;
}
