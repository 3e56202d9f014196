/**
 * `smtpwall logs threats|traffic [filters] [--json] [--limit N] [--follow]`: read the log
 * database — of a running gateway too (SQLite WAL: readers never block the gateway's writes).
 * Filters combine (AND); `--follow` prints the matching records written from now on, like
 * `tail -f`, until interrupted.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type LogQuery, SqliteLogReader, SqliteLogStore } from '../../logs/sqlite-store.ts';
import type { LogReader } from '../../logs/log-query.ts';
import { withShared } from '../shared.ts';
import type { ThreatRecord, TrafficRecord } from '../../logs/records.ts';
import { maillogFields, outcomeOf } from '../../logs/maillog.ts';
import { escapeLogValue } from '../../logs/process-log.ts';
import { safeJson } from '../../logs/escape.ts';
import { parseWhen } from '../../policy/units.ts';
import { decodeEncodedWords } from '../../inspect/mime/headers.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig, UsageError } from '../command.ts';
import { printTable } from '../table.ts';

/** How often `--follow` looks for new rows (a read of the index, no lock taken). */
const FOLLOW_POLL_MS = 250;

export const logsCommand = command({
  name: 'logs',
  usage: ['logs threats|traffic [-c FILE] [filters] [--json] [--limit N] [--follow]'],
  summary: 'show threat or traffic records, filtered, or follow them as they are written',
  options: {
    ...CONFIG_OPTION,
    json: { type: 'boolean', default: false },
    limit: { type: 'string', default: '50' },
    follow: { type: 'boolean', short: 'f', default: false },
    from: { type: 'string' },
    to: { type: 'string' },
    client: { type: 'string' },
    id: { type: 'string' },
    action: { type: 'string' },
    rule: { type: 'string' },
    threat: { type: 'string' },
    instance: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
  },
  help: {
    config: CONFIG_HELP,
    json: 'one JSON object per line (every field of the record)',
    limit: ['N', 'the newest N matching records (default 50)'],
    follow: 'then print matching records as they are written, until interrupted',
    from: ['ADDR', 'envelope sender: an address, or a domain (example.com or @example.com)'],
    to: ['ADDR', 'a recipient: an address or a domain'],
    client: ['IP', "the client's address"],
    id: ['ID', 'a transaction id (as quoted in replies) or a session id'],
    action: ['ACTION', 'allow, alert, block, reject, drop, reset-client, …'],
    rule: ['NAME', 'the security rule that matched'],
    threat: ['TEXT', 'part of a threat name, or a threat id (traffic: transactions with such a threat)'],
    instance: ['NAME', 'records written by this gateway instance (instance: in its config; with a shared store, every instance\'s are shown)'],
    since: ['WHEN', 'a time (2026-12-01, 2026-12-01T10:00, ISO 8601) or a duration ago (90m, 2h, 7d)'],
    until: ['WHEN', 'the same; records up to then'],
  },
  notes: ['Exit status: 0 (also when nothing matches), 2 bad usage or no readable database.'],
  async run({ values, positionals }) {
    const kind = positionals[0];
    if ((kind !== 'threats' && kind !== 'traffic') || positionals.length !== 1) throw new UsageError('expected "logs threats" or "logs traffic"');
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer, got "${values.limit}"`);
    const query: LogQuery = {
      limit,
      from: values.from, to: values.to, client: values.client, id: values.id, action: values.action, rule: values.rule, threat: values.threat, instance: values.instance,
      since: values.since === undefined ? undefined : when(values.since, '--since'),
      until: values.until === undefined ? undefined : when(values.until, '--until'),
    };
    const cfg = loadConfig(values.config);
    if (cfg.store) return withShared(cfg, (shared) => show(shared!.reader, kind, query, { ...values, instances: true }));
    const file = join(cfg.dataDirAbs, 'logs.sqlite');
    if (!existsSync(file)) {
      if (!values.follow) {
        process.stderr.write(`no log database yet in ${cfg.dataDirAbs} (start the gateway first)\n`);
        return 0;
      }
      await until(() => existsSync(file));
    }
    const store = new SqliteLogReader(new SqliteLogStore(cfg.dataDirAbs, { readonly: true }));
    try {
      return await show(store, kind, query, { ...values, instances: false });
    } finally {
      await store.close();
    }
  },
});

/** Print the matching records; following, then every new one until interrupted. */
/** @param values.instances the store is shared: the table names the instance of each record */
async function show(store: LogReader, kind: 'threats' | 'traffic', query: LogQuery, values: { json: boolean; follow: boolean; instances: boolean }): Promise<number> {
  const rows = await read(store, kind, query);
  const print = values.json ? printJson : values.follow ? printLines : (k: string, r: ReadonlyArray<TrafficRecord | ThreatRecord>) => printTableOf(k, r, values.instances);
  print(kind, rows.map((r) => r.record));
  if (!values.follow) return 0;
  let cursor = rows.length ? rows.at(-1)!.id : await store.lastId(kind);
  for (;;) {
    await sleep(FOLLOW_POLL_MS);
    const more = await read(store, kind, { ...query, afterId: cursor, limit: 1000 });
    if (more.length === 0) continue;
    cursor = more.at(-1)!.id;
    (values.json ? printJson : printLines)(kind, more.map((r) => r.record));
  }
}

type Row = { id: number; record: TrafficRecord | ThreatRecord };

function read(store: LogReader, kind: 'threats' | 'traffic', q: LogQuery): Promise<Row[]> {
  return kind === 'threats' ? store.queryThreats(q) : store.queryTraffic(q);
}

/** `parseWhen` for a command-line flag: a bad value is the user's one-line mistake. */
export function when(v: string, flag: string, now = Date.now()): string {
  const t = parseWhen(v, now);
  if (t === null) throw new UsageError(`${flag}: expected a time (2026-12-01T10:00) or a duration ago (2h), got "${v}"`);
  return t;
}

function printJson(_kind: string, records: ReadonlyArray<TrafficRecord | ThreatRecord>): void {
  for (const r of records) process.stdout.write(`${safeJson(r)}\n`);
}

/** Records written before subjects were decoded may hold encoded words: shown decoded. */
const text = (s: string): string => (s.includes('=?') ? decodeEncodedWords(s) : s);

/** The table; with a shared store, the second column names the instance that wrote each record. */
function printTableOf(kind: string, records: ReadonlyArray<TrafficRecord | ThreatRecord>, instances: boolean): void {
  const cols = (names: string[]): string[] => (instances ? [names[0]!, 'instance', ...names.slice(1)] : names);
  const cells = (r: TrafficRecord | ThreatRecord, rest: string[]): string[] => (instances ? [rest[0]!, r.instance || '-', ...rest.slice(1)] : rest);
  if (kind === 'threats') {
    printTable(
      cols(['time', 'transaction', 'client', 'from', 'threat', 'threat-id', 'engine', 'file', 'type', 'sha256', 'rule', 'action']),
      (records as ThreatRecord[]).map((r) => cells(r, [
        r.time, r.transactionId, r.client, r.mailFrom, r.threat, r.threatId, r.engine,
        r.fileName ? `${r.filePath} ${text(r.fileName)}` : r.filePath, r.fileFlags?.length ? `${r.detectedType} [${r.fileFlags.join(',')}]` : r.detectedType, r.sha256.slice(0, 16), r.rule, r.action,
      ])),
    );
  } else {
    printTable(
      cols(['time', 'transaction', 'client', 'from', 'to', 'size', 'subject', 'rule', 'action', 'reply']),
      (records as TrafficRecord[]).map((r) => cells(r, [
        r.time, r.transactionId, r.client, r.mailFrom, r.rcptTo.join(','), String(r.size), text(r.subject), r.rule, r.action,
        r.clientReply || r.upstreamReply,
      ])),
    );
  }
}

/** Following: one line per record, like the gateway's own maillog lines, so they can be grepped alike. */
function printLines(kind: string, records: ReadonlyArray<TrafficRecord | ThreatRecord>): void {
  for (const r of records) {
    const fields: Record<string, unknown> =
      kind === 'traffic'
        ? maillogFields({ ...(r as TrafficRecord), subject: text((r as TrafficRecord).subject) }, [])
        : threatFields(r as ThreatRecord);
    const word = kind === 'traffic' ? outcomeOf(r as TrafficRecord) : 'threat';
    const kv = Object.entries(fields).map(([k, v]) => `${k}=${escapeLogValue(v)}`).join(' ');
    process.stdout.write(`${r.time} ${word} ${kv}\n`);
  }
}

function threatFields(r: ThreatRecord): Record<string, unknown> {
  return {
    id: r.transactionId, client: r.client, from: `<${r.mailFrom}>`, to: r.rcptTo.map((x) => `<${x}>`).join(','),
    threat: r.threat, 'threat-id': r.threatId, engine: r.engine, file: r.filePath, name: text(r.fileName) || undefined,
    type: r.detectedType, sha256: r.sha256, rule: r.rule, action: r.action,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await sleep(FOLLOW_POLL_MS);
}
