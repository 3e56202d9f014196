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
  MIME_UNKNOWN_ENCODING: 'an unknown Content-Transfer-Encoding: scanned as raw bytes and as each plausible decoding',
  MIME_AMBIGUOUS: 'a part real parsers read in more than one way (duplicate fields or parameters, odd syntax): every reading inspected',
  MIME_READINGS_EXCEEDED: 'a part or message with more readings than the limit: the rest not inspected',
  BASE64_INVALID: 'base64 with characters outside the alphabet or bad padding',
  MIME_MESSAGE_PARTIAL: 'a message/partial fragment (RFC 2046 §5.2.2): the whole message cannot be inspected',
  MIME_EXTERNAL_BODY: 'a message/external-body part (RFC 2046 §5.2.3): its content lives elsewhere (a URL, an FTP site, a local file) and is fetched by the reader, not carried: recorded with the reference',
  HTML_SMUGGLING: 'a page or script carries an executable, archive or disk image as a data: URI or an encoded string (HTML smuggling)',
  ARCHIVE_ENCRYPTED: 'an encrypted archive or archive member: its content cannot be inspected',
  ARCHIVE_DECRYPTED: 'an encrypted archive member opened with a password found in the message, and inspected',
  ARCHIVE_VOLUMES_JOINED: 'the volumes of a split archive (name.001, name.002, …; RAR volumes name.part1.rar, … or name.rar, name.r00, …) joined as 7-Zip and WinRAR join them, and the whole inspected',
  ARCHIVE_UNSUPPORTED: 'an archive format or compression method smtpwall does not unpack (rar, 7z, bzip2, …)',
  ARCHIVE_CORRUPT: 'an archive that could not be read to its end (truncated or damaged on purpose)',
  ARCHIVE_AMBIGUOUS: 'an archive that readers read differently (local headers against the central directory, a second archive appended): every reading inspected',
  ARCHIVE_DEPTH_EXCEEDED: 'archives nested deeper than the limit; deeper ones not unpacked',
  ARCHIVE_FILES_EXCEEDED: 'more archive members than the limit; later ones not unpacked',
  ARCHIVE_SIZE_EXCEEDED: 'more unpacked bytes than the limit (per message); unpacking stopped',
  ARCHIVE_RATIO_EXCEEDED: 'a member expanding more than the compression-ratio limit (a zip bomb); unpacking stopped',
  ARCHIVE_TIME_EXCEEDED: 'unpacking took longer than the limit; stopped',
  ARCHIVE_TOO_LARGE: 'an archive larger than the bytes kept for unpacking; scanned as a whole only',
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
export const SUSPICIOUS_STRUCTURE: ReadonlySet<AnomalyName> = new Set([
  'MIME_MESSAGE_PARTIAL',
  'MIME_READINGS_EXCEEDED',
  'HTML_SMUGGLING',
  'ARCHIVE_ENCRYPTED',
  'ARCHIVE_UNSUPPORTED',
  'ARCHIVE_CORRUPT',
]);

/**
 * Archive limits: content was left unpacked because it is built to exhaust the gateway (a zip
 * bomb, thousands of members, deep nesting). The profile's `on-archive-limit` action applies
 * (default block): retrying such a message later cannot succeed, so a tempfail would only
 * make the sender retry it for days.
 */
export const ARCHIVE_LIMIT: ReadonlySet<AnomalyName> = new Set([
  'ARCHIVE_DEPTH_EXCEEDED',
  'ARCHIVE_FILES_EXCEEDED',
  'ARCHIVE_SIZE_EXCEEDED',
  'ARCHIVE_RATIO_EXCEEDED',
  'ARCHIVE_TIME_EXCEEDED',
  'ARCHIVE_TOO_LARGE',
]);
