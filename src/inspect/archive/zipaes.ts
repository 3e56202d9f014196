/**
 * WinZip AES encryption (AE-1/AE-2, compression method 99 with extra field 0x9901), what 7-Zip
 * and WinZip write when asked for "AES-256": the password-in-the-body trick works with it just
 * as with traditional encryption. Passwords found in the message are tried:
 *
 *   key material = PBKDF2-HMAC-SHA1(password, salt, 1000 iterations)
 *                = encryption key ‖ authentication key ‖ 2-byte password verifier
 *   data         = salt ‖ verifier ‖ AES-CTR ciphertext ‖ 10-byte HMAC-SHA1 (of the ciphertext)
 *
 * The verifier rejects a wrong password after the key derivation (one in 65,536 wrong ones
 * passes it; the HMAC then tells). The counter is a 128-bit little-endian block number from 1
 * (Gladman's fileenc, which WinZip uses), unlike the big-endian counter of OpenSSL's CTR mode,
 * so the key stream is made natively with AES-ECB over the counter blocks and XORed in.
 * Key derivation runs on libuv's thread pool.
 */

import { createCipheriv, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

const ITERATIONS = 1000;
const AUTH_CODE = 10;
/** Salt and key length by strength (1: AES-128, 2: AES-192, 3: AES-256). */
const STRENGTHS: Readonly<Record<number, { salt: number; key: number }>> = { 1: { salt: 8, key: 16 }, 2: { salt: 12, key: 24 }, 3: { salt: 16, key: 32 } };

/** The AES extra field (0x9901): key strength and the real compression method. */
export interface AesField {
  readonly strength: number;
  readonly method: number;
}

export function readAesField(extra: Buffer): AesField | null {
  for (let q = 0; q + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(q);
    const len = extra.readUInt16LE(q + 2);
    if (id === 0x9901 && len >= 7 && q + 4 + 7 <= extra.length && extra.toString('latin1', q + 6, q + 8) === 'AE') {
      return { strength: extra[q + 8]!, method: extra.readUInt16LE(q + 9) };
    }
    q += 4 + len;
  }
  return null;
}

export type AesOutcome =
  | { readonly kind: 'opened'; readonly plain: Buffer; readonly password: string; readonly authentic: boolean }
  | { readonly kind: 'no-password' }
  | { readonly kind: 'malformed'; readonly why: string };

/** Try each password on one member's data; the first that passes the verifier decrypts it. */
export async function tryAesPasswords(data: Buffer, field: AesField, passwords: readonly string[]): Promise<AesOutcome> {
  const s = STRENGTHS[field.strength];
  if (!s) return { kind: 'malformed', why: `AES strength ${field.strength}` };
  if (data.length < s.salt + 2 + AUTH_CODE) return { kind: 'malformed', why: 'AES member shorter than its header' };
  const salt = data.subarray(0, s.salt);
  const verifier = data.subarray(s.salt, s.salt + 2);
  const cipher = data.subarray(s.salt + 2, data.length - AUTH_CODE);
  const code = data.subarray(data.length - AUTH_CODE);
  for (const password of passwords) {
    const material = await pbkdf2Async(Buffer.from(password, 'utf8'), salt, ITERATIONS, 2 * s.key + 2, 'sha1');
    if (!material.subarray(2 * s.key).equals(verifier)) continue;
    const encKey = material.subarray(0, s.key);
    const authKey = material.subarray(s.key, 2 * s.key);
    const mac = createHmac('sha1', authKey).update(cipher).digest().subarray(0, AUTH_CODE);
    return { kind: 'opened', plain: aesCtrLE(encKey, cipher), password, authentic: timingSafeEqual(mac, code) };
  }
  return { kind: 'no-password' };
}

/** AES-CTR with a little-endian block counter starting at 1 (encryption and decryption alike). */
export function aesCtrLE(key: Buffer, input: Buffer): Buffer {
  const blocks = Math.ceil(input.length / 16);
  const counters = Buffer.alloc(blocks * 16);
  for (let i = 0; i < blocks; i++) {
    const n = i + 1;
    counters.writeUInt32LE(n >>> 0, i * 16);
    counters.writeUInt32LE(Math.floor(n / 2 ** 32), i * 16 + 4);
  }
  const ecb = createCipheriv(`aes-${key.length * 8}-ecb`, key, null).setAutoPadding(false);
  const stream = Buffer.concat([ecb.update(counters), ecb.final()]);
  const out = Buffer.allocUnsafe(input.length);
  // XOR four bytes at a time where alignment allows (Buffer has no native XOR).
  const whole = input.length & ~3;
  if (input.byteOffset % 4 === 0 && out.byteOffset % 4 === 0 && stream.byteOffset % 4 === 0) {
    const a = new Int32Array(input.buffer, input.byteOffset, whole / 4);
    const k = new Int32Array(stream.buffer, stream.byteOffset, whole / 4);
    const o = new Int32Array(out.buffer, out.byteOffset, whole / 4);
    for (let i = 0; i < a.length; i++) o[i] = a[i]! ^ k[i]!;
  } else {
    for (let i = 0; i < whole; i++) out[i] = input[i]! ^ stream[i]!;
  }
  for (let i = whole; i < input.length; i++) out[i] = input[i]! ^ stream[i]!;
  return out;
}
