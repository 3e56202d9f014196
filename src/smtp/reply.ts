/**
 * SMTP replies (RFC 5321 §4.2): parsing what a server sends, formatting what we send.
 *
 * The parser is strict about structure (three digits, then `-` or space, the same code on
 * every line of a multi-line reply) and bounded (line length, lines per reply): anything else
 * is a protocol error the session answers with a generic 4xx, never relayed. It tolerates a
 * bare LF line ending from servers, which cannot smuggle anything towards the client.
 */

const LF = 10;

/** Longest reply line accepted from a server (RFC 5321 §4.5.3.1.5 says 512; be generous). */
export const MAX_REPLY_LINE_BYTES = 4096;
/** Most lines in one multi-line reply (an EHLO reply has one per extension). */
export const MAX_REPLY_LINES = 100;

export interface Reply {
  readonly code: number;
  /** Text of each line, without the code and separator. */
  readonly lines: readonly string[];
}

export class ReplyProtocolError extends Error {}

export class ReplyParser {
  #partial: Buffer | null = null;
  #lines: string[] = [];
  #code = 0;

  /** Feed bytes from the server; returns the replies completed by them, in order. */
  push(chunk: Buffer): Reply[] {
    const buf = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    this.#partial = null;
    const replies: Reply[] = [];
    let pos = 0;
    for (;;) {
      const lf = buf.indexOf(LF, pos);
      if (lf === -1) break;
      const end = lf > pos && buf[lf - 1] === 13 ? lf - 1 : lf;
      if (end - pos > MAX_REPLY_LINE_BYTES) throw new ReplyProtocolError('reply line too long');
      const reply = this.#line(buf.toString('latin1', pos, end));
      if (reply) replies.push(reply);
      pos = lf + 1;
    }
    if (pos < buf.length) {
      if (buf.length - pos > MAX_REPLY_LINE_BYTES) throw new ReplyProtocolError('reply line too long');
      this.#partial = Buffer.from(buf.subarray(pos));
    }
    return replies;
  }

  /** True while a reply has started but not finished (e.g. the peer closed mid-reply). */
  get pending(): boolean {
    return this.#partial !== null || this.#lines.length > 0;
  }

  #line(line: string): Reply | null {
    const m = /^([2-5][0-5][0-9])(?:([ -])(.*))?$/s.exec(line);
    if (!m) throw new ReplyProtocolError(`malformed reply line ${JSON.stringify(line.slice(0, 80))}`);
    const code = Number(m[1]);
    if (this.#lines.length > 0 && code !== this.#code) {
      throw new ReplyProtocolError(`reply code changed from ${this.#code} to ${code} inside a multi-line reply`);
    }
    this.#code = code;
    this.#lines.push(m[3] ?? '');
    if (this.#lines.length > MAX_REPLY_LINES) throw new ReplyProtocolError('too many lines in one reply');
    if (m[2] === '-') return null;
    const reply: Reply = { code, lines: this.#lines };
    this.#lines = [];
    return reply;
  }
}

/** Replace what must not travel from a server to a client: control bytes and non-ASCII. */
export function censorText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** One reply as wire bytes, written in a single write by the caller. */
export function formatReply(code: number, lines: string | readonly string[]): Buffer {
  const list = typeof lines === 'string' ? [lines] : lines.length ? lines : [''];
  let out = '';
  for (let i = 0; i < list.length; i++) {
    const sep = i === list.length - 1 ? ' ' : '-';
    out += `${code}${sep}${list[i]}\r\n`;
  }
  return Buffer.from(out, 'latin1');
}

export function replyToString(r: Reply): string {
  return r.lines.map((l, i) => `${r.code}${i === r.lines.length - 1 ? ' ' : '-'}${l}`).join('\n');
}
