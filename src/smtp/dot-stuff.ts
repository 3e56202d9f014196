/**
 * Dot-stuffing (RFC 5321 §4.5.2) for content that did not arrive in DATA form: BDAT chunks
 * turned into a DATA stream, and messages smtpwall sends itself. Streaming: a line start is
 * remembered across chunks. LF is taken as the line end here; whether the lines are strict
 * CRLF is for the DataReader to judge afterwards.
 */

const LF = 10;
const DOT = 46;
const DOT_BUF = Buffer.from('.');

export class DotStuffer {
  #atLineStart = true;
  #lastByte = -1;
  #prevByte = -1;

  stuff(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const pieces: Buffer[] = [];
    let from = 0;
    if (this.#atLineStart && chunk[0] === DOT) pieces.push(DOT_BUF);
    let at = chunk.indexOf('\n.');
    while (at !== -1) {
      pieces.push(chunk.subarray(from, at + 1), DOT_BUF);
      from = at + 1;
      at = chunk.indexOf('\n.', at + 1);
    }
    this.#prevByte = chunk.length >= 2 ? chunk[chunk.length - 2]! : this.#lastByte;
    this.#lastByte = chunk[chunk.length - 1]!;
    this.#atLineStart = this.#lastByte === LF;
    if (pieces.length === 0) return chunk;
    pieces.push(chunk.subarray(from));
    return Buffer.concat(pieces);
  }

  /** The terminator that ends the stuffed stream, adding the CRLF a message must end with. */
  terminator(): Buffer {
    const endsWithCrlf = this.#lastByte === -1 || (this.#lastByte === LF && this.#prevByte === 13);
    return Buffer.from(endsWithCrlf ? '.\r\n' : '\r\n.\r\n');
  }
}
