/**
 * Many body signatures, one pass over each buffer. Every signature part is anchored on 4 of its
 * fixed bytes (chosen so that as few parts as possible share an anchor); a rolling 32-bit
 * window over the stream is tested against a 2^20-bit filter of all anchors (one multiply,
 * one load per byte), and only a filter hit looks the window up exactly. With at most
 * FEW_ANCHORS anchors (the built-in EICAR signature alone), native Buffer.indexOf per anchor
 * replaces the loop.
 * A hit becomes a candidate, verified by the part's RegExp on a small window of bytes around
 * it once the bytes after it have arrived. Cost per byte is independent of the number of
 * signatures; verification cost is per candidate and bounded by the part's span.
 *
 * Why a JavaScript loop over bytes: Node has no native multi-pattern search, and one
 * Buffer.indexOf per signature costs (signatures × bytes). This loop is the one per-byte loop
 * on the hot path, kept to integer operations on a typed array (measured by `npm run bench`).
 *
 * Streaming: state carries over chunks (the rolling window, a bounded history of bytes for
 * verification, pending candidates), so a signature split across any chunking is found, and
 * memory per scan is bounded by the longest part span (MAX_PART_SPAN) plus one chunk.
 */

import { type AnchorOption, type BodySignature, MAX_PART_SPAN, type NdbPart } from './ndb.ts';

/** A signature part as the matcher looks for it: through the anchor chosen for it. */
interface AnchorRef extends AnchorOption {
  readonly sig: number;
  readonly part: number;
}

/** The filter is a bitset of 2^FILTER_BITS bits (128 KiB: stays in cache, few false hits). */
const FILTER_BITS = 20;
/** Up to this many distinct anchors (the built-in EICAR alone is one), search natively. */
const FEW_ANCHORS = 4;
/**
 * How often a byte turns up in mail: letters, digits, white space and base64/QP punctuation
 * all the time, NUL and 0xFF in binary padding, other punctuation and control bytes rarely.
 */
function byteCommonness(b: number): number {
  if ((b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7a) || b === 0x20 || b === 0x0d || b === 0x0a || b === 0x09) return 8;
  if (b === 0x2b || b === 0x2f || b === 0x3d || b === 0x2d || b === 0x2e || b === 0x2c || b === 0x00 || b === 0xff) return 4;
  return 1;
}

/**
 * Lower is rarer. The first byte counts most: Buffer.indexOf with a short needle scans for
 * its first byte (memchr) and compares the rest at each hit, so an anchor starting with a
 * letter costs a comparison every few bytes of text (EICAR's own first bytes, "X5O!", run
 * at a tenth of the speed of "}$EI" over a body of X's).
 */
export function anchorCommonness(anchor: number): number {
  return 4 * byteCommonness(anchor >>> 24) + byteCommonness((anchor >>> 16) & 0xff) + byteCommonness((anchor >>> 8) & 0xff) + byteCommonness(anchor & 0xff);
}

/** Filter slot of an anchor; the scan loop inlines the same expression. */
const mix = (h: number): number => Math.imul(h, 0x9e3779b1) >>> (32 - FILTER_BITS);

export class BodyMatcher {
  readonly filter = new Int32Array((1 << FILTER_BITS) >>> 5);
  readonly anchors = new Map<number, AnchorRef[]>();
  /** Bytes of history any verification may need before a candidate's anchor. */
  readonly history: number;
  /** With this few anchors, one native Buffer.indexOf per anchor beats the byte loop. */
  readonly fewAnchors: ReadonlyArray<{ key: number; bytes: Buffer }> | null;

  constructor(readonly signatures: readonly BodySignature[]) {
    let history = 0;
    signatures.forEach((s, sig) =>
      s.parts.forEach((p, part) => {
        // The anchor fewest parts use so far: signatures sharing a prefix (a family's name,
        // a common header) then still land on different anchors, keeping candidates few.
        // Among those, the one least likely in mail (see anchorCommonness).
        let best = p.anchors[0]!;
        const users = (o: AnchorOption): number => this.anchors.get(o.anchor | 0)?.length ?? 0;
        for (const o of p.anchors) {
          const d = users(o) - users(best);
          if (d < 0 || (d === 0 && anchorCommonness(o.anchor) < anchorCommonness(best.anchor))) best = o;
        }
        const key = best.anchor | 0; // the scan loop's window is a signed 32-bit integer
        const slot = mix(key);
        this.filter[slot >>> 5] = this.filter[slot >>> 5]! | (1 << (slot & 31));
        const ref: AnchorRef = { ...best, sig, part };
        const list = this.anchors.get(key);
        if (list) list.push(ref);
        else this.anchors.set(key, [ref]);
        history = Math.max(history, best.preMax + 4);
      }),
    );
    this.history = history;
    this.fewAnchors =
      this.anchors.size <= FEW_ANCHORS
        ? [...this.anchors.keys()].map((key) => {
            const bytes = Buffer.alloc(4);
            bytes.writeInt32BE(key);
            return { key, bytes };
          })
        : null;
  }

  open(): BodyMatch {
    return new BodyMatch(this);
  }
}

interface Candidate {
  readonly ref: AnchorRef;
  /** Absolute offset of the anchor's first byte. */
  readonly at: number;
}

export class BodyMatch {
  #h = 0;
  /** Bytes kept from earlier chunks: absolute offsets [#histStart, #pos). */
  #hist: Buffer = Buffer.alloc(0);
  #histStart = 0;
  #pos = 0;
  #chunk: Buffer = Buffer.alloc(0);
  #pending: Candidate[] = [];
  /** EOF-anchored candidates wait for the end; bounded to those that can still qualify. */
  #atEnd: Candidate[] = [];
  /** Per signature: the next part to match and the least start offset for it. */
  readonly #next: Int32Array;
  readonly #minStart: Float64Array;
  readonly hits = new Set<number>();

  constructor(private readonly m: BodyMatcher) {
    this.#next = new Int32Array(m.signatures.length);
    this.#minStart = new Float64Array(m.signatures.length);
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunk = chunk;
    if (this.m.fewAnchors) this.#searchNative(chunk, this.m.fewAnchors);
    else this.#searchLoop(chunk);
    this.#pos += chunk.length;
    this.#verifyReady(false);
    this.#keepHistory();
  }

  /** Each anchor by Buffer.indexOf over the chunk and the 3 bytes before it; hits in stream order. */
  #searchNative(chunk: Buffer, anchors: ReadonlyArray<{ key: number; bytes: Buffer }>): void {
    const h = this.#h;
    const seam = Buffer.from([(h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff]);
    const buf = Buffer.concat([seam, chunk.subarray(0, 3)]);
    const hits: { at: number; key: number }[] = [];
    const base = this.#pos;
    for (const a of anchors) {
      // Across the seam: anchors ending in the chunk's first 3 bytes.
      for (let i = buf.indexOf(a.bytes); i !== -1; i = buf.indexOf(a.bytes, i + 1)) hits.push({ at: base - 3 + i, key: a.key });
      for (let i = chunk.indexOf(a.bytes); i !== -1; i = chunk.indexOf(a.bytes, i + 1)) hits.push({ at: base + i, key: a.key });
    }
    if (hits.length > 1) hits.sort((x, y) => x.at - y.at);
    for (const x of hits) this.#hit(x.key, x.at);
    const n = chunk.length;
    this.#h = n >= 4 ? chunk.readInt32BE(n - 4) : (h << (8 * n)) | (n ? chunk.readUIntBE(0, n) : 0);
  }

  #searchLoop(chunk: Buffer): void {
    const filter = this.m.filter;
    let h = this.#h;
    const base = this.#pos;
    // The window holds zeros before the stream's start; #hit drops anchors that would start there.
    // h stays a signed 32-bit integer (no `>>> 0`): V8 keeps it unboxed in the loop.
    for (let i = 0; i < chunk.length; i++) {
      h = (h << 8) | chunk[i]!;
      const slot = Math.imul(h, 0x9e3779b1) >>> (32 - FILTER_BITS);
      if ((filter[slot >>> 5]! & (1 << (slot & 31))) !== 0) this.#hit(h, base + i - 3);
    }
    this.#h = h;
  }

  /** All candidates verified with what has arrived; hits holds the signatures found. */
  end(): Set<number> {
    this.#verifyReady(true);
    const size = this.#pos;
    for (const c of this.#atEnd) this.#verify(c, size);
    this.#atEnd = [];
    return this.hits;
  }

  #hit(h: number, at: number): void {
    if (at < 0) return;
    for (const ref of this.m.anchors.get(h) ?? []) {
      if (this.hits.has(ref.sig)) continue;
      const s = this.m.signatures[ref.sig]!;
      if (ref.part === 0 && s.offset.kind === 'abs' && (at < s.offset.at + ref.preMin || at > s.offset.at + s.offset.shift + ref.preMax)) continue;
      const c = { ref, at };
      if (s.offset.kind === 'eof') this.#atEnd.push(c);
      else this.#pending.push(c);
    }
  }

  /** Verify pending candidates, in stream order, whose bytes have all arrived. */
  #verifyReady(final: boolean): void {
    let k = 0;
    for (; k < this.#pending.length; k++) {
      const c = this.#pending[k]!;
      if (!final && c.at + 4 + c.ref.postMax > this.#pos) break;
      this.#verify(c, null);
    }
    if (k > 0) this.#pending = this.#pending.slice(k);
  }

  #verify(c: Candidate, size: number | null): void {
    const { sig, part } = c.ref;
    if (this.hits.has(sig) || this.#next[sig] !== part) return;
    const s = this.m.signatures[sig]!;
    const p: NdbPart = s.parts[part]!;
    const from = Math.max(c.at - c.ref.preMax, this.#minStart[sig]!, this.#histStart);
    const to = Math.min(c.at + 4 + c.ref.postMax, this.#pos);
    if (from > c.at) return;
    const text = this.#bytes(from, to).toString('latin1');
    p.regex.lastIndex = 0;
    for (let m = p.regex.exec(text); m !== null; m = p.regex.exec(text)) {
      const start = from + m.index;
      const end = start + m[0].length;
      p.regex.lastIndex = m.index + 1;
      if (start > c.at || end < c.at + 4) continue; // a match elsewhere: its own candidate will see it
      if (part === 0 && !offsetOk(s, start, size)) continue;
      if (part + 1 === s.parts.length) {
        this.hits.add(sig);
      } else {
        this.#next[sig] = part + 1;
        this.#minStart[sig] = end + s.parts[part + 1]!.gapMin;
      }
      return;
    }
  }

  /** Bytes at absolute offsets [from, to): from history and the current chunk. */
  #bytes(from: number, to: number): Buffer {
    const chunkStart = this.#pos - this.#chunk.length;
    if (from >= chunkStart) return this.#chunk.subarray(from - chunkStart, to - chunkStart);
    const old = this.#hist.subarray(from - this.#histStart);
    return to <= chunkStart ? old.subarray(0, to - from) : Buffer.concat([old, this.#chunk.subarray(0, to - chunkStart)]);
  }

  /** Keep the bytes that pending candidates and the next chunk's candidates may need. */
  #keepHistory(): void {
    let keepFrom = this.#pos - this.m.history;
    for (const c of [this.#pending[0], this.#atEnd[0]]) {
      if (c) keepFrom = Math.min(keepFrom, c.at - c.ref.preMax);
    }
    // EOF candidates that can no longer be close enough to the end are dropped, bounding memory.
    if (this.#atEnd.length > 0) {
      this.#atEnd = this.#atEnd.filter((c) => {
        const o = this.m.signatures[c.ref.sig]!.offset;
        return o.kind !== 'eof' || this.#pos - c.at <= o.back + MAX_PART_SPAN;
      });
    }
    keepFrom = Math.max(keepFrom, this.#histStart, this.#pos - 2 * MAX_PART_SPAN - this.m.history);
    if (keepFrom >= this.#pos) {
      this.#hist = Buffer.alloc(0);
      this.#histStart = this.#pos;
      return;
    }
    const kept = Buffer.from(this.#bytes(keepFrom, this.#pos));
    this.#hist = kept;
    this.#histStart = keepFrom;
    this.#chunk = Buffer.alloc(0);
  }
}

function offsetOk(s: BodySignature, start: number, size: number | null): boolean {
  const o = s.offset;
  if (o.kind === 'any') return true;
  if (o.kind === 'abs') return start >= o.at && start <= o.at + o.shift;
  if (size === null) return false;
  const at = size - o.back;
  return start >= at && start <= at + o.shift;
}
