/**
 * One message on its way in: the wire bytes of a DATA stream (or of BDAT chunks turned into
 * one), read once and fanned out in the same pass to a sink (the spool in store-and-forward,
 * the upstream in cut-through) and, dot-unstuffed, to the inspector.
 *
 * After an anomaly or past the size limit nothing more reaches the sink or the inspector;
 * the framing still runs to the terminator so the reply comes where a strict server gives it.
 */

import type { MessageScan } from '../inspect/inspector.ts';
import { type DataAnomaly, DataReader } from '../smtp/data-reader.ts';
import type { Spool } from './spool.ts';

/** Header bytes kept to read Message-ID and Subject for the log. */
const MAX_LOGGED_HEADER_BYTES = 64 * 1024;

export class IncomingMessage {
  readonly #reader: DataReader;
  readonly #head: Buffer[] = [];
  #headBytes = 0;
  /** Wire bytes received (dot-stuffed), for the size limit and the log. */
  size = 0;
  tooBig = false;
  /** The sink failed (spool full, upstream gone); later bytes are read but not passed on. */
  sinkError: Error | null = null;
  /** Cut-through: the quarantine copy could not be written (the message went on regardless). */
  copyError: Error | null = null;

  constructor(
    readonly scan: MessageScan,
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
        if (this.#headBytes < MAX_LOGGED_HEADER_BYTES) {
          const piece = c.subarray(0, MAX_LOGGED_HEADER_BYTES - this.#headBytes);
          this.#head.push(Buffer.from(piece));
          this.#headBytes += piece.length;
        }
      }
    }
    return r.consumed;
  }
}
