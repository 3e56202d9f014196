/**
 * The SQLite log store (the embedded default): `logs.sqlite` in the data directory, WAL mode,
 * a schema version and forward-only migrations from the first release on, so an upgrade never
 * needs the admin to delete their logs.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LogRecord, LogStore, ThreatRecord, TrafficRecord } from './records.ts';
import { camel, type LogQuery, type LogReader, type LogStats, logSelect, SQLITE, statsQueries } from './log-query.ts';

export type { LogQuery, LogStats } from './log-query.ts';

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
  // 5: retention deletes sightings by age (logs/retention.ts).
  `CREATE INDEX sightings_time ON sightings(time);`,
  // 6: packet captures of sessions with a threat (logs/capture-store.ts): the events as JSON,
  //    their bytes as one blob.
  `CREATE TABLE captures (
     id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, time TEXT NOT NULL, listener TEXT NOT NULL,
     meta TEXT NOT NULL, data BLOB NOT NULL);
   CREATE INDEX captures_time ON captures(time);`,
  // 7: audit records: every admin action (release, delete, verdict, reload, login failures).
  `CREATE TABLE audit (
     id INTEGER PRIMARY KEY, time TEXT NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
     target TEXT NOT NULL, detail TEXT NOT NULL, client TEXT NOT NULL);
   CREATE INDEX audit_time ON audit(time);`,
  // 8: the gateway instance that wrote each record (`instance:`, default the host name), as
  //    the shared PostgreSQL store has it; rows of earlier versions have ''.
  `ALTER TABLE traffic ADD COLUMN instance TEXT NOT NULL DEFAULT '';
   ALTER TABLE threats ADD COLUMN instance TEXT NOT NULL DEFAULT '';
   ALTER TABLE audit ADD COLUMN instance TEXT NOT NULL DEFAULT '';
   ALTER TABLE sightings ADD COLUMN instance TEXT NOT NULL DEFAULT '';`,
  // 9: the manual verdicts, read once a second by every gateway process (verdict-store.ts).
  `CREATE INDEX verdicts_manual ON verdicts(source) WHERE source = 'manual';`,
];

/** `?, ?, …` for n parameters. */
function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

export class SqliteLogStore implements LogStore {
  readonly #db: Database.Database;
  readonly #insertTraffic: Database.Statement;
  readonly #insertThreat: Database.Statement;
  readonly #inTransaction: (records: readonly LogRecord[]) => void;
  readonly #instance: string;

  /**
   * @param opts.lockWaitMs longest wait for another process's lock, per write (default 2 s: the
   *   CLI can wait; the gateway sets log-database.lock-wait)
   * @param opts.maxBytes the database grows no further (SQLite max_page_count); 0: no limit
   * @param opts.instance named on records that do not name their instance
   */
  constructor(dataDir: string, opts: { readonly?: boolean; lockWaitMs?: number; maxBytes?: number; instance?: string } = {}) {
    this.#db = openLogDatabase(dataDir, opts);
    this.#instance = opts.instance ?? '';
    this.#insertTraffic = this.#db.prepare(
      `INSERT INTO traffic (time, session_id, transaction_id, listener, client, server, helo, mail_from, rcpt_to,
         size, message_id, subject, forwarding, rule, profile, action, reason, upstream_reply, client_reply,
         duration_ms, events, instance)
       VALUES (${placeholders(22)})`,
    );
    this.#insertThreat = this.#db.prepare(
      `INSERT INTO threats (time, session_id, transaction_id, listener, client, server, mail_from, rcpt_to,
         threat, threat_id, severity, engine, signature, file_name, file_path, declared_type, detected_type,
         file_flags, sha256, size, rule, profile, action, deciding, direction, instance)
       VALUES (${placeholders(26)})`,
    );
    this.#inTransaction = this.#db.transaction((records: readonly LogRecord[]) => {
      for (const x of records) {
        if (x.kind === 'traffic') this.addTraffic(x.r);
        else this.addThreat(x.r);
      }
    });
  }

  // Positional parameters, in the columns' order above: binding named ones from an object cost
  // a quarter of the insert's CPU (a record per message).
  addTraffic(r: TrafficRecord): void {
    this.#insertTraffic.run(
      r.time, r.sessionId, r.transactionId, r.listener, r.client, r.server, r.helo, r.mailFrom, JSON.stringify(r.rcptTo),
      r.size, r.messageId, r.subject, r.forwarding, r.rule, r.profile, r.action, r.reason, r.upstreamReply, r.clientReply,
      r.durationMs, JSON.stringify(r.events), r.instance ?? this.#instance,
    );
  }

  addThreat(r: ThreatRecord): void {
    this.#insertThreat.run(
      r.time, r.sessionId, r.transactionId, r.listener, r.client, r.server, r.mailFrom, JSON.stringify(r.rcptTo),
      r.threat, r.threatId, r.severity, r.engine, r.signature, r.fileName, r.filePath, r.declaredType, r.detectedType,
      JSON.stringify(r.fileFlags), r.sha256, r.size, r.rule, r.profile, r.action, r.deciding ? 1 : 0, r.direction, r.instance ?? this.#instance,
    );
  }

  /** One transaction for the lot: a commit per batch, not per record. */
  addBatch(records: readonly LogRecord[]): void {
    this.#inTransaction(records);
  }

  listTraffic(limit: number): TrafficRecord[] {
    return this.queryTraffic({ limit }).map((x) => x.record);
  }

  listThreats(limit: number): ThreatRecord[] {
    return this.queryThreats({ limit }).map((x) => x.record);
  }

  /** Traffic records matching `q`, oldest first, each with its row id (the cursor of `--follow`). */
  queryTraffic(q: LogQuery): Array<{ id: number; record: TrafficRecord }> {
    return this.#query('traffic', q).map((row) => ({
      id: row.id as number,
      record: {
        ...(camel(row) as unknown as TrafficRecord),
        rcptTo: JSON.parse(row.rcpt_to as string) as string[],
        events: JSON.parse(row.events as string) as string[],
      },
    }));
  }

  /** Threat records matching `q`, oldest first, each with its row id. */
  queryThreats(q: LogQuery): Array<{ id: number; record: ThreatRecord }> {
    return this.#query('threats', q).map((row) => ({
      id: row.id as number,
      record: {
        ...(camel(row) as unknown as ThreatRecord),
        rcptTo: JSON.parse(row.rcpt_to as string) as string[],
        fileFlags: JSON.parse(row.file_flags as string) as string[],
        deciding: row.deciding === 1,
      },
    }));
  }

  #query(table: 'traffic' | 'threats', q: LogQuery): Record<string, unknown>[] {
    const { sql, args, reversed } = logSelect(table, q, SQLITE);
    const rows = this.#db.prepare(sql).all(...args) as Record<string, unknown>[];
    return reversed ? rows.reverse() : rows;
  }

  /** Transactions and threat records since `since` (ISO 8601): for `smtpwall status`. */
  countsSince(since: string): { messages: number; stopped: number; threats: number } {
    const t = this.#db.prepare(`SELECT count(*) AS n, sum(action NOT IN ('allow', 'alert')) AS stopped FROM traffic WHERE time >= ?`).get(since) as { n: number; stopped: number | null };
    const x = this.#db.prepare(`SELECT count(*) AS n FROM threats WHERE time >= ?`).get(since) as { n: number };
    return { messages: t.n, stopped: t.stopped ?? 0, threats: x.n };
  }

  /**
   * What the console's dashboard draws: transactions per time bucket by action, threat records
   * per bucket, and the top threats, blocked senders and blocked recipients, all since `since`.
   * A bucket is a prefix of the ISO 8601 time (16 characters: a minute; 15: ten minutes), so
   * SQLite groups on the indexed column with no date arithmetic.
   */
  statsSince(since: string, bucketChars: 15 | 16, top = 10): LogStats {
    const q = statsQueries(SQLITE, bucketChars);
    const all = <T>(sql: string): T => this.#db.prepare(sql).all(since, top) as T;
    const traffic = this.#db.prepare(q.traffic).all(since) as LogStats['traffic'];
    const threats = this.#db.prepare(q.threats).all(since) as LogStats['threats'];
    return { traffic, threats, topThreats: all(q.topThreats), topSenders: all(q.topSenders), topRecipients: all(q.topRecipients) };
  }

  /** The highest row id of a table (0 when empty): where `--follow` starts. */
  lastId(table: 'traffic' | 'threats'): number {
    return ((this.#db.prepare(`SELECT max(id) AS id FROM ${table}`).get() as { id: number | null }).id ?? 0);
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * Open DATA-DIR/logs.sqlite the way every store of it does: WAL (readers never block the
 * gateway's writes), migrated to the current schema unless read-only.
 */
export function openLogDatabase(dataDir: string, opts: { readonly?: boolean; lockWaitMs?: number; maxBytes?: number } = {}): Database.Database {
  if (!opts.readonly) mkdirSync(dataDir, { recursive: true, mode: 0o750 });
  const db = new Database(join(dataDir, 'logs.sqlite'), { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  if (!opts.readonly) {
    try {
      db.pragma(`busy_timeout = ${OPEN_LOCK_WAIT_MS}`); // a migration by another process may take a moment
      whileBusy(OPEN_LOCK_WAIT_MS, () => {
        db.pragma('journal_mode = WAL');
        migrate(db);
      });
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.lockWaitMs ?? 2000))}`);
      if (opts.maxBytes) {
        const page = db.pragma('page_size', { simple: true }) as number;
        db.pragma(`max_page_count = ${Math.max(1, Math.ceil(opts.maxBytes / page))}`);
      }
    } catch (err) {
      db.close();
      throw err;
    }
  }
  return db;
}

/** How long opening the database waits for other processes opening or migrating it. */
const OPEN_LOCK_WAIT_MS = 5000;
const BUSY_RETRY_MS = 10;
const retryClock = new Int32Array(new SharedArrayBuffer(4));

/**
 * Run `step` again while SQLite says the database is busy, up to `waitMs`. SQLite's busy
 * timeout does not cover every case: two processes turning a new file to WAL at once (two
 * workers starting on an empty data directory), or one upgrading its lock while another holds
 * a pending one, get SQLITE_BUSY at once, since waiting could deadlock. Only for opening
 * (blocks the thread while it waits); each step must be safe to repeat.
 */
export function whileBusy<T>(waitMs: number, step: () => T, now: () => number = Date.now, pause: (ms: number) => void = sleepSync): T {
  const until = now() + waitMs;
  for (;;) {
    try {
      return step();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || now() >= until) throw err;
      pause(BUSY_RETRY_MS);
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(retryClock, 0, 0, ms);
}

/** Bring a database to the current schema (each step in a transaction); shared by every store. */
export function migrate(db: Database.Database): void {
  const version = (): number => db.pragma('user_version', { simple: true }) as number;
  if (version() > MIGRATIONS.length) {
    throw new Error(`logs database schema version ${version()} is newer than this smtpwall (${MIGRATIONS.length})`);
  }
  // Current already (the usual case): no write lock, so a store opened while another process
  // holds the database (a backup, a long query) opens at once instead of failing busy.
  if (version() === MIGRATIONS.length) return;
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

/** The SQLite log store as a LogReader (the CLI and admin API read either store alike). */
export class SqliteLogReader implements LogReader {
  constructor(readonly store: SqliteLogStore) {}
  async queryTraffic(q: LogQuery) {
    return this.store.queryTraffic(q);
  }
  async queryThreats(q: LogQuery) {
    return this.store.queryThreats(q);
  }
  async lastId(table: 'traffic' | 'threats') {
    return this.store.lastId(table);
  }
  async countsSince(since: string) {
    return this.store.countsSince(since);
  }
  async statsSince(since: string, bucketChars: 15 | 16, top?: number) {
    return this.store.statsSince(since, bucketChars, top);
  }
  async close() {
    this.store.close();
  }
}
