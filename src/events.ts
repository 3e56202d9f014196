/**
 * Named anomalies (Suricata style): what the wire reader or the inspector saw that a strict
 * reading does not allow, or a limit that stopped inspection. They are facts for the policy
 * and the log, never exceptions.
 */

export const ANOMALIES = {
  BARE_LF: 'a line ended in LF without CR',
  BARE_CR: 'a CR not followed by LF',
  NUL_BYTE: 'a NUL byte',
  LINE_TOO_LONG: 'a line longer than the limit',
  MESSAGE_TOO_BIG: 'the message exceeded the size limit',
  MIME_DEPTH_EXCEEDED: 'MIME nesting deeper than the limit; deeper parts not inspected',
  MIME_PARTS_EXCEEDED: 'more MIME parts than the limit; later parts not inspected',
  MIME_HEADER_TOO_LONG: 'a MIME header block longer than the limit',
  MIME_MISSING_BOUNDARY: 'a multipart without a boundary parameter',
  MIME_UNTERMINATED_MULTIPART: 'a multipart whose closing boundary never came',
  MIME_UNKNOWN_ENCODING: 'an unknown Content-Transfer-Encoding, scanned as raw bytes',
  BASE64_INVALID: 'base64 with characters outside the alphabet or bad padding',
  MIME_MESSAGE_PARTIAL: 'a message/partial fragment (RFC 2046 §5.2.2): the whole message cannot be inspected',
} as const;

export type AnomalyName = keyof typeof ANOMALIES;

export interface AnomalyEvent {
  readonly name: AnomalyName;
  /** Where: `msg` for the message, a MIME path such as `msg/2/1` for a part. */
  readonly where: string;
  readonly detail?: string;
}

/** Anomalies that mean part of the message was not inspected: never "clean". */
export const INCOMPLETE_INSPECTION: ReadonlySet<AnomalyName> = new Set([
  'MIME_DEPTH_EXCEEDED',
  'MIME_PARTS_EXCEEDED',
]);

/**
 * Anomalies that are suspicious in themselves: the profile's threat action applies, as for a
 * finding (a fragmented message can carry anything once the receiver reassembles it).
 */
export const SUSPICIOUS_STRUCTURE: ReadonlySet<AnomalyName> = new Set(['MIME_MESSAGE_PARTIAL']);
