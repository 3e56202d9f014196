/**
 * The built-in signature engine: byte patterns found anywhere in an object (the EICAR test
 * string, and more patterns later), and hash lists of whole files (SHA-256 and MD5).
 *
 * Hash lists: smtpwall's own format, or ClamAV's .hdb/.hsb (see parseClamavHashDb).
 * smtpwall's format (one signature per line; `#` starts a comment; blank lines ignored):
 *
 *     sha256:<64 hex digits>  Threat-Name
 *     md5:<32 hex digits>     Threat-Name
 *
 * Pattern matching is streaming: each chunk is searched with Buffer.indexOf (native), and a
 * pattern split across two chunks is found by searching the seam (the last bytes of the
 * previous chunk joined with the first bytes of this one), so memory per scan is bounded by
 * the longest pattern, whatever the object's size.
 */

import { readFileSync } from 'node:fs';
import type { FileInfo, Finding, Severity } from '../types.ts';
import { type Engine, type EngineScan, threatIdFor } from './engine.ts';

export const ENGINE_NAME = 'signatures';

/** The EICAR anti-virus test file (eicar.org), 68 bytes. */
export const EICAR = Buffer.from(
  'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*',
  'latin1',
);

export interface BodyPattern {
  readonly threat: string;
  readonly bytes: Buffer;
  readonly severity: Severity;
}

export interface HashSignature {
  readonly threat: string;
  readonly algorithm: 'sha256' | 'md5';
  readonly hex: string;
  /** File size the hash is valid for (ClamAV .hdb/.hsb); null: any size. */
  readonly size: number | null;
}

export const BUILTIN_PATTERNS: readonly BodyPattern[] = [
  { threat: 'EICAR-Test-File', bytes: EICAR, severity: 'high' },
];

export class HashListSyntaxError extends Error {}

/** Parse a hash-list file; errors name the file and line. */
export function parseHashList(text: string, source: string): HashSignature[] {
  const out: HashSignature[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, '').trim();
    if (line === '') continue;
    const m = /^(sha256|md5):([0-9a-fA-F]+)\s+(\S.*)$/.exec(line);
    const want = m?.[1] === 'sha256' ? 64 : 32;
    if (!m || m[2]!.length !== want) {
      throw new HashListSyntaxError(`${source}:${i + 1}: expected "sha256:<64 hex> NAME" or "md5:<32 hex> NAME"`);
    }
    out.push({ algorithm: m[1] as 'sha256' | 'md5', hex: m[2]!.toLowerCase(), threat: m[3]!.trim(), size: null });
  }
  return out;
}

/**
 * ClamAV hash databases, so admins can load the files they already have: `.hdb` lines
 * `md5:size:Name`, `.hsb` lines `hash:size:Name` with an MD5 or SHA-256 hash (size may be `*`
 * there). SHA-1 entries are skipped and counted (the inspector computes MD5 and SHA-256 only).
 * ClamAV reports these names with `.UNOFFICIAL` appended for unsigned databases; the built-in
 * engine reports the name as written.
 */
export function parseClamavHashDb(text: string, source: string): { signatures: HashSignature[]; skipped: number } {
  const signatures: HashSignature[] = [];
  let skipped = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([0-9a-fA-F]+):(\d+|\*):([^:]+)(?::\d+(?::\d+)?)?$/.exec(line);
    if (!m) throw new HashListSyntaxError(`${source}:${i + 1}: expected "hash:size:Name" (ClamAV .hdb/.hsb)`);
    const hex = m[1]!.toLowerCase();
    const size = m[2] === '*' ? null : Number(m[2]);
    if (hex.length === 40) {
      skipped++;
      continue;
    }
    if (hex.length !== 32 && hex.length !== 64) throw new HashListSyntaxError(`${source}:${i + 1}: a hash of ${hex.length} hex digits is neither MD5 nor SHA-256`);
    signatures.push({ algorithm: hex.length === 32 ? 'md5' : 'sha256', hex, size, threat: m[3]! });
  }
  return { signatures, skipped };
}

/** A hash list in smtpwall's format, or a ClamAV .hdb/.hsb database (chosen by extension). */
export function loadHashListFile(path: string): HashSignature[] {
  const text = readFileSync(path, 'utf8');
  return /\.(hdb|hsb)$/i.test(path) ? parseClamavHashDb(text, path).signatures : parseHashList(text, path);
}

export class SignatureEngine implements Engine {
  readonly name = ENGINE_NAME;
  readonly #patterns: readonly BodyPattern[];
  /** Several signatures may share a hash (ClamAV: one per file size). */
  readonly #bySha256 = new Map<string, HashSignature[]>();
  readonly #byMd5 = new Map<string, HashSignature[]>();
  /** Bytes kept from one chunk to the next so a pattern across the seam is still found. */
  readonly #seam: number;

  constructor(opts: { patterns?: readonly BodyPattern[]; hashes?: readonly HashSignature[] } = {}) {
    this.#patterns = opts.patterns ?? BUILTIN_PATTERNS;
    for (const h of opts.hashes ?? []) {
      const map = h.algorithm === 'sha256' ? this.#bySha256 : this.#byMd5;
      const list = map.get(h.hex);
      if (list) list.push(h);
      else map.set(h.hex, [h]);
    }
    this.#seam = Math.max(0, ...this.#patterns.map((p) => p.bytes.length - 1));
  }

  open(): EngineScan {
    return new PatternScan(this.#patterns, this.#seam, this.#bySha256, this.#byMd5);
  }
}

class PatternScan implements EngineScan {
  #tail: Buffer = Buffer.alloc(0);
  readonly #hits = new Set<BodyPattern>();

  constructor(
    private readonly patterns: readonly BodyPattern[],
    private readonly seam: number,
    private readonly bySha256: ReadonlyMap<string, readonly HashSignature[]>,
    private readonly byMd5: ReadonlyMap<string, readonly HashSignature[]>,
  ) {}

  write(chunk: Buffer): void {
    if (chunk.length === 0 || this.#hits.size === this.patterns.length) return;
    const seamBuf = this.#tail.length ? Buffer.concat([this.#tail, chunk.subarray(0, this.seam)]) : null;
    for (const p of this.patterns) {
      if (this.#hits.has(p)) continue;
      if (chunk.indexOf(p.bytes) !== -1 || (seamBuf && seamBuf.indexOf(p.bytes) !== -1)) this.#hits.add(p);
    }
    if (this.seam === 0) return;
    this.#tail =
      chunk.length >= this.seam
        ? Buffer.from(chunk.subarray(chunk.length - this.seam))
        : Buffer.concat([this.#tail, chunk]).subarray(-this.seam);
  }

  async end(file: FileInfo): Promise<Finding[]> {
    const findings: Finding[] = [];
    for (const p of this.#hits) findings.push(finding(p.threat, `body:${p.threat}`, p.severity, file));
    const fits = (h: HashSignature): boolean => h.size === null || h.size === file.size;
    for (const h of this.bySha256.get(file.sha256) ?? []) if (fits(h)) findings.push(finding(h.threat, `sha256:${file.sha256}`, 'high', file));
    for (const h of this.byMd5.get(file.md5) ?? []) if (fits(h)) findings.push(finding(h.threat, `md5:${file.md5}`, 'high', file));
    return findings;
  }
}

function finding(threat: string, signature: string, severity: Severity, file: FileInfo): Finding {
  return { engine: ENGINE_NAME, threat, threatId: threatIdFor(ENGINE_NAME, threat), signature, severity, file };
}
