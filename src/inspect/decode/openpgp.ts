/**
 * OpenPGP messages that need no key (RFC 4880): a literal data packet (`gpg --store`), also
 * inside a compressed data packet (ZIP, ZLIB; `gpg --store -z 6`) or after a one-pass
 * signature (`gpg --sign`: signed, not encrypted). Armored (`-----BEGIN PGP MESSAGE-----`) or
 * binary. The literal data is a file a user's mail client shows or saves: it is taken out,
 * named by the packet's file name. Encrypted messages (tags 1, 3, 18) are not readable and
 * are left alone. A BZip2-compressed packet (gpg --compress-algo bzip2) is not decoded here
 * (Node has no bzip2): its stream is handed on as an object of its own (`bzip2: true`), which
 * 7-Zip decompresses like any bzip2 file; the packets that come out are recognised as binary
 * OpenPGP by their first bytes (looksLikePackets) and read again.
 */

import { inflateRawSync, inflateSync } from 'node:zlib';

const MAX_OUTPUT = 64 * 1024 * 1024;
const MAX_DEPTH = 8;

export interface LiteralData {
  readonly name: string | null;
  readonly data: Buffer;
  /** The bytes are a BZip2 stream of packets, not the file (see above). */
  readonly bzip2?: boolean;
}

/**
 * Whether bytes start like a binary OpenPGP message that needs no key: a literal data packet
 * (with a known data format), a compressed data packet (a known algorithm) or a one-pass
 * signature (version 3). Used for objects with no .gpg name or PGP type (what 7-Zip gives
 * back from a BZip2-compressed packet, a renamed attachment).
 */
export function looksLikePackets(head: Buffer): boolean {
  const h = header(head, 0);
  if (!h || h.body.length === 0) return false;
  if (h.tag === 11) return h.body.length >= 6 && 'btul1m'.includes(String.fromCharCode(h.body[0]!));
  if (h.tag === 8) return h.body[0]! <= 3;
  if (h.tag === 4) return h.body[0] === 3;
  return false;
}

/** The binary message inside an ASCII armor, or the bytes themselves when they are binary packets. */
export function dearmor(b: Buffer): Buffer | null {
  const text = b.toString('latin1');
  const begin = text.indexOf('-----BEGIN PGP MESSAGE-----');
  if (begin === -1) return b.length > 0 && (b[0]! & 0x80) !== 0 ? b : null;
  const end = text.indexOf('-----END PGP MESSAGE-----', begin);
  const body = text.slice(begin, end === -1 ? undefined : end).split(/\r?\n/).slice(1);
  // Armor headers end at the first empty line; the line starting with '=' is the CRC.
  const blank = body.findIndex((l) => l.trim() === '');
  const lines = (blank === -1 ? body : body.slice(blank + 1)).filter((l) => !l.startsWith('='));
  return Buffer.from(lines.join(''), 'base64');
}

/** Literal data packets of a binary OpenPGP message (through compressed packets). */
export function literalData(b: Buffer, depth = 0): LiteralData[] {
  const out: LiteralData[] = [];
  for (let p = 0; p < b.length && depth <= MAX_DEPTH; ) {
    const h = header(b, p);
    if (!h) break;
    const body = h.body;
    if (h.tag === 11 && body.length >= 6) {
      const nameLen = body[1]!;
      const name = body.toString('latin1', 2, 2 + nameLen) || null;
      out.push({ name, data: body.subarray(2 + nameLen + 4) });
    } else if (h.tag === 8 && body.length >= 1) {
      const algo = body[0]!;
      try {
        if (algo === 3) out.push({ name: null, data: body.subarray(1), bzip2: true });
        const inflated = algo === 1 ? inflateRawSync(body.subarray(1), { maxOutputLength: MAX_OUTPUT }) : algo === 2 ? inflateSync(body.subarray(1), { maxOutputLength: MAX_OUTPUT }) : null;
        if (inflated) out.push(...literalData(inflated, depth + 1));
      } catch {
        // damaged or past the cap: what could be read is all there is
      }
    }
    p = h.next;
  }
  return out;
}

/** One packet: its tag, its body (partial lengths joined), where the next starts. */
function header(b: Buffer, p: number): { tag: number; body: Buffer; next: number } | null {
  const first = b[p];
  if (first === undefined || (first & 0x80) === 0) return null;
  if ((first & 0x40) === 0) {
    // Old format: tag in bits 5-2, length type in bits 1-0.
    const tag = (first >> 2) & 0x0f;
    const lt = first & 3;
    if (lt === 3) return { tag, body: b.subarray(p + 1), next: b.length }; // to the end
    const n = [1, 2, 4][lt]!;
    if (p + 1 + n > b.length) return null;
    const len = n === 1 ? b[p + 1]! : n === 2 ? b.readUInt16BE(p + 1) : b.readUInt32BE(p + 1);
    const start = p + 1 + n;
    return { tag, body: b.subarray(start, Math.min(b.length, start + len)), next: start + len };
  }
  // New format: lengths of one, two or five octets, or partial body lengths.
  const tag = first & 0x3f;
  const parts: Buffer[] = [];
  let q = p + 1;
  for (;;) {
    const l0 = b[q];
    if (l0 === undefined) return null;
    let len: number;
    let partial = false;
    if (l0 < 192) {
      len = l0;
      q += 1;
    } else if (l0 < 224) {
      if (q + 1 >= b.length) return null;
      len = ((l0 - 192) << 8) + b[q + 1]! + 192;
      q += 2;
    } else if (l0 === 255) {
      if (q + 5 > b.length) return null;
      len = b.readUInt32BE(q + 1);
      q += 5;
    } else {
      len = 1 << (l0 & 0x1f);
      partial = true;
      q += 1;
    }
    parts.push(b.subarray(q, Math.min(b.length, q + len)));
    q += len;
    if (!partial || q >= b.length) break;
  }
  return { tag, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts), next: q };
}
