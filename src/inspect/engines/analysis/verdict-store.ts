/**
 * The verdict store: every analyzed file's SHA-256 with its verdict, score, reasons, the
 * analyzers that judged it, when it was first and last seen and how often, and its sightings:
 * each message it was in (Message-ID, transaction, sender, recipients, action, whether it was
 * delivered), so an admin who learns a file is bad can find every mailbox it reached. A known file is
 * answered from here (a repeat never costs a second analysis); a manual override (`smtpwall
 * verdicts set`) wins over analysis. SQLite, in the logs database (one file to back up, and a
 * shared database later lets several gateways share verdicts).
 */

import Database from 'better-sqlite3';
import { openLogDatabase } from '../../../logs/sqlite-store.ts';
import type { Indicator, VerdictClass } from './types.ts';

export interface StoredVerdict {
  readonly sha256: string;
  readonly verdict: VerdictClass;
  readonly score: number;
  readonly reasons: readonly string[];
  readonly analyzers: readonly string[];
  /** `analysis`, or `manual` for an admin's override. */
  readonly source: 'analysis' | 'manual';
  readonly fileType: string;
  readonly fileName: string;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly seen: number;
}

/** One message a judged file was in. */
export interface Sighting {
  readonly time: string;
  readonly transactionId: string;
  readonly messageId: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** Where in the message (`msg/2/invoice.zip/a.exe`). */
  readonly filePath: string;
  /** The transaction's action (allow, alert, block, …). */
  readonly action: string;
  /** The receiving server accepted the message: these recipients got the file. */
  readonly delivered: boolean;
  /** The gateway instance that saw it ('' for sightings recorded before instances were named). */
  readonly instance?: string;
}

/** How stale this process's copy of the manual verdicts may be (SQLite store). */
const MANUAL_REFRESH_MS = 1000;

/** Sightings recorded per message at most (an archive of thousands of files). */
export const MAX_SIGHTINGS_PER_MESSAGE = 100;

/**
 * A verdict store: the embedded SQLite one (below) or the shared PostgreSQL one
 * (shared-store/verdicts.ts). Reads may be answered later (a network round trip); writes
 * never make the caller wait (the shared store queues them in order) except `override`,
 * whose caller (an admin) is told when it holds.
 */
export interface VerdictStore {
  get(sha256: string): StoredVerdict | null | Promise<StoredVerdict | null>;
  /**
   * The manual verdict of a file, answered at once: looked up for every file the inspector
   * extracts, whatever its type (an admin's verdict applies to a text file too).
   */
  manual(sha256: string): StoredVerdict | null;
  /** Record an analysis (never replaces a manual verdict). */
  put(v: { sha256: string; verdict: VerdictClass; score: number; indicators: readonly Indicator[]; analyzers: readonly string[]; fileType: string; fileName: string }): void;
  /** Count a sighting of a known file. */
  seen(sha256: string): void;
  override(sha256: string, verdict: VerdictClass, reason: string): void | Promise<void>;
  list(limit: number): StoredVerdict[] | Promise<StoredVerdict[]>;
  /**
   * Record that these files were in one message: those with a verdict, and those `pending`
   * (still in analysis: their verdict comes later), at most MAX_SIGHTINGS_PER_MESSAGE. Files
   * never judged (plain text, images) are not recorded.
   */
  sighted(files: ReadonlyArray<{ sha256: string; path: string; pending: boolean }>, s: Omit<Sighting, 'filePath'>): void;
  /** The newest sightings of a file, newest first. */
  sightings(sha256: string, limit: number): Sighting[] | Promise<Sighting[]>;
  close(): void | Promise<void>;
}

/** The score a manual verdict carries. */
export function manualScore(verdict: VerdictClass): number {
  return verdict === 'malicious' ? 100 : verdict === 'benign' ? 0 : 50;
}

export class SqliteVerdictStore implements VerdictStore {
  readonly #db: Database.Database;
  #insertSighting: Database.Statement | null = null;
  readonly #allManual: Database.Statement;
  readonly #instance: string;
  /** The manual verdicts, read again at most once per MANUAL_REFRESH_MS (not per file). */
  #manual = new Map<string, StoredVerdict>();
  #manualRead = 0;

  /**
   * @param opts.lockWaitMs longest wait for another process's lock per write (default 2 s)
   * @param opts.instance named on the sightings it records
   */
  constructor(dataDir: string, opts: { lockWaitMs?: number; instance?: string } = {}) {
    this.#instance = opts.instance ?? '';
    this.#db = openLogDatabase(dataDir, opts.lockWaitMs === undefined ? {} : { lockWaitMs: opts.lockWaitMs });
    this.#allManual = this.#db.prepare("SELECT * FROM verdicts WHERE source = 'manual'");
  }

  /**
   * Looked up for every file: answered from memory. Another process's `verdicts set` (the
   * CLI, another worker) is seen within MANUAL_REFRESH_MS; this process's own at once.
   */
  manual(sha256: string): StoredVerdict | null {
    const now = Date.now();
    if (now - this.#manualRead >= MANUAL_REFRESH_MS) {
      this.#manualRead = now;
      this.#manual = new Map((this.#allManual.all() as Record<string, unknown>[]).map((r) => [r.sha256 as string, toVerdict(r)]));
    }
    return this.#manual.get(sha256) ?? null;
  }

  get(sha256: string): StoredVerdict | null {
    const row = this.#db.prepare('SELECT * FROM verdicts WHERE sha256 = ?').get(sha256) as Record<string, unknown> | undefined;
    return row ? toVerdict(row) : null;
  }

  put(v: Parameters<VerdictStore['put']>[0]): void {
    const now = new Date().toISOString();
    this.#db
      .prepare(
        `INSERT INTO verdicts (sha256, verdict, score, reasons, analyzers, source, file_type, file_name, first_seen, last_seen, seen)
         VALUES (@sha256, @verdict, @score, @reasons, @analyzers, 'analysis', @fileType, @fileName, @now, @now, 1)
         ON CONFLICT(sha256) DO UPDATE SET last_seen = @now, seen = seen + 1,
           verdict = CASE WHEN source = 'manual' THEN verdict ELSE @verdict END,
           score = CASE WHEN source = 'manual' THEN score ELSE @score END,
           reasons = CASE WHEN source = 'manual' THEN reasons ELSE @reasons END,
           analyzers = @analyzers`,
      )
      .run({ ...v, reasons: JSON.stringify(v.indicators.map((i) => `${i.reason} (+${i.score})`)), analyzers: JSON.stringify(v.analyzers), now });
  }

  seen(sha256: string): void {
    this.#db.prepare('UPDATE verdicts SET last_seen = ?, seen = seen + 1 WHERE sha256 = ?').run(new Date().toISOString(), sha256);
  }

  override(sha256: string, verdict: VerdictClass, reason: string): void {
    const now = new Date().toISOString();
    this.#db
      .prepare(
        `INSERT INTO verdicts (sha256, verdict, score, reasons, analyzers, source, file_type, file_name, first_seen, last_seen, seen)
         VALUES (@sha256, @verdict, @score, @reasons, '[]', 'manual', '', '', @now, @now, 0)
         ON CONFLICT(sha256) DO UPDATE SET verdict = @verdict, score = @score, reasons = @reasons, source = 'manual'`,
      )
      .run({ sha256, verdict, score: manualScore(verdict), reasons: JSON.stringify([`manual: ${reason}`]), now });
    this.#manualRead = 0; // this process applies its own verdict at the next file
  }

  list(limit: number): StoredVerdict[] {
    return (this.#db.prepare('SELECT * FROM verdicts ORDER BY last_seen DESC LIMIT ?').all(limit) as Record<string, unknown>[]).map(toVerdict);
  }

  sighted(files: ReadonlyArray<{ sha256: string; path: string; pending: boolean }>, s: Omit<Sighting, 'filePath'>): void {
    if (files.length === 0) return;
    const insert = (this.#insertSighting ??= this.#db.prepare(
      `INSERT INTO sightings (sha256, time, transaction_id, message_id, mail_from, rcpt_to, file_path, action, delivered, instance)
       SELECT @sha256, @time, @transactionId, @messageId, @mailFrom, @rcptTo, @filePath, @action, @delivered, @instance
       WHERE @pending = 1 OR EXISTS (SELECT 1 FROM verdicts WHERE sha256 = @sha256)`,
    ));
    const row = { ...s, rcptTo: JSON.stringify(s.rcptTo), delivered: s.delivered ? 1 : 0, instance: this.#instance };
    this.#db.transaction(() => {
      for (const f of files.slice(0, MAX_SIGHTINGS_PER_MESSAGE)) insert.run({ ...row, sha256: f.sha256, filePath: f.path, pending: f.pending ? 1 : 0 });
    })();
  }

  sightings(sha256: string, limit: number): Sighting[] {
    const rows = this.#db.prepare('SELECT * FROM sightings WHERE sha256 = ? ORDER BY time DESC, id DESC LIMIT ?').all(sha256, limit) as Record<string, unknown>[];
    return rows.map((r) => ({
      time: r.time as string,
      transactionId: r.transaction_id as string,
      messageId: r.message_id as string,
      mailFrom: r.mail_from as string,
      rcptTo: JSON.parse(r.rcpt_to as string) as string[],
      filePath: r.file_path as string,
      action: r.action as string,
      delivered: r.delivered === 1,
      instance: (r.instance as string | undefined) ?? '',
    }));
  }

  close(): void {
    this.#db.close();
  }
}

export function toVerdict(r: Record<string, unknown>): StoredVerdict {
  return {
    sha256: r.sha256 as string,
    verdict: r.verdict as VerdictClass,
    score: r.score as number,
    // SQLite keeps the lists as JSON text; PostgreSQL's JSONB arrives parsed.
    reasons: (typeof r.reasons === 'string' ? JSON.parse(r.reasons) : r.reasons) as string[],
    analyzers: (typeof r.analyzers === 'string' ? JSON.parse(r.analyzers) : r.analyzers) as string[],
    source: r.source as 'analysis' | 'manual',
    fileType: r.file_type as string,
    fileName: r.file_name as string,
    firstSeen: r.first_seen as string,
    lastSeen: r.last_seen as string,
    seen: Number(r.seen),
  };
}
