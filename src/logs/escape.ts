/**
 * Text from the wire (envelope, headers, file names) ends up in log lines that people read in
 * terminals and feed to SIEMs. None of it may forge a line, move a cursor, recolour a
 * terminal or reorder what is shown: CR/LF and every other control byte (C0, DEL, C1 — 0x9b is
 * a one-byte CSI on some terminals) and the Unicode line separators and bidirectional
 * overrides (a "Trojan Source" file name) are escaped in every sink.
 */

/** The characters no sink may write raw. */
export const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex4 = (c: string): string => c.charCodeAt(0).toString(16).padStart(4, '0');

/**
 * JSON that parses back to exactly the same value, with no unsafe character raw in it
 * (JSON.stringify escapes C0 only; the rest are escaped here as \uXXXX, still valid JSON).
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_TEXT, (c) => `\\u${hex4(c)}`);
}

/**
 * Text for sinks without an escape syntax for these characters (CEF, syslog structured data):
 * each unsafe character becomes the readable `U+001B` (no backslash, which those formats give
 * a meaning of their own).
 */
export function escapeUnsafe(s: string): string {
  return s.replace(UNSAFE_TEXT, (c) => `U+${hex4(c).toUpperCase()}`);
}
