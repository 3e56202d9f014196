/**
 * ClamAV body signatures (.ndb, "extended signatures"), so admins can load the files they
 * already have. A line is `Name:TargetType:Offset:HexSignature[:MinFL[:MaxFL]]`.
 *
 * Hex signature syntax supported (signatures.pdf, "Body-based signatures"):
 *   aa        a byte                     ??        any byte
 *   a? / ?a   a nibble                   *         any number of bytes
 *   {n}       n bytes                    {n-m} {-m} {n-}   a range of bytes
 *   [n-m]     a range of bytes           (aa|bbcc) alternatives   !(aa|bb) none of them
 * Offsets: `*` (anywhere), `n` and `n,m` (match starts at n, up to n+m), `EOF-n` and
 * `EOF-n,m` (starts n bytes before the end). Not supported, counted as skipped on load:
 * entry-point and section offsets (EP+n, Sx+n, SEx: need PE parsing), word/line markers
 * ((B), (L)), and signatures without 4 consecutive fixed bytes in each `*`-separated part
 * (the multi-pattern matcher anchors on them; ClamAV itself needs 2).
 *
 * Each signature compiles to parts (split at unbounded gaps), each part to a RegExp over a
 * latin1 string (one char per byte) and an anchor: the 4 fixed bytes the matcher looks for.
 */

import type { Severity } from '../types.ts';

/** 4 fixed bytes of a part the matcher may look for, and where they sit in the part. */
export interface AnchorOption {
  /** The 4 bytes as a big-endian uint32. */
  readonly anchor: number;
  /** Bytes between the part's start and the anchor's start: min and max. */
  readonly preMin: number;
  readonly preMax: number;
  /** Most bytes after the anchor's end up to the part's end. */
  readonly postMax: number;
}

export interface NdbPart {
  /** Matches this part (global: searched in a window around a candidate). */
  readonly regex: RegExp;
  /** Every 4-byte window of the part's fixed runs (at most MAX_ANCHOR_OPTIONS). */
  readonly anchors: readonly AnchorOption[];
  /** Least gap between the previous part's end and this part's start. */
  readonly gapMin: number;
}

const MAX_ANCHOR_OPTIONS = 64;

export type NdbOffset =
  | { readonly kind: 'any' }
  | { readonly kind: 'abs'; readonly at: number; readonly shift: number }
  | { readonly kind: 'eof'; readonly back: number; readonly shift: number };

export interface BodySignature {
  readonly threat: string;
  /** ClamAV target type: 0 any, 1 PE, 2 OLE2, 3 HTML, 4 mail, 5 graphics, 6 ELF, 7 text, 9 Mach-O, 10 PDF, 11 Flash, 12 Java. */
  readonly target: number;
  readonly offset: NdbOffset;
  readonly parts: readonly NdbPart[];
  readonly severity: Severity;
}

export class SignatureSyntaxError extends Error {}

/** Longest span one part may have: the matcher keeps this much history. */
export const MAX_PART_SPAN = 64 * 1024;

type Token =
  | { t: 'bytes'; re: string; fixed: number | null; min: number; max: number } // one position or alternatives
  | { t: 'gap'; min: number; max: number | null };

const hex2 = (s: string): number => parseInt(s, 16);
const esc = (b: number): string => `\\x${b.toString(16).padStart(2, '0')}`;

function tokenize(hex: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new SignatureSyntaxError(`${why} at position ${i} of the hex signature`);
  };
  while (i < hex.length) {
    const c = hex[i]!;
    if (c === '*') {
      out.push({ t: 'gap', min: 0, max: null });
      i++;
    } else if (c === '{' || c === '[') {
      const close = hex.indexOf(c === '{' ? '}' : ']', i);
      if (close === -1) fail('unclosed range');
      const m = /^(\d*)(-?)(\d*)$/.exec(hex.slice(i + 1, close));
      if (!m || (m[1] === '' && m[3] === '')) fail('bad range');
      const lo = m![1] === '' ? 0 : Number(m![1]);
      const hi = m![2] === '' ? lo : m![3] === '' ? null : Number(m![3]);
      if (hi !== null && hi < lo) fail('range upside down');
      out.push({ t: 'gap', min: lo, max: hi });
      i = close + 1;
    } else if (c === '(' || (c === '!' && hex[i + 1] === '(')) {
      const negate = c === '!';
      const open = negate ? i + 1 : i;
      const close = hex.indexOf(')', open);
      if (close === -1) fail('unclosed alternative');
      const alts = hex.slice(open + 1, close).split('|');
      if (alts.some((a) => !/^([0-9a-fA-F]{2})+$/.test(a))) fail('alternatives must be whole bytes (B and L markers are not supported)');
      const bytes = alts.map((a) => a.match(/../g)!.map(hex2));
      const lens = new Set(bytes.map((b) => b.length));
      if (negate && lens.size !== 1) fail('negated alternatives must have one length');
      const re = bytes.map((b) => b.map(esc).join('')).join('|');
      const min = Math.min(...lens);
      const max = Math.max(...lens);
      out.push({ t: 'bytes', re: negate ? `(?!${re})[\\s\\S]{${min}}` : `(?:${re})`, fixed: null, min, max });
      i = close + 1;
    } else {
      const pair = hex.slice(i, i + 2);
      if (pair.length < 2) fail('odd number of hex digits');
      if (/^[0-9a-fA-F]{2}$/.test(pair)) out.push({ t: 'bytes', re: esc(hex2(pair)), fixed: hex2(pair), min: 1, max: 1 });
      else if (pair === '??') out.push({ t: 'bytes', re: '[\\s\\S]', fixed: null, min: 1, max: 1 });
      else if (/^[0-9a-fA-F]\?$/.test(pair)) {
        const hi = hex2(pair[0]!) << 4;
        out.push({ t: 'bytes', re: `[${esc(hi)}-${esc(hi | 15)}]`, fixed: null, min: 1, max: 1 });
      } else if (/^\?[0-9a-fA-F]$/.test(pair)) {
        const lo = hex2(pair[1]!);
        out.push({ t: 'bytes', re: `[${Array.from({ length: 16 }, (_, k) => esc((k << 4) | lo)).join('')}]`, fixed: null, min: 1, max: 1 });
      } else fail(`"${pair}" is not a byte, wildcard or nibble`);
      i += 2;
    }
  }
  return out;
}

/** Split at unbounded gaps and compile each part. */
function compileParts(tokens: Token[]): NdbPart[] {
  const parts: NdbPart[] = [];
  let current: Token[] = [];
  let gapMin = 0;
  const flush = (nextGapMin: number): void => {
    if (current.length === 0) throw new SignatureSyntaxError('an unbounded gap at the start or end, or two in a row');
    parts.push(compilePart(current, gapMin));
    current = [];
    gapMin = nextGapMin;
  };
  for (const tk of tokens) {
    if (tk.t === 'gap' && tk.max === null) flush(tk.min);
    else current.push(tk);
  }
  flush(0);
  return parts;
}

function compilePart(tokens: Token[], gapMin: number): NdbPart {
  if (tokens[0]!.t === 'gap' || tokens[tokens.length - 1]!.t === 'gap') throw new SignatureSyntaxError('a part starts or ends with a gap');
  const fixed = (k: number): number | null => {
    const tk = tokens[k];
    return tk !== undefined && tk.t === 'bytes' ? tk.fixed : null;
  };
  // Prefix sums of min and max lengths, so any window's position in the part is known.
  const minBefore = [0];
  const maxBefore = [0];
  tokens.forEach((tk, k) => {
    minBefore.push(minBefore[k]! + tk.min);
    maxBefore.push(maxBefore[k]! + (tk.max ?? 0));
  });
  const span = maxBefore[tokens.length]!;
  if (span > MAX_PART_SPAN) throw new SignatureSyntaxError(`a part longer than ${MAX_PART_SPAN} bytes`);
  const anchors: AnchorOption[] = [];
  for (let k = 0; k + 4 <= tokens.length && anchors.length < MAX_ANCHOR_OPTIONS; k++) {
    if ([0, 1, 2, 3].some((d) => fixed(k + d) === null)) continue;
    const anchor = ((fixed(k)! << 24) | (fixed(k + 1)! << 16) | (fixed(k + 2)! << 8) | fixed(k + 3)!) >>> 0;
    anchors.push({ anchor, preMin: minBefore[k]!, preMax: maxBefore[k]!, postMax: span - maxBefore[k + 4]! });
  }
  if (anchors.length === 0) throw new SignatureSyntaxError('needs 4 consecutive fixed bytes in each part');
  const source = tokens.map((tk) => (tk.t === 'gap' ? `[\\s\\S]{${tk.min},${tk.max}}` : tk.re)).join('');
  return { regex: new RegExp(source, 'g'), anchors, gapMin };
}

function parseOffset(s: string): NdbOffset {
  if (s === '*') return { kind: 'any' };
  let m = /^(\d+)(?:,(\d+))?$/.exec(s);
  if (m) return { kind: 'abs', at: Number(m[1]), shift: Number(m[2] ?? 0) };
  m = /^EOF-(\d+)(?:,(\d+))?$/.exec(s);
  if (m) return { kind: 'eof', back: Number(m[1]), shift: Number(m[2] ?? 0) };
  throw new SignatureSyntaxError(`offset "${s}" is not supported (only *, n, n,m, EOF-n)`);
}

export function compileBodySignature(threat: string, target: number, offset: string, hex: string, severity: Severity = 'high'): BodySignature {
  const parts = compileParts(tokenize(hex));
  const off = parseOffset(offset);
  if (off.kind === 'eof' && parts.length > 1) throw new SignatureSyntaxError('EOF offsets with unbounded gaps are not supported');
  return { threat, target, offset: off, parts, severity };
}

/** Parse an .ndb file: signatures, and the lines skipped with why (the caller logs a summary). */
export function parseNdb(text: string, source: string): { signatures: BodySignature[]; skipped: string[] } {
  const signatures: BodySignature[] = [];
  const skipped: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[1]!)) throw new SignatureSyntaxError(`${source}:${i + 1}: expected Name:TargetType:Offset:HexSignature`);
    try {
      signatures.push(compileBodySignature(f[0]!, Number(f[1]), f[2]!, f[3]!));
    } catch (err) {
      if (!(err instanceof SignatureSyntaxError)) throw err;
      skipped.push(`${source}:${i + 1}: ${f[0]}: ${err.message}`);
    }
  }
  return { signatures, skipped };
}

/** Does an object of this detected type (or the raw message) qualify for a target type? */
export function targetApplies(target: number, detectedType: string, isRawMessage: boolean): boolean {
  switch (target) {
    case 0: return true;
    case 1: return detectedType === 'exe' || detectedType === 'dll';
    case 2: return ['cfb', 'doc', 'xls', 'ppt', 'msi', 'msg'].includes(detectedType);
    case 3: return detectedType === 'html' || detectedType === 'hta' || detectedType === 'svg';
    case 4: return isRawMessage;
    case 5: return ['jpg', 'png', 'gif', 'bmp', 'tif', 'ico', 'webp'].includes(detectedType);
    case 6: return detectedType === 'elf';
    case 7: return !['binary', 'empty'].includes(detectedType) && /^(text|html|js|vbs|ps1|bat|hta|xml|svg|url|rtf)$/.test(detectedType);
    case 9: return detectedType === 'macho';
    case 10: return detectedType === 'pdf';
    case 11: return detectedType === 'swf';
    case 12: return detectedType === 'class' || detectedType === 'jar';
    default: return false;
  }
}
