/**
 * Retention in the shared store: the same ages as the SQLite store (`log-database.retention`
 * for traffic, threats, sightings and audit; `capture.retention` for captures) and the
 * quarantine's own limits, deleted in batches of BATCH rows so no statement holds a table for
 * long. Every instance may run it (a DELETE of what another already deleted finds nothing):
 * each gateway process without a supervisor, or the supervisor, once an hour.
 */

import type { LogFn } from '../logs/process-log.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import { describeError } from '../errors.ts';
import type { SharedStore } from './shared-store.ts';
import { everyHour } from '../logs/retention.ts';

const BATCH = 1000;

export async function pruneShared(shared: SharedStore, cfg: LoadedConfig, now = Date.now()): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  const keep = cfg['log-database'].retention;
  const cutoffs: Array<[string, number]> = [['traffic', keep], ['threats', keep], ['sightings', keep], ['audit', keep], ['captures', cfg.capture.retention]];
  for (const [table, ms] of cutoffs) {
    if (ms <= 0) continue;
    const cutoff = new Date(now - ms).toISOString();
    let n = 0;
    for (;;) {
      const r = await shared.pool.query(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE time < $1 ORDER BY id LIMIT ${BATCH})`, [cutoff]);
      n += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < BATCH) break;
    }
    if (n) deleted[table] = n;
  }
  const q = await shared.quarantine.prune(now);
  if (q) deleted.quarantine = q;
  return deleted;
}

export function startSharedRetention(shared: SharedStore, cfg: () => LoadedConfig, log: LogFn): () => void {
  return everyHour(() =>
    pruneShared(shared, cfg()).then(
      (d) => {
        if (Object.keys(d).length) log('info', 'shared store: old records pruned', d);
      },
      (err: unknown) => log('warn', 'shared store: retention failed; tried again in an hour', { error: describeError(err) }),
    ),
  );
}
