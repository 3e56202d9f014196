/**
 * The dashboard's queries, on a thread of their own: a day of traffic is a GROUP BY over
 * every row of that day, which can take longer than a session may wait, and better-sqlite3 is
 * synchronous. Here it blocks only this thread; the gateway's sessions go on.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { SqliteLogStore } from '../logs/sqlite-store.ts';

const { dataDir } = workerData as { dataDir: string };
let store: SqliteLogStore | null = null;

parentPort!.on('message', (m: { id: number; since: string; bucketChars: 15 | 16 }) => {
  try {
    store ??= new SqliteLogStore(dataDir, { readonly: true });
    parentPort!.postMessage({ id: m.id, stats: store.statsSince(m.since, m.bucketChars) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
