/**
 * What `smtpwall logs`, the admin API and the console may ask of the traffic and threat logs,
 * and the one WHERE clause every store answers it with. SQLite and PostgreSQL differ only in
 * how a parameter is written (`?` / `$1`) and how the recipients' JSON array is opened, so the
 * filters mean exactly the same on the embedded store and on the shared one.
 */

import type { ThreatRecord, TrafficRecord } from './records.ts';

/** Every field is optional except the limit. */
export interface LogQuery {
  /** Envelope sender: an address (exact, any case) or a domain (`example.com`, `@example.com`). */
  readonly from?: string;
  /** A recipient, the same way. */
  readonly to?: string;
  /** The client's address (without port). */
  readonly client?: string;
  /** A transaction id or a session id. */
  readonly id?: string;
  readonly action?: string;
  readonly rule?: string;
  /** Part of a threat name, or a threat id. */
  readonly threat?: string;
  /** The gateway instance that wrote the record (`instance:` of its config). */
  readonly instance?: string;
  /** ISO 8601 times (as stored: UTC), inclusive. */
  readonly since?: string;
  readonly until?: string;
  /** Only rows after this id, in order (following). */
  readonly afterId?: number;
  readonly limit: number;
}

export interface LogStats {
  readonly traffic: ReadonlyArray<{ bucket: string; action: string; n: number }>;
  readonly threats: ReadonlyArray<{ bucket: string; n: number }>;
  readonly topThreats: ReadonlyArray<{ key: string; n: number }>;
  readonly topSenders: ReadonlyArray<{ key: string; n: number }>;
  readonly topRecipients: ReadonlyArray<{ key: string; n: number }>;
}

export interface SqlDialect {
  /** The placeholder of the n-th parameter (1-based). */
  param(n: number): string;
  /** A table expression `alias` of the text values of a JSON array column, one row per value in `alias.value`. */
  jsonValues(column: string, alias: string): string;
}

export const SQLITE: SqlDialect = { param: () => '?', jsonValues: (c, a) => `json_each(${c}) AS ${a}` };
export const POSTGRES: SqlDialect = { param: (n) => `$${n}`, jsonValues: (c, a) => `jsonb_array_elements_text(${c}) AS ${a}(value)` };

/** `SELECT * FROM table WHERE …` for `q`, ordered and limited, with its parameters. */
export function logSelect(table: 'traffic' | 'threats', q: LogQuery, d: SqlDialect): { sql: string; args: unknown[]; reversed: boolean } {
  const where: string[] = [];
  const args: unknown[] = [];
  const p = (v: unknown): string => {
    args.push(v);
    return d.param(args.length);
  };
  const like = (v: string): string => v.replace(/[\\%_]/g, '\\$&');
  const address = (column: string, v: string): string => {
    // An address matches exactly; `example.com` or `@example.com` matches every address there.
    const a = v.toLowerCase();
    if (a.includes('@') && !a.startsWith('@')) return `lower(${column}) = ${p(a)}`;
    return `lower(${column}) LIKE ${p(`%@${like(a.replace(/^@/, ''))}`)} ESCAPE '\\'`;
  };
  if (q.from !== undefined) where.push(address('mail_from', q.from));
  if (q.to !== undefined) where.push(`EXISTS (SELECT 1 FROM ${d.jsonValues('rcpt_to', 'j')} WHERE ${address('j.value', q.to)})`);
  if (q.client !== undefined) {
    // `client` is address:port ([v6]:port); the filter is the address.
    const esc = like(q.client);
    where.push(`(client = ${p(q.client)} OR client LIKE ${p(`${esc}:%`)} ESCAPE '\\' OR client LIKE ${p(`[${esc}]:%`)} ESCAPE '\\')`);
  }
  if (q.id !== undefined) where.push(`(transaction_id = ${p(q.id)} OR session_id = ${p(q.id)})`);
  if (q.action !== undefined) where.push(`action = ${p(q.action)}`);
  if (q.rule !== undefined) where.push(`rule = ${p(q.rule)}`);
  if (q.instance !== undefined) where.push(`instance = ${p(q.instance)}`);
  if (q.threat !== undefined) {
    const match = (t: string) => `(${t}threat LIKE ${p(`%${like(q.threat!)}%`)} ESCAPE '\\' OR ${t}threat_id = ${p(q.threat)})`;
    where.push(table === 'threats' ? match('') : `EXISTS (SELECT 1 FROM threats t WHERE t.transaction_id = traffic.transaction_id AND ${match('t.')})`);
  }
  if (q.since !== undefined) where.push(`time >= ${p(q.since)}`);
  if (q.until !== undefined) where.push(`time <= ${p(q.until)}`);
  if (q.afterId !== undefined) where.push(`id > ${p(q.afterId)}`);
  const sql = `SELECT * FROM ${table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
  // Following: everything after the cursor, in order. Otherwise: the newest `limit`, oldest first.
  if (q.afterId !== undefined) return { sql: `${sql} ORDER BY id LIMIT ${p(q.limit)}`, args, reversed: false };
  return { sql: `${sql} ORDER BY id DESC LIMIT ${p(q.limit)}`, args, reversed: true };
}

/** The dashboard's questions (see SqliteLogStore.statsSince), in either dialect. */
export function statsQueries(d: SqlDialect, bucketChars: 15 | 16): Record<keyof LogStats, string> {
  const stopped = `action NOT IN ('allow', 'alert')`;
  const [a, b] = [d.param(1), d.param(2)];
  return {
    traffic: `SELECT substr(time, 1, ${bucketChars}) AS bucket, action, count(*) AS n FROM traffic WHERE time >= ${a} GROUP BY bucket, action ORDER BY bucket`,
    threats: `SELECT substr(time, 1, ${bucketChars}) AS bucket, count(*) AS n FROM threats WHERE time >= ${a} GROUP BY bucket ORDER BY bucket`,
    topThreats: `SELECT threat AS key, count(*) AS n FROM threats WHERE time >= ${a} GROUP BY threat ORDER BY n DESC, key LIMIT ${b}`,
    topSenders: `SELECT mail_from AS key, count(*) AS n FROM traffic WHERE time >= ${a} AND ${stopped} GROUP BY mail_from ORDER BY n DESC, key LIMIT ${b}`,
    topRecipients: `SELECT r.value AS key, count(*) AS n FROM traffic, ${d.jsonValues('traffic.rcpt_to', 'r')} WHERE time >= ${a} AND ${stopped} GROUP BY r.value ORDER BY n DESC, key LIMIT ${b}`,
  };
}

/** A row's columns as the record's field names (snake_case → camelCase), without the row id. */
export function camel(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === 'id' || k === 'uid') continue;
    out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = v;
  }
  return out;
}

/**
 * The async reading side of a log store: what `smtpwall logs`/`status`, the admin API and the
 * console read. SQLite answers at once; PostgreSQL over the network.
 */
export interface LogReader {
  queryTraffic(q: LogQuery): Promise<Array<{ id: number; record: TrafficRecord }>>;
  queryThreats(q: LogQuery): Promise<Array<{ id: number; record: ThreatRecord }>>;
  lastId(table: 'traffic' | 'threats'): Promise<number>;
  countsSince(since: string): Promise<{ messages: number; stopped: number; threats: number }>;
  statsSince(since: string, bucketChars: 15 | 16, top?: number): Promise<LogStats>;
  close(): Promise<void>;
}
