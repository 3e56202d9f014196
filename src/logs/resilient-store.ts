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
 * `healthy` says whether every record so far is in the database: with
 * `log-database.on-failure: tempfail` the sessions refuse new transactions (451) while it is
 * false, for sites that must not pass mail they cannot account for.
 */

import type { LogFn } from './process-log.ts';
import { describeError } from '../errors.ts';
import type { LogStore, ThreatRecord, TrafficRecord } from './records.ts';

type Pending = { readonly kind: 'traffic'; readonly r: TrafficRecord } | { readonly kind: 'threat'; readonly r: ThreatRecord };

const RETRY_MS = 1000;

export class ResilientLogStore implements LogStore {
  readonly #queue: Pending[] = [];
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
    return this.inner.listTraffic(limit);
  }

  listThreats(limit: number): ThreatRecord[] {
    return this.inner.listThreats(limit);
  }

  #add(p: Pending): void {
    if (this.#queue.length === 0 && this.#dropped === 0) {
      try {
        this.#write(p);
        return;
      } catch (err) {
        this.log('error', 'log database cannot be written; records are kept in memory until it can', { error: describeError(err), buffer: this.bufferLimit });
        this.#queue.push(p);
        this.#schedule();
        return;
      }
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
