/**
 * Command-line framing (RFC 5321 §2.3.8, §4.1.1): a command ends at CRLF and nowhere else.
 *
 * Contract: `readCommandLine` looks at the bytes from `start` and either returns one complete
 * line, reports that more bytes are needed, or names the anomaly that makes the line unusable
 * (bare LF, bare CR, NUL, too long). It never interprets the line and never copies: the line is
 * a view into the caller's buffer. A line is never accepted if a lenient server could have
 * split it differently, which is what stops command smuggling.
 */

const CR = 13;
const LF = 10;
const NUL = 0;

export type LineAnomaly = 'BARE_LF' | 'BARE_CR' | 'NUL_BYTE' | 'LINE_TOO_LONG';

export type LineResult =
  /** A complete command line; `line` excludes the CRLF; `next` is where the next line starts. */
  | { readonly kind: 'line'; readonly line: Buffer; readonly next: number }
  /** An unusable line that ended at `next` (after its LF). */
  | { readonly kind: 'bad'; readonly anomaly: LineAnomaly; readonly next: number }
  /** No LF yet, and the partial line is still within the limit. */
  | { readonly kind: 'incomplete' }
  /** No LF yet and the partial line already exceeds the limit: discard up to the next LF. */
  | { readonly kind: 'overflow' };

/**
 * @param maxBytes the longest line accepted, CRLF included (RFC 5321 §4.5.3.1.4 says 512;
 *   extensions such as AUTH make longer lines legitimate, so the caller chooses).
 */
export function readCommandLine(buf: Buffer, start: number, maxBytes: number): LineResult {
  const lf = buf.indexOf(LF, start);
  if (lf === -1) {
    return buf.length - start > maxBytes ? { kind: 'overflow' } : { kind: 'incomplete' };
  }
  const next = lf + 1;
  if (lf === start || buf[lf - 1] !== CR) return { kind: 'bad', anomaly: 'BARE_LF', next };
  const end = lf - 1;
  const cr = buf.indexOf(CR, start);
  if (cr < end) return { kind: 'bad', anomaly: 'BARE_CR', next };
  const nul = buf.indexOf(NUL, start);
  if (nul !== -1 && nul < end) return { kind: 'bad', anomaly: 'NUL_BYTE', next };
  if (next - start > maxBytes) return { kind: 'bad', anomaly: 'LINE_TOO_LONG', next };
  return { kind: 'line', line: buf.subarray(start, end), next };
}

/** Where the discarded tail of an over-long line ends (just after its LF), or -1 if not yet. */
export function skipToLineEnd(buf: Buffer, start: number): number {
  const lf = buf.indexOf(LF, start);
  return lf === -1 ? -1 : lf + 1;
}
