/**
 * The SQLite log store (the embedded default): `logs.sqlite` in the data directory, WAL mode,
 * a schema version and forward-only migrations from the first release on, so an upgrade never
 * needs the admin to delete their logs.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LogRecord, LogStore, ThreatRecord, TrafficRecord } from './records.ts';

/** Each entry upgrades the schema by one version; never edit a released entry, append. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE traffic (
     id INTEGER PRIMARY KEY,
     time TEXT NOT NULL, session_id TEXT NOT NULL, transaction_id TEXT NOT NULL,
     listener TEXT NOT NULL, client TEXT NOT NULL, server TEXT NOT NULL, helo TEXT NOT NULL,
     mail_from TEXT NOT NULL, rcpt_to TEXT NOT NULL, size INTEGER NOT NULL,
     message_id TEXT NOT NULL, subject TEXT NOT NULL, forwarding TEXT NOT NULL,
     rule TEXT NOT NULL, profile TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL,
     upstream_reply TEXT NOT NULL, client_reply TEXT NOT NULL, duration_ms INTEGER NOT NULL,
     events TEXT NOT NULL);
   CREATE INDEX traffic_time ON traffic(time);
   CREATE INDEX traffic_tx ON traffic(transaction_id);
   CREATE TABLE threats (
     id INTEGER PRIMARY KEY,
     time TEXT NOT NULL, session_id TEXT NOT NULL, transaction_id TEXT NOT NULL,
     listener TEXT NOT NULL, client TEXT NOT NULL, server TEXT NOT NULL,
     mail_from TEXT NOT NULL, rcpt_to TEXT NOT NULL,
     threat TEXT NOT NULL, threat_id TEXT NOT NULL, severity TEXT NOT NULL, engine TEXT NOT NULL,
     signature TEXT NOT NULL, file_name TEXT NOT NULL, file_path TEXT NOT NULL,
     declared_type TEXT NOT NULL, detected_type TEXT NOT NULL, sha256 TEXT NOT NULL,
     size INTEGER NOT NULL, rule TEXT NOT NULL, profile TEXT NOT NULL, action TEXT NOT NULL,
     deciding INTEGER NOT NULL, direction TEXT NOT NULL);
   CREATE INDEX threats_time ON threats(time);
   CREATE INDEX threats_tx ON threats(transaction_id);`,
  // 2: what the file's name and content say about it (type-mismatch, double-extension, …).
  `ALTER TABLE threats ADD COLUMN file_flags TEXT NOT NULL DEFAULT '[]';`,
  // 3: the analysis verdict store (src/inspect/engines/analysis/verdict-store.ts).
  `CREATE TABLE verdicts (
     sha256 TEXT PRIMARY KEY, verdict TEXT NOT NULL, score INTEGER NOT NULL, reasons TEXT NOT NULL,
     analyzers TEXT NOT NULL, source TEXT NOT NULL, file_type TEXT NOT NULL, file_name TEXT NOT NULL,
     first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, seen INTEGER NOT NULL);
   CREATE INDEX verdicts_last_seen ON verdicts(last_seen);`,
  // 4: where each judged file went: one row per message it was in (verdict-store.ts).
  `CREATE TABLE sightings (
     id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, time TEXT NOT NULL, transaction_id TEXT NOT NULL,
     message_id TEXT NOT NULL, mail_from TEXT NOT NULL, rcpt_to TEXT NOT NULL, file_path TEXT NOT NULL,
     action TEXT NOT NULL, delivered INTEGER NOT NULL);
   CREATE INDEX sightings_sha256 ON sightings(sha256, time);`,
];

export class SqliteLogStore implements LogStore {
  readonly #db: Database.Database;
  readonly #insertTraffic: Database.Statement;
  readonly #insertThreat: Database.Statement;
  readonly #inTransaction: (records: readonly LogRecord[]) => void;

  /**
   * @param opts.lockWaitMs longest wait for another process's lock, per write (default 2 s: the
   *   CLI can wait; the gateway sets log-database.lock-wait)
   * @param opts.maxBytes the database grows no further (SQLite max_page_count); 0: no limit
   */
  constructor(dataDir: string, opts: { readonly?: boolean; lockWaitMs?: number; maxBytes?: number } = {}) {
    if (!opts.readonly) mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    const file = join(dataDir, 'logs.sqlite');
    this.#db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    if (!opts.readonly) {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('busy_timeout = 2000'); // a migration by another process may take a moment
      migrate(this.#db);
      this.#db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.lockWaitMs ?? 2000))}`);
      if (opts.maxBytes) {
        const page = this.#db.pragma('page_size', { simple: true }) as number;
        this.#db.pragma(`max_page_count = ${Math.max(1, Math.ceil(opts.maxBytes / page))}`);
      }
    }
    this.#insertTraffic = this.#db.prepare(
      `INSERT INTO traffic (time, session_id, transaction_id, listener, client, server, helo, mail_from, rcpt_to,
         size, message_id, subject, forwarding, rule, profile, action, reason, upstream_reply, client_reply,
         duration_ms, events)
       VALUES (@time, @sessionId, @transactionId, @listener, @client, @server, @helo, @mailFrom, @rcptTo,
         @size, @messageId, @subject, @forwarding, @rule, @profile, @action, @reason, @upstreamReply, @clientReply,
         @durationMs, @events)`,
    );
    this.#insertThreat = this.#db.prepare(
      `INSERT INTO threats (time, session_id, transaction_id, listener, client, server, mail_from, rcpt_to,
         threat, threat_id, severity, engine, signature, file_name, file_path, declared_type, detected_type,
         file_flags, sha256, size, rule, profile, action, deciding, direction)
       VALUES (@time, @sessionId, @transactionId, @listener, @client, @server, @mailFrom, @rcptTo,
         @threat, @threatId, @severity, @engine, @signature, @fileName, @filePath, @declaredType, @detectedType,
         @fileFlags, @sha256, @size, @rule, @profile, @action, @deciding, @direction)`,
    );
    this.#inTransaction = this.#db.transaction((records: readonly LogRecord[]) => {
      for (const x of records) {
        if (x.kind === 'traffic') this.addTraffic(x.r);
        else this.addThreat(x.r);
      }
    });
  }

  addTraffic(r: TrafficRecord): void {
    this.#insertTraffic.run({ ...r, rcptTo: JSON.stringify(r.rcptTo), events: JSON.stringify(r.events) });
  }

  addThreat(r: ThreatRecord): void {
    this.#insertThreat.run({ ...r, rcptTo: JSON.stringify(r.rcptTo), fileFlags: JSON.stringify(r.fileFlags), deciding: r.deciding ? 1 : 0 });
  }

  /** One transaction for the lot: a commit per batch, not per record. */
  addBatch(records: readonly LogRecord[]): void {
    this.#inTransaction(records);
  }

  listTraffic(limit: number): TrafficRecord[] {
    const rows = this.#db.prepare(`SELECT * FROM traffic ORDER BY id DESC LIMIT ?`).all(limit) as Record<string, unknown>[];
    return rows.reverse().map((row) => ({
      ...(camel(row) as unknown as TrafficRecord),
      rcptTo: JSON.parse(row.rcpt_to as string) as string[],
      events: JSON.parse(row.events as string) as string[],
    }));
  }

  listThreats(limit: number): ThreatRecord[] {
    const rows = this.#db.prepare(`SELECT * FROM threats ORDER BY id DESC LIMIT ?`).all(limit) as Record<string, unknown>[];
    return rows.reverse().map((row) => ({
      ...(camel(row) as unknown as ThreatRecord),
      rcptTo: JSON.parse(row.rcpt_to as string) as string[],
      fileFlags: JSON.parse(row.file_flags as string) as string[],
      deciding: row.deciding === 1,
    }));
  }

  close(): void {
    this.#db.close();
  }
}

/** Bring a database to the current schema (each step in a transaction); shared by every store. */
export function migrate(db: Database.Database): void {
  const version = (): number => db.pragma('user_version', { simple: true }) as number;
  if (version() > MIGRATIONS.length) {
    throw new Error(`logs database schema version ${version()} is newer than this smtpwall (${MIGRATIONS.length})`);
  }
  // Each step re-reads the version under a write lock: several processes (workers, the CLI)
  // may open the database at once, and only one of them may apply a step.
  for (let v = 0; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      if (version() !== v) return;
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

function camel(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === 'id') continue;
    out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = v;
  }
  return out;
}
