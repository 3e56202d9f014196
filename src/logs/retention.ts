/**
 * Retention of the log database (`log-database.retention`): records older than the retention
 * are deleted — traffic, threats, sightings and audit records; captures by capture.retention — in small batches with a pause between them,
 * so a prune of millions of rows never holds the database (or the event loop) for longer than
 * one batch, and mail is never waited on. Runs in one process only (the supervisor, or the
 * single gateway process), with its own database connection: at start, then every hour.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LogFn } from './process-log.ts';

const EVERY_MS = 3_600_000;
/** Rows per delete: each batch is a few milliseconds. */
const BATCH = 500;
/** Pause between batches: writers (the gateway's batches) get the lock in between. */
const PAUSE_MS = 20;

const TABLES = ['traffic', 'threats', 'sightings', 'audit'] as const;

/** Delete what is older than `retentionMs`; returns the rows deleted per table. */
export async function prune(dataDir: string, retentionMs: number, now = Date.now(), pause = PAUSE_MS, captureRetentionMs = 0): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  const file = join(dataDir, 'logs.sqlite');
  if ((retentionMs <= 0 && captureRetentionMs <= 0) || !existsSync(file)) return deleted;
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 1000');
    const cutoffs: Array<[string, number]> = [...TABLES.map((t): [string, number] => [t, retentionMs]), ['captures', captureRetentionMs]];
    for (const [table, keep] of cutoffs) {
      if (keep <= 0) continue;
      const cutoff = new Date(now - keep).toISOString();
      const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table);
      if (!exists) continue;
      const del = db.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE time < ? LIMIT ${BATCH})`);
      let n = 0;
      for (;;) {
        const { changes } = del.run(cutoff);
        n += changes;
        if (changes < BATCH) break;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
      deleted[table] = n;
    }
  } finally {
    db.close();
  }
  return deleted;
}

/** The schedule: a prune soon after start and every hour; `retentionMs` is read each time (reload). */
export function startRetention(dataDir: string, retention: () => number, log: LogFn, captureRetention: () => number = () => 0): () => void {
  return everyHour(() => {
    const retentionMs = retention();
    const captureMs = captureRetention();
    if (retentionMs <= 0 && captureMs <= 0) return null;
    return prune(dataDir, retentionMs, Date.now(), PAUSE_MS, captureMs).then(
      (d) => {
        const total = Object.values(d).reduce((a, b) => a + b, 0);
        if (total > 0) log('info', 'log records pruned', { retention: `${Math.round(retentionMs / 86_400_000)}d`, ...d });
      },
      (err: Error) => log('warn', 'log retention failed; tried again in an hour', { error: err.message }),
    );
  });
}

/**
 * Run `task` soon after start and then every hour, never two at once (a prune of a big table
 * may outlast the hour); `task` returns null when there is nothing to do. Returns the stop.
 */
export function everyHour(task: () => Promise<void> | null): () => void {
  let running = false;
  const run = (): void => {
    if (running) return;
    const p = task();
    if (p === null) return;
    running = true;
    void p.finally(() => (running = false));
  };
  const first = setTimeout(run, 1000);
  const timer = setInterval(run, EVERY_MS);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
