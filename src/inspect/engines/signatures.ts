/**
 * The built-in signature engine: body signatures (byte patterns with wildcards, ClamAV .ndb
 * syntax; the EICAR test string is built in) found anywhere in an object, and hash lists of
 * whole files (SHA-256 and MD5; smtpwall's own format or ClamAV's .hdb/.hsb).
 *
 * smtpwall's hash-list format (one signature per line; `#` starts a comment; blank lines ignored):
 *
 *     sha256:<64 hex digits>  Threat-Name
 *     md5:<32 hex digits>     Threat-Name
 *
 * Body signatures are matched by BodyMatcher: all of them in one streaming pass per object,
 * whatever the chunking, with memory bounded by the longest signature part.
 */

import { readFileSync } from 'node:fs';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH, type Severity } from '../types.ts';
import { BodyMatcher, type BodyMatch } from './body-matcher.ts';
import { type Engine, type EngineScan, threatIdFor } from './engine.ts';
import { type BodySignature, compileBodySignature, parseNdb, targetApplies } from './ndb.ts';

export const ENGINE_NAME = 'signatures';

/** The EICAR anti-virus test file (eicar.org), 68 bytes. */
export const EICAR = Buffer.from(
  'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*',
  'latin1',
);

export interface HashSignature {
  readonly threat: string;
  readonly algorithm: 'sha256' | 'md5';
  readonly hex: string;
  /** File size the hash is valid for (ClamAV .hdb/.hsb); null: any size. */
  readonly size: number | null;
}

export const BUILTIN_PATTERNS: readonly BodySignature[] = [
  compileBodySignature('EICAR-Test-File', 0, '*', EICAR.toString('hex'), 'high'),
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

/** A signature database by its extension: .ndb body signatures, .hdb/.hsb hashes, else a hash list. */
export function loadSignatureFile(path: string): { bodies: BodySignature[]; hashes: HashSignature[]; skipped: string[] } {
  if (/\.ndb$/i.test(path)) {
    const { signatures, skipped } = parseNdb(readFileSync(path, 'latin1'), path);
    return { bodies: signatures, hashes: [], skipped };
  }
  return { bodies: [], hashes: loadHashListFile(path), skipped: [] };
}

export class SignatureEngine implements Engine {
  readonly name = ENGINE_NAME;
  readonly #matcher: BodyMatcher;
  /** Several signatures may share a hash (ClamAV: one per file size). */
  readonly #bySha256 = new Map<string, HashSignature[]>();
  readonly #byMd5 = new Map<string, HashSignature[]>();

  constructor(opts: { patterns?: readonly BodySignature[]; hashes?: readonly HashSignature[] } = {}) {
    this.#matcher = new BodyMatcher(opts.patterns ?? BUILTIN_PATTERNS);
    for (const h of opts.hashes ?? []) {
      const map = h.algorithm === 'sha256' ? this.#bySha256 : this.#byMd5;
      const list = map.get(h.hex);
      if (list) list.push(h);
      else map.set(h.hex, [h]);
    }
  }

  get needsMd5(): boolean {
    return this.#byMd5.size > 0;
  }

  open(): EngineScan {
    return new SignatureScan(this.#matcher.open(), this.#matcher.signatures, this.#bySha256, this.#byMd5);
  }
}

class SignatureScan implements EngineScan {
  constructor(
    private readonly body: BodyMatch,
    private readonly bodies: readonly BodySignature[],
    private readonly bySha256: ReadonlyMap<string, readonly HashSignature[]>,
    private readonly byMd5: ReadonlyMap<string, readonly HashSignature[]>,
  ) {}

  write(chunk: Buffer): void {
    this.body.write(chunk);
  }

  async end(file: FileInfo): Promise<Finding[]> {
    const findings: Finding[] = [];
    for (const i of this.body.end()) {
      const s = this.bodies[i]!;
      if (targetApplies(s.target, file.detectedType, file.path === RAW_MESSAGE_PATH)) {
        findings.push(finding(s.threat, `body:${s.threat}`, s.severity, file));
      }
    }
    const fits = (h: HashSignature): boolean => h.size === null || h.size === file.size;
    for (const h of this.bySha256.get(file.sha256) ?? []) if (fits(h)) findings.push(finding(h.threat, `sha256:${file.sha256}`, 'high', file));
    for (const h of this.byMd5.get(file.md5) ?? []) if (fits(h)) findings.push(finding(h.threat, `md5:${file.md5}`, 'high', file));
    return findings;
  }
}

function finding(threat: string, signature: string, severity: Severity, file: FileInfo): Finding {
  return { engine: ENGINE_NAME, threat, threatId: threatIdFor(ENGINE_NAME, threat), signature, severity, file };
}
