/**
 * The connection to the upstream (receiving) server: connect with a deadline, send commands,
 * read replies with a deadline, stream message bytes with backpressure, and end the
 * connection in the three ways enforcement needs (QUIT, close, reset).
 *
 * Replies are parsed strictly (reply.ts); a reply that arrives while none is expected is kept
 * and reported as unsolicited, never attributed to the next command.
 */

import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { UpstreamConnectError, UpstreamLostError, UpstreamProtocolError } from '../errors.ts';
import { formatReply, type Reply, ReplyParser, ReplyProtocolError } from '../smtp/reply.ts';
import type { Transcript } from './transcript.ts';
import { resetConnection } from './reset.ts';
import { type LegRole, type SessionCapture, untap } from './capture.ts';

const CLOSED_BY_UPSTREAM = new UpstreamLostError('connection closed by upstream');

export class Upstream {
  #socket: Socket;
  /** The TCP socket under a TLS upgrade, for resets. */
  readonly #tcp: Socket;
  #parser = new ReplyParser();
  #replies: Reply[] = [];
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  #closed = false;
  #tls = false;
  readonly #handlers: { data: (b: Buffer) => void; error: (e: Error) => void; close: () => void };

  private constructor(socket: Socket, readonly target: string) {
    this.#socket = socket;
    this.#tcp = socket;
    socket.setNoDelay(true);
    this.#handlers = {
      data: (chunk: Buffer) => {
        try {
          this.#replies.push(...this.#parser.push(chunk));
        } catch (err) {
          this.#fail(err instanceof ReplyProtocolError ? new UpstreamProtocolError(err.message, { cause: err }) : (err as Error));
          this.#socket.destroy();
        }
        this.#notify();
      },
      error: (err) => this.#fail(new UpstreamLostError(err.message, { cause: err })),
      close: () => {
        this.#closed = true;
        // One shared error: it carries nothing per connection, and capturing a stack for
        // every session's close was measurable at thousands of sessions a second.
        this.#fail(CLOSED_BY_UPSTREAM);
      },
    };
    this.#attach(socket);
  }

  #attach(socket: Socket): void {
    socket.on('data', this.#handlers.data);
    socket.on('error', this.#handlers.error);
    socket.on('close', this.#handlers.close);
  }

  #detachHandlers(): void {
    this.#socket.pause(); // whatever arrives next stays buffered for the socket's new owner
    this.#socket.off('data', this.#handlers.data);
    this.#socket.off('error', this.#handlers.error);
    this.#socket.off('close', this.#handlers.close);
  }

  get tls(): boolean {
    return this.#tls;
  }

  /**
   * Upgrade to TLS after the server's 220 to STARTTLS (RFC 3207). Anything the server sent
   * after that 220 in plaintext is discarded (response injection, CVE-2011-0411 class) and
   * reported to the caller.
   */
  async startTls(options: ConnectionOptions, timeoutMs: number): Promise<{ injected: number }> {
    const injected = this.#replies.length + (this.#parser.pending ? 1 : 0);
    this.#replies = [];
    this.#parser = new ReplyParser();
    this.#detachHandlers();
    const secure = tlsConnect({ ...options, socket: this.#socket });
    const timer = setTimeout(() => secure.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    try {
      await once(secure, 'secureConnect');
    } catch (err) {
      secure.destroy();
      this.#fail(new UpstreamLostError(`TLS handshake failed: ${(err as Error).message}`, { cause: err }));
      throw this.#failure;
    } finally {
      clearTimeout(timer);
    }
    this.#socket = secure;
    this.#tls = true;
    this.#capture?.tap(secure, 'upstream');
    this.#attach(secure);
    return { injected };
  }

  /** Hand the raw connection over (STARTTLS passthrough); this object is done with it. */
  detach(): { socket: Socket; buffered: number } {
    const buffered = this.#replies.length + (this.#parser.pending ? 1 : 0);
    this.#detachHandlers();
    this.#closed = true;
    return { socket: this.#socket, buffered };
  }

  /**
   * Connect and read the greeting; both within `timeoutMs`. `open` makes the socket another
   * way (TPROXY: from the client's own address, original-dst.ts).
   */
  static async connect(host: string, port: number, timeoutMs: number, open?: () => Socket, capture?: SessionCapture | null): Promise<{ upstream: Upstream; greeting: Reply }> {
    const target = `${host}:${port}`;
    let socket: Socket;
    try {
      socket = open ? open() : connect({ host, port, noDelay: true });
    } catch (err) {
      throw new UpstreamConnectError(target, (err as Error).message, { cause: err });
    }
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    try {
      await once(socket, 'connect');
    } catch (err) {
      clearTimeout(timer);
      socket.destroy();
      throw new UpstreamConnectError(target, (err as Error).message, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    const upstream = new Upstream(socket, target);
    if (capture) upstream.capture = capture; // before the greeting: it is part of the conversation
    try {
      const greeting = await upstream.reply(timeoutMs);
      return { upstream, greeting };
    } catch (err) {
      upstream.reset();
      throw new UpstreamConnectError(target, `no greeting: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Why the connection failed or ended (e.g. `read ECONNRESET`), null while it is fine. */
  get failureReason(): string | null {
    const cause = this.#failure?.cause;
    return cause instanceof Error ? cause.message : (this.#failure?.message ?? null);
  }

  get alive(): boolean {
    return !this.#closed && this.#failure === null;
  }

  /** A reply arrived that no command asked for (typically 421 before the server closes). */
  takeUnsolicited(): Reply | null {
    return this.#replies.shift() ?? null;
  }

  /** Set for a session under `debug-peers`: every reply and command goes to it. */
  transcript: Transcript | null = null;

  #capture: SessionCapture | null = null;

  /** The session whose packet capture this connection reports to (null: parked, nobody's). */
  set capture(c: SessionCapture | null) {
    this.#capture = c;
    if (c) c.tap(this.#socket, 'upstream' satisfies LegRole);
    else untap(this.#socket);
  }

  /** The next reply, within `timeoutMs`. */
  async reply(timeoutMs: number): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.#replies.shift();
      if (r) {
        this.transcript?.('upstream>', formatReply(r.code, r.lines).toString('latin1'));
        return r;
      }
      if (this.#failure) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.reset();
        throw new UpstreamLostError(`no reply within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Send one command line and read its reply. */
  async command(line: string, timeoutMs: number): Promise<Reply> {
    this.transcript?.('>upstream', line);
    this.write(Buffer.from(`${line}\r\n`, 'latin1'));
    return this.reply(timeoutMs);
  }

  /** Hold writes until uncork(): a pipelined batch leaves in one write. */
  cork(): void {
    this.#socket.cork();
  }

  uncork(): void {
    this.#socket.uncork();
  }

  write(bytes: Buffer): boolean {
    if (this.#failure) throw this.#failure;
    return this.#socket.write(bytes);
  }

  /**
   * Write and wait until the socket takes more (backpressure). A server that stops reading
   * for `timeoutMs` is reset: a stalled upstream must not hold the session (and the client's
   * bytes) forever. Several buffers leave together (corked: one writev system call, no copy
   * of the message into one buffer first).
   */
  async writeData(bytes: Buffer | readonly Buffer[], timeoutMs: number): Promise<void> {
    if (Buffer.isBuffer(bytes)) {
      if (this.write(bytes)) return;
    } else {
      this.cork();
      try {
        for (const b of bytes) this.write(b);
      } finally {
        this.uncork();
      }
      if (!this.#socket.writableNeedDrain) return;
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        this.reset();
        reject(new UpstreamLostError(`upstream took no data for ${timeoutMs} ms`));
      }, timeoutMs);
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(this.#failure ?? new UpstreamLostError('connection closed during data'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#socket.off('drain', onDrain);
        this.#socket.off('close', onClose);
      };
      this.#socket.on('drain', onDrain);
      this.#socket.on('close', onClose);
    });
  }

  /** Polite end: QUIT, wait briefly for its reply, close. Never throws. */
  async quit(timeoutMs = 2000): Promise<void> {
    if (!this.alive) return this.close();
    while (this.#socket.writableCorked) this.#socket.uncork();
    try {
      await this.command('QUIT', timeoutMs);
    } catch {
      // The connection is ending either way; a missing 221 changes nothing.
    }
    this.close();
  }

  close(): void {
    this.#socket.end();
    this.#socket.destroySoon();
  }

  /** TCP RST: the server sees the connection reset at once and abandons any transaction. */
  reset(): void {
    if (this.#socket.destroyed) return;
    this.#fail(new UpstreamLostError('connection reset by gateway'));
    resetConnection(this.#socket, this.#tcp);
  }

  #fail(err: Error): void {
    if (!this.#failure) this.#failure = err;
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
}
