/**
 * The upstream leg of a session: the connection to the receiving server as the session sees
 * it. It connects and greets, reconnects after a cut-through transaction was abandoned by a
 * reset (replaying the client's EHLO and STARTTLS), relays commands and checks each reply's
 * class (RFC 5321 §4.3.2), pipelines MAIL/RCPT (RFC 2920) and settles their replies in order,
 * and ends the upstream transaction in exactly one place: `abandon(how)`.
 *
 * Upstream (upstream.ts) is one TCP/TLS connection; this leg outlives it (a reset connection
 * is replaced lazily, before the next command that needs one).
 */

import type { Socket } from 'node:net';
import { UpstreamLostError, UpstreamProtocolError } from '../errors.ts';
import type { Timeouts } from '../policy/config-schema.ts';
import { type Reply, replyToString } from '../smtp/reply.ts';
import type { UpstreamTls } from './tls.ts';
import type { UpstreamPool } from './upstream-pool.ts';
import { Upstream } from './upstream.ts';
import { maskAuth, type Transcript } from './transcript.ts';
import type { SessionCapture } from './capture.ts';

export type ReplyClass = 2 | 3 | 4 | 5;
/** `rset`: keep the connection, end the transaction; `reset`: TCP RST; `quit`: RSET, QUIT, close. */
export type AbandonHow = 'rset' | 'reset' | 'quit';

/** End of data (RFC 5321 §4.1.1.4): the part of the stream the gate holds back. */
export const TERMINATOR = Buffer.from('.\r\n');

/** How long a polite QUIT waits for its 221. */
const QUIT_WAIT_MS = 2000;

export interface UpstreamLegOptions {
  /** How to open the connection when not plainly (TPROXY: from the client's address). */
  readonly openSocket?: () => Socket;
  /** The session's debug transcript (`debug-peers`); absent for every other session. */
  readonly transcript?: Transcript | null;
  /** The session's packet capture (`capture:`), if any. */
  readonly capture?: SessionCapture | null;
  readonly host: string;
  readonly port: number;
  readonly timeouts: Timeouts;
  readonly tls: UpstreamTls;
  /** The listener passes STARTTLS through to the client: never upgrade on our own. */
  readonly clientPassthrough: boolean;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  readonly sessionId: string;
  /**
   * Upstream sessions are reused (upstream-pool.ts): the upstream is greeted with the
   * gateway's own name, each client is greeted from the cached texts, and (`xforward`) told
   * who the client is with XFORWARD before each transaction when the upstream offers it.
   */
  readonly reuse?: { readonly pool: UpstreamPool; readonly hostname: string; readonly xforward: boolean } | null;
  /** The client as XFORWARD names it. */
  readonly client?: () => { readonly address: string; readonly helo: string };
}

interface Pending {
  readonly label: string;
  readonly apply: (r: Reply) => void;
}

export class UpstreamLeg {
  #up: Upstream | null = null;
  /** The HELO/EHLO line the client used, replayed when the upstream must be reconnected. */
  #hello: string | null = null;
  /** MAIL/RCPT relayed ahead whose replies are still to come, oldest first. */
  #pending: Pending[] = [];
  /** The connection's greeting and (reuse) its EHLO reply, given to clients from cache. */
  #greeting: Reply | null = null;
  #ehlo: Reply | null = null;
  /** A MAIL was accepted and the transaction not yet ended (reuse: RSET before parking). */
  #txOpen = false;
  /** The connection may be parked for the next client: nothing a client did stays on it. */
  #reusable = true;

  constructor(private readonly o: UpstreamLegOptions) {}

  get target(): string {
    return `${this.o.host}:${this.o.port}`;
  }

  /** There is a connection (it may still turn out dead at the next read). */
  get connected(): boolean {
    return this.#up !== null;
  }

  get tls(): boolean {
    return this.#up?.tls ?? false;
  }

  /** Replies still owed for commands relayed ahead (of one verb, or all). */
  pending(label?: string): number {
    return label === undefined ? this.#pending.length : this.#pending.filter((p) => p.label === label).length;
  }

  /** The first connection (a parked one when reusing): its greeting is the client's greeting. */
  async connect(): Promise<Reply> {
    const parked = this.o.reuse?.pool.take();
    if (parked) {
      this.#up = this.#watch(parked.upstream);
      this.#greeting = parked.greeting;
      this.#ehlo = parked.ehlo;
      this.#hello = parked.helloLine;
      return parked.greeting;
    }
    const { upstream, greeting } = await Upstream.connect(this.o.host, this.o.port, this.o.timeouts['upstream-connect'], this.o.openSocket, this.o.capture);
    this.#up = this.#watch(upstream);
    this.o.transcript?.('upstream>', replyToString(greeting));
    this.#greeting = greeting;
    return greeting;
  }

  /**
   * The client's HELO/EHLO. Without reuse it is relayed (and STARTTLS to the upstream follows
   * an EHLO that offers it), and replayed on a reconnect. With reuse the upstream is greeted
   * once, with the gateway's name, and every client gets that reply (HELO: its first line);
   * a transaction left open upstream is reset first (EHLO resets the transaction).
   */
  async hello(line: string, verb: string): Promise<Reply> {
    const reuse = this.o.reuse;
    if (!reuse) {
      let r = await this.forward(line, [2, 4, 5]);
      if (verb === 'EHLO' && r.code === 250) r = await this.startTls(line, r);
      if (r.code === 250) this.#hello = line;
      return r;
    }
    if (this.#txOpen) await this.#reset();
    if (!this.#ehlo) {
      const own = `EHLO ${reuse.hostname}`;
      let r = await this.forward(own, [2, 4, 5]);
      if (r.code === 250) r = await this.startTls(own, r);
      if (r.code !== 250) {
        this.taint();
        return r;
      }
      this.#ehlo = r;
      this.#hello = own;
    }
    return verb === 'EHLO' ? this.#ehlo : { code: 250, lines: [this.#ehlo.lines[0] ?? this.o.host] };
  }

  /** The client changed the upstream session (AUTH, XCLIENT, XFORWARD): it is never reused. */
  taint(): void {
    this.#reusable = false;
  }

  /**
   * MAIL, relayed ahead. With reuse, XFORWARD goes ahead of it (one write) when the upstream
   * offers it, so its logs name the real client; a refusal is logged and not repeated.
   */
  sendMail(line: string, apply: (r: Reply) => void): void {
    const reuse = this.o.reuse;
    if (reuse?.xforward && this.#xforward()) {
      const c = this.o.client?.() ?? { address: '', helo: '' };
      const attrs = [`ADDR=${xtext(c.address) || '[UNAVAILABLE]'}`, `HELO=${xtext(c.helo) || '[UNAVAILABLE]'}`, 'PROTO=ESMTP'];
      this.sendAhead(`XFORWARD ${attrs.join(' ')}`, 'XFORWARD', (r) => {
        if (r.code >= 300) {
          this.#xforwardRefused = true;
          this.o.log('warn', 'upstream refused XFORWARD; reused sessions show the gateway as the client', { session: this.o.sessionId, reply: replyToString(r) });
        }
      });
    }
    this.sendAhead(line, 'MAIL', (r) => {
      if (r.code >= 200 && r.code < 300) this.#txOpen = true;
      apply(r);
    });
  }

  #xforwardRefused = false;

  #xforward(): boolean {
    return !this.#xforwardRefused && (this.#ehlo?.lines.slice(1).some((l) => /^XFORWARD\b/i.test(l)) ?? false);
  }

  async #reset(): Promise<void> {
    const r = await this.forward('RSET', [2, 4, 5]);
    if (r.code !== 250) this.taint();
    this.#txOpen = false;
  }

  /**
   * Before relaying a command: a server that spoke unasked (421 before closing) or went away
   * ends the session: its reply (or `connection closed`) is returned, for the log; null when
   * the leg is ready. A connection abandoned by a reset is replaced here, greeted the way the
   * client greeted (throws when that fails).
   */
  async ready(): Promise<string | null> {
    if (this.#pending.length) return null; // replies are expected: none of them is unsolicited
    const up = this.#up;
    if (!up) {
      await this.#reconnect();
      return null;
    }
    const unsolicited = up.takeUnsolicited();
    if (unsolicited) return replyToString(unsolicited);
    return up.alive ? null : 'connection closed';
  }

  async #reconnect(): Promise<void> {
    const { upstream, greeting } = await Upstream.connect(this.o.host, this.o.port, this.o.timeouts['upstream-connect'], this.o.openSocket, this.o.capture);
    if (greeting.code !== 220) {
      upstream.reset();
      throw new UpstreamLostError(`reconnect greeting ${greeting.code}`);
    }
    this.#up = this.#watch(upstream);
    this.o.transcript?.('upstream>', replyToString(greeting));
    this.#greeting = greeting;
    this.#ehlo = null;
    this.#txOpen = false;
    if (!this.#hello) return;
    const r = await upstream.command(this.#hello, this.o.timeouts['upstream-reply']);
    if (r.code !== 250) {
      upstream.reset();
      this.#up = null;
      throw new UpstreamLostError(`reconnect ${this.#hello.split(' ')[0]} answered ${r.code}`);
    }
    // The new connection gets the same TLS protection as the first one.
    if (this.#hello.toUpperCase().startsWith('EHLO')) this.#ehlo = await this.startTls(this.#hello, r);
  }

  /**
   * Send a command and read its reply, which must be of a class the command allows; anything
   * else is a protocol error, never relayed (the connection is reset).
   */
  async forward(line: string, allowed: readonly ReplyClass[], label = line.split(' ')[0]!): Promise<Reply> {
    this.#send(line, label.startsWith('AUTH'));
    return this.#awaitReply(allowed, label);
  }

  /** Relay MAIL/RCPT now and settle its reply later, in order (RFC 2920 pipelining). */
  sendAhead(line: string, label: string, apply: (r: Reply) => void): void {
    if (this.#pending.length === 0) this.#up?.cork(); // one write for the whole batch
    this.#send(line);
    this.#pending.push({ label, apply });
  }

  /** Settle every reply owed, in order, before anything else is said to either side. */
  async settle(): Promise<void> {
    if (this.#pending.length === 0) return;
    this.#up?.uncork();
    while (this.#pending.length) {
      const p = this.#pending[0]!;
      const r = await this.#awaitReply([2, 4, 5], p.label);
      this.#pending.shift();
      p.apply(r);
    }
  }

  #send(line: string, secret = false): void {
    this.o.transcript?.('>upstream', secret ? maskAuth(line) : line);
    this.#live().write(Buffer.from(`${line}\r\n`, 'latin1'));
  }

  /** A connection of this session: under `debug-peers` its replies go to the transcript. */
  #watch(up: Upstream): Upstream {
    up.transcript = this.o.transcript ?? null;
    if (this.o.capture) up.capture = this.o.capture;
    return up;
  }

  #live(): Upstream {
    const up = this.#up;
    if (!up) throw new UpstreamLostError('no upstream connection');
    return up;
  }

  async #awaitReply(allowed: readonly ReplyClass[], label: string): Promise<Reply> {
    const up = this.#live();
    const r = await up.reply(this.o.timeouts['upstream-reply']).catch((err: unknown) => {
      this.taint(); // a timeout or a lost connection: nothing of this session is reused
      throw err;
    });
    if (!allowed.includes(Math.floor(r.code / 100) as ReplyClass)) {
      up.reset();
      this.#up = null;
      throw new UpstreamProtocolError(`unexpected ${r.code} to ${label}`);
    }
    return r;
  }

  /**
   * TLS towards the upstream (RFC 3207), decided on its first EHLO reply: when it offers
   * STARTTLS (or `upstream-tls: required`), upgrade, greet again, and use the new reply.
   * Passthrough listeners leave STARTTLS to the client.
   */
  async startTls(ehlo: string, first: Reply): Promise<Reply> {
    const up = this.#live();
    const { mode, options } = this.o.tls;
    if (mode === 'off' || up.tls || this.o.clientPassthrough) return first;
    const offered = first.lines.slice(1).some((l) => l.toUpperCase() === 'STARTTLS');
    if (!offered) {
      if (mode === 'required') throw new UpstreamProtocolError('upstream does not offer STARTTLS (upstream-tls: required)');
      return first;
    }
    const go = await up.command('STARTTLS', this.o.timeouts['upstream-reply']);
    if (go.code !== 220) {
      if (mode === 'required') throw new UpstreamProtocolError(`upstream refused STARTTLS with ${go.code}`);
      return first;
    }
    const { injected } = await up.startTls({ ...options, host: this.o.host }, this.o.timeouts['upstream-connect']);
    if (injected) this.o.log('warn', 'upstream sent plaintext after STARTTLS; discarded', { session: this.o.sessionId, replies: injected });
    return this.forward(ehlo, [2, 4, 5]);
  }

  /** Message bytes, with backpressure (a server that stops reading is reset); several leave in one write. */
  writeData(bytes: Buffer | readonly Buffer[]): Promise<void> {
    return this.#live().writeData(bytes, this.o.timeouts['upstream-reply']);
  }

  /** The upstream's reply to end of data: the only source of a 2xx for a message. */
  async finalReply(): Promise<Reply> {
    const up = this.#live();
    const final = await up.reply(this.o.timeouts['upstream-reply']);
    this.#txOpen = false; // after end of data the transaction is over, whatever the reply
    if (final.code >= 300 && final.code < 400) {
      up.reset();
      this.#up = null;
      throw new UpstreamProtocolError(`unexpected ${final.code} to end of data`);
    }
    return final;
  }

  /**
   * End the upstream transaction. `rset` keeps the session usable when the server has not
   * seen the message (an upstream that cannot RSET is reset instead); `reset` abandons one it
   * has (cut-through) and the next command reconnects; `quit` ends the connection politely
   * (RSET, then QUIT), in the background. After `reset` and `quit` the leg has no connection.
   */
  async abandon(how: AbandonHow): Promise<void> {
    const up = this.#up;
    if (!up) return;
    if (how === 'rset' && up.alive) {
      try {
        const r = await up.command('RSET', this.o.timeouts['upstream-reply']);
        if (r.code === 250) {
          this.#txOpen = false;
          return;
        }
      } catch {
        // An upstream that cannot RSET is replaced below, like a reset one.
      }
    }
    this.#up = null;
    if (how === 'quit' && up.alive) {
      void up.command('RSET', QUIT_WAIT_MS).then(
        () => up.quit(),
        () => up.close(),
      );
      return;
    }
    up.reset();
  }

  /** The client's QUIT: relayed, and its 221 returned (null when the server is gone or the session is parked). */
  async quit(): Promise<Reply | null> {
    if (await this.#park()) return null;
    const up = this.#up;
    this.#up = null;
    if (!up?.alive) return null;
    const r = await up.command('QUIT', QUIT_WAIT_MS).catch(() => null);
    up.close();
    return r;
  }

  /** At the session's end: parked for the next client, or QUIT and close (a graceful shutdown waits for this). */
  async close(): Promise<void> {
    if (await this.#park()) return;
    const up = this.#up;
    this.#up = null;
    if (up) await up.quit();
  }

  /**
   * Reuse: a clean session goes to the pool (RSET first if a transaction is open). Never one
   * after an error, a reset, a reply still owed, a refused RSET, or a client's AUTH, XCLIENT or
   * XFORWARD. True: parked (the leg no longer has it).
   */
  async #park(): Promise<boolean> {
    const reuse = this.o.reuse;
    const up = this.#up;
    if (!reuse || !up || !this.#reusable || !this.#greeting || !this.#ehlo || !this.#hello || this.#pending.length > 0 || !up.alive) return false;
    if (up.takeUnsolicited()) return false;
    try {
      if (this.#txOpen) await this.#reset();
    } catch {
      return false; // the RSET failed: the connection is reset by the failure's path
    }
    if (!this.#reusable || this.#up !== up) return false;
    this.#up = null;
    up.transcript = null; // the next session's, if it is debugged
    up.capture = null;
    reuse.pool.put({ upstream: up, greeting: this.#greeting, ehlo: this.#ehlo, helloLine: this.#hello });
    return true;
  }

  /** Hand the raw connection over (STARTTLS passthrough); the leg is done with it. */
  detach(): { socket: Socket; buffered: number } {
    const up = this.#live();
    this.#up = null;
    return up.detach();
  }
}

/** RFC 3461 xtext (XFORWARD values): `+`, `=`, spaces and anything outside ! to ~ as +XX. */
function xtext(s: string): string {
  return s.replace(/[^\x21-\x2a\x2c-\x3c\x3e-\x7e]/g, (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).slice(0, 255);
}
