/**
 * What the admin plane costs the mail: store-and-forward throughput (10 KB, 10 sessions) of
 * one gateway with admin.listen on, measured in interleaved rounds with and without a poller
 * that asks, every 100 ms, for what an open console and a Prometheus scraper ask: the page,
 * the dashboard's figures, new threat records, /healthz and /metrics. The poller is its own
 * process (`node bench/admin-load.ts poll URL AUTH`), as a browser would be.
 */

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword } from '../src/admin/passwords.ts';
import { median } from './median.ts';

export interface AdminLoadResult {
  readonly quietMsgsPerSec: number;
  readonly polledMsgsPerSec: number;
  /** polled / quiet − 1, in per cent (negative: the polling cost throughput). */
  readonly changePct: number;
  readonly requests: number;
  readonly failedRequests: number;
  readonly rounds: number;
}

/** What bench/run.ts lends the runs that live in their own files. */
export interface BenchDeps {
  readonly root: string;
  readonly work: string;
  readonly sinkPort: number;
  freePort(): Promise<number>;
  waitPort(port: number): Promise<void>;
  start(cmd: string, args: string[], opts?: { stdout?: boolean; env?: NodeJS.ProcessEnv }): ChildProcess;
  stop(c: ChildProcess): void;
}

interface Deps extends BenchDeps {
  /** msg/s of `count` 10 KB messages over 10 sessions through `port`. */
  rate(port: number): number;
}

const POLL_MS = 100;
const PATHS = ['/', '/api/v1/stats?range=hour', '/api/v1/threats?limit=15', '/healthz', '/metrics'];

export async function adminLoadBench(d: Deps, rounds = 3): Promise<AdminLoadResult> {
  const [port, adminPort] = [await d.freePort(), await d.freePort()];
  const cfg = join(d.work, 'admin-load.yaml');
  writeFileSync(
    cfg,
    `data-dir: ${JSON.stringify(join(d.work, 'admin-load'))}\nlisteners:\n  - { name: bench, listen: "127.0.0.1:${port}", upstream: "127.0.0.1:${d.sinkPort}", forwarding: store-and-forward }\n` +
      `limits: { max-sessions: 3000, max-sessions-per-client: 3000 }\nadmin:\n  listen: "127.0.0.1:${adminPort}"\n  users: [{ name: bench, password-hash: "${await hashPassword('bench-secret')}", role: viewer }]\n`,
  );
  const gw = d.start(process.execPath, [join(d.root, 'bin/smtpwall.js'), 'start', '-c', cfg]);
  await d.waitPort(port);
  await d.waitPort(adminPort);
  d.rate(port); // warm-up
  const quiet: number[] = [];
  const polled: number[] = [];
  let requests = 0;
  let failed = 0;
  for (let i = 0; i < rounds; i++) {
    quiet.push(d.rate(port));
    const poller = d.start(process.execPath, ['--import', 'tsx', join(d.root, 'bench/admin-load.ts'), 'poll', `http://127.0.0.1:${adminPort}`, `Basic ${Buffer.from('bench:bench-secret').toString('base64')}`], { stdout: true });
    let out = '';
    poller.stdout!.on('data', (b) => (out += b));
    await new Promise<void>((resolve) => poller.stdout!.once('data', () => resolve())); // "polling": it has started
    polled.push(d.rate(port));
    const exited = new Promise((r) => poller.once('exit', r));
    d.stop(poller);
    await exited;
    const m = /requests=(\d+) failed=(\d+)/.exec(out);
    requests += m ? Number(m[1]) : 0;
    failed += m ? Number(m[2]) : 0;
  }
  d.stop(gw);
  const q = median(quiet);
  const p = median(polled);
  return { quietMsgsPerSec: q, polledMsgsPerSec: p, changePct: (p / q - 1) * 100, requests, failedRequests: failed, rounds };
}

/** The poller: every POLL_MS all of PATHS, one after another, until SIGTERM; then its counts. */
async function poll(base: string, authorization: string): Promise<void> {
  let requests = 0;
  let failed = 0;
  let running = true;
  process.once('SIGTERM', () => (running = false));
  process.stdout.write('polling\n');
  while (running) {
    const t0 = Date.now();
    for (const path of PATHS) {
      const res = await fetch(base + path, { headers: { authorization } }).catch(() => null);
      requests++;
      if (!res || !res.ok) failed++;
      await res?.arrayBuffer();
    }
    await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (Date.now() - t0))));
  }
  process.stdout.write(`requests=${requests} failed=${failed}\n`);
}

if (process.argv[2] === 'poll') await poll(process.argv[3]!, process.argv[4]!);
