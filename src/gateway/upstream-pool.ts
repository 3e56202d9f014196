/**
 * Idle upstream sessions kept for the next client (`listeners[].upstream-reuse`), after
 * Postfix's SMTP connection cache: a session that ended cleanly (no error, no reset, no AUTH,
 * XCLIENT or XFORWARD from a client, the transaction reset) is parked here with the texts of
 * its greeting and its EHLO reply; the next client of the listener takes it and is greeted
 * from those texts, so the greeting, EHLO and TCP handshake of a new connection are saved.
 *
 * Bounded: at most `max` idle sessions (more are ended with QUIT), each for at most `idleMs`.
 * A parked session that speaks unasked (a 421 before the server closes) or has gone away is
 * never handed out.
 */

import type { Reply } from '../smtp/reply.ts';
import type { Upstream } from './upstream.ts';

export interface ParkedSession {
  readonly upstream: Upstream;
  /** The upstream's greeting, given to each client that takes the session. */
  readonly greeting: Reply;
  /** The upstream's reply to the gateway's EHLO (after STARTTLS, if any). */
  readonly ehlo: Reply;
  /** The EHLO line the session was greeted with (replayed after a reconnect). */
  readonly helloLine: string;
}

export class UpstreamPool {
  readonly #idle: Array<{ readonly session: ParkedSession; readonly timer: NodeJS.Timeout }> = [];
  constructor(
    readonly max: number,
    readonly idleMs: number,
  ) {}

  get size(): number {
    return this.#idle.length;
  }

  /** The most recently parked session that is still usable, or null. */
  take(): ParkedSession | null {
    for (;;) {
      const entry = this.#idle.pop();
      if (!entry) return null;
      clearTimeout(entry.timer);
      const up = entry.session.upstream;
      if (up.alive && up.takeUnsolicited() === null) return entry.session;
      up.reset(); // spoke unasked or went away while idle: never handed out
    }
  }

  /** Keep a clean session for the next client; beyond `max`, end it. */
  put(session: ParkedSession): void {
    if (this.#idle.length >= this.max) {
      void session.upstream.quit();
      return;
    }
    const timer = setTimeout(() => {
      const i = this.#idle.findIndex((e) => e.session === session);
      if (i !== -1) this.#idle.splice(i, 1);
      void session.upstream.quit();
    }, this.idleMs);
    timer.unref();
    this.#idle.push({ session, timer });
  }

  /** End every idle session (QUIT), for a stop. */
  async close(): Promise<void> {
    const all = this.#idle.splice(0);
    for (const e of all) clearTimeout(e.timer);
    await Promise.all(all.map((e) => e.session.upstream.quit()));
  }
}
