/**
 * Password and token hashes for `admin.users`: Node's own scrypt (memory-hard, no dependency),
 * stored as `scrypt$N$r$p$SALT$HASH` (base64url), so the cost can be raised later and old
 * hashes still verify. Verification compares in constant time.
 */

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const N = 1 << 15;
const R = 8;
const P = 1;
const KEYLEN = 32;
/** scrypt needs 128·N·r bytes; Node's default maxmem (32 MiB) is just too small for N = 2^15. */
const MAXMEM = 64 * 1024 * 1024;

function derive(secret: string, salt: Buffer, n: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keylen, { N: n, r, p, maxmem: MAXMEM }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, N, R, P, KEYLEN);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** False for a wrong secret and for a hash that is not ours (never throws on bad input). */
export async function verifyPassword(secret: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return false;
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (n < 2 || n > 1 << 20 || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const want = Buffer.from(m[5]!, 'base64url');
  if (want.length < 16 || want.length > 64) return false;
  try {
    const got = await derive(secret, Buffer.from(m[4]!, 'base64url'), n, r, p, want.length);
    return timingSafeEqual(got, want);
  } catch {
    return false; // parameters scrypt refuses (memory): not a hash we can check
  }
}
