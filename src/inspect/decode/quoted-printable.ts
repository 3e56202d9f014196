/**
 * Streaming quoted-printable decoding (RFC 2045 §6.7), fed line by line by the MIME walker.
 *
 * Tolerant like mail clients: `=XX` in either case decodes; a `=` not followed by two hex
 * digits is kept literally; a line ending in `=` (after optional trailing whitespace) is a
 * soft break; trailing whitespace on other lines is removed (rule 3). Hard line breaks decode
 * to CRLF.
 */

const MAX_PENDING_LINE = 64 * 1024;

export class QuotedPrintableDecoder {
  #line = '';

  constructor(private readonly out: (chunk: Buffer) => void) {}

  /** Part of the current line (the walker may split very long lines). */
  write(content: Buffer): void {
    this.#line += content.toString('latin1');
    if (this.#line.length > MAX_PENDING_LINE) {
      // Decode what cannot be part of an escape at the cut; keep the last 2 chars pending.
      const keep = this.#line.slice(-2).includes('=') ? this.#line.length - this.#line.lastIndexOf('=') : 0;
      const head = this.#line.slice(0, this.#line.length - keep);
      this.#line = this.#line.slice(this.#line.length - keep);
      this.out(decodeQp(head));
    }
  }

  /** The current line ended with a line break. */
  eol(): void {
    const trimmed = this.#line.replace(/[ \t]+$/, '');
    this.#line = '';
    if (trimmed.endsWith('=')) {
      this.out(decodeQp(trimmed.slice(0, -1)));
      return;
    }
    this.out(Buffer.concat([decodeQp(trimmed), CRLF]));
  }

  end(): void {
    if (this.#line) this.out(decodeQp(this.#line.replace(/=$/, '')));
    this.#line = '';
  }
}

const CRLF = Buffer.from('\r\n');

function decodeQp(s: string): Buffer {
  if (!s.includes('=')) return Buffer.from(s, 'latin1');
  return Buffer.from(
    s.replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    'latin1',
  );
}
