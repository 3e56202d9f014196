/**
 * Stages of the mail path switched off for `npm run bench -- --ladder` only, to measure what
 * each costs per message: `SMTPWALL_BENCH_OFF=inspect,records,maillog` (any of them).
 *
 *   inspect  no inspection: every message gets an empty scan result (the policy still decides)
 *   records  no log database: traffic and threat records are dropped
 *   maillog  no info lines on the process log (the maillog line of each transaction among them)
 *
 * This switches protection off; nothing but the benchmark sets it, and `smtpwall start` says
 * so in a warning at start when it is set.
 */

import type { StreamScan } from '../inspect/inspector.ts';
import type { LogStore } from '../logs/records.ts';

const STAGES = ['inspect', 'records', 'maillog'] as const;
export type BenchStage = (typeof STAGES)[number];

export function benchOff(env: NodeJS.ProcessEnv = process.env): ReadonlySet<BenchStage> {
  const asked = (env.SMTPWALL_BENCH_OFF ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = asked.filter((s) => !(STAGES as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`SMTPWALL_BENCH_OFF: unknown stage ${unknown.join(', ')} (known: ${STAGES.join(', ')})`);
  return new Set(asked as BenchStage[]);
}

const NOTHING_FOUND = Promise.resolve({ findings: [], files: [], events: [] });
const UNINSPECTED: StreamScan = { write() {}, end: () => NOTHING_FOUND };

/** An inspector that inspects nothing (bench stage `inspect`). */
export const NO_INSPECTION = { begin: (): StreamScan => UNINSPECTED };

/** A log store that keeps nothing (bench stage `records`). */
export const NO_RECORDS: LogStore = {
  addTraffic() {},
  addThreat() {},
  addBatch() {},
  listTraffic: () => [],
  listThreats: () => [],
  close() {},
};
