/**
 * Every write of a gateway to the shared store goes through one ordered queue, off the
 * session's path: log records, sightings, verdicts, audit rows, captures. A session only
 * appends (no await, no promise); the queue is written in batches, one transaction each,
 * BATCH_MS after its first item or at once when BATCH_ITEMS wait.
 *
 * When PostgreSQL cannot be written (down, restarting, the connection killed mid-transaction)
 * the items stay queued, in order, up to `buffer` (beyond that they are counted as dropped),
 * and the batch is tried again every RETRY_MS; the outage is logged once when it starts and
 * once when it ends (written, dropped). A batch is all or none, and every record carries a
 * `uid` that is unique in its table, so a batch that did commit but whose acknowledgement was
 * lost is a no-op when written again: after an outage every record is there once, in order.
 *
 * A batch the server refuses for its content (not for being unavailable) is written item by
 * item; an item refused on its own goes to the process log as an unwritten record, so one bad
 * row never holds the queue.
 *
 * The guarantee, as for the SQLite store: a graceful stop writes what is queued (waiting up to
 * its deadline, then logging what is left, one line each); a crash loses what was queued —
 * at most BATCH_MS of records in normal operation, the outage's buffer during one.
 */

import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { describeError } from '../errors.ts';
import type { LogFn } from '../logs/process-log.ts';
import type { ThreatRecord, TrafficRecord } from '../logs/records.ts';
import { isUnavailable } from './connection.ts';

export type SharedWrite =
  | { readonly kind: 'traffic'; readonly uid: string; readonly r: TrafficRecord & { instance: string } }
  | { readonly kind: 'threat'; readonly uid: string; readonly r: ThreatRecord & { instance: string } }
  /** Any other statement (verdicts, sightings, audit, captures), in its place in the order. */
  | { readonly kind: 'sql'; readonly what: string; readonly text: string; readonly values: readonly unknown[] };

const BATCH_MS = 20;
/** pg_advisory_xact_lock key that puts record inserts in commit order: 'smtp' 'logs'. */
const RECORD_ORDER_LOCK = [0x736d7470, 0x6c6f6773] as const;
const BATCH_ITEMS = 500;
const RETRY_MS = 1000;

const TRAFFIC_COLUMNS = [
  'uid', 'instance', 'time', 'session_id', 'transaction_id', 'listener', 'client', 'server', 'helo', 'mail_from', 'rcpt_to', 'size',
  'message_id', 'subject', 'forwarding', 'rule', 'profile', 'action', 'reason', 'upstream_reply', 'client_reply', 'duration_ms', 'events',
] as const;
const THREAT_COLUMNS = [
  'uid', 'instance', 'time', 'session_id', 'transaction_id', 'listener', 'client', 'server', 'mail_from', 'rcpt_to', 'threat', 'threat_id',
  'severity', 'engine', 'signature', 'file_name', 'file_path', 'declared_type', 'detected_type', 'file_flags', 'sha256', 'size', 'rule',
  'profile', 'action', 'deciding', 'direction',
] as const;

/**
 * PostgreSQL text holds no NUL (SQLite does): a NUL that came from the wire (a subject, a HELO
 * name, a file name) is kept visible as U+FFFD rather than failing the row.
 */
export function pgText(s: string): string {
  return s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s;
}

/** A value as JSON for a JSONB column (which holds no \u0000 either: a NUL in a string becomes U+FFFD). */
export const pgJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? pgText(x) : x));
export const pgJsonList = (v: readonly string[]): string => pgJson(v);
const json = pgJsonList;

function trafficRow(uid: string, r: TrafficRecord & { instance: string }): unknown[] {
  return [uid, r.instance, r.time, r.sessionId, r.transactionId, r.listener, r.client, r.server, pgText(r.helo), pgText(r.mailFrom), json(r.rcptTo), r.size,
    pgText(r.messageId), pgText(r.subject), r.forwarding, r.rule, r.profile, r.action, pgText(r.reason), pgText(r.upstreamReply), pgText(r.clientReply), Math.round(r.durationMs), json(r.events)];
}

function threatRow(uid: string, r: ThreatRecord & { instance: string }): unknown[] {
  return [uid, r.instance, r.time, r.sessionId, r.transactionId, r.listener, r.client, r.server, pgText(r.mailFrom), json(r.rcptTo), pgText(r.threat), r.threatId,
    r.severity, r.engine, pgText(r.signature), pgText(r.fileName), pgText(r.filePath), pgText(r.declaredType), r.detectedType, json(r.fileFlags ?? []), r.sha256, r.size, r.rule,
    r.profile, r.action, r.deciding, r.direction];
}

/** One multi-row INSERT for a run of records of one table; a uid already there is skipped. */
function insertRows(table: 'traffic' | 'threats', columns: readonly string[], rows: unknown[][]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const tuples = rows.map((row) => `(${row.map((v) => `$${values.push(typeof v === 'string' ? pgText(v) : v)}`).join(',')})`);
  return { text: `INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')} ON CONFLICT (uid) DO NOTHING`, values };
}

export class SharedWriter {
  readonly #queue: SharedWrite[] = [];
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> | null = null;
  #failing = false;
  #dropped = 0;
  #writtenInOutage = 0;
  #closed = false;
  /** Not yet writable: the schema is not known to be there (PostgreSQL was down at start). */
  #blocked: boolean;
  /** Unique per process start: with a counter, the uid of each record. */
  readonly #tag = randomBytes(9).toString('base64url');
  #seq = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly bufferLimit: number,
    private readonly log: LogFn,
    opts: { ready: boolean } = { ready: true },
  ) {
    this.#blocked = !opts.ready;
  }

  /** The schema is in place: write what waited, and from now on as records come. */
  ready(): void {
    this.#blocked = false;
    if (this.#queue.length > 0) this.#kick(0);
  }

  /** A new uid: unique across instances and restarts. */
  uid(): string {
    return `${this.#tag}.${++this.#seq}`;
  }

  /** Every write so far is in the database (none waiting for an outage to end, none dropped). */
  get healthy(): boolean {
    return !this.#blocked && !this.#failing && this.#dropped === 0;
  }

  get queued(): number {
    return this.#queue.length;
  }

  push(w: SharedWrite): void {
    if (this.#queue.length >= this.bufferLimit) {
      this.#dropped++;
      return;
    }
    this.#queue.push(w);
    if (this.#blocked || this.#failing || this.#writing) return; // ready(), the retry timer, or the write in progress, takes it
    if (this.#queue.length >= BATCH_ITEMS) this.#kick(0);
    else if (!this.#timer) this.#kick(BATCH_MS);
  }

  #kick(ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#drain();
    }, ms);
    this.#timer.unref(); // a stop drains what is left
  }

  /** Write batches until the queue is empty or the database fails. */
  #drain(): Promise<void> {
    if (this.#writing) return this.#writing;
    if (this.#blocked) return Promise.resolve();
    const run = async (): Promise<void> => {
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice(0, BATCH_ITEMS);
        try {
          await this.#write(batch);
        } catch (err) {
          if (isUnavailable(err) || this.#closed) {
            this.#outage(err);
            return;
          }
          // Refused for its content: find the item(s) at fault, keep the rest.
          await this.#oneByOne(batch).catch((e: unknown) => this.#outage(e));
          if (this.#failing) return;
          continue;
        }
        this.#queue.splice(0, batch.length);
        if (this.#failing) this.#writtenInOutage += batch.length;
      }
      if (this.#failing) {
        this.log('info', 'shared store writable again', { written: this.#writtenInOutage, dropped: this.#dropped });
        this.#failing = false;
        this.#dropped = 0;
        this.#writtenInOutage = 0;
      } else if (this.#dropped > 0) {
        // No outage, but records came faster than PostgreSQL took them and the buffer was full.
        this.log('error', 'shared store: records dropped, the buffer was full (store.buffer)', { dropped: this.#dropped, buffer: this.bufferLimit });
        this.#dropped = 0;
      }
    };
    this.#writing = run().finally(() => {
      this.#writing = null;
    });
    return this.#writing;
  }

  #outage(err: unknown): void {
    if (!this.#failing) {
      this.log('error', 'shared store cannot be written; records are kept in memory, in order, until it can', { error: describeError(err), queued: this.#queue.length, buffer: this.bufferLimit });
    }
    this.#failing = true;
    if (!this.#closed) this.#kick(RETRY_MS);
  }

  async #oneByOne(batch: readonly SharedWrite[]): Promise<void> {
    for (const w of batch) {
      try {
        await this.#write([w]);
      } catch (err) {
        if (isUnavailable(err)) throw err;
        this.log('error', `shared store refused a ${w.kind === 'sql' ? w.what : `${w.kind} record`}; it is not written`, { error: describeError(err), record: JSON.stringify(w.kind === 'sql' ? w.values : w.r).slice(0, 4000) });
      }
      this.#queue.shift();
    }
  }

  /** One transaction: runs of records as multi-row inserts, other statements in their place. */
  async #write(batch: readonly SharedWrite[]): Promise<void> {
    const client = await this.pool.connect();
    let broken = false;
    // The server may end the connection while it is out of the pool (pg_terminate_backend,
    // a restart): then the query in flight fails with it, and the event must not go unheard.
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    // Records are numbered in the order they commit, across instances: a batch with records
    // holds a transaction-scoped lock while it inserts, so no lower id can commit after a
    // higher one has been read (`smtpwall logs -f` and the console follow by id and would
    // skip it). The lock is held for the milliseconds of one batch's inserts.
    const ordered = batch.some((w) => w.kind !== 'sql');
    const transaction = batch.length > 1 || ordered;
    try {
      if (transaction) await client.query('BEGIN');
      if (ordered) await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...RECORD_ORDER_LOCK]);
      for (let i = 0; i < batch.length; ) {
        const w = batch[i]!;
        if (w.kind === 'sql') {
          await client.query(w.text, w.values as unknown[]);
          i++;
          continue;
        }
        const rows: unknown[][] = [];
        while (i < batch.length && batch[i]!.kind === w.kind) {
          const x = batch[i++]! as Extract<SharedWrite, { kind: 'traffic' | 'threat' }>;
          rows.push(x.kind === 'traffic' ? trafficRow(x.uid, x.r) : threatRow(x.uid, x.r as ThreatRecord & { instance: string }));
        }
        const q = w.kind === 'traffic' ? insertRows('traffic', TRAFFIC_COLUMNS, rows) : insertRows('threats', THREAT_COLUMNS, rows);
        await client.query(q.text, q.values);
      }
      if (transaction) await client.query('COMMIT');
    } catch (err) {
      broken = true;
      if (transaction) await client.query('ROLLBACK').catch(() => undefined); // gone with the connection: nothing committed
      throw err;
    } finally {
      client.off('error', onError);
      // A connection that failed is not given back to the pool (it may be half closed).
      client.release(broken ? true : undefined);
    }
  }

  /**
   * Write what is queued, waiting up to `deadlineMs` for an outage to end; what is still
   * unwritten then goes to the process log, one line per record.
   */
  async close(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#queue.length > 0 && Date.now() < until && !this.#blocked) {
      await this.#drain();
      if (this.#queue.length > 0) await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, Math.max(0, until - Date.now()))));
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#closed = true;
    await this.#writing;
    if (this.#queue.length > 0 || this.#dropped > 0) {
      this.log('error', 'shared store still cannot be written at stop; unwritten records follow', { records: this.#queue.length, dropped: this.#dropped });
      for (const w of this.#queue.splice(0)) this.log('error', `unwritten ${w.kind === 'sql' ? w.what : `${w.kind} record`}`, { record: JSON.stringify(w.kind === 'sql' ? w.values : w.r).slice(0, 4000) });
    }
  }

  /** Write what is queued now (readers in this process, tests). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#failing && !this.#blocked) await this.#drain();
  }
}
