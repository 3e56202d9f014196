/**
 * Traditional PKWARE encryption ("ZipCrypto", APPNOTE 6.1): attackers send an encrypted zip
 * and put the password in the message body, so that no gateway can look inside. Passwords
 * found in the message are tried: the 12-byte encryption header ends in a check byte (from the
 * CRC, or the modification time when a data descriptor is used), so a wrong password is
 * rejected after 12 bytes and the right one decrypts the member for inspection. AES-encrypted
 * members (method 99) are zipaes.ts's.
 */

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

class Keys {
  k0 = 0x12345678;
  k1 = 0x23456789;
  k2 = 0x34567890;

  constructor(password: Buffer) {
    for (const b of password) this.update(b);
  }

  update(b: number): void {
    this.k0 = CRC_TABLE[(this.k0 ^ b) & 0xff]! ^ (this.k0 >>> 8);
    this.k1 = (Math.imul((this.k1 + (this.k0 & 0xff)) | 0, 134775813) + 1) | 0;
    this.k2 = CRC_TABLE[(this.k2 ^ (this.k1 >>> 24)) & 0xff]! ^ (this.k2 >>> 8);
  }

  /** Decrypt one byte (and advance the keys with the plain byte). */
  decrypt(c: number): number {
    const t = (this.k2 | 2) & 0xffff;
    const p = c ^ ((Math.imul(t, t ^ 1) >>> 8) & 0xff);
    this.update(p);
    return p;
  }
}

/**
 * Try passwords on an encrypted member (`data` includes the 12-byte header). `check` is the
 * expected last header byte. Returns the decrypted member data and the password, or null.
 * The per-byte loop is bounded by the member's size and runs for the right password (and the
 * one wrong password in 256 whose check byte happens to match, which `verify` then refuses).
 */
export function tryPasswords(
  data: Buffer,
  check: number,
  passwords: readonly string[],
  /** Whether the decrypted data is the member (its CRC): one wrong password in 256 passes the check byte. */
  verify: (plain: Buffer) => boolean = () => true,
): { plain: Buffer; password: string } | null {
  if (data.length < 12) return null;
  for (const password of passwords) {
    const keys = new Keys(Buffer.from(password, 'utf8'));
    let last = 0;
    for (let i = 0; i < 12; i++) last = keys.decrypt(data[i]!);
    if (last !== check) continue;
    const plain = Buffer.allocUnsafe(data.length - 12);
    for (let i = 12; i < data.length; i++) plain[i - 12] = keys.decrypt(data[i]!);
    if (!verify(plain)) continue;
    return { plain, password };
  }
  return null;
}

/** Encrypt for tests and fixtures (the inverse, with a fixed header). */
export function zipCryptoEncrypt(plain: Buffer, password: string, check: number): Buffer {
  const keys = new Keys(Buffer.from(password, 'utf8'));
  const out = Buffer.alloc(plain.length + 12);
  const header = Buffer.alloc(12, 0x5a);
  header[11] = check;
  const src = Buffer.concat([header, plain]);
  for (let i = 0; i < src.length; i++) {
    const t = (keys.k2 | 2) & 0xffff;
    out[i] = src[i]! ^ ((Math.imul(t, t ^ 1) >>> 8) & 0xff);
    keys.update(src[i]!);
  }
  return out;
}

/**
 * Password candidates from the text of a message: words next to "password" (in several
 * languages) first, then every short token of the text, bounded.
 */
export function passwordCandidates(text: string, max = 200): string[] {
  const out: string[] = [];
  const add = (w: string): void => {
    // As written, and without the quotes or sentence punctuation around it ("secret!" may be
    // the password, or the end of a sentence).
    for (const t of [w, w.replace(/^["'«“(\[]+|["'»”)\].,;:!?]+$/g, '')]) {
      if (t.length >= 3 && t.length <= 64 && !out.includes(t)) out.push(t);
    }
  };
  const near = /(?:password|passwort|kennwort|mot de passe|contraseña|senha|wachtwoord|pass|pwd|code|pw)\s*(?:is|ist|est|:|=|-)?\s*[:=]?\s*(\S+)/gi;
  for (const m of text.matchAll(near)) add(m[1]!);
  for (const w of text.split(/\s+/)) {
    if (out.length >= max) break;
    add(w);
  }
  return out.slice(0, max);
}
