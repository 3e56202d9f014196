/**
 * Unpacking containers: the inspector hands over a container it kept whole (zip, gzip, tar,
 * TNEF, rar, 7z, ISO 9660 images; a PDF or an XML file gives its text) and gets every member back as a stream of bytes, each becoming a file of its
 * own for the engines (and unpacked again if it is itself a container).
 *
 * Everything is bounded by one budget per message (ArchiveLimits): members, unpacked bytes,
 * compression ratio per member, wall time, nesting depth. Decompression is streaming (zlib,
 * native, off the main thread) and stops the moment a limit is crossed, so a zip bomb costs
 * at most the limit, never its expanded size. A limit hit or an unreadable container is an
 * anomaly event for the policy, never a silent skip and never an exception.
 */

import { performance } from 'node:perf_hooks';
import { createGunzip, createInflateRaw, type Gunzip, gunzipSync, type InflateRaw, inflateRawSync } from 'node:zlib';
import type { AnomalyName } from '../../events.ts';
import type { ArchiveLimits, ContainerReader, MemberSink, UnpackContext, UnpackOutcome } from './types.ts';
import { unpackGzip } from './gzip.ts';
import { unpackIso } from './iso.ts';
import { unpackOle } from './ole.ts';
import { unpackRtf } from './rtf.ts';
import { extractPdfText } from '../text/pdf-text.ts';
import { extractXmlText } from '../text/xml-text.ts';
import { inspectRar } from './rar.ts';
import { inspectSevenZip } from './sevenzip.ts';
import { unpackTar } from './tar.ts';
import { unpackTnef } from './tnef.ts';
import { AR_MAGIC, unpackAr } from './ar.ts';
import { ONENOTE_MAGIC, unpackOneNote } from './onenote.ts';
import { unpackExecutable } from './sfx.ts';
import { unpackZip } from './zip.ts';
import { sevenZipFormat, viaSevenZip } from './via-seven-zip.ts';

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxDepth: 10,
  maxFiles: 10_000,
  maxTotalBytes: 200 * 1024 * 1024,
  maxRatio: 100,
  maxTimeMs: 10_000,
  maxContainerBytes: 50 * 1024 * 1024,
};

/** A member smaller than this is never judged by its ratio (tiny files compress absurdly well). */
const RATIO_FLOOR = 1024 * 1024;

/** Container types the inspector unpacks or at least opens. */
export const CONTAINER_TYPES: ReadonlySet<string> = new Set([
  'zip', 'docx', 'docm', 'dotx', 'dotm', 'xlsx', 'xlsm', 'xltx', 'xltm', 'pptx', 'pptm', 'potx', 'potm', 'ppsx', 'ppsm',
  'vsdx', 'jar', 'apk', 'epub', 'odt', 'ods', 'odp', 'odg', 'xpi', '3mf',
  'gz', 'tar.gz', 'tar', 'tnef', 'rar', '7z', 'iso',
  'cfb', 'doc', 'xls', 'ppt', 'msg', 'msi', // OLE2 compound files: their streams (ole.ts)
  'rtf', // its embedded objects (rtf.ts)
  'one', // OneNote sections: their embedded files (onenote.ts)
  'pdf', // its text, as one member (pdf-text.ts)
  'xml', // its text (Office Open XML parts), as one member (xml-text.ts)
]);

/** Whether a file's first bytes say it may be a container worth keeping whole. */
export function looksLikeContainer(head: Buffer): boolean {
  return (
    head.indexOf('PK\x03\x04', 0, 'latin1') !== -1 || // zip, also behind a prefix (self-extractors, junk)
    (head[0] === 0x4d && head[1] === 0x5a) || // a program: maybe a self-extractor (sfx.ts)
    head.indexOf('PK\x05\x06', 0, 'latin1') === 0 ||
    (head[0] === 0x1f && head[1] === 0x8b) ||
    head.indexOf('ustar', 257, 'latin1') === 257 ||
    head.indexOf('Rar!\x1a\x07', 0, 'latin1') === 0 ||
    head.indexOf('7z\xbc\xaf\x27\x1c', 0, 'latin1') === 0 ||
    (head.length >= 4 && head.readUInt32LE(0) === 0x223e9f78) || // TNEF
    head.indexOf('\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1', 0, 'latin1') === 0 || // OLE2 compound file
    head.subarray(0, ONENOTE_MAGIC.length).equals(ONENOTE_MAGIC) || // a OneNote section (its embedded files)
    /^\s*\{\\rt/.test(head.toString('latin1', 0, 64)) || // RTF (its \objdata objects)
    head.indexOf('CD001', 0x8001, 'latin1') === 0x8001 || // ISO 9660 (first descriptor at sector 16)
    sevenZipFormat(head) !== null ||
    givesText(head)
  );
}

/**
 * Whether a container too large to keep is worth an ARCHIVE_TOO_LARGE: not for text kept for
 * its text (PDF, XML), and not for a program that shows no sign of an archive (a zip signature
 * in its first bytes or a zip's end record in its last): programs are kept only in case they
 * are self-extractors, and a large one that is not must not become "unscannable".
 */
export function tooLargeMatters(head: Buffer, tail: Buffer): boolean {
  if (givesText(head)) return false;
  if (head[0] === 0x4d && head[1] === 0x5a) return head.indexOf('PK\x03\x04', 0, 'latin1') !== -1 || tail.indexOf('PK\x05\x06', 0, 'latin1') !== -1;
  return true;
}

/**
 * A PDF (readers accept junk before its header) or an XML file: kept to extract its text, not
 * an archive, so being too large to keep is no archive-limit verdict.
 */
export function givesText(head: Buffer): boolean {
  return head.subarray(0, 1024).indexOf('%PDF-', 0, 'latin1') !== -1 || /^(?:\ufeff)?\s*(?:<\?xml\b|<xdp:xdp\b)/.test(head.toString('utf8', 0, 64));
}

/** Windows programs, kept whole (within the archive budget) to look for an appended archive. */
const PROGRAMS: ReadonlySet<string> = new Set(['exe', 'dll']);

/** Readers configured at run time (7z through 7-Zip), by container type; they win over the built-in ones. */
export type ContainerReaders = Readonly<Partial<Record<string, ContainerReader>>>;

const READERS: Readonly<Record<string, ContainerReader>> = {
  gz: unpackGzip,
  'tar.gz': unpackGzip,
  tar: unpackTar,
  tnef: unpackTnef,
  rar: inspectRar,
  '7z': inspectSevenZip,
  iso: unpackIso,
  cfb: unpackOle,
  doc: unpackOle,
  xls: unpackOle,
  ppt: unpackOle,
  msg: unpackOle,
  msi: unpackOle,
  rtf: unpackRtf,
  one: unpackOneNote,
  pdf: extractPdfText,
  xml: extractXmlText,
};

/**
 * The reader for a container of this type; a file of another type that holds a zip (an SFX
 * executable, a zip behind junk bytes) is read as the zip that unzip tools find in it.
 */
export function readerFor(type: string, bytes: Buffer, extra: ContainerReaders = {}): ContainerReader | null {
  if (CONTAINER_TYPES.has(type)) return extra[type] ?? READERS[type] ?? unpackZip;
  // A program may be a self-extractor: a zip, 7z or RAR after the stub, at any offset (sfx.ts).
  if (PROGRAMS.has(type)) return unpackExecutable(extra);
  // ar and .deb natively (7-Zip shows a .deb as its data.tar only: ar.ts).
  if (bytes.subarray(0, AR_MAGIC.length).equals(AR_MAGIC)) return unpackAr;
  // Formats 7-Zip opens (via-seven-zip.ts): never typed and passed without a word.
  if (sevenZipFormat(bytes)) return extra[VIA_SEVEN_ZIP] ?? viaSevenZip(null);
  return bytes.indexOf('PK\x03\x04', 0, 'latin1') !== -1 ? unpackZip : null;
}

/**
 * A second reading of a container that is not a zip: a complete zip whose end record closes
 * it (a zip appended to a tar, a gzip, a RAR, a 7z, a PDF — a polyglot) is what unzip,
 * Python's zipfile and Windows' Explorer open, since they look for the end record from the
 * end; so its members are read too, beside what the container's own reader found.
 */
export async function zipReadingToo(type: string, reader: ContainerReader, bytes: Buffer, ctx: UnpackContext): Promise<void> {
  if (reader === unpackZip || PROGRAMS.has(type) || ctx.stopped) return;
  const from = Math.max(0, bytes.length - 22 - 0xffff);
  if (bytes.lastIndexOf('PK\x05\x06', bytes.length - 22, 'latin1') < from) return;
  await unpackZip(bytes, Object.create(ctx, { embedded: { value: true } }) as UnpackContext);
}

/** The key of ContainerReaders for the formats opened through 7-Zip. */
export const VIA_SEVEN_ZIP = 'via-7-zip';
/** The key of ContainerReaders for zip members in methods only 7-Zip decodes. */
export const ZIP_BY_SEVEN_ZIP = 'zip-by-7-zip';

/**
 * The per-message budget. One instance is shared by every container of a message, so ten
 * zips of 100 MB each are stopped by the same total as one of 1 GB.
 */
export class ArchiveBudget {
  #files = 0;
  #bytes = 0;
  #stopped: AnomalyName | null = null;
  #started: number | null = null;

  constructor(readonly limits: ArchiveLimits, private readonly report: (name: AnomalyName, where: string, detail: string) => void) {}

  get stopped(): boolean {
    return this.#stopped !== null;
  }

  /** Starts the wall clock at the first container (not at the message's first byte). */
  start(): void {
    this.#started ??= performance.now();
  }

  #stop(name: AnomalyName, where: string, detail: string): false {
    if (this.#stopped === null) {
      this.#stopped = name;
      this.report(name, where, detail);
    }
    return false;
  }

  #timeLeft(where: string): boolean {
    if (this.#started !== null && performance.now() - this.#started > this.limits.maxTimeMs) {
      return this.#stop('ARCHIVE_TIME_EXCEEDED', where, `limit ${this.limits.maxTimeMs} ms`);
    }
    return true;
  }

  /** Most bytes one member of `packed` bytes may still produce before a limit is hit. */
  allowance(packed: number): number {
    const total = Math.max(0, this.limits.maxTotalBytes - this.#bytes);
    const ratio = Math.max(RATIO_FLOOR, Math.max(packed, 1) * this.limits.maxRatio);
    return Math.min(total, ratio);
  }

  /** Count one more member. */
  file(where: string): boolean {
    if (this.#stopped) return false;
    if (++this.#files > this.limits.maxFiles) return this.#stop('ARCHIVE_FILES_EXCEEDED', where, `limit ${this.limits.maxFiles}`);
    return this.#timeLeft(where);
  }

  /** Count unpacked bytes of a member that has produced `memberOut` from `packed` so far. */
  bytes(n: number, memberOut: number, packed: number, where: string): boolean {
    if (this.#stopped) return false;
    this.#bytes += n;
    if (this.#bytes > this.limits.maxTotalBytes) return this.#stop('ARCHIVE_SIZE_EXCEEDED', where, `limit ${this.limits.maxTotalBytes} bytes`);
    if (memberOut > RATIO_FLOOR && memberOut > Math.max(packed, 1) * this.limits.maxRatio) {
      return this.#stop('ARCHIVE_RATIO_EXCEEDED', where, `${packed} bytes expanding past ${memberOut} (limit ${this.limits.maxRatio}:1)`);
    }
    return this.#timeLeft(where);
  }
}

/** Members packed smaller than this are inflated synchronously (a thread-pool round trip each would cost more). */
const SYNC_INFLATE_MAX = 64 * 1024;

/**
 * Feed `packed` through zlib into `sink`, stopping at the first budget violation. Small
 * members are inflated in one synchronous call whose output is capped (maxOutputLength) at
 * what the budget allows, so a small bomb is cut at the same point as a large one.
 */
export async function inflateInto(
  kind: 'raw' | 'gzip',
  packed: Buffer,
  sink: MemberSink,
  budget: ArchiveBudget,
  where: string,
  used?: { consumed: number },
): Promise<'ok' | 'limit' | 'corrupt'> {
  if (packed.length <= SYNC_INFLATE_MAX) {
    const cap = budget.allowance(packed.length);
    let out: Buffer;
    try {
      if (kind === 'raw') {
        const r = inflateRawSync(packed, { maxOutputLength: cap + 1, info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
        out = r.buffer;
        if (used) used.consumed = r.engine.bytesWritten;
      } else out = gunzipSync(packed, { maxOutputLength: cap + 1 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        budget.bytes(cap + 1, cap + 1, packed.length, where); // raises the limit that was hit
        return 'limit';
      }
      return 'corrupt';
    }
    if (!budget.bytes(out.length, out.length, packed.length, where)) return 'limit';
    sink.write(out);
    return 'ok';
  }
  return inflateStreaming(kind, packed, sink, budget, where, used);
}

function inflateStreaming(
  kind: 'raw' | 'gzip',
  packed: Buffer,
  sink: MemberSink,
  budget: ArchiveBudget,
  where: string,
  used?: { consumed: number },
): Promise<'ok' | 'limit' | 'corrupt'> {
  const z: InflateRaw | Gunzip = kind === 'raw' ? createInflateRaw() : createGunzip();
  return new Promise((resolve) => {
    let out = 0;
    let settled = false;
    const finish = (r: 'ok' | 'limit' | 'corrupt'): void => {
      if (settled) return;
      settled = true;
      z.removeAllListeners('data');
      z.destroy();
      resolve(r);
    };
    z.on('data', (chunk: Buffer) => {
      if (settled) return;
      out += chunk.length;
      if (!budget.bytes(chunk.length, out, packed.length, where)) return finish('limit');
      sink.write(chunk);
    });
    z.on('end', () => {
      if (used) used.consumed = z.bytesWritten;
      finish('ok');
    });
    z.on('error', () => finish('corrupt'));
    z.end(packed);
  });
}

export type { ArchiveLimits, ContainerReader, MemberSink, UnpackContext, UnpackOutcome } from './types.ts';
export { cleanMemberName } from './types.ts';
