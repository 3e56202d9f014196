/**
 * The client leg of a session: the socket the sending MTA connected on (replaced by its TLS
 * socket after STARTTLS), the reader that pulls its commands and data, and the replies owed
 * to it. Replies are queued and written in one write when the session next waits for the
 * client (pipelined replies leave in one segment; TCP_NODELAY is set).
 */

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { censorText, formatReply, type Reply } from '../smtp/reply.ts';
import { ClientReader } from './client-reader.ts';
import { resetConnection } from './reset.ts';
import type { Transcript } from './transcript.ts';
import type { SessionCapture } from './capture.ts';

/** Longest wait between a final reply and the reset that follows it (see flushedAndRead). */
const RESET_LINGER_MS = 200;

export class ClientLeg {
  #socket: Socket;
  /** The TCP socket under a STARTTLS upgrade, for resets. */
  #tcp: Socket | undefined;
  #reader: ClientReader;
  #out: Buffer[] = [];
  /** The leg is encrypted (implicit TLS, or after STARTTLS). */
  #tls: boolean;
  /** Set for a session under `debug-peers`. */
  transcript: Transcript | null = null;
  /** `address:port`, for logs and records. */
  readonly label: string;
  readonly address: string;

  /** @param peer the client a PROXY header named, when a load balancer connected for it */
  constructor(socket: Socket, private readonly capture: SessionCapture | null = null, peer: { readonly address: string; readonly port: number } | null = null) {
    this.#socket = socket;
    capture?.tap(socket, 'client');
    this.address = peer?.address ?? socket.remoteAddress ?? '';
    this.label = peer ? `${peer.address}:${peer.port}` : `${socket.remoteAddress}:${socket.remotePort}`;
    this.#tls = socket instanceof TLSSocket;
    socket.setNoDelay(true);
    this.#reader = new ClientReader(socket, () => this.flush());
  }

  get reader(): ClientReader {
    return this.#reader;
  }

  get socket(): Socket {
    return this.#socket;
  }

  get tls(): boolean {
    return this.#tls;
  }

  get destroyed(): boolean {
    return this.#socket.destroyed;
  }

  /** After a STARTTLS handshake: the encrypted socket is the client from now on. */
  adopt(secure: TLSSocket): void {
    this.#tcp = this.#socket;
    this.#socket = secure;
    this.capture?.tap(secure, 'client');
    this.#reader = new ClientReader(secure, () => this.flush());
    this.#tls = true;
  }

  reply(code: number, text: string | readonly string[]): void {
    this.#out.push(formatReply(code, text));
  }

  /** One of our own replies (enforce.ts's table). */
  send(r: { readonly code: number; readonly text: string }): void {
    this.reply(r.code, r.text);
  }

  /** Relay an upstream reply, censored (no control bytes or non-ASCII reach the client). */
  relay(r: Reply): void {
    this.reply(r.code, r.lines.map(censorText));
  }

  flush(): void {
    if (this.#out.length === 0 || this.#socket.destroyed) return;
    const bytes = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
    this.#out = [];
    this.transcript?.('>client', bytes.toString('latin1'));
    this.#socket.write(bytes);
  }

  /** Flush and wait until the kernel has the bytes, so a reset right after cannot lose them. */
  async flushed(): Promise<void> {
    if (this.#out.length === 0 || this.#socket.destroyed) return;
    const bytes = Buffer.concat(this.#out);
    this.#out = [];
    await new Promise<void>((resolve) => this.#socket.write(bytes, () => resolve()));
  }

  /**
   * Flush a final reply and give the client a moment to read it before a reset. An RST that
   * arrives while the reply is still unread in the client's receive queue makes Linux report
   * plain end-of-file instead of ECONNRESET; waiting for the client's next bytes (it read the
   * reply and answered, typically QUIT) or RESET_LINGER_MS makes the reset visible as one.
   */
  async flushedAndRead(): Promise<void> {
    await this.flushed();
    if (this.#socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#socket.off('data', done);
        this.#socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, RESET_LINGER_MS);
      this.#socket.on('data', done);
      this.#socket.on('close', done);
    });
  }

  /** Forget the replies queued (drop: the client is told nothing). */
  silence(): void {
    this.#out = [];
  }

  /** TCP RST (on the TCP socket under TLS, if any). */
  reset(): void {
    resetConnection(this.#socket, this.#tcp);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** End politely: what is queued is written, then FIN. */
  end(): void {
    if (this.#socket.destroyed) return;
    this.#socket.end();
    this.#socket.destroySoon();
  }
}
