/**
 * S/MIME opaque signed data (RFC 8551 §3.5.2, `application/pkcs7-mime; smime-type=signed-data`,
 * `.p7m`): the signed MIME entity is inside the CMS structure (RFC 5652 SignedData →
 * encapContentInfo → eContent), readable without any key — mail clients show it, so the
 * inspector must walk it. This reads BER (definite and indefinite lengths, constructed OCTET
 * STRINGs) just far enough to take eContent out. Enveloped (encrypted) data is not readable
 * and is left to the policy.
 */

/** id-signedData (1.2.840.113549.1.7.2), DER-encoded OID value. */
const SIGNED_DATA = Buffer.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
const MAX_DEPTH = 32;

interface Tlv {
  readonly tag: number;
  readonly constructed: boolean;
  /** Start and end of the content (for indefinite lengths, up to the end-of-contents). */
  readonly start: number;
  readonly end: number;
  /** Where the next element starts. */
  readonly next: number;
}

/** One BER element at `at`, or null when it does not fit. */
function tlv(b: Buffer, at: number, depth = 0): Tlv | null {
  if (at + 2 > b.length || depth > MAX_DEPTH) return null;
  const id = b[at]!;
  if ((id & 0x1f) === 0x1f) return null; // high tag numbers: not in this structure
  let p = at + 1;
  const first = b[p++]!;
  const constructed = (id & 0x20) !== 0;
  if (first === 0x80) {
    // Indefinite: the children run to an end-of-contents (00 00).
    if (!constructed) return null;
    let q = p;
    for (;;) {
      if (q + 2 > b.length) return null;
      if (b[q] === 0 && b[q + 1] === 0) return { tag: id, constructed, start: p, end: q, next: q + 2 };
      const child = tlv(b, q, depth + 1);
      if (!child) return null;
      q = child.next;
    }
  }
  let len = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n > 4 || p + n > b.length) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
  }
  if (p + len > b.length) return null;
  return { tag: id, constructed, start: p, end: p + len, next: p + len };
}

function children(b: Buffer, t: Tlv, depth: number): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.start; p < t.end; ) {
    const c = tlv(b, p, depth);
    if (!c) break;
    out.push(c);
    p = c.next;
  }
  return out;
}

/** An OCTET STRING's bytes, primitive or constructed (the chunks concatenated). */
function octets(b: Buffer, t: Tlv, depth = 0): Buffer {
  if (!t.constructed) return b.subarray(t.start, t.end);
  return Buffer.concat(children(b, t, depth + 1).map((c) => octets(b, c, depth + 1)));
}

/** The content a SignedData carries (the signed MIME entity), or null when there is none to read. */
export function signedContent(der: Buffer): Buffer | null {
  const ci = tlv(der, 0);
  if (!ci || ci.tag !== 0x30) return null;
  const [oid, explicit] = children(der, ci, 1);
  if (!oid || oid.tag !== 0x06 || !der.subarray(oid.start, oid.end).equals(SIGNED_DATA) || !explicit || explicit.tag !== 0xa0) return null;
  const [signedData] = children(der, explicit, 2);
  if (!signedData || signedData.tag !== 0x30) return null;
  const encap = children(der, signedData, 3)[2]; // version, digestAlgorithms, encapContentInfo
  if (!encap || encap.tag !== 0x30) return null;
  const eContent = children(der, encap, 4)[1];
  if (!eContent || eContent.tag !== 0xa0) return null; // detached: nothing inside
  const [str] = children(der, eContent, 5);
  return str && (str.tag === 0x04 || str.tag === 0x24) ? octets(der, str, 5) : null;
}
