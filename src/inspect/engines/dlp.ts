/**
 * Data filtering (DLP) as an engine: counts occurrences of sensitive patterns in every decoded
 * part and archive member (and in the raw message's header block), and reports per pattern
 * how often it matched, with a few masked samples — never the values in clear. The policy
 * weighs the counts of the patterns of the profile a rule attaches against its thresholds.
 *
 * Predefined patterns check what can be checked: card numbers (13–19 digits, Luhn), US SSNs
 * (area/group/serial rules), IBANs (ISO 13616 mod-97), e-mail addresses. Custom patterns are a
 * case-insensitive RegExp or a keyword list.
 *
 * Streaming: text is searched in windows; a match that may continue into the next chunk is
 * left for the next window (the last OVERLAP characters), so counts do not depend on chunking.
 * Only the first maxBytes of each object are searched (binary files are mostly noise).
 */

import { RAW_MESSAGE_PATH, type FileInfo, type Finding } from '../types.ts';
import { type Engine, type EngineScan, threatIdFor } from './engine.ts';

export const DLP_ENGINE = 'data-filtering';
/** Types whose text the inspector extracts into a `(text)` member. */
const TEXT_EXTRACTED: ReadonlySet<string> = new Set(['pdf', 'xml']);
/** Longest match counted, and the tail kept between windows. */
const OVERLAP = 256;
const MAX_SAMPLES = 3;
/** A header block longer than this is cut (the MIME walker's own limit is 64 KiB). */
const MAX_HEADER_CHARS = 64 * 1024;

export interface DlpPattern {
  /** Unique key: `profile/pattern`. */
  readonly key: string;
  readonly type?: 'credit-card' | 'us-ssn' | 'iban' | 'email';
  readonly regex?: string;
  readonly keywords?: readonly string[];
}

interface Compiled {
  readonly key: string;
  readonly re: RegExp;
  readonly valid: (m: string) => boolean;
  readonly mask: (m: string) => string;
}

const digits = (s: string): string => s.replace(/\D/g, '');

export function luhnValid(number: string): boolean {
  const d = digits(number);
  if (d.length < 13 || d.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < d.length; i++) {
    let x = d.charCodeAt(d.length - 1 - i) - 48;
    if (i % 2 === 1) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
    sum += x;
  }
  return sum % 10 === 0;
}

export function ibanValid(iban: string): boolean {
  const s = iban.replace(/\s/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const moved = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const v = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const c of v) rem = (rem * 10 + (c.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

function ssnValid(m: string): boolean {
  const [a, g, s] = m.split('-') as [string, string, string];
  return a !== '000' && a !== '666' && a[0] !== '9' && g !== '00' && s !== '0000';
}

const PREDEFINED: Record<NonNullable<DlpPattern['type']>, Omit<Compiled, 'key'>> = {
  'credit-card': {
    re: /(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g,
    valid: luhnValid,
    mask: (m) => {
      const d = digits(m);
      return `${d.slice(0, 4)} **** **** ${d.slice(-4)}`;
    },
  },
  'us-ssn': { re: /(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)/g, valid: ssnValid, mask: (m) => `***-**-${m.slice(-4)}` },
  iban: {
    re: /(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Z0-9])/gi,
    valid: ibanValid,
    mask: (m) => {
      const s = m.replace(/\s/g, '');
      return `${s.slice(0, 4)} **** ${s.slice(-4)}`;
    },
  },
  email: {
    re: /(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![\w-])/g,
    valid: () => true,
    mask: (m) => `${m[0]}***@${m.slice(m.indexOf('@') + 1)}`,
  },
};

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const maskCustom = (m: string): string => `${m.slice(0, 2)}***(${m.length})`;

function compile(p: DlpPattern): Compiled {
  if (p.type) return { key: p.key, ...PREDEFINED[p.type] };
  if (p.regex !== undefined) return { key: p.key, re: new RegExp(p.regex, 'gi'), valid: (m) => m.length > 0, mask: maskCustom };
  const words = (p.keywords ?? []).map(escapeRegex).join('|');
  return { key: p.key, re: new RegExp(`(?<![\\w])(?:${words})(?![\\w])`, 'gi'), valid: () => true, mask: (m) => m };
}

export class DlpEngine implements Engine {
  readonly name = DLP_ENGINE;
  readonly #patterns: Compiled[];

  constructor(patterns: readonly DlpPattern[], private readonly maxBytes = 10 * 1024 * 1024) {
    this.#patterns = patterns.map(compile);
  }

  open(path: string): EngineScan {
    return new DlpScan(this.#patterns, this.maxBytes, path === RAW_MESSAGE_PATH);
  }
}

class DlpScan implements EngineScan {
  #text = '';
  /** Absolute offset of #text[0]. */
  #base = 0;
  #seen = 0;
  #headersDone = false;
  readonly #next: number[];
  readonly #counts: number[];
  readonly #samples: string[][];

  /**
   * @param headersOnly the raw message counts for its header block only: its body is counted
   *   in the decoded parts (counting both would double every match).
   */
  constructor(private readonly patterns: readonly Compiled[], private readonly maxBytes: number, private readonly headersOnly: boolean) {
    this.#next = patterns.map(() => 0);
    this.#counts = patterns.map(() => 0);
    this.#samples = patterns.map(() => []);
  }

  write(chunk: Buffer): void {
    if (this.#seen >= this.maxBytes || this.#headersDone) return;
    const piece = chunk.subarray(0, this.maxBytes - this.#seen);
    this.#seen += piece.length;
    this.#text += piece.toString('latin1');
    if (this.headersOnly) {
      const end = this.#text.search(/\r?\n\r?\n/);
      if (end !== -1 || this.#text.length > MAX_HEADER_CHARS) {
        this.#text = this.#text.slice(0, end === -1 ? MAX_HEADER_CHARS : end);
        this.#headersDone = true;
      }
      return;
    }
    this.#search(false);
  }

  #search(final: boolean): void {
    const text = this.#text;
    const limit = final ? text.length : text.length - OVERLAP;
    this.patterns.forEach((p, i) => {
      p.re.lastIndex = Math.max(0, this.#next[i]! - this.#base);
      for (let m = p.re.exec(text); m !== null; m = p.re.exec(text)) {
        if (m[0].length === 0) {
          p.re.lastIndex++;
          continue;
        }
        const end = m.index + m[0].length;
        if (end > limit) break; // may go on in the next chunk: counted next time
        this.#next[i] = this.#base + end;
        if (m[0].length > OVERLAP || !p.valid(m[0])) continue;
        this.#counts[i]!++;
        if (this.#samples[i]!.length < MAX_SAMPLES) this.#samples[i]!.push(p.mask(m[0]));
      }
    });
    if (!final && text.length > 2 * OVERLAP) {
      const cut = text.length - 2 * OVERLAP;
      this.#text = text.slice(cut);
      this.#base += cut;
    }
  }

  async end(file: FileInfo): Promise<Finding[]> {
    this.#search(true);
    this.#text = '';
    // A PDF's or an XML file's text is a member of its own, `(text)` (text/pdf-text.ts,
    // xml-text.ts), counted there; counting the markup too would count a value twice.
    if (TEXT_EXTRACTED.has(file.detectedType)) return [];
    // Text decoded from UTF-16/32 or UTF-7 is counted in its `(text)` object (decode/transcode.ts).
    if (file.textEncoding) return [];
    const out: Finding[] = [];
    this.patterns.forEach((p, i) => {
      const count = this.#counts[i]!;
      if (count === 0) return;
      out.push({
        verdict: 'count',
        engine: DLP_ENGINE,
        threat: p.key,
        threatId: threatIdFor(DLP_ENGINE, p.key),
        signature: `dlp:${p.key} x${count}: ${this.#samples[i]!.join(', ')}`,
        severity: 'medium',
        file,
        matches: { count, samples: this.#samples[i]! },
      });
    });
    return out;
  }
}
