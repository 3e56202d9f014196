/**
 * The verdict store shared by every instance. A verdict set anywhere — by analysis on one
 * instance, by `smtpwall verdicts set` or the admin API on another, for a file nobody has seen
 * yet — is in force everywhere within a second:
 *
 * - every change of a verdict (not a mere sighting count) is announced by the database itself
 *   (a trigger: `pg_notify('smtpwall_verdicts', sha256)`, see schema.ts) and numbered
 *   (`changed`, from a sequence);
 * - each instance LISTENs on a connection of its own and reads the changed row at once;
 * - after that connection breaks, it asks for every row changed since the last number it saw
 *   (the poll fallback), every POLL_MS until it listens again, so nothing announced while it
 *   was away is missed.
 *
 * What an instance knows: every manual verdict (few; looked up for every file the inspector
 * extracts, so it must answer at once) and a bounded cache of the others, filled on a miss.
 * Writes (analysis results, sightings, counts) go through the ordered SharedWriter.
 */

import pg from 'pg';
import { describeError } from '../errors.ts';
import type { LogFn } from '../logs/process-log.ts';
import { MAX_SIGHTINGS_PER_MESSAGE, manualScore, type Sighting, type StoredVerdict, toVerdict, type VerdictStore } from '../inspect/engines/analysis/verdict-store.ts';
import type { VerdictClass } from '../inspect/engines/analysis/types.ts';
import { pgJsonList, pgText, type SharedWriter } from './writer.ts';

const CHANNEL = 'smtpwall_verdicts';
/** While not listening: how often rows changed since the last seen are asked for. */
const POLL_MS = 500;
/** Verdicts of analysis kept in memory (manual ones are all kept). */
const CACHE_MAX = 50_000;

export class PgVerdictStore implements VerdictStore {
  readonly #manual = new Map<string, StoredVerdict>();
  readonly #cache = new Map<string, StoredVerdict | null>();
  readonly #changeListeners = new Set<(v: StoredVerdict) => void>();
  #lastChanged = 0;
  #listener: pg.Client | null = null;
  #listening = false;
  #pollTimer: NodeJS.Timeout | null = null;
  #closed = false;
  /** An outage was reported (once: while PostgreSQL is away, every retry fails alike). */
  #reported = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly writer: SharedWriter,
    private readonly instance: string,
    private readonly listenOptions: pg.ClientConfig | null,
    private readonly log: LogFn,
  ) {}

  /**
   * Load the manual verdicts and start listening (a gateway; the CLI does not listen). When
   * the database is not reachable, this returns and keeps trying in the background.
   */
  async start(): Promise<void> {
    if (this.listenOptions) await this.#listen();
    else await this.#catchUp();
  }

  /** Told of every verdict that changed (here or on another instance). */
  onChange(listener: (v: StoredVerdict) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Listening now (tests and health: verdicts of others arrive at once). */
  get listening(): boolean {
    return this.#listening;
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.listenOptions!);
    const lost = (err?: Error): void => {
      if (this.#listener !== client) return;
      this.#listener = null;
      this.#listening = false;
      if (err) this.#report('verdict notifications lost; polling until they are back', err);
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined); // already broken
      this.#schedulePoll();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (n) => {
      if (n.channel === CHANNEL && n.payload) void this.#refresh(n.payload);
    });
    this.#listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      lost(err as Error);
      return;
    }
    if (this.#closed) return void client.end();
    this.#listening = true;
    if (this.#reported) this.log('info', 'shared store: verdict notifications back', {});
    this.#reported = false;
    // Anything changed before LISTEN took effect (or while away) is read now.
    await this.#catchUp();
  }

  #schedulePoll(): void {
    if (this.#pollTimer || this.#closed) return;
    this.#pollTimer = setTimeout(async () => {
      this.#pollTimer = null;
      await this.#catchUp();
      if (this.listenOptions && !this.#listener) await this.#listen();
      else if (!this.#listening) this.#schedulePoll();
    }, POLL_MS);
    this.#pollTimer.unref();
  }

  /** Every row changed since the last seen; on the first call, every manual verdict. */
  async #catchUp(): Promise<void> {
    try {
      for (;;) {
        const { rows } = await this.pool.query(
          this.#lastChanged === 0
            ? `SELECT * FROM verdicts WHERE source = 'manual' OR changed = (SELECT max(changed) FROM verdicts) ORDER BY changed`
            : 'SELECT * FROM verdicts WHERE changed > $1 ORDER BY changed LIMIT 1000',
          this.#lastChanged === 0 ? [] : [this.#lastChanged],
        );
        for (const row of rows) this.#apply(row);
        if (this.#lastChanged === 0 && rows.length === 0) this.#lastChanged = -1; // an empty table: everything from now on
        if (rows.length < 1000) return;
      }
    } catch (err) {
      this.#report('verdicts could not be read; trying again', err);
      if (!this.#listening) this.#schedulePoll();
    }
  }

  #report(what: string, err: unknown): void {
    if (this.#reported) return;
    this.#reported = true;
    this.log('warn', `shared store: ${what}`, { error: describeError(err) });
  }

  async #refresh(sha256: string): Promise<void> {
    try {
      const { rows } = await this.pool.query('SELECT * FROM verdicts WHERE sha256 = $1', [sha256]);
      if (rows[0]) this.#apply(rows[0]);
    } catch (err) {
      // The next catch-up reads it (it is numbered).
      this.#report(`a changed verdict (${sha256}) could not be read`, err);
      this.#schedulePoll();
    }
  }

  #apply(row: Record<string, unknown>): void {
    const v = toVerdict(row);
    const changed = Number(row.changed);
    if (changed > this.#lastChanged) this.#lastChanged = changed;
    if (v.source === 'manual') this.#manual.set(v.sha256, v);
    else this.#manual.delete(v.sha256);
    if (this.#cache.has(v.sha256)) this.#cache.set(v.sha256, v);
    for (const l of this.#changeListeners) l(v);
  }

  #remember(sha256: string, v: StoredVerdict | null): void {
    if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(sha256, v);
  }

  manual(sha256: string): StoredVerdict | null {
    return this.#manual.get(sha256) ?? null;
  }

  /**
   * A file's verdict. PostgreSQL unreachable: unknown (null, not remembered) — the file is
   * analysed here, as a new one would be; mail never waits on the store.
   */
  async get(sha256: string): Promise<StoredVerdict | null> {
    const known = this.#manual.get(sha256) ?? this.#cache.get(sha256);
    if (known !== undefined) return known;
    // A gateway that lost its verdict connection does not wait for the pool's connect timeout
    // per file (a cut network): the server is away, the file is new to us for now.
    if (this.listenOptions && !this.#listening) return null;
    let rows: Record<string, unknown>[];
    try {
      rows = (await this.pool.query('SELECT * FROM verdicts WHERE sha256 = $1', [sha256])).rows;
    } catch (err) {
      this.#report('verdicts could not be read; files are analysed here meanwhile', err);
      return null;
    }
    const v = rows[0] ? toVerdict(rows[0]) : null;
    this.#remember(sha256, v);
    return v;
  }

  put(v: Parameters<VerdictStore['put']>[0]): void {
    const now = new Date().toISOString();
    const reasons = v.indicators.map((i) => `${i.reason} (+${i.score})`);
    // Known here at once: a repeat of the file on this instance is not analysed again while the write is queued.
    const prev = this.#cache.get(v.sha256);
    if (!this.#manual.has(v.sha256)) {
      this.#remember(v.sha256, {
        sha256: v.sha256, verdict: v.verdict, score: v.score, reasons, analyzers: [...v.analyzers], source: 'analysis',
        fileType: v.fileType, fileName: v.fileName, firstSeen: prev?.firstSeen ?? now, lastSeen: now, seen: (prev?.seen ?? 0) + 1,
      });
    }
    this.writer.push({
      kind: 'sql',
      what: 'verdict',
      text: `INSERT INTO verdicts (sha256, verdict, score, reasons, analyzers, source, file_type, file_name, first_seen, last_seen, seen)
             VALUES ($1, $2, $3, $4, $5, 'analysis', $6, $7, $8, $8, 1)
             ON CONFLICT (sha256) DO UPDATE SET last_seen = $8, seen = verdicts.seen + 1,
               verdict = CASE WHEN verdicts.source = 'manual' THEN verdicts.verdict ELSE $2 END,
               score = CASE WHEN verdicts.source = 'manual' THEN verdicts.score ELSE $3 END,
               reasons = CASE WHEN verdicts.source = 'manual' THEN verdicts.reasons ELSE $4 END,
               analyzers = $5`,
      values: [v.sha256, v.verdict, v.score, pgJsonList(reasons), pgJsonList(v.analyzers), v.fileType, pgText(v.fileName), now],
    });
  }

  seen(sha256: string): void {
    this.writer.push({ kind: 'sql', what: 'verdict count', text: 'UPDATE verdicts SET last_seen = $1, seen = seen + 1 WHERE sha256 = $2', values: [new Date().toISOString(), sha256] });
  }

  /** An admin's verdict: written now (the caller is told when it holds), in force everywhere within a second. */
  async override(sha256: string, verdict: VerdictClass, reason: string): Promise<void> {
    const now = new Date().toISOString();
    const { rows } = await this.pool.query(
      `INSERT INTO verdicts (sha256, verdict, score, reasons, analyzers, source, file_type, file_name, first_seen, last_seen, seen)
       VALUES ($1, $2, $3, $4, '[]', 'manual', '', '', $5, $5, 0)
       ON CONFLICT (sha256) DO UPDATE SET verdict = $2, score = $3, reasons = $4, source = 'manual'
       RETURNING *`,
      [sha256, verdict, manualScore(verdict), pgJsonList([`manual: ${reason}`]), now],
    );
    if (rows[0]) this.#apply(rows[0]);
  }

  async list(limit: number): Promise<StoredVerdict[]> {
    return (await this.pool.query('SELECT * FROM verdicts ORDER BY last_seen DESC LIMIT $1', [limit])).rows.map(toVerdict);
  }

  sighted(files: ReadonlyArray<{ sha256: string; path: string; pending: boolean }>, s: Omit<Sighting, 'filePath'>): void {
    for (const f of files.slice(0, MAX_SIGHTINGS_PER_MESSAGE)) {
      this.writer.push({
        kind: 'sql',
        what: 'sighting',
        text: `INSERT INTO sightings (uid, instance, sha256, time, transaction_id, message_id, mail_from, rcpt_to, file_path, action, delivered)
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
               WHERE $12 OR EXISTS (SELECT 1 FROM verdicts WHERE sha256 = $3)
               ON CONFLICT (uid) DO NOTHING`,
        values: [this.writer.uid(), this.instance, f.sha256, s.time, s.transactionId, pgText(s.messageId), pgText(s.mailFrom), pgJsonList(s.rcptTo), pgText(f.path), s.action, s.delivered, f.pending],
      });
    }
  }

  async sightings(sha256: string, limit: number): Promise<Sighting[]> {
    const { rows } = await this.pool.query('SELECT * FROM sightings WHERE sha256 = $1 ORDER BY time DESC, id DESC LIMIT $2', [sha256, limit]);
    return rows.map((r) => ({
      time: r.time as string,
      transactionId: r.transaction_id as string,
      messageId: r.message_id as string,
      mailFrom: r.mail_from as string,
      rcptTo: r.rcpt_to as string[],
      filePath: r.file_path as string,
      action: r.action as string,
      delivered: r.delivered as boolean,
      instance: r.instance as string,
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    const l = this.#listener;
    this.#listener = null;
    this.#listening = false;
    await l?.end().catch(() => undefined); // closing: a broken connection has nothing to say
  }
}
