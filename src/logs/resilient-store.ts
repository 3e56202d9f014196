/**
 * The log database may fail under the gateway: another process holds it locked, the disk or
 * `log-database.max-size` is full, the file turned read-only. Mail does not wait for it.
 *
 * Records that cannot be written are kept in memory, in order, up to `buffer` records, and
 * written when the database takes them again (tried once a second). Beyond the buffer, new records are counted as dropped and reported. The
 * outage is logged once when it starts and once when it ends (with what was written and what
 * was dropped) — never per record. At close, records still unwritten go to the process log,
 * one line each, so nothing disappears silently.
 *
 * In normal operation records are written in batches, off the session's path: a record is
 * queued (in order) and the queue is written in one transaction BATCH_MS after its first
 * record, or at once when BATCH_RECORDS are waiting (a commit per record cost a quarter of a
 * small message's CPU). The guarantee: every record is in the database within BATCH_MS; a
 * graceful stop writes every queued record; a crash of the process (SIGKILL, OOM) loses at
 * most the records of the last BATCH_MS (the messages themselves are unaffected: a record is
 * written after its reply). Readers in this process (`listTraffic`, `flush()`) see them at once.
 *
 * `healthy` says whether every record so far is in the database: with
 * `log-database.on-failure: tempfail` the sessions refuse new transactions (451) while it is
 * false, for sites that must not pass mail they cannot account for.
 */

import type { LogFn } from './process-log.ts';
import { describeError } from '../errors.ts';
import type { LogRecord, LogStore, ThreatRecord, TrafficRecord } from './records.ts';

type Pending = LogRecord;

const RETRY_MS = 1000;
/** Longest time a record waits to be written in normal operation. */
export const BATCH_MS = 20;
/** A batch this long is written at once. */
const BATCH_RECORDS = 256;

export class ResilientLogStore implements LogStore {
  /** Records of an outage, waiting for the database (bounded by `buffer`). */
  readonly #queue: Pending[] = [];
  /** Records of normal operation, written at the end of this event-loop turn. */
  #batch: Pending[] = [];
  #batchTimer: NodeJS.Timeout | null = null;
  #dropped = 0;
  #written = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly inner: LogStore,
    private readonly bufferLimit: number,
    private readonly log: LogFn,
  ) {}

  /** Every record so far is in the database. */
  get healthy(): boolean {
    return this.#queue.length === 0 && this.#dropped === 0;
  }

  get buffered(): number {
    return this.#queue.length;
  }

  addTraffic(r: TrafficRecord): void {
    this.#add({ kind: 'traffic', r });
  }

  addThreat(r: ThreatRecord): void {
    this.#add({ kind: 'threat', r });
  }

  listTraffic(limit: number): TrafficRecord[] {
    this.flush();
    return this.inner.listTraffic(limit);
  }

  listThreats(limit: number): ThreatRecord[] {
    this.flush();
    return this.inner.listThreats(limit);
  }

  /** Write the records queued in this turn now (readers, a stop, a status view). */
  flush(): void {
    if (this.#batchTimer) clearTimeout(this.#batchTimer);
    this.#batchTimer = null;
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    try {
      if (this.inner.addBatch) this.inner.addBatch(batch);
      else for (const p of batch) this.#write(p);
    } catch (err) {
      // A batch is all or none (one transaction): all of it waits for the database, in order.
      // (A store without batches may have written a prefix; it is written again: a duplicate
      // is better than a loss.)
      this.log('error', 'log database cannot be written; records are kept in memory until it can', { error: describeError(err), buffer: this.bufferLimit });
      for (const p of batch) {
        if (this.#queue.length < this.bufferLimit) this.#queue.push(p);
        else this.#dropped++;
      }
      this.#schedule();
    }
  }

  #add(p: Pending): void {
    if (this.#queue.length === 0 && this.#dropped === 0) {
      this.#batch.push(p);
      if (this.#batch.length >= BATCH_RECORDS) this.flush();
      else if (!this.#batchTimer) {
        this.#batchTimer = setTimeout(() => this.flush(), BATCH_MS);
        this.#batchTimer.unref(); // a stop flushes what is left
      }
      return;
    }
    // During an outage only the timer touches the database: each try may wait up to
    // lock-wait for a lock, which must not be paid per record.
    if (this.#queue.length < this.bufferLimit) this.#queue.push(p);
    else this.#dropped++;
  }

  #write(p: Pending): void {
    if (p.kind === 'traffic') this.inner.addTraffic(p.r);
    else this.inner.addThreat(p.r);
  }

  /** Write what is buffered, oldest first, until the database fails again. */
  #flush(): void {
    try {
      while (this.#queue.length > 0) {
        this.#write(this.#queue[0]!);
        this.#queue.shift();
        this.#written++;
      }
    } catch {
      // Still failing: the outage was logged when it began; the timer tries again.
      this.#schedule();
      return;
    }
    this.log('info', 'log database writable again', { written: this.#written, dropped: this.#dropped });
    this.#written = 0;
    this.#dropped = 0;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flush();
    }, RETRY_MS);
    this.#timer.unref();
  }

  close(): void {
    this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#queue.length > 0 || this.#dropped > 0) this.#flush();
    if (this.#queue.length > 0 || this.#dropped > 0) {
      this.log('error', 'log database still cannot be written at stop; unwritten records follow', { records: this.#queue.length, dropped: this.#dropped });
      for (const p of this.#queue.splice(0)) this.log('error', `unwritten ${p.kind} record`, { record: JSON.stringify(p.r) });
    }
    this.inner.close();
  }
}
