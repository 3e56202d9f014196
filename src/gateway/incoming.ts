/**
 * One message on its way in: the wire bytes of a DATA stream (or of BDAT chunks turned into
 * one), read once and fanned out in the same pass to a sink (the spool in store-and-forward,
 * the upstream in cut-through) and, dot-unstuffed, to the inspector.
 *
 * After an anomaly or past the size limit nothing more reaches the sink or the inspector;
 * the framing still runs to the terminator so the reply comes where a strict server gives it.
 */

import type { StreamScan } from '../inspect/inspector.ts';
import { type DataAnomaly, DataReader } from '../smtp/data-reader.ts';
import type { Spool } from './spool.ts';
import { headerFacts, type HeaderFacts } from './transaction-log.ts';

/** Header bytes kept to read Message-ID and Subject for the log. */
const MAX_LOGGED_HEADER_BYTES = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;

export class IncomingMessage {
  readonly #reader: DataReader;
  readonly #head: Buffer[] = [];
  #headBytes = 0;
  /** The header block has ended (a blank line): no more bytes are kept for the log. */
  #headDone = false;
  /** The last two bytes kept, for a blank line split across chunks (content starts at a line start). */
  #last = LF;
  #beforeLast = 0;
  #facts: HeaderFacts | null = null;
  /** Wire bytes received (dot-stuffed), for the size limit and the log. */
  size = 0;
  tooBig = false;
  /** The sink failed (spool full, upstream gone); later bytes are read but not passed on. */
  sinkError: Error | null = null;
  /** Cut-through: the quarantine copy could not be written (the message went on regardless). */
  copyError: Error | null = null;

  constructor(
    readonly scan: StreamScan,
    private readonly sink: (wire: Buffer) => Promise<void>,
    private readonly maxBytes: number,
    maxLineBytes: number,
    /** Store-and-forward: the spool the sink writes to, released by the gate. */
    readonly spool: Spool | null,
    /** Cut-through with a quarantining rule: a copy of the wire bytes, released by the gate. */
    readonly copy: Spool | null = null,
  ) {
    this.#reader = new DataReader(maxLineBytes);
  }

  get ended(): boolean {
    return this.#reader.ended;
  }

  get anomaly(): DataAnomaly | null {
    return this.#reader.anomaly;
  }

  /** The first bytes of the content (the header block), for Message-ID and Subject. */
  get head(): Buffer {
    return Buffer.concat(this.#head);
  }

  /** Message-ID and Subject, decoded once for every record and line that names them. */
  get headerFacts(): HeaderFacts {
    return (this.#facts ??= headerFacts(this.head));
  }

  /** Feed wire bytes; returns how many belong to the message (the rest follows the terminator). */
  async push(chunk: Buffer): Promise<number> {
    const r = this.#reader.push(chunk);
    for (const w of r.wire) {
      this.size += w.length;
      if (this.size > this.maxBytes) this.tooBig = true;
      if (this.tooBig || this.sinkError) continue;
      try {
        await this.sink(w);
      } catch (err) {
        this.sinkError = err as Error;
      }
    }
    if (!this.tooBig) {
      for (const c of r.content) {
        this.scan.write(c);
        if (!this.#headDone) this.#keepHead(c);
      }
    }
    return r.consumed;
  }

  /** Keep content up to the blank line that ends the header block (bounded), not the body. */
  #keepHead(c: Buffer): void {
    let end = headerBlockEnd(c, this.#beforeLast, this.#last);
    if (end === -1) end = c.length;
    else this.#headDone = true;
    const piece = c.subarray(0, Math.min(end, MAX_LOGGED_HEADER_BYTES - this.#headBytes));
    this.#head.push(Buffer.from(piece));
    this.#headBytes += piece.length;
    if (this.#headBytes >= MAX_LOGGED_HEADER_BYTES) this.#headDone = true;
    if (c.length >= 2) {
      this.#beforeLast = c[c.length - 2]!;
      this.#last = c[c.length - 1]!;
    } else if (c.length === 1) {
      this.#beforeLast = this.#last;
      this.#last = c[0]!;
    }
  }
}

/**
 * Where the header block ends in this chunk — the index just past the blank line (`LF LF` or
 * `LF CR LF`) — given the two bytes before it; -1 when it does not end here. A native search
 * for each LF, no loop over the bytes.
 */
export function headerBlockEnd(c: Buffer, beforeLast: number, last: number): number {
  // A blank line that began in the previous chunk.
  if (c.length > 0 && last === LF && c[0] === LF) return 1;
  if (c.length > 0 && beforeLast === LF && last === CR && c[0] === LF) return 1;
  if (c.length > 1 && last === LF && c[0] === CR && c[1] === LF) return 2;
  for (let lf = c.indexOf(LF); lf !== -1; lf = c.indexOf(LF, lf + 1)) {
    if (c[lf + 1] === LF) return lf + 2;
    if (c[lf + 1] === CR && c[lf + 2] === LF) return lf + 3;
  }
  return -1;
}
