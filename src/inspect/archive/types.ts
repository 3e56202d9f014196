/**
 * The contract between the inspector and the container readers: what a reader is given (a
 * context with the budget and the sinks for members) and what it returns. Readers import
 * this file, never unpack.ts, so the dispatcher and its readers do not import each other.
 */

import type { AnomalyName } from '../../events.ts';

export interface ArchiveLimits {
  /** Archives inside archives: members of a container at this depth are not unpacked. */
  readonly maxDepth: number;
  /** Members unpacked per message. */
  readonly maxFiles: number;
  /** Unpacked bytes per message. */
  readonly maxTotalBytes: number;
  /** Unpacked / packed bytes of one member, checked once it has produced RATIO_FLOOR bytes. */
  readonly maxRatio: number;
  /** Wall time spent unpacking per message. */
  readonly maxTimeMs: number;
  /** Largest container kept in memory to be unpacked (larger: scanned whole only). */
  readonly maxContainerBytes: number;
}

export interface MemberSink {
  write(chunk: Buffer): void;
  end(): void;
}

/** What a reader sees of the inspector: where to put members, where to report. */
export interface UnpackContext {
  /** Path of the container, for events and as the parent of member paths. */
  readonly where: string;
  /** Name of the container file, if any (gzip members are named after it). */
  readonly name: string | null;
  /**
   * The container is another type of file with a zip inside (an SFX executable, junk in
   * front): read it if a complete zip is there, but its absence is no anomaly.
   */
  readonly embedded: boolean;
  /** A sink for a member, or null when a limit stops unpacking (the reader then stops). */
  member(name: string): MemberSink | null;
  event(name: AnomalyName, detail?: string): void;
  /** Pass stored bytes to a member, within the budget. False: a limit stopped it. */
  copy(sink: MemberSink, bytes: Buffer): boolean;
  /**
   * Inflate a deflate (`raw`) or gzip stream into a member, within the budget. A raw stream
   * ends where its deflate data ends (what follows is not read); `used.consumed` then says
   * how many input bytes it took.
   */
  inflate(kind: 'raw' | 'gzip', packed: Buffer, sink: MemberSink, used?: { consumed: number }): Promise<'ok' | 'limit' | 'corrupt'>;
  /** Whether a limit has stopped all unpacking for this message. */
  readonly stopped: boolean;
  /**
   * Say what opened the container, for `scan -v` and `--json` (`openedBy`): the tools call it
   * (7-Zip, bsdtar, bsdcat); a built-in reader need not ("smtpwall").
   */
  openedBy?(how: string): void;
  /** Passwords to try on encrypted members: words from the message's text. */
  passwords(): readonly string[];
  /**
   * The zip read again by 7-Zip (when installed), for members in compression methods only
   * 7-Zip decodes (deflate64, bzip2, lzma, ppmd, xz, zstd); absent without 7-Zip.
   */
  readonly zipBySevenZip?: ContainerReader;
}

/** What unpacking learnt about the container: a refined type such as `encrypted-zip`. */
export interface UnpackOutcome {
  readonly type?: string;
}

export type ContainerReader = (bytes: Buffer, ctx: UnpackContext) => Promise<UnpackOutcome>;

/** Printable, bounded member names: they end up in paths, logs and SMTP replies. */
export function cleanMemberName(raw: string): string {
  const s = raw.replace(/[\x00-\x1f\x7f]/g, '?').replace(/^\/+/, '').slice(0, 255);
  return s === '' ? '(unnamed)' : s;
}
