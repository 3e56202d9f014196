/**
 * The traffic and threat logs in the shared store: written through the ordered SharedWriter
 * (each record stamped with this instance's name and a uid), read with the same filters as
 * the SQLite store (logs/log-query.ts) — across every instance, or one with `instance`.
 */

import type pg from 'pg';
import { camel, type LogQuery, type LogReader, type LogStats, logSelect, POSTGRES, statsQueries } from '../logs/log-query.ts';
import type { LogStore, ThreatRecord, TrafficRecord } from '../logs/records.ts';
import type { SharedWriter } from './writer.ts';

export class PgLogStore implements LogStore {
  constructor(private readonly writer: SharedWriter, private readonly instance: string) {}

  /** Every record so far is in PostgreSQL (`store.on-failure: tempfail` refuses mail while not). */
  get healthy(): boolean {
    return this.writer.healthy;
  }

  addTraffic(r: TrafficRecord): void {
    this.writer.push({ kind: 'traffic', uid: this.writer.uid(), r: { ...r, instance: r.instance ?? this.instance } });
  }

  addThreat(r: ThreatRecord): void {
    this.writer.push({ kind: 'threat', uid: this.writer.uid(), r: { ...r, instance: r.instance ?? this.instance } });
  }

  listTraffic(): TrafficRecord[] {
    throw new Error('the shared store is read through its LogReader (PgLogReader), not synchronously');
  }

  listThreats(): ThreatRecord[] {
    throw new Error('the shared store is read through its LogReader (PgLogReader), not synchronously');
  }

  /** Write what is queued now (it is written within 20 ms anyway). */
  flush(): void {
    void this.writer.flush();
  }

  /** Writes are the writer's: it is drained when the shared store closes. */
  close(): void {}
}

export class PgLogReader implements LogReader {
  constructor(private readonly pool: pg.Pool) {}

  async #query(table: 'traffic' | 'threats', q: LogQuery): Promise<Record<string, unknown>[]> {
    const { sql, args, reversed } = logSelect(table, q, POSTGRES);
    const rows = (await this.pool.query(sql, args)).rows as Record<string, unknown>[];
    return reversed ? rows.reverse() : rows;
  }

  async queryTraffic(q: LogQuery): Promise<Array<{ id: number; record: TrafficRecord }>> {
    return (await this.#query('traffic', q)).map((row) => ({
      id: Number(row.id),
      record: { ...(camel(row) as unknown as TrafficRecord), size: Number(row.size) },
    }));
  }

  async queryThreats(q: LogQuery): Promise<Array<{ id: number; record: ThreatRecord }>> {
    return (await this.#query('threats', q)).map((row) => ({
      id: Number(row.id),
      record: { ...(camel(row) as unknown as ThreatRecord), size: Number(row.size) },
    }));
  }

  async lastId(table: 'traffic' | 'threats'): Promise<number> {
    return Number((await this.pool.query(`SELECT coalesce(max(id), 0) AS id FROM ${table}`)).rows[0].id);
  }

  async countsSince(since: string): Promise<{ messages: number; stopped: number; threats: number }> {
    const t = (await this.pool.query(`SELECT count(*) AS n, count(*) FILTER (WHERE action NOT IN ('allow', 'alert')) AS stopped FROM traffic WHERE time >= $1`, [since])).rows[0];
    const x = (await this.pool.query(`SELECT count(*) AS n FROM threats WHERE time >= $1`, [since])).rows[0];
    return { messages: Number(t.n), stopped: Number(t.stopped), threats: Number(x.n) };
  }

  async statsSince(since: string, bucketChars: 15 | 16, top = 10): Promise<LogStats> {
    const q = statsQueries(POSTGRES, bucketChars);
    const counted = <T>(rows: Array<Record<string, unknown>>): T => rows.map((r) => ({ ...r, n: Number(r.n) })) as T;
    const [traffic, threats, topThreats, topSenders, topRecipients] = await Promise.all([
      this.pool.query(q.traffic, [since]),
      this.pool.query(q.threats, [since]),
      this.pool.query(q.topThreats, [since, top]),
      this.pool.query(q.topSenders, [since, top]),
      this.pool.query(q.topRecipients, [since, top]),
    ]);
    return {
      traffic: counted(traffic.rows),
      threats: counted(threats.rows),
      topThreats: counted(topThreats.rows),
      topSenders: counted(topSenders.rows),
      topRecipients: counted(topRecipients.rows),
    };
  }

  /** The pool is the shared store's. */
  async close(): Promise<void> {}
}
