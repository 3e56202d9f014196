/**
 * The mutation fuzzer of the MIME differential suite: clean multipart messages with one
 * attachment, rewritten with the header tricks that make real parsers disagree — duplicate
 * fields and parameters, RFC 2231 forms, quotes, comments, folding, case, missing `;`,
 * implicit types, transfer encodings by every spelling — recombined at random from a seed.
 * Each message's attachment is random bytes, so a file is known by its hash alone.
 */

import { uuencode } from '../../helpers/messages.ts';

/** A small seeded PRNG (mulberry32): the same seed gives the same messages everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const b64 = (data: Buffer): string => data.toString('base64').replace(/(.{76})/g, '$1\r\n');

/** yEnc (single part): each byte + 42, critical bytes escaped with `=` and +64. */
export function yencode(data: Buffer, name: string): string {
  let line = '';
  const lines: string[] = [];
  for (const byte of data) {
    const v = (byte + 42) & 255;
    if (v === 0 || v === 10 || v === 13 || v === 61 || ((v === 9 || v === 32 || v === 46) && line.length === 0)) line += '=' + String.fromCharCode((v + 64) & 255);
    else line += String.fromCharCode(v);
    if (line.length >= 128) {
      lines.push(line);
      line = '';
    }
  }
  if (line) lines.push(line);
  return `=ybegin line=128 size=${data.length} name=${name}\r\n${lines.join('\r\n')}\r\n=yend size=${data.length}\r\n`;
}

/** How the attachment's bytes go on the wire, and the CTE spelling that says so. */
interface Encoding {
  readonly cte: string | null;
  readonly body: (data: Buffer, name: string) => string;
}

const ENCODINGS: readonly Encoding[] = [
  { cte: 'base64', body: b64 },
  { cte: 'BASE64', body: b64 },
  { cte: ' Base64 (sent by a robot)', body: b64 },
  { cte: 'x-uuencode', body: (d, n) => uuencode(d, n) },
  { cte: 'uuencode', body: (d, n) => uuencode(d, n) },
  { cte: 'x-uue', body: (d, n) => uuencode(d, n) },
  { cte: 'uue', body: (d, n) => uuencode(d, n) },
  { cte: 'base-64', body: b64 },
  { cte: 'b64', body: b64 },
  { cte: 'quoted-printable', body: qp },
  { cte: 'quoted-printible', body: qp },
];

function qp(data: Buffer): string {
  let out = '';
  let col = 0;
  for (const byte of data) {
    const piece = byte >= 33 && byte <= 126 && byte !== 61 ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    if (col + piece.length > 75) {
      out += '=\r\n';
      col = 0;
    }
    out += piece;
    col += piece.length;
  }
  return out;
}

/** Ways to write the boundary parameter of a multipart, with a decoy where it fits. */
const BOUNDARY_FORMS: readonly ((real: string, decoy: string) => string)[] = [
  (r) => `; boundary="${r}"`,
  (r) => `; boundary=${r}`,
  (r) => `; BOUNDARY="${r}"`,
  (r, d) => `; boundary="${d}"; boundary="${r}"`,
  (r, d) => `; boundary="${r}"; boundary="${d}"`,
  (r, d) => `; boundary="${d}"; boundary*=''${r}`,
  (r, d) => `; boundary*=us-ascii'en'${r}; boundary="${d}"`,
  (r, d) => `; boundary="${d}"; boundary*0="${r.slice(0, 3)}"; boundary*1="${r.slice(3)}"`,
  (r) => `; boundary*0*=''${r.slice(0, 4)}; boundary*1=${r.slice(4)}`,
  (r) => `; boundary="${r}`,
  (r) => ` boundary="${r}"`,
  (r) => `; (a comment) boundary=(another)"${r}"`,
  (r) => `; boundary="${r}" (trailing comment)`,
  (r) => `; boundary = "${r}"`,
  (r) => `;\r\n\tboundary=\r\n "${r}"`,
  (r) => `; charset=us-ascii; boundary="${r}";`,
  (r, d) => `; boundary="${d}" boundary="${r}"`,
];

/** Ways to write the attachment part's Content-Type. */
const PART_TYPES: readonly ((name: string) => string[])[] = [
  (n) => [`Content-Type: application/octet-stream; name="${n}"`],
  (n) => [`Content-Type: text/plain`, `Content-Type: application/octet-stream; name="${n}"`],
  (n) => [`Content-Type: application/octet-stream; name="${n}"`, `Content-Type: text/plain`],
  (n) => [`content-type: APPLICATION/OCTET-STREAM; NAME="${n}"`],
  () => [],
  (n) => [`Content-Type: application/octet-stream; name="decoy.txt"; name="${n}"`],
  (n) => [`Content-Type: application/octet-stream; name*=utf-8''${encodeURIComponent(n)}; name="decoy.txt"`],
  (n) => [`Content-Type: application/octet-stream;\r\n name="${n}"`],
  (n) => [`Content-Type: application/octet-stream (binary); name="${n}`],
];

const DISPOSITIONS: readonly ((name: string) => string[])[] = [
  (n) => [`Content-Disposition: attachment; filename="${n}"`],
  () => [],
  (n) => [`Content-Disposition: inline`, `Content-Disposition: attachment; filename="${n}"`],
  (n) => [`Content-Disposition: attachment; filename="decoy.txt"; filename="${n}"`],
  (n) => [`Content-Disposition: attachment; filename*0="${n.slice(0, 2)}"; filename*1="${n.slice(2)}"`],
];

export interface MutatedMessage {
  readonly message: Buffer;
  /** The attachment's bytes (random): a reference parser that extracts them found the payload. */
  readonly payload: Buffer;
  /** What was done, for the failure message and the kept fixture. */
  readonly recipe: string;
  /** The attachment is quoted-printable: munpack 1.6 decodes that wrongly (see the suite). */
  readonly quotedPrintable: boolean;
}

/** Message number `n` of the run with `seed`. */
export function mutatedMessage(seed: number, n: number): MutatedMessage {
  const r = rng(seed * 1_000_003 + n);
  const payload = Buffer.alloc(64 + Math.floor(r() * 400));
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(r() * 256);
  const name = pick(r, ['payload.bin', 'invoice.exe', 'report.pdf.js', 'a.zip']);
  const real = `b${Math.floor(r() * 1e9).toString(36)}real`;
  const decoy = `d${Math.floor(r() * 1e9).toString(36)}decoy`;
  const recipe: string[] = [];

  const bIdx = Math.floor(r() * BOUNDARY_FORMS.length);
  const tIdx = Math.floor(r() * PART_TYPES.length);
  const dIdx = Math.floor(r() * DISPOSITIONS.length);
  const enc = r() < 0.5 ? ENCODINGS[0]! : pick(r, ENCODINGS);
  recipe.push(`boundary#${bIdx}`, `type#${tIdx}`, `disposition#${dIdx}`, `cte=${enc.cte}`);

  const partHeaders = [...PART_TYPES[tIdx]!(name), ...DISPOSITIONS[dIdx]!(name)];
  const cteHeaders = enc.cte === null ? [] : [`Content-Transfer-Encoding: ${enc.cte}`];
  if (r() < 0.15) {
    // Two encodings: a decoy identity encoding before or after the real one.
    cteHeaders[r() < 0.5 ? 'unshift' : 'push']('Content-Transfer-Encoding: 7bit');
    recipe.push('duplicate-cte');
  }
  const shuffled = r() < 0.3;
  if (shuffled) recipe.push('cte-first');
  const headers = shuffled ? [...cteHeaders, ...partHeaders] : [...partHeaders, ...cteHeaders];
  let part = `${headers.join('\r\n')}\r\n\r\n${enc.body(payload, name)}`;

  // Sometimes the attachment is wrapped: in a message, a digest, a message/* of another subtype.
  const wrap = r();
  let innerType = 'multipart/mixed';
  if (wrap < 0.08) {
    part = `Content-Type: message/rfc822\r\n\r\nFrom: x@example.org\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n${part}\r\n--inner--\r\n`;
    recipe.push('wrapped:message/rfc822');
  } else if (wrap < 0.14) {
    part = `Content-Type: application/octet-stream; name="fwd.eml"\r\n\r\nFrom: x@example.org\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n${part}\r\n--inner--\r\n`;
    recipe.push('wrapped:octet-stream-eml');
  } else if (wrap < 0.2) {
    part = `Content-Type: message/x-forwarded\r\n\r\nFrom: x@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n${part}\r\n--inner--\r\n`;
    recipe.push('wrapped:message/x-forwarded');
  } else if (wrap < 0.26) {
    innerType = 'multipart/digest';
    part = `\r\nFrom: x@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n${part}\r\n--inner--\r\n`;
    recipe.push('digest');
  }

  const topType = pick(r, innerType === 'multipart/digest' ? [innerType] : ['multipart/mixed', 'multipart/mixed', 'Multipart/Mixed', 'multipart/related', 'multipart/x-unknown']);
  const mimeVersion = r() < 0.9 ? 'MIME-Version: 1.0\r\n' : '';
  if (!mimeVersion) recipe.push('no-mime-version');
  let top = `From: a@example.org\r\nTo: b@example.com\r\nSubject: fuzz ${n}\r\n${mimeVersion}`;
  const topCt = `Content-Type: ${topType}${BOUNDARY_FORMS[bIdx]!(real, decoy)}`;
  if (r() < 0.1) {
    top += `Content-Type: text/plain\r\n${topCt}\r\n`;
    recipe.push('top-duplicate-ct-decoy-first');
  } else if (r() < 0.1) {
    top += `${topCt}\r\nContent-Type: text/plain\r\n`;
    recipe.push('top-duplicate-ct-decoy-last');
  } else top += `${topCt}\r\n`;
  const textPart = innerType === 'multipart/digest'
    ? `Content-Type: text/plain\r\n\r\nDigest of the week.`
    : 'Content-Type: text/plain\r\n\r\nSee the attachment.';
  const decoyPart = bIdx >= 3 && r() < 0.5 ? `--${decoy}\r\nContent-Type: text/plain\r\n\r\nnothing here\r\n--${decoy}--\r\n` : '';
  const body = `\r\npreamble\r\n${decoyPart}--${real}\r\n${textPart}\r\n--${real}\r\n${part}\r\n--${real}--\r\n`;
  return { message: Buffer.from(top + body, 'latin1'), payload, recipe: recipe.join(' '), quotedPrintable: enc.body === qp };
}
