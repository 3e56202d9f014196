/**
 * The vocabulary of inspection: files extracted from a message, the findings engines report
 * about them, and the result of scanning one message. Typed, so that every decision can be
 * explained from these values alone.
 */

import type { AnomalyEvent } from '../events.ts';

/** Path of the whole message as one object; MIME leaves are `msg`, `msg/1`, `msg/2/1`, … */
export const RAW_MESSAGE_PATH = 'message';

export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** One object an engine looked at: the raw message, a decoded MIME leaf, or an archive member. */
export interface FileInfo {
  /**
   * Location: `message` for the whole message, `msg/1/2` for a MIME leaf,
   * `msg/2/invoice.zip/payload.exe` for a member of the archive attached as `msg/2`.
   */
  readonly path: string;
  /** File name as declared (Content-Disposition filename or Content-Type name), if any. */
  readonly name: string | null;
  /** Other names parsers give the same part (a filename given twice or in two forms): file blocking judges each. */
  readonly otherNames?: readonly string[];
  /** Content-Type as declared, lower-cased, without parameters. */
  readonly declaredType: string | null;
  /** Type detected from the content (`exe`, `zip`, `encrypted-zip`, `docm`, `pdf`, `js`, `text`, …). */
  readonly detectedType: string;
  /** Facts about name and content: `type-mismatch`, `double-extension`, `rtlo`, `macros`. */
  readonly flags: readonly string[];
  /** Archive levels above this file: 0 for the message and its MIME parts. */
  readonly depth: number;
  /** Decodings between the wire and these bytes (transfer encodings, uuencode, archive levels). */
  readonly layers: number;
  readonly size: number;
  readonly sha256: string;
  /** '' unless an engine matches MD5 hashes. */
  readonly md5: string;
  /** Content-Transfer-Encoding the bytes were decoded from. */
  readonly encoding: string | null;
  /**
   * Its text is in UTF-16, UTF-32 or UTF-7 and was decoded into the object `PATH/(text)`
   * (decode/transcode.ts), where data filtering counts it (not twice).
   */
  readonly textEncoding?: string;
  /**
   * A container: what opened it — `smtpwall` (a built-in reader), `7-Zip (7zz)`, `bsdtar
   * (libarchive)`, `bsdcat (libarchive)`, `recognised only` (nothing could: an event says why)
   * — and `+ zip reading` when a zip closing it was read too.
   */
  readonly openedBy?: string;
}

/**
 * What a finding says of its file, for the policy (which never matches engine or threat
 * names): `malicious` — a threat (the profile's `action`, or `analysis-action` when the
 * finding rests on analysis); `grayware` — unwanted, not malicious (`grayware-action`);
 * `pending` — no verdict within the hold time (`analysis-on-timeout`); `count` — a data
 * filtering match count, weighed against the profile's thresholds, no verdict by itself.
 */
export type FindingVerdict = 'malicious' | 'grayware' | 'pending' | 'count';

export interface Finding {
  /** What the finding means for the policy; absent: `malicious`. */
  readonly verdict?: FindingVerdict;
  /** What it rests on: a signature (or hash) match, or analysis; absent: `signature`. */
  readonly basis?: 'signature' | 'analysis';
  /** Engine that reported it, e.g. `signatures`. */
  readonly engine: string;
  /** Threat name as the engine calls it, e.g. `EICAR-Test-File`. */
  readonly threat: string;
  /** Stable id derived from engine and signature name (shown in logs, used by exceptions). */
  readonly threatId: string;
  /** What matched: `body:EICAR`, `sha256:…`, `md5:…`. */
  readonly signature: string;
  readonly severity: Severity;
  readonly file: FileInfo;
  /** Data filtering: how often the pattern matched in this file, with masked samples. */
  readonly matches?: { readonly count: number; readonly samples: readonly string[] };
}

export interface ScanResult {
  readonly findings: readonly Finding[];
  readonly files: readonly FileInfo[];
  readonly events: readonly AnomalyEvent[];
  /** Engines that failed on an object (the scan went on without them); the policy applies on-error. */
  readonly errors?: readonly ScanError[];
}

export interface ScanError {
  readonly engine: string;
  /** The object it failed on. */
  readonly path: string;
  readonly message: string;
}
