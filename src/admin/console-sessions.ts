/**
 * The console's logins: a random session id in an HttpOnly, SameSite=Strict cookie, and beside
 * it a CSRF token that the page holds in memory and sends as `X-CSRF-Token` on every state
 * change. A cross-site page can make the browser send the cookie (SameSite guards most of that
 * already) but cannot read the token, so a forged POST carries a cookie and no token and is
 * refused. Basic and bearer requests carry no cookie and need no token.
 *
 * Sessions live in the admin process's memory: a restart logs everyone out, which is the safe
 * direction. Idle ones end after admin.session-idle, every one after MAX_AGE_MS; at most MAX_SESSIONS are
 * kept (the oldest is dropped first), so a flood of logins cannot grow the process.
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from './auth.ts';

export const SESSION_COOKIE = 'smtpwall_session';
export const IDLE_MS = 30 * 60_000;
export const MAX_AGE_MS = 12 * 3600_000;
const MAX_SESSIONS = 1000;

interface ConsoleSession {
  readonly principal: Principal;
  readonly csrf: string;
  readonly created: number;
  seen: number;
}

export class ConsoleSessions {
  readonly #sessions = new Map<string, ConsoleSession>();

  /** `idleMs`: admin.session-idle. */
  constructor(private readonly idleMs = IDLE_MS) {}

  create(principal: Principal, now = Date.now()): { id: string; csrf: string } {
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    this.#sessions.set(id, { principal: { ...principal, via: 'cookie' }, csrf, created: now, seen: now });
    return { id, csrf };
  }

  /** The session a cookie names, if it is still alive (and then it is alive a while longer). */
  get(id: string | undefined, now = Date.now()): { principal: Principal; csrf: string } | null {
    if (!id) return null;
    const s = this.#sessions.get(id);
    if (!s) return null;
    if (now - s.seen > this.idleMs || now - s.created > MAX_AGE_MS) {
      this.#sessions.delete(id);
      return null;
    }
    s.seen = now;
    return s;
  }

  /** A state change by cookie: the token the page sent must be the session's own. */
  static csrfMatches(session: { csrf: string }, sent: string | undefined): boolean {
    if (!sent) return false;
    const a = Buffer.from(session.csrf);
    const b = Buffer.from(sent);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  delete(id: string | undefined): void {
    if (id) this.#sessions.delete(id);
  }

  /** After a reload: a login whose user is gone, or whose role changed, ends. */
  retain(users: ReadonlyArray<{ name: string; role: string }>): void {
    for (const [id, s] of this.#sessions) {
      if (!users.some((u) => u.name === s.principal.name && u.role === s.principal.role)) this.#sessions.delete(id);
    }
  }
}
