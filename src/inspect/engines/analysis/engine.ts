/**
 * Analysis as an engine in the inspection pipeline: each decoded file or archive member whose
 * type an analyzer reads is kept (bounded) and judged at its end — from the verdict store when
 * the file is known, else by the analyzers, and the verdict stored. Grayware, phishing and
 * malicious verdicts become findings of engine `analysis`; the antivirus profile's
 * `analysis-action` (malicious, phishing) and `grayware-action` apply to them.
 *
 * Memory: bytes are kept only for objects whose first bytes may be an analyzed type, up to
 * MAX_BYTES (larger files are not analyzed, and say so in the log via their missing verdict).
 * The raw message is never analyzed (its parts are).
 */

import type { Engine, EngineScan } from '../engine.ts';
import { threatIdFor } from '../engine.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH } from '../../types.ts';
import { ONENOTE_MAGIC } from '../../archive/onenote.ts';
import { typeForWindows } from '../../file-flags.ts';
import { identifyText, isTextLike } from '../../file-type.ts';
import { ANALYZED_TYPES, analyze, analyzersFor } from './analyze.ts';
import { type AnalysisVerdict, verdictOf } from './types.ts';
import type { AnalysisPool } from './pool.ts';
import type { StoredVerdict, VerdictStore } from './verdict-store.ts';
import type { YaraRules } from './yara.ts';

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export const ANALYSIS_ENGINE = 'analysis';
/** Threat names of files whose verdict was not ready within the hold time. */
export const PENDING_THREAT_PREFIX = 'Analysis.Pending.';
const MAX_BYTES = 10 * 1024 * 1024;
/** Bytes looked at to decide whether a file may be worth keeping. */
const PEEK = 4096;

/** A verdict that arrived after its message went on (hold time exceeded): for retro-alerts. */
export type LateVerdictListener = (file: FileInfo, finding: Finding | null) => void;

export interface AnalysisOptions {
  /** Admin rules, run on every file (which then all keep their bytes, bounded). */
  readonly yara?: YaraRules | null;
  /**
   * Longest wait for a verdict at the end of the message (hold mode); past it the file gets an
   * `Analysis.Pending` finding (the profile's `analysis-on-timeout` decides) and the analysis
   * goes on in the background. Infinity: always wait.
   */
  readonly holdMs?: number;
  /** Worker threads for the analyzers; absent: they run on the calling thread (CLI, tests). */
  readonly pool?: AnalysisPool | null;
  /**
   * The verdict store could not be written (locked, full): the verdict still counts for this
   * message — only remembering it failed — and is reported here. Absent: the error is thrown.
   */
  readonly onStoreError?: (err: unknown) => void;
}

export class AnalysisEngine implements Engine {
  readonly name = ANALYSIS_ENGINE;
  readonly #late = new Set<LateVerdictListener>();

  constructor(private readonly store: VerdictStore | null, private readonly opts: AnalysisOptions = {}) {}

  wants(path: string): boolean {
    return path !== RAW_MESSAGE_PATH;
  }

  open(_path: string, names: ReadonlyArray<string | null> = []): EngineScan {
    const { onStoreError } = this.opts;
    const remember = (write: () => void): void => {
      if (!onStoreError) return write();
      try {
        write();
      } catch (err) {
        onStoreError(err);
      }
    };
    // A text Windows runs by its name (a .js, a .hta) is kept whatever its first bytes show.
    const runByName = typeForWindows('text', names) !== 'text';
    return new AnalysisScan(this.store, remember, this.opts.yara ?? null, this.opts.pool ?? null, this.opts.holdMs ?? Infinity, (file, f) => {
      for (const l of this.#late) l(file, f);
    }, runByName);
  }

  /** Whether a file is one this engine judges (by its type; every file when YARA rules run). */
  judges(file: FileInfo): boolean {
    return judged(file, this.opts.yara ?? null);
  }

  /** Let the files in analysis finish, then stop the worker threads. */
  async close(): Promise<void> {
    await this.opts.pool?.close();
  }

  /** Be told of verdicts that arrive after the hold time (the gateway writes retro-alerts). */
  onLateVerdict(listener: LateVerdictListener): () => void {
    this.#late.add(listener);
    return () => this.#late.delete(listener);
  }
}

/** Files the engine judges: an analyzer reads their type, or YARA rules read every file. */
function judged(file: FileInfo, yara: YaraRules | null): boolean {
  return file.size > 0 && (yara !== null || ANALYZED_TYPES.has(file.detectedType));
}

/**
 * Whether a file starting with these bytes can be of an analyzed type: magic numbers for
 * binaries, the text detector for scripts and markup. Plain text and media are not kept
 * (a 20 MB text attachment must not cost 20 MB of memory for nothing).
 */
const ZEROS = Buffer.alloc(512);
const PDF_MAGIC = Buffer.from('%PDF-', 'latin1');

function mayBeAnalyzed(head: Buffer): boolean {
  const s = head.toString('latin1', 0, 8);
  if (s.startsWith('MZ') || s.startsWith('\xd0\xcf\x11\xe0') || s.startsWith('L\0\0\0') || s.startsWith('conectix') || s.startsWith('vhdxfile')) return true;
  if (head.subarray(0, ONENOTE_MAGIC.length).equals(ONENOTE_MAGIC)) return true; // a OneNote section
  if (head.indexOf(PDF_MAGIC) !== -1) return true;
  // ISO and raw disk images: the first 32 KiB are mostly zeros (system area, boot sector).
  if (head.length >= 512 && ((head[0] === 0 && head.compare(ZEROS, 0, 512, 0, 512) === 0) || (head[510] === 0x55 && head[511] === 0xaa))) return true;
  return isTextLike(head) && ANALYZED_TYPES.has(identifyText(head));
}

class AnalysisScan implements EngineScan {
  #chunks: Buffer[] | null = [];
  #bytes = 0;
  #decided = false;

  constructor(
    private readonly store: VerdictStore | null,
    /** Writes to the store go through here (store failures are reported, not fatal). */
    private readonly remember: (write: () => void) => void,
    private readonly yara: YaraRules | null,
    private readonly pool: AnalysisPool | null,
    private readonly holdMs: number,
    private readonly late: LateVerdictListener,
    /** Kept whatever its first bytes are (its name says Windows runs it: file-flags.ts). */
    private readonly keepAnyway = false,
  ) {}

  write(chunk: Buffer): void {
    if (this.#chunks === null) return;
    // A first piece long enough to decide on is judged before any copy: most files (text,
    // media) are never kept, and a small message's one part should not be copied for nothing.
    if (!this.#decided && this.#bytes === 0 && chunk.length >= PEEK && !this.yara && !this.keepAnyway) {
      this.#decided = true;
      if (!mayBeAnalyzed(chunk.subarray(0, PEEK))) {
        this.#chunks = null;
        return;
      }
    }
    this.#chunks.push(Buffer.from(chunk));
    this.#bytes += chunk.length;
    if (this.#bytes > MAX_BYTES) this.#chunks = null;
    else if (!this.#decided && this.#bytes >= PEEK) this.#decide();
  }

  #decide(): void {
    this.#decided = true;
    if (this.yara || this.keepAnyway) return; // YARA rules look at every file
    if (this.#chunks && !mayBeAnalyzed(Buffer.concat(this.#chunks).subarray(0, PEEK))) this.#chunks = null;
  }

  async end(file: FileInfo): Promise<Finding[]> {
    if (!this.#decided) this.#decide();
    const chunks = this.#chunks;
    this.#chunks = null;
    // An admin's verdict applies to any file, judged type or not, kept for analysis or not.
    const manual = this.store?.manual(file.sha256) ?? null;
    if (manual) {
      this.remember(() => this.store!.seen(file.sha256));
      return findingFor(file, manual, ' (known, manual)');
    }
    if (chunks === null || !judged(file, this.yara)) return [];
    const stored = (await this.store?.get(file.sha256)) ?? null;
    const bytes = Buffer.concat(chunks);
    const input = { bytes, detectedType: file.detectedType, name: file.name, flags: file.flags };
    const own = analyzersFor(input);
    const analyzers = [...own, ...(this.yara ? [this.yara.id] : [])];
    // A stored verdict answers when an admin set it, or when the same analyzers (and YARA
    // rules) made it; other analyzers or rules judge the file again.
    const known = stored && (stored.source === 'manual' || sameList(stored.analyzers, analyzers)) ? stored : null;
    if (known) {
      this.remember(() => this.store!.seen(file.sha256));
      return findingFor(file, known, ` (known, ${known.source})`);
    }
    const analysis = (async () => {
      // The analyzers in a worker thread and YARA-X in its own threads, side by side.
      // A file only YARA reads (no analyzer applies) costs no copy and no trip to a worker.
      const inWorker = own.length === 0 ? null : this.pool ? this.pool.run(input) : analyze(input);
      const [fromAnalyzers, extra] = await Promise.all([inWorker, this.yara ? this.yara.scan(bytes) : []]);
      const v = verdictOf([...(fromAnalyzers?.indicators ?? []), ...extra], analyzers);
      const store = this.store;
      if (store) this.remember(() => store.put({ sha256: file.sha256, verdict: v.verdict, score: v.score, indicators: v.indicators, analyzers: v.analyzers, fileType: file.detectedType, fileName: file.name ?? '' }));
      return findingFor(file, { verdict: v.verdict, score: v.score, reasons: v.indicators.map((i) => `${i.reason} (+${i.score})`) }, '');
    })();
    if (!Number.isFinite(this.holdMs)) return analysis;
    // Hold mode: wait up to holdMs; a later verdict is reported to the late listener.
    let timer: NodeJS.Timeout | undefined;
    const held = await Promise.race([analysis, new Promise<null>((r) => (timer = setTimeout(() => r(null), this.holdMs)))]);
    clearTimeout(timer);
    if (held !== null) return held;
    analysis.then(
      (f) => this.late(file, f[0] ?? null),
      () => this.late(file, null),
    );
    const threat = `${PENDING_THREAT_PREFIX}${file.detectedType}`;
    return [{ verdict: 'pending', basis: 'analysis', engine: ANALYSIS_ENGINE, threat, threatId: threatIdFor(ANALYSIS_ENGINE, threat), signature: `analysis not finished within the hold time (${this.holdMs} ms)`, severity: 'medium', file }];
  }
}

/**
 * The finding of a verdict learned elsewhere (another instance's analysis, an admin's verdict
 * there), for a file known only by its hash: for the retro-alerts of this instance's deliveries.
 */
export function findingOfStoredVerdict(v: StoredVerdict): Finding | null {
  const file: FileInfo = { path: '', name: v.fileName || null, declaredType: null, detectedType: v.fileType || 'unknown', flags: [], depth: 0, layers: 0, size: 0, sha256: v.sha256, md5: '', encoding: null };
  return findingFor(file, v, ` (${v.source} verdict from the shared store)`)[0] ?? null;
}

/** The finding for a verdict (none for benign). */
function findingFor(file: FileInfo, verdict: Pick<AnalysisVerdict, 'verdict' | 'score'> & { reasons: readonly string[] }, note: string): Finding[] {
  if (verdict.verdict === 'benign') return [];
  const cls = verdict.verdict[0]!.toUpperCase() + verdict.verdict.slice(1);
  const threat = `Analysis.${cls}.${file.detectedType}`;
  return [
    {
      verdict: verdict.verdict === 'grayware' ? 'grayware' : 'malicious',
      basis: 'analysis',
      engine: ANALYSIS_ENGINE,
      threat,
      threatId: threatIdFor(ANALYSIS_ENGINE, threat),
      signature: `analysis score ${verdict.score}${note}: ${verdict.reasons.join('; ')}`.slice(0, 500),
      severity: verdict.verdict === 'grayware' ? 'low' : 'high',
      file,
    },
  ];
}
