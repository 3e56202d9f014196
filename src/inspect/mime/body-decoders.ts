/**
 * Transfer decodings of a part's body (RFC 2045 §6) as streaming decoders the walker feeds line
 * by line or in blocks, and the small sinks the walker fans bytes out with: tee (one body to
 * several readers), LazySink (an object only once a byte that is not whitespace arrives).
 */

import type { AnomalyName } from '../../events.ts';
import { Base64Decoder } from '../decode/base64.ts';
import { QuotedPrintableDecoder } from '../decode/quoted-printable.ts';

export interface LeafSink {
  write(chunk: Buffer): void;
  end(): void;
}

/** Transfer encodings that change the bytes (a layer for multi-encoding file blocking). */
export const DECODED: ReadonlySet<string> = new Set(['base64', 'quoted-printable', 'x-gzip64', 'gzip64', 'x-base64']);
/**
 * Spellings of transfer encodings seen in the wild. uuencode, yEnc and BinHex are text
 * encodings of files: their blocks are found and decoded wherever text is scanned, so the
 * transfer decoding is the identity; gzip64 is base64 of a gzip stream (unpacked as gzip).
 */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ['7bit', 'identity'], ['8bit', 'identity'], ['binary', 'identity'], ['7-bit', 'identity'], ['8-bit', 'identity'],
  ['x-uuencode', 'identity'], ['uuencode', 'identity'], ['x-uue', 'identity'], ['uue', 'identity'],
  ['x-yenc', 'identity'], ['yenc', 'identity'], ['x-binhex40', 'identity'], ['binhex40', 'identity'], ['x-binhex', 'identity'],
  ['x-gzip64', 'base64'], ['gzip64', 'base64'], ['x-base64', 'base64'],
]);


export interface BodyDecoder {
  /** Whether whole blocks of lines may be written at once (false: line by line). */
  readonly bulk: boolean;
  write(content: Buffer): void;
  eol(raw: Buffer): void;
  end(): void;
}

/**
 * The decoder for a transfer encoding. `report` gets the anomalies (null: quiet, for a guess);
 * `guess` gives the sink for a guessed decoding of an encoding no standard names.
 */
export function transferDecoder(
  encoding: string | null,
  sink: LeafSink,
  report: ((name: AnomalyName, detail?: string) => void) | null,
  guess: (encoding: string, tag: string) => LeafSink,
): BodyDecoder {
  switch (encoding === null ? null : ALIASES.get(encoding) ?? encoding) {
    case 'base64': {
      const d = new Base64Decoder((chunk) => sink.write(chunk));
      return {
        bulk: true,
        write: (c) => d.write(c),
        eol: () => {},
        end: () => {
          d.end();
          if (d.invalid) report?.('BASE64_INVALID');
          sink.end();
        },
      };
    }
    case 'quoted-printable': {
      const d = new QuotedPrintableDecoder((chunk) => sink.write(chunk));
      return { bulk: false, write: (c) => d.write(c), eol: () => d.eol(), end: () => (d.end(), sink.end()) };
    }
    case null:
    case 'identity':
      return identity(sink);
    default: {
      // An encoding no standard names, or misspelled (`base-64`, `quoted-printible`): the
      // receiver may decode it by guess. The raw bytes, and each plausible decoding.
      if (!report) return identity(sink);
      report('MIME_UNKNOWN_ENCODING', encoding!.slice(0, 40));
      const guesses = (['base64', 'quoted-printable'] as const).map((e) => transferDecoder(e, guess(e, e === 'base64' ? 'b64' : 'qp'), null, guess));
      const all = [identity(sink), ...guesses];
      return {
        bulk: false,
        write: (c) => all.forEach((d) => d.write(c)),
        eol: (raw) => all.forEach((d) => d.eol(raw)),
        end: () => all.forEach((d) => d.end()),
      };
    }
  }
}

export const NULL_SINK: LeafSink = { write() {}, end() {} };


/** The bytes as they are (7bit, 8bit, binary, and the text encodings of files). */
export function identity(sink: LeafSink): BodyDecoder {
  const out = (chunk: Buffer): void => sink.write(chunk);
  return { bulk: true, write: out, eol: out, end: () => sink.end() };
}

/** The same bytes to several sinks: a leaf and the message walker of it, or every reading. */
export function tee(sinks: readonly LeafSink[]): LeafSink {
  return {
    write: (chunk) => {
      for (const s of sinks) s.write(chunk);
    },
    end: () => {
      for (const s of sinks) s.end();
    },
  };
}

/** Whitespace held back until the first byte that is not: an empty preamble is no object. */
const MAX_HELD_WHITESPACE = 4096;

export class LazySink implements LeafSink {
  #sink: LeafSink | null = null;
  #held: Buffer[] = [];
  #heldBytes = 0;
  constructor(private readonly open: () => LeafSink) {}
  write(chunk: Buffer): void {
    if (this.#sink === null) {
      if (isWhitespace(chunk) && this.#heldBytes + chunk.length <= MAX_HELD_WHITESPACE) {
        this.#held.push(Buffer.from(chunk));
        this.#heldBytes += chunk.length;
        return;
      }
      this.#sink = this.open();
      for (const h of this.#held) this.#sink.write(h);
      this.#held = [];
    }
    this.#sink.write(chunk);
  }
  end(): void {
    this.#sink?.end();
  }
}

function isWhitespace(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) return false;
  }
  return true;
}

