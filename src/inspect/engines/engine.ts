/**
 * The engine interface: every scanner (built-in signatures, clamd later, analysis later)
 * looks at one object at a time as a stream of bytes and reports findings at its end.
 *
 * Contract: `write` gets the object's bytes in order, in any chunking, and must not keep
 * references beyond what its matching needs (memory stays bounded). `end` gets the object's
 * identity (hashes, type, path), computed once by the inspector, and resolves to findings;
 * it rejects with a typed error (EngineError, ScanTimeoutError) when no verdict can be given,
 * which policy turns into the profile's on-error action, never into "clean".
 */

import { createHash } from 'node:crypto';
import type { FileInfo, Finding } from '../types.ts';

export interface EngineScan {
  write(chunk: Buffer): void;
  end(file: FileInfo): Promise<Finding[]>;
}

export interface Engine {
  readonly name: string;
  /**
   * A scan of the object at `path` (`message`, `msg/2`, `msg/2/a.zip/x.exe`); `names`: the
   * names the message gives it (known before its bytes; null entries for none).
   */
  open(path: string, names?: ReadonlyArray<string | null>): EngineScan;
  /** Whether this engine needs FileInfo.md5 (computed only then; otherwise it is ''). */
  readonly needsMd5?: boolean;
  /** Whether this engine looks at the object at `path` (`message`, `msg/2`, …); all if absent. */
  wants?(path: string): boolean;
  close?(): Promise<void>;
  /** Whether this engine may judge the file (a sighting is recorded for it); absent: no file. */
  judges?(file: FileInfo): boolean;
  /**
   * Verdicts that arrive after their message went on (analysis past its hold time), for
   * retro-alerts; returns the unsubscribe.
   */
  onLateVerdict?(listener: (file: FileInfo, finding: Finding | null) => void): () => void;
}

/**
 * A stable threat id from engine and signature name: the same signature always gets the same
 * id, on every gateway, so exceptions and log searches can name it.
 */
export function threatIdFor(engine: string, threat: string): string {
  const h = createHash('sha256').update(`${engine}\0${threat}`).digest();
  return String(h.readUInt32BE(0) % 90_000_000 + 10_000_000);
}
