/**
 * A CLI command on a gateway with `store:` works on the shared PostgreSQL store: opened for
 * the command (no listening), closed after it (what it queued is written first). Warnings of
 * the store go to stderr as one line each.
 */

import type { LoadedConfig } from '../policy/load-config.ts';
import type { SharedStore } from '../shared-store/shared-store.ts';
import type { LogFn } from '../logs/process-log.ts';

const warn: LogFn = (level, msg, fields) => {
  if (level === 'info') return;
  process.stderr.write(`smtpwall: ${msg}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}\n`);
};

/** Run `fn` with the shared store when the config names one; null otherwise (the SQLite store applies). */
export async function withShared<T>(cfg: LoadedConfig, fn: (shared: SharedStore | null) => Promise<T>): Promise<T> {
  if (!cfg.store) return fn(null);
  // Loaded only here: a command on the embedded store does not pay for the PostgreSQL driver.
  const { SharedStore } = await import('../shared-store/shared-store.ts');
  const shared = await SharedStore.open(cfg, warn, { gateway: false });
  try {
    return await fn(shared);
  } finally {
    await shared.close();
  }
}
