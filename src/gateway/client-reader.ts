/**
 * Reading from the client socket with backpressure: bytes are buffered up to a bound, then
 * the socket is paused until the session consumes them. The session pulls command lines or
 * data chunks; before every wait it is asked to flush its pending replies (so pipelined
 * replies go out in one write, and nothing waits on an unflushed reply).
 *
 * Every wait has an inactivity timeout; the session decides what a timeout means.
 */

import type { Socket } from 'node:net';
import { ClientTimeoutError } from '../errors.ts';
import { type LineResult, readCommandLine, skipToLineEnd } from '../smtp/line-reader.ts';

/** Buffered client bytes before the socket is paused (the session is behind). */
const MAX_BUFFERED_BYTES = 256 * 1024;


export type ReadLine = LineResult | { readonly kind: 'eof' };

export class ClientReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #eof = false;
  #wake: (() => void) | null = null;

  readonly #onData = (chunk: Buffer): void => {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered > MAX_BUFFERED_BYTES) this.socket.pause();
    this.#notify();
  };
  readonly #onEnd = (): void => {
    this.#eof = true;
    this.#notify();
  };

  constructor(
    private readonly socket: Socket,
    private readonly beforeWait: () => void,
  ) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onEnd);
  }

  /**
   * Stop reading this socket (it is being upgraded to TLS or handed over). Call it before the
   * 220 to STARTTLS is sent: the bytes returned were then sent before the client could have
   * seen the 220 — plaintext injected ahead of the handshake (CVE-2011-0411 class) — and are
   * discarded, never read as commands.
   */
  detach(): Buffer {
    // Paused, the socket keeps what arrives next (a TLS ClientHello) for its new owner: a
    // TLSSocket takes over a paused socket's buffered bytes, and pipe() resumes it.
    this.socket.pause();
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onEnd);
    const rest = this.#joined();
    this.#chunks = [];
    this.#buffered = 0;
    return rest;
  }

  get eof(): boolean {
    return this.#eof && this.#buffered === 0;
  }

  /** A complete line is already buffered (the client pipelined it). */
  hasLine(): boolean {
    return this.#chunks.some((c) => c.includes(10));
  }

  /** Bytes already received and not yet consumed (e.g. pipelined after a command). */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * The next command line (or the anomaly that spoiled it). The whole line must arrive within
   * `timeoutMs`: a client trickling a command byte by byte (slowloris) times out like a silent
   * one, instead of holding the session forever.
   */
  async readLine(maxBytes: number, timeoutMs: number): Promise<ReadLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#buffered > 0) {
        const buf = this.#joined();
        const r = readCommandLine(buf, 0, maxBytes);
        if (r.kind === 'line' || r.kind === 'bad') {
          this.#consume(buf, r.next);
          return r;
        }
        if (r.kind === 'overflow') {
          await this.#discardLine(timeoutMs);
          return r;
        }
      }
      if (this.#eof) return { kind: 'eof' };
      await this.#wait(Math.max(1, deadline - Date.now()), `no complete command within ${timeoutMs} ms`);
    }
  }

  /** All buffered bytes (waiting for some if none), or null at end of stream. */
  async readChunk(timeoutMs: number): Promise<Buffer | null> {
    while (this.#buffered === 0) {
      if (this.#eof) return null;
      await this.#wait(timeoutMs);
    }
    const buf = this.#joined();
    this.#chunks = [];
    this.#buffered = 0;
    this.socket.resume();
    return buf;
  }

  /** Give back bytes read past a boundary (pipelined commands after end of data). */
  unshift(buf: Buffer): void {
    if (buf.length === 0) return;
    this.#chunks.unshift(buf);
    this.#buffered += buf.length;
  }

  /** Skip exactly `n` bytes (a BDAT chunk we refuse), waiting for them if needed. */
  async discard(n: number, timeoutMs: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      const chunk = await this.readChunk(timeoutMs);
      if (chunk === null) return false;
      if (chunk.length > left) this.unshift(chunk.subarray(left));
      left -= Math.min(left, chunk.length);
    }
    return true;
  }

  async #discardLine(timeoutMs: number): Promise<void> {
    for (;;) {
      const buf = this.#joined();
      const next = skipToLineEnd(buf, 0);
      if (next !== -1) {
        this.#consume(buf, next);
        return;
      }
      this.#chunks = [];
      this.#buffered = 0;
      this.socket.resume();
      if (this.#eof) return;
      await this.#wait(timeoutMs);
    }
  }

  #joined(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #consume(buf: Buffer, n: number): void {
    const rest = buf.subarray(n);
    this.#chunks = rest.length ? [rest] : [];
    this.#buffered = rest.length;
    if (this.#buffered <= MAX_BUFFERED_BYTES) this.socket.resume();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  #wait(timeoutMs: number, why = `no data from client for ${timeoutMs} ms`): Promise<void> {
    this.beforeWait();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        reject(new ClientTimeoutError(why));
      }, timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
