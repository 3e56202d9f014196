/**
 * The inspector: one message in, findings out. It reads the content once, as it streams, and
 * fans it out to the engines twice over: the raw message as one object, and every decoded MIME
 * leaf as a file of its own (hashed once, typed by its first bytes).
 *
 * Contract: `begin()` returns a MessageScan; `write` it the dot-unstuffed content in any
 * chunking (synchronously: the CPU cost is paid where the bytes arrive, so backpressure on the
 * client covers inspection too); `end(deadlineMs)` resolves with all findings, files and
 * anomaly events, or rejects with a typed error (engine failure, deadline) that the policy
 * turns into its on-error action. It never touches a socket.
 */

import { createHash, type Hash } from 'node:crypto';
import { ScanTimeoutError } from '../errors.ts';
import type { AnomalyEvent } from '../events.ts';
import type { Engine, EngineScan } from './engines/engine.ts';
import { UuExtractor } from './decode/uuencode.ts';
import { detectFileType, SNIFF_BYTES } from './file-type.ts';
import { DEFAULT_MIME_LIMITS, type LeafInfo, type LeafSink, type MimeLimits, MimeWalker } from './mime/walker.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH, type ScanResult } from './types.ts';

export interface InspectorOptions {
  readonly engines: readonly Engine[];
  readonly mime?: MimeLimits;
}

export class Inspector {
  constructor(private readonly opts: InspectorOptions) {}

  begin(): MessageScan {
    return new MessageScan(this.opts.engines, this.opts.mime ?? DEFAULT_MIME_LIMITS);
  }

  /** Scan a whole buffer (files, .eml) with the same pipeline as the gateway. */
  async scanBuffer(bytes: Buffer, asMessage: boolean, deadlineMs: number, name: string | null = null): Promise<ScanResult> {
    if (asMessage) {
      const scan = this.begin();
      scan.write(bytes);
      return scan.end(deadlineMs);
    }
    const sink = new ObjectScan(this.opts.engines, { path: 'file', name, contentType: null, encoding: null });
    sink.write(bytes);
    sink.end();
    const findings = await withDeadline(sink.result(), deadlineMs);
    return { findings, files: [sink.info!], events: [] };
  }
}

export class MessageScan {
  readonly #raw: ObjectScan;
  readonly #leaves: ObjectScan[] = [];
  readonly #events: AnomalyEvent[] = [];
  readonly #walker: MimeWalker;

  constructor(private readonly engines: readonly Engine[], mime: MimeLimits) {
    this.#raw = new ObjectScan(engines, { path: RAW_MESSAGE_PATH, name: null, contentType: 'message/rfc822', encoding: null });
    this.#walker = new MimeWalker(
      {
        onLeaf: (info: LeafInfo): LeafSink => this.#leaf(info),
        onEvent: (e) => this.#events.push(e),
      },
      mime,
    );
  }

  /** A decoded file; text parts are also searched for uuencoded files inside them. */
  #leaf(info: LeafInfo): LeafSink {
    const leaf = new ObjectScan(this.engines, info);
    this.#leaves.push(leaf);
    const textLike = info.contentType === null || info.contentType.startsWith('text/');
    if (!textLike) return leaf;
    let n = 0;
    const uu = new UuExtractor((name) => this.#leaf({ path: `${info.path}/uu${++n}`, name, contentType: null, encoding: 'uuencode' }));
    return {
      write: (chunk) => {
        leaf.write(chunk);
        uu.write(chunk);
      },
      end: () => {
        uu.end();
        leaf.end();
      },
    };
  }

  write(chunk: Buffer): void {
    this.#raw.write(chunk);
    this.#walker.write(chunk);
  }

  async end(deadlineMs: number): Promise<ScanResult> {
    this.#walker.end();
    this.#raw.end();
    const all = [this.#raw, ...this.#leaves];
    const results = await withDeadline(Promise.all(all.map((o) => o.result())), deadlineMs);
    return { findings: dedupe(results.flat()), files: all.map((o) => o.info!), events: this.#events };
  }
}

/** One object (raw message or decoded leaf): hashes, type sniffing, and each engine's scan. */
class ObjectScan implements LeafSink {
  readonly #sha256: Hash = createHash('sha256');
  readonly #md5: Hash = createHash('md5');
  readonly #scans: EngineScan[];
  #head: Buffer[] = [];
  #headBytes = 0;
  #size = 0;
  info: FileInfo | null = null;
  #result: Promise<Finding[]> | null = null;

  constructor(engines: readonly Engine[], private readonly leaf: LeafInfo) {
    this.#scans = engines.filter((e) => e.wants?.(leaf.path) ?? true).map((e) => e.open());
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#size += chunk.length;
    this.#sha256.update(chunk);
    this.#md5.update(chunk);
    if (this.#headBytes < SNIFF_BYTES) {
      const piece = chunk.subarray(0, SNIFF_BYTES - this.#headBytes);
      this.#head.push(Buffer.from(piece));
      this.#headBytes += piece.length;
    }
    for (const s of this.#scans) s.write(chunk);
  }

  end(): void {
    const info: FileInfo = {
      path: this.leaf.path,
      name: this.leaf.name,
      declaredType: this.leaf.contentType,
      detectedType: detectFileType(Buffer.concat(this.#head)),
      size: this.#size,
      sha256: this.#sha256.digest('hex'),
      md5: this.#md5.digest('hex'),
      encoding: this.leaf.encoding,
    };
    this.info = info;
    this.#head = [];
    this.#result = Promise.all(this.#scans.map((s) => s.end(info))).then((r) => r.flat());
  }

  result(): Promise<Finding[]> {
    if (!this.#result) throw new Error('ObjectScan.result() before end()');
    return this.#result;
  }
}

/**
 * The raw message and a 7bit leaf often hold the same match. Report each threat once per
 * file, and a raw-message finding only when no decoded file explains it (the more precise
 * location is the better explanation).
 */
function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  const inLeaves = new Set<string>();
  for (const f of findings) if (f.file.path !== RAW_MESSAGE_PATH) inLeaves.add(`${f.engine}\0${f.threat}`);
  return findings.filter((f) => {
    if (f.file.path === RAW_MESSAGE_PATH && inLeaves.has(`${f.engine}\0${f.threat}`)) return false;
    const key = `${f.engine}\0${f.threat}\0${f.file.path}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ScanTimeoutError('inspector', ms)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
