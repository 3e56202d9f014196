/**
 * The oracle of the MIME differential suite: every file any reference parser extracts from a
 * message must be among the objects the inspector scanned. Files are compared by SHA-256 of
 * their exact bytes, or — since parsers differ in the line ends they keep around a text body
 * (munpack writes CR LF before it, ripmime keeps the CRLF before the boundary) — of the bytes
 * with CRs removed and surrounding whitespace trimmed. Empty files are nothing to scan.
 *
 * The inspector's objects are seen through an engine (the interface every scanner uses), so
 * the oracle sees exactly the bytes the signature engine and clamd would.
 */

import { createHash } from 'node:crypto';
import type { Engine, EngineScan } from '../../../src/inspect/engines/engine.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import type { Finding } from '../../../src/inspect/types.ts';
import { type Extracted, extractAll, type ParserName } from './references.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Bytes without CRs and without whitespace at either end: a text body however it was kept. */
export function loose(b: Buffer): Buffer {
  // No CR at all: parsers keep, add (CRLF line ends) or drop (munpack in text parts) them.
  let s = b.includes(13) ? Buffer.from(b.toString('latin1').replace(/\r/g, ''), 'latin1') : b;
  let start = 0;
  let end = s.length;
  const ws = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 11 || c === 12;
  while (start < end && ws(s[start]!)) start++;
  while (end > start && ws(s[end - 1]!)) end--;
  s = s.subarray(start, end);
  return s;
}

/** Records the exact and loose hash of every object the inspector hands to its engines. */
class CollectingEngine implements Engine {
  readonly name = 'collect';
  exact = new Set<string>();
  loose = new Set<string>();
  /** The loose text of every object, to find slices of it. */
  texts: Buffer[] = [];
  /** Every object whole, to find files that run on past one. */
  wholes: Buffer[] = [];
  open(): EngineScan {
    const chunks: Buffer[] = [];
    return {
      write: (c) => chunks.push(Buffer.from(c)),
      end: async (): Promise<Finding[]> => {
        const whole = Buffer.concat(chunks);
        this.exact.add(sha(whole));
        this.loose.add(sha(loose(whole)));
        this.texts.push(loose(whole));
        this.wholes.push(whole);
        return [];
      },
    };
  }
}

/** Bytes a decoder may add by reading a closing delimiter (70 characters, RFC 2046) as data. */
const MAX_RUN_ON = 64;

/** Whether `file` is `w` and then at most MAX_RUN_ON more bytes. */
function runsOn(file: Buffer, w: Buffer): boolean {
  return w.length >= 32 && file.length > w.length && file.length - w.length <= MAX_RUN_ON && file.subarray(0, w.length).equals(w);
}

/** Bytes without the boundary delimiter lines (`--…`) at their end, loosely trimmed. */
function withoutTrailingDelimiters(b: Buffer): Buffer {
  let s = b;
  for (;;) {
    const lf = s.lastIndexOf(10);
    if (lf === -1 || s[lf + 1] !== 45 || s[lf + 2] !== 45) return s;
    s = loose(s.subarray(0, lf));
  }
}

/** Printable text (a slice of a text body, not a decoded file). */
function isText(b: Buffer): boolean {
  return /^[\t\n\x20-\x7e]*$/.test(b.toString('latin1'));
}

export interface Miss {
  readonly index: number;
  readonly parser: ParserName;
  readonly size: number;
  readonly sha256: string;
  readonly head: string;
}

/** The hashes of every object the inspector scanned in one message. */
export async function inspectorObjects(message: Buffer): Promise<{ exact: Set<string>; loose: Set<string>; texts: Buffer[]; wholes: Buffer[] }> {
  const collect = new CollectingEngine();
  const inspector = new Inspector({ engines: [new SignatureEngine(), collect] });
  const scan = inspector.begin();
  scan.write(message);
  await scan.end(30_000);
  return { exact: collect.exact, loose: collect.loose, texts: collect.texts, wholes: collect.wholes };
}

/** Files some reference parser extracted that the inspector did not scan. */
export async function misses(messages: readonly Buffer[], opts: { extracted?: Extracted; skip?: (index: number, parser: ParserName) => boolean } = {}): Promise<Miss[]> {
  const refs = opts.extracted ?? (await extractAll(messages));
  const out: Miss[] = [];
  for (let i = 0; i < messages.length; i++) {
    const ours = await inspectorObjects(messages[i]!);
    for (const [parser, perMessage] of refs) {
      if (opts.skip?.(i, parser)) continue;
      for (const file of perMessage[i] ?? []) {
        const l = loose(file);
        if (l.length === 0) continue;
        if (ours.exact.has(sha(file)) || ours.loose.has(sha(l))) continue;
        // A part a parser ran on over the closing delimiter (munpack, reading a multipart as
        // text/plain, decodes to the end of the message): the same file with `--…` lines after it.
        const cut = withoutTrailingDelimiters(l);
        if (cut.length < l.length && ours.loose.has(sha(cut))) continue;
        // A decoder that ran on over the closing delimiter (munpack decodes `--boundary--` as
        // base64 too): an object we scanned, then a few bytes made of the delimiter's letters.
        if (ours.wholes.some((w) => runsOn(file, w) || runsOn(l, loose(w)))) continue;
        // A slice of an object we scanned (a parser that ran one part's text on to the end,
        // a body cut at a boundary it mis-read): every byte of it went through the engines
        // inside that object. Only text is judged so: a binary file must match whole.
        if (isText(l) && ours.texts.some((t) => t.length > l.length && t.includes(l))) continue;
        out.push({ index: i, parser, size: file.length, sha256: sha(file), head: JSON.stringify(file.subarray(0, 60).toString('latin1')) });
      }
    }
  }
  return out;
}
