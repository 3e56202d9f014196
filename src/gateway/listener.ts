/**
 * A listener: accepts client connections on one address, enforces the connection limits
 * (total and per client address, answered with 421 and logged), and runs one Session per
 * accepted socket. It tracks its sessions so a shutdown can wait for them.
 *
 * Stress mode, against floods of idle connections (Postfix's stress-adaptive behaviour): at
 * `stress-occupancy` percent of `max-sessions` the listener is stressed — idle clients get
 * `stress-client-idle` instead of `client-idle`, sessions idle past it are closed (421) by a
 * sweep, one bad command ends a session, and a new connection to a full listener closes the
 * session idle longest to make room, instead of being refused. A session with a transaction
 * open is never cut for room. Every session holds one upstream connection (the greeting is
 * the upstream's own), so the same bound and the same eviction cover the upstream side.
 * Entering and leaving stress mode are logged, with how many idle sessions were closed.
 */

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { LogFn } from '../logs/process-log.ts';
import { formatReply } from '../smtp/reply.ts';
import { type LocalReply, REPLY } from './enforce.ts';
import { Session, type SessionContext, type SessionSnapshot } from './session.ts';
import { type ProxiedPeer, readProxyHeader } from './proxy-header.ts';

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxSessions: number;
  readonly maxSessionsPerClient: number;
  /** Implicit TLS (port 465 style): the server context, or null for plain TCP. */
  readonly implicitTls: { readonly cert: Buffer; readonly key: Buffer } | null;
  /** Where this connection's upstream is (fixed, or its original destination); throws if unknown. */
  readonly upstreamFor: (socket: Socket) => { host: string; port: number };
  /**
   * Per connection; `stressed` tells the session whether its listener is in stress mode now;
   * `peer` is the client a PROXY header named (null: the connection's own peer).
   */
  readonly session: (upstream: { host: string; port: number }, stressed: () => boolean, peer: ProxiedPeer | null) => SessionContext;
  /** `proxy-protocol`: which peers may send the header, and how long it may take. */
  readonly proxy?: { readonly from: (address: string) => boolean; readonly timeoutMs: number } | null;
  readonly hostname: string;
  readonly log: LogFn;
  /** TPROXY: the listening socket, made by the addon (else Node binds host:port itself). */
  readonly listenFd?: () => number;
  /** Whether a connection whose destination is the listener itself is refused (REDIRECT); TPROXY checks in upstreamFor. */
  readonly refuseSelf?: boolean;
  /** Percent of maxSessions at which stress mode starts (100: only when full). */
  readonly stressOccupancy?: number;
  /** Idle timeout of stress mode (the sweep closes sessions idle longer). */
  readonly stressIdleMs?: number;
}

/** Stress mode ends below this many points under its threshold (no flapping at the edge). */
const STRESS_HYSTERESIS = 10;

export class Listener {
  readonly #server: Server;
  readonly #sessions = new Set<Promise<void>>();
  readonly #running = new Set<Session>();
  readonly #sockets = new Set<Socket>();
  readonly #perClient = new Map<string, number>();
  /** Sessions closed to make room that have not ended yet: they no longer count. */
  readonly #evicting = new Set<Session>();
  #stressed = false;
  /** One function for every session (not a closure per connection). */
  readonly #isStressed = (): boolean => this.#stressed;
  #sweep: NodeJS.Timeout | null = null;
  #evictedInStress = 0;

  constructor(readonly name: string, private readonly opts: ListenerOptions) {
    // allowHalfOpen: a client may send its last commands and close its side at once (Exim
    // pipelines `BDAT … LAST`, the data and QUIT, then shuts down writing) and still wait for
    // every reply; Node's default would end our side with it and the replies could not go out.
    // The session ends its side itself when it is done.
    this.#server = opts.implicitTls
      ? createTlsServer({ ...opts.implicitTls, minVersion: 'TLSv1.2', allowHalfOpen: true }, (socket) => this.#accept(socket))
      : createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.#accept(socket));
    // A client that fails the TLS handshake never becomes a session; nothing to answer.
    this.#server.on('tlsClientError', () => {});
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      const done = (): void => {
        this.#server.off('error', reject);
        resolve();
      };
      // TPROXY: a socket made and bound with IP_TRANSPARENT (original-dst.ts); Node listens on it.
      if (this.opts.listenFd) this.#server.listen({ fd: this.opts.listenFd() }, done);
      else this.#server.listen(this.opts.port, this.opts.host, done);
    });
    const a = this.#server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Stop accepting; wait up to `graceMs` for sessions in flight, then cut the rest (421). */
  async close(graceMs: number): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep);
    // server.close() calls back only when every connection has ended: do not wait for that
    // here, it is what the grace period below is for.
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const all = Promise.all(this.#sessions);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      const bye = formatReply(REPLY.shuttingDown.code, REPLY.shuttingDown.text);
      for (const s of this.#sockets) {
        // Replies already queued stay in order; a client mid-DATA sees the connection close.
        s.end(bye);
        s.destroySoon();
      }
      await all;
    }
    await closed;
  }

  /** The sessions running now. */
  sessions(): SessionSnapshot[] {
    return [...this.#running].map((s) => s.snapshot());
  }

  #refuse(socket: Socket, why: string, reply: LocalReply): void {
    this.opts.log('warn', 'connection refused', { listener: this.name, client: socket.remoteAddress, why });
    // Nothing will read this socket: once the 421 is written, close it. (A socket that is only
    // half-closed and never read stays open until the process ends — a leak under a flood.)
    socket.end(formatReply(reply.code, reply.text), () => socket.destroy());
  }

  #accept(socket: Socket): void {
    socket.on('error', () => {}); // errors end the session through the reader; never crash
    let upstream: { host: string; port: number };
    try {
      upstream = this.opts.upstreamFor(socket);
    } catch (err) {
      this.#refuse(socket, `no upstream for this connection: ${(err as Error).message}`, REPLY.noDestination);
      return;
    }
    if (this.opts.refuseSelf !== false && upstream.host === socket.localAddress && upstream.port === socket.localPort) {
      // Transparent mode, but the connection was not redirected: relaying would loop to us.
      this.#refuse(socket, 'connection was not redirected (original destination is the gateway itself)', REPLY.noDestination);
      return;
    }
    if (this.opts.proxy) return this.#acceptProxied(socket, upstream, this.opts.proxy);
    this.#begin(socket, upstream, null);
  }

  /**
   * proxy-protocol: only a listed load balancer may connect, and its connection starts with the
   * header naming the client; then the session begins as if that client had connected.
   */
  #acceptProxied(socket: Socket, upstream: { host: string; port: number }, proxy: NonNullable<ListenerOptions['proxy']>): void {
    const from = socket.remoteAddress ?? '';
    if (!proxy.from(from)) {
      this.opts.log('warn', 'connection refused: not from a load balancer in proxy-from', { listener: this.name, client: from });
      socket.destroy();
      return;
    }
    // Counted as open from now (a stop closes it), though no session runs yet.
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    readProxyHeader(socket, proxy.timeoutMs).then(
      (peer) => {
        if (socket.destroyed) return;
        this.#begin(socket, upstream, peer);
        socket.resume();
      },
      (err: Error) => {
        this.opts.log('warn', 'connection closed: no valid PROXY protocol header', { listener: this.name, client: `${from}:${socket.remotePort}`, error: err.message });
        socket.destroy();
      },
    );
  }

  #begin(socket: Socket, upstream: { host: string; port: number }, peer: ProxiedPeer | null): void {
    const client = peer?.address ?? socket.remoteAddress ?? '';
    const count = this.#perClient.get(client) ?? 0;
    if (count >= this.opts.maxSessionsPerClient) {
      this.#refuse(socket, 'session limit from your address', REPLY.tooManyConnections(this.opts.hostname, 'from your address'));
      return;
    }
    if (this.#occupied() >= this.opts.maxSessions && !this.#makeRoom()) {
      this.#refuse(socket, 'session limit in total', REPLY.tooManyConnections(this.opts.hostname, 'in total'));
      return;
    }
    const ctx = this.opts.session(upstream, this.#isStressed, peer);
    this.#perClient.set(client, count + 1);
    this.#sockets.add(socket);
    // The client's connection counts against the limits while it is open; the session may
    // outlive it briefly (ending its upstream politely).
    socket.once('close', () => {
      this.#sockets.delete(socket);
      const n = (this.#perClient.get(client) ?? 1) - 1;
      if (n <= 0) this.#perClient.delete(client);
      else this.#perClient.set(client, n);
    });
    const session = new Session(socket, ctx);
    this.#running.add(session);
    const run = session.run().finally(() => {
      this.#sessions.delete(run);
      this.#running.delete(session);
      this.#evicting.delete(session);
      this.#checkStress();
    });
    this.#sessions.add(run);
    this.#checkStress();
  }

  /** Sessions that count against max-sessions. */
  #occupied(): number {
    return this.#sessions.size - this.#evicting.size;
  }

  /** Full: close the session idle longest (none in a transaction); false if there is none. */
  #makeRoom(): boolean {
    const now = Date.now();
    let longest: Session | null = null;
    let idle = -1;
    for (const s of this.#running) {
      const t = s.idleFor(now);
      if (t !== null && t > idle && !this.#evicting.has(s)) {
        idle = t;
        longest = s;
      }
    }
    if (!longest || !longest.evict()) return false;
    this.#evicting.add(longest);
    this.#evictedInStress++;
    return true;
  }

  #checkStress(): void {
    const threshold = this.opts.stressOccupancy ?? 100;
    const percent = (this.#occupied() * 100) / this.opts.maxSessions;
    if (!this.#stressed && percent >= threshold) {
      this.#stressed = true;
      this.#evictedInStress = 0;
      this.opts.log('warn', 'stress mode on: short idle timeouts, idle sessions closed to make room', { listener: this.name, sessions: this.#occupied(), 'max-sessions': this.opts.maxSessions });
      const idleMs = this.opts.stressIdleMs ?? 10_000;
      // Sessions that were already waiting with the long timeout: closed once idle past the short one.
      this.#sweep = setInterval(() => {
        const now = Date.now();
        for (const s of this.#running) {
          const t = s.idleFor(now);
          if (t !== null && t >= idleMs && !this.#evicting.has(s) && s.evict()) {
            this.#evicting.add(s);
            this.#evictedInStress++;
          }
        }
      }, Math.max(100, Math.min(1000, idleMs / 4)));
      this.#sweep.unref();
    } else if (this.#stressed && percent < threshold - STRESS_HYSTERESIS) {
      this.#stressed = false;
      if (this.#sweep) clearInterval(this.#sweep);
      this.#sweep = null;
      this.opts.log('info', 'stress mode off', { listener: this.name, sessions: this.#occupied(), 'idle sessions closed': this.#evictedInStress });
    }
  }
}
