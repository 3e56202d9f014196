/**
 * Who is asking the admin plane: HTTP Basic with a configured user, or a bearer token (for
 * scripts) checked against a user's token-hash. scrypt costs ~50 ms by design, so a verified
 * credential is remembered by its SHA-256 (never the secret itself) for the process's life or
 * until the configuration changes; a wrong one is never cached, and failures are counted per
 * client address: past FAIL_LIMIT within FAIL_WINDOW_MS the address gets 429 until the window
 * ends, without a password check (so a guesser cannot burn the gateway's CPU either).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { verifyPassword } from './passwords.ts';

export interface AdminUser {
  readonly name: string;
  readonly 'password-hash'?: string | undefined;
  readonly 'token-hash'?: string | undefined;
  /** The password read from admin.users[].password-file (first-password.ts). */
  readonly password?: string | undefined;
  readonly role: 'admin' | 'viewer';
}

export interface Principal {
  readonly name: string;
  readonly role: 'admin' | 'viewer';
  readonly via: 'basic' | 'bearer' | 'cookie';
}

export const FAIL_LIMIT = 10;
export const FAIL_WINDOW_MS = 5 * 60_000;

export type AuthResult = { ok: true; principal: Principal } | { ok: false; status: 401 | 429; reason: string; user?: string; retryAfterS?: number };

export class Authenticator {
  readonly #verified = new Map<string, Principal>();
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(private users: readonly AdminUser[]) {}

  /** A reload's new user list: what was verified before is checked again. */
  setUsers(users: readonly AdminUser[]): void {
    this.users = users;
    this.#verified.clear();
  }

  async check(authorization: string | undefined, client: string, now = Date.now()): Promise<AuthResult> {
    const f = this.#failures.get(client);
    if (f && now - f.since < FAIL_WINDOW_MS && f.count >= FAIL_LIMIT) {
      return { ok: false, status: 429, reason: 'too many failed logins from this address', retryAfterS: Math.ceil((f.since + FAIL_WINDOW_MS - now) / 1000) };
    }
    if (!authorization) return { ok: false, status: 401, reason: 'credentials required' };
    const key = createHash('sha256').update(authorization).digest('base64');
    const known = this.#verified.get(key);
    if (known) return { ok: true, principal: known };
    const principal = await this.#verify(authorization);
    if ('name' in principal) {
      this.#verified.set(key, principal);
      this.#failures.delete(client);
      return { ok: true, principal };
    }
    const entry = f && now - f.since < FAIL_WINDOW_MS ? f : { count: 0, since: now };
    entry.count++;
    this.#failures.set(client, entry);
    return { ok: false, status: 401, reason: principal.reason, ...(principal.user !== undefined ? { user: principal.user } : {}) };
  }

  async #verify(authorization: string): Promise<Principal | { reason: string; user?: string }> {
    const [scheme, value = ''] = authorization.trim().split(/\s+/, 2);
    if (/^basic$/i.test(scheme ?? '')) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { reason: 'malformed Basic credentials' };
      const name = decoded.slice(0, colon);
      const user = this.users.find((u) => u.name === name);
      const hash = user?.['password-hash'];
      const given = decoded.slice(colon + 1);
      const ok = !user ? false : hash ? await verifyPassword(given, hash) : user.password !== undefined && samePassword(given, user.password);
      if (!user || !ok) return { reason: 'wrong user name or password', user: name };
      return { name: user.name, role: user.role, via: 'basic' };
    }
    if (/^bearer$/i.test(scheme ?? '')) {
      for (const user of this.users) {
        const hash = user['token-hash'];
        if (hash && (await verifyPassword(value, hash))) return { name: user.name, role: user.role, via: 'bearer' };
      }
      return { reason: 'unknown bearer token' };
    }
    return { reason: `unsupported authorization scheme "${(scheme ?? '').slice(0, 20)}"` };
  }
}

/** Equal in constant time (over digests, so lengths do not show either). */
function samePassword(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
