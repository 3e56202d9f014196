/**
 * `npm run bench`: delivery speed and cost of each path, measured in the same run with
 * Postfix's smtp-source as the load and smtp-sink as the receiving server (Debian's postfix):
 *
 *   direct            smtp-source → smtp-sink (no relay)
 *   haproxy           through HAProxy in TCP mode, one thread: the cost of any relay
 *   node-pipe         a plain Node.js TCP pipe (bench/minimal-relays.ts): what Node costs here
 *   node-smtp         a minimal SMTP-aware Node.js cut-through relay (the same file): what
 *                     speaking SMTP on both legs costs, with none of smtpwall's work
 *   smtpwall-saf      through smtpwall, store-and-forward, built-in engine
 *   smtpwall-saf-2w   the same with `workers: 2` (CPU and RSS summed over the workers)
 *   smtpwall-saf-reuse the same with `upstream-reuse: true` (idle upstream sessions reused)
 *   smtpwall-ct       through smtpwall, cut-through, built-in engine
 *   saf-no-log, saf-no-inspect, saf-bare
 *                     smtpwall-saf with logging, inspection, or both switched off
 *                     (SMTPWALL_BENCH_OFF, app/bench-switches.ts; 10 KB only): what each costs
 *   smtpwall-clamd    through smtpwall, store-and-forward, built-in engine + clamd
 *   clamsmtp          through ClamSMTP + the same clamd
 *
 * Then inspection throughput in MB/s (bench/inspect.ts): smtpwall's inspector and clamd on
 * the same bytes (10 MB plain, 10 MB base64, a zip of 1000 files).
 *
 * A path whose peer is not installed is skipped with a message (apt-get install postfix
 * haproxy clamav-daemon clamsmtp). Prints a table and writes bench/results/latest.json.
 * Then latency p50/p99 per path (one session, MAIL FROM to the final 250, own client), the
 * gateway's RSS with 1,000 idle sessions and with 20 × 20 MB messages in flight, and the
 * targets of issue 6 as MET/MISSED lines.
 *
 * `--quick`: 10 KB messages at 1 and 10 sessions only. `--ladder`: 10 KB at 10 and 50 sessions
 * through the baselines and the smtpwall paths only (no latency, memory or inspection runs), in
 * three interleaved rounds whose medians are reported (`--rounds N`: that many, in any run; 10 KB
 * only). `--inspect`: inspection throughput only.
 * `--chart`: also draw docs/bench.svg (the README's picture) from this run. `--analysis`: the
 * analyzers' files/s and p99 per type only (also part of a full run). `--flood`: a sender's
 * wait for the greeting during a flood of 1,000 idle connections, beside the wait without one
 * (bench/flood.ts; also part of a full run). `--admin`: throughput with the console and /metrics
 * polled every 100 ms beside the same gateway unpolled (bench/admin-load.ts; also part of a full
 * and a --quick run). `--shared-store`: two instances on one PostgreSQL beside the same two on
 * SQLite, and the time from a verdict on one to a block on the other (bench/shared-store.ts;
 * also part of a full run). `--profile`: the gateway under `node --cpu-prof`, CPU per message
 * by smtpwall file and by function, warm-up left out (bench/profile.ts: `--warm`, `--messages`,
 * `--sessions`, `--size`, `--config`, `--cut-through`). `--ab REF`: this tree against git REF, two
 * gateways side by side in alternating rounds, CPU per message pair by pair (bench/ab.ts:
 * `--rounds`, `--messages`, `--idle`, `--sessions`, `--size`, `--a-config`, `--a-env`, `--fresh`). `--gc [REF]`:
 * scavenges and mark-compacts counted under a load (bench/gc-count.ts), against REF's run by run.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAnalysisBench, runHoldLatencyBench } from './analysis.ts';
import { renderChart } from './chart.ts';
import { benchNdbLines, type InspectResult, runInspectBench } from './inspect.ts';
import { bigMessagesRss, idleSessionsRss, type LatencyResult, measureLatency } from './latency.ts';
import { type FloodResult, floodBench } from './flood.ts';
import { type AdminLoadResult, adminLoadBench } from './admin-load.ts';
import { type SharedStoreResult, sharedStoreBench } from './shared-store.ts';
import { printObjectSpread } from './object-spread.ts';
import { freePort, waitPort } from '../test/helpers/ports.ts';
import { profileFromArgs } from './profile.ts';
import { gcCountFromArgs } from './gc-count.ts';
import { abBench } from './ab.ts';

const ROOT = join(import.meta.dirname, '..');
const LADDER = process.argv.includes('--ladder');
const QUICK = process.argv.includes('--quick') || LADDER;
const INSPECT_ONLY = process.argv.includes('--inspect');
const CHART = process.argv.includes('--chart');
/** Interleaved rounds of each 10 KB measurement (`--rounds N`; 3 in --ladder). */
const ROUNDS = process.argv.includes('--rounds') ? Math.max(1, Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 1) : LADDER ? 3 : 1;
const SIZES = QUICK ? [10_000] : [10_000, 100_000, 1_000_000, 20_000_000];
const SESSIONS = LADDER ? [10, 50] : QUICK ? [1, 10] : [1, 10, 50];
/** Messages per measurement, by size: enough for a stable rate, bounded in time. */
const MESSAGES: Record<number, number> = QUICK ? { 10_000: 1000 } : { 10_000: 1000, 100_000: 300, 1_000_000: 60, 20_000_000: 6 };
/** ClamSMTP is an order of magnitude slower: it gets a fifth of the messages (rates stay comparable). */
const SLOW_PATHS: Record<string, number> = { clamsmtp: 5 };

/** Store-and-forward with stages of the mail path switched off (SMTPWALL_BENCH_OFF). */
const LADDER_STAGES = [
  ['saf-no-log', 'records,maillog'],
  ['saf-no-inspect', 'inspect'],
  ['saf-bare', 'inspect,records,maillog'],
] as const;

const have = (bin: string): boolean => existsSync(bin);
const work = mkdtempSync(join(tmpdir(), 'smtpwall-bench-'));
const children: ChildProcess[] = [];

function start(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdout?: boolean } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'pipe'], cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env });
  let err = '';
  c.stderr!.on('data', (d) => (err += d));
  c.on('exit', (code) => {
    if (code && code !== 143 && code !== 0) process.stderr.write(`${cmd} exited ${code}: ${err.slice(-500)}\n`);
  });
  children.push(c);
  return c;
}

function stop(c: ChildProcess): void {
  if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
}

/** The word after `flag` on the command line, if the flag is given. */
function argAfter(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i === -1 ? undefined : process.argv[i + 1];
}

/** Every `flag NAME=VALUE` on the command line, as an environment. */
function envArgs(flag: string): Record<string, string> {
  const env: Record<string, string> = {};
  process.argv.forEach((a, i) => {
    const pair = process.argv[i + 1];
    if (a !== flag || pair === undefined || !pair.includes('=')) return;
    const at = pair.indexOf('=');
    env[pair.slice(0, at)] = pair.slice(at + 1);
  });
  return env;
}

/** CPU seconds (user+system) and peak RSS (MiB) of a process and its children (workers), from /proc. */
function usage(pid: number): { cpu: number; peakMiB: number } {
  let cpu = 0;
  let peakMiB = 0;
  for (const p of [pid, ...childrenOf(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      cpu += (Number(stat[11]) + Number(stat[12])) / 100;
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      peakMiB += hwm ? Number(hwm[1]) / 1024 : 0;
    } catch {
      // the process is gone: nothing to add
    }
  }
  return { cpu, peakMiB };
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // raced with the process exiting
    }
  }
  return out;
}

interface Result {
  path: string;
  size: number;
  sessions: number;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  mbPerSec: number;
  cpuPer1000: number | null;
  peakRssMiB: number | null;
  /** Interleaved rounds this figure is the median of. */
  rounds?: number;
}

/** The median round of one path (by msg/s; CPU is the median of its own), peak RSS the highest. */
function medianOf(rs: readonly Result[]): Result {
  const mid = <T>(xs: T[], by: (x: T) => number): T => [...xs].sort((a, b) => by(a) - by(b))[xs.length >> 1]!;
  const m = mid([...rs], (r) => r.msgsPerSec);
  const cpu = rs.map((r) => r.cpuPer1000).filter((c): c is number => c !== null);
  const rss = rs.map((r) => r.peakRssMiB).filter((c): c is number => c !== null);
  return { ...m, rounds: rs.length, cpuPer1000: cpu.length ? mid(cpu, (c) => c) : null, peakRssMiB: rss.length ? Math.max(...rss) : null };
}

function measure(path: string, port: number, size: number, sessions: number, pid: number | null, count?: number): Result {
  const messages = count ?? Math.max(sessions, Math.ceil(MESSAGES[size]! / (SLOW_PATHS[path] ?? 1)));
  const before = pid ? usage(pid) : null;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/sbin/smtp-source', ['-s', String(sessions), '-l', String(size), '-m', String(messages), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 300_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`smtp-source failed on ${path}: ${r.stderr}`);
  const after = pid ? usage(pid) : null;
  return {
    path,
    size,
    sessions,
    messages,
    seconds,
    msgsPerSec: messages / seconds,
    mbPerSec: (messages * size) / seconds / 1e6,
    cpuPer1000: before && after ? ((after.cpu - before.cpu) / messages) * 1000 : null,
    peakRssMiB: after ? after.peakMiB : null,
  };
}

async function main(): Promise<void> {
  if (!INSPECT_ONLY && (!have('/usr/sbin/smtp-source') || !have('/usr/sbin/smtp-sink'))) {
    process.stderr.write('npm run bench: smtp-source/smtp-sink missing (apt-get install postfix)\n');
    process.exitCode = 2;
    return;
  }
  if (process.argv.includes('--profile')) return profileFromArgs(process.argv);
  if (process.argv.includes('--gc')) return void (await gcCountFromArgs(process.argv));
  const sinkPort = await freePort();
  start('/usr/sbin/smtp-sink', ['-u', 'nobody', '-c', `127.0.0.1:${sinkPort}`, '1000']);
  await waitPort(sinkPort);
  if (process.argv.includes('--ab')) {
    const ref = process.argv[process.argv.indexOf('--ab') + 1];
    if (!ref || ref.startsWith('--')) throw new Error('--ab needs a git ref: npm run bench -- --ab HEAD~1');
    const num = (flag: string, dflt: number): number => (process.argv.includes(flag) ? Number(process.argv[process.argv.indexOf(flag) + 1]) : dflt);
    const ab = await abBench(
      {
        root: ROOT, work, sinkPort, freePort, waitPort, start, stop,
        cpuPerMessage: (port, pid, messages, sessions, size) => measure('ab', port, size, sessions, pid, messages).cpuPer1000!,
      },
      ref,
      { rounds: process.argv.includes('--rounds') ? ROUNDS : 7, messages: num('--messages', 1500), idle: num('--idle', 0), sessions: num('--sessions', 10), size: num('--size', 10_000), aConfig: argAfter('--a-config'), aEnv: envArgs('--a-env'), fresh: process.argv.includes('--fresh') },
    );
    write([], [], { ab });
    return;
  }
  /** smallOnly: measured with 10 KB messages only (the ladder's stage rows). */
  const paths: Array<{ name: string; port: number; pid: number | null; smallOnly?: boolean }> = [{ name: 'direct', port: sinkPort, pid: null }];

  if (have('/usr/sbin/haproxy')) {
    const port = await freePort();
    const cfg = join(work, 'haproxy.cfg');
    writeFileSync(cfg, `global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend f\n  bind 127.0.0.1:${port}\n  default_backend b\nbackend b\n  server s 127.0.0.1:${sinkPort}\n`);
    const c = start('/usr/sbin/haproxy', ['-f', cfg, '-db']);
    await waitPort(port);
    paths.push({ name: 'haproxy', port, pid: c.pid ?? null });
  } else process.stdout.write('skipping haproxy: not installed (apt-get install haproxy)\n');

  for (const [name, mode] of [['node-pipe', 'pipe'], ['node-smtp', 'smtp']] as const) {
    const port = await freePort();
    const c = start(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/minimal-relays.ts'), mode, String(port), String(sinkPort)]);
    await waitPort(port);
    paths.push({ name, port, pid: c.pid ?? null });
  }

  let clamdSocket: string | null = null;
  if (have('/usr/sbin/clamd')) {
    const db = join(work, 'clamdb');
    mkdirSync(db, { recursive: true });
    writeFileSync(join(db, 'bench.hdb'), '44d88612fea8a8f36de82e1278abb02f:68:Bench.Eicar\n');
    writeFileSync(join(db, 'bench.ndb'), `${benchNdbLines().join('\n')}\n`);
    clamdSocket = join(work, 'clamd.sock');
    const conf = join(work, 'clamd.conf');
    writeFileSync(conf, `Foreground yes\nLocalSocket ${clamdSocket}\nLocalSocketMode 666\nDatabaseDirectory ${db}\nMaxThreads 20\n`);
    start('/usr/sbin/clamd', ['-c', conf]);
    const until = Date.now() + 30_000;
    while (!existsSync(clamdSocket) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(clamdSocket)) clamdSocket = null;
  } else process.stdout.write('skipping clamd paths: clamd not installed (apt-get install clamav-daemon)\n');

  if (process.argv.includes('--analysis')) {
    write([], [], { analysis: await runAnalysisBench(500), hold: await runHoldLatencyBench(300) });
    return;
  }
  if (process.argv.includes('--memory')) {
    await memoryBench();
    return;
  }
  if (process.argv.includes('--flood')) {
    write([], [], { flood: await floodRun() });
    return;
  }
  if (process.argv.includes('--shared-store')) {
    write([], [], { shared: await sharedRun(sinkPort) });
    return;
  }
  if (process.argv.includes('--admin')) {
    write([], [], { admin: await adminRun(sinkPort) });
    return;
  }
  if (INSPECT_ONLY) {
    write([], await runInspectBench(clamdSocket, 3));
    return;
  }

  for (const [name, forwarding, clamd, workers] of [
    ['smtpwall-saf', 'store-and-forward', false, 1],
    ['smtpwall-saf-2w', 'store-and-forward', false, 2],
    ['smtpwall-saf-reuse', 'store-and-forward', false, 1],
    ['smtpwall-ct', 'cut-through', false, 1],
    ['smtpwall-clamd', 'store-and-forward', true, 1],
  ] as const) {
    if (clamd && !clamdSocket) continue;
    if (LADDER && (clamd || workers > 1)) continue;
    const port = await freePort();
    const cfg = join(work, `${name}.yaml`);
    writeFileSync(
      cfg,
      `data-dir: ${JSON.stringify(join(work, name))}\nlisteners:\n  - name: bench\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sinkPort}\n    forwarding: ${forwarding}\n` +
        (name.endsWith('-reuse') ? '    upstream-reuse: true\n' : '') +
        `workers: ${workers}\nlimits: { max-sessions: 3000, max-sessions-per-client: 3000 }\n` +
        (clamd ? `engines: { clamd: { address: ${JSON.stringify(clamdSocket)}, objects: message } }\n` : ''),
    );
    const c = start(process.execPath, [join(ROOT, 'bin/smtpwall.js'), 'start', '-c', cfg]);
    await waitPort(port);
    paths.push({ name, port, pid: c.pid ?? null });
  }
  // The ladder's stage rows: store-and-forward with stages switched off one by one
  // (app/bench-switches.ts), so the README can say what each costs per message.
  for (const [name, off] of LADDER_STAGES) {
    const port = await freePort();
    const cfg = join(work, `${name}.yaml`);
    writeFileSync(cfg, `data-dir: ${JSON.stringify(join(work, name))}\nlisteners:\n  - name: bench\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${sinkPort}\n    forwarding: store-and-forward\nlimits: { max-sessions: 3000, max-sessions-per-client: 3000 }\n`);
    const c = start(process.execPath, [join(ROOT, 'bin/smtpwall.js'), 'start', '-c', cfg], { env: { ...process.env, SMTPWALL_BENCH_OFF: off } });
    await waitPort(port);
    paths.push({ name, port, pid: c.pid ?? null, smallOnly: true });
  }

  if (clamdSocket && have('/usr/sbin/clamsmtpd')) {
    const port = await freePort();
    const tmp = join(work, 'clamsmtp-tmp');
    mkdirSync(tmp, { recursive: true, mode: 0o777 });
    const conf = join(work, 'clamsmtpd.conf');
    // clamsmtpd drops to its own user (LAB-NOTES): its temp directory must be writable by it.
    chmodSync(work, 0o755);
    chmodSync(tmp, 0o777);
    writeFileSync(conf, `OutAddress: 127.0.0.1:${sinkPort}\nListen: 127.0.0.1:${port}\nClamAddress: ${clamdSocket}\nTempDirectory: ${tmp}\nUser: clamsmtp\nAction: bounce\nMaxConnections: 200\n`);
    const c = start('/usr/sbin/clamsmtpd', ['-d', '1', '-f', conf]);
    try {
      await waitPort(port, 10_000);
      paths.push({ name: 'clamsmtp', port, pid: c.pid ?? null });
    } catch {
      process.stdout.write('skipping clamsmtp: clamsmtpd did not start (see its error above)\n');
    }
  } else if (!have('/usr/sbin/clamsmtpd')) process.stdout.write('skipping clamsmtp: not installed (apt-get install clamsmtp)\n');

  // Warm every path up first (JIT, pools, caches): the first measurement must not pay for it.
  // smtpwall needs longer than the baselines: measured here, its first ~4,000 messages cost
  // 2.2–2.4 ms of CPU each and the following ones 1.5–1.8 ms (V8 optimises its many small
  // functions late). A gateway in service is warm, so every path gets the same 5,000.
  for (const p of paths) measure(p.name, p.port, 10_000, 10, null, 5000);
  // 10 KB runs are repeated in interleaved rounds and reported as medians: this VM's speed
  // drifts by ±15 % over a minute (the same gateway measured 0.74–1.02 ms a message in one
  // run), so one measurement per path would compare paths measured at different speeds.
  const results: Result[] = [];
  for (const size of SIZES) {
    for (const sessions of SESSIONS) {
      const rounds = size === 10_000 ? ROUNDS : 1;
      const byPath = new Map<string, Result[]>();
      for (let round = 1; round <= rounds; round++) {
        for (const p of paths) {
          if (p.smallOnly && size > 10_000) continue;
          const r = measure(p.name, p.port, size, sessions, p.pid);
          byPath.set(p.name, [...(byPath.get(p.name) ?? []), r]);
          process.stdout.write(`  ${p.name.padEnd(18)} ${String(size / 1000).padStart(5)} KB × ${String(sessions).padStart(2)} sessions${rounds > 1 ? `, round ${round}/${rounds}` : ''}: ${r.msgsPerSec.toFixed(0).padStart(6)} msg/s\n`);
        }
      }
      for (const rs of byPath.values()) results.push(medianOf(rs));
    }
  }
  report(results);
  stageCosts(results);
  relayAtLowerRate(paths, results);
  printObjectSpread();
  if (LADDER) {
    targets(results, [], null, null);
    write(results, []);
    return;
  }
  const latency: LatencyResult[] = [];
  process.stdout.write('\nlatency, 10 KB, one session, MAIL FROM to the 250 after end of data:\n');
  for (const p of paths) {
    const l = await measureLatency(p.name, p.port, p.name === 'clamsmtp' ? 100 : QUICK ? 200 : 500);
    latency.push(l);
    const direct = latency[0]!;
    process.stdout.write(`  ${p.name.padEnd(15)} p50 ${l.p50.toFixed(2).padStart(6)} ms  p99 ${l.p99.toFixed(2).padStart(6)} ms  added p99 ${(l.p99 - direct.p99).toFixed(2).padStart(6)} ms\n`);
  }
  const admin = await adminRun(sinkPort);
  const shared = await sharedRun(sinkPort);
  const { idle, big } = await memoryBench();
  const flood = await floodRun();
  const inspection = await runInspectBench(clamdSocket, QUICK ? 1 : 3);
  const analysis = await runAnalysisBench(QUICK ? 100 : 500);
  const hold = await runHoldLatencyBench(QUICK ? 100 : 300);
  targets(results, latency, idle, big);
  write(results, inspection, { latency, idle, big, flood, analysis, hold, admin, shared });
}

/**
 * Memory: a store-and-forward gateway of its own, in front of smtp-server (smtp-sink cannot
 * hold 1,000 connections: it is select()-based), so only the gateway's own cost is measured.
 */
/** The admin plane's cost to the mail (bench/admin-load.ts), printed beside its in-run baseline. */
async function adminRun(sinkPort: number): Promise<AdminLoadResult> {
  const r = await adminLoadBench({
    root: ROOT, work, sinkPort, freePort, waitPort, start, stop,
    rate: (port) => measure('smtpwall-admin', port, 10_000, 10, null, 1000).msgsPerSec,
  });
  process.stdout.write(
    `\nadmin plane, 10 KB × 10 sessions, store-and-forward, ${r.rounds} interleaved rounds (medians):\n` +
      `  quiet                                ${r.quietMsgsPerSec.toFixed(0).padStart(6)} msg/s\n` +
      `  console + /metrics polled every 100 ms ${r.polledMsgsPerSec.toFixed(0).padStart(6)} msg/s  (${r.changePct >= 0 ? '+' : ''}${r.changePct.toFixed(1)} %, ${r.requests} requests, ${r.failedRequests} failed)\n`,
  );
  return r;
}

/** Two instances on one PostgreSQL beside the same two on SQLite (bench/shared-store.ts). */
async function sharedRun(sinkPort: number): Promise<SharedStoreResult | null> {
  const r = await sharedStoreBench({ root: ROOT, work, sinkPort, freePort, waitPort, start, stop });
  if (!r) return null;
  const ms = [...r.verdictToBlockMs].sort((a, b) => a - b);
  process.stdout.write(
    `\nshared store, two instances, 10 KB × 10 sessions each at once, store-and-forward, ${r.rounds} interleaved rounds (medians):\n` +
      `  each on its own SQLite        ${r.sqliteMsgsPerSec.toFixed(0).padStart(6)} msg/s\n` +
      `  both on one PostgreSQL        ${r.postgresMsgsPerSec.toFixed(0).padStart(6)} msg/s  (${r.changePct >= 0 ? '+' : ''}${r.changePct.toFixed(1)} %)\n` +
      `  verdict set on A → B blocks   median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms over ${ms.length} tries (target < 1000 ms)\n`,
  );
  return r;
}

/** The greeting wait of a real sender during a flood of 1,000 idle connections (stress mode). */
async function floodRun(): Promise<FloodResult> {
  const mem = await memoryGateway({ maxSessions: 200, perClient: 20 });
  try {
    const r = await floodBench(mem.port, mem.sinkPort, 1000, 50);
    process.stdout.write(`\nflood: a sender's wait for the greeting, max-sessions 200: the receiving server directly p50 ${r.direct.p50.toFixed(1)} ms p99 ${r.direct.p99.toFixed(1)} ms; through smtpwall, no flood p50 ${r.baseline.p50.toFixed(1)} ms p99 ${r.baseline.p99.toFixed(1)} ms; ` +
      `during ${r.flooders} idle connections p50 ${r.flood.p50.toFixed(1)} ms p99 ${r.flood.p99.toFixed(1)} ms, ${r.flood.refused} of ${r.probes} refused\n`);
    return r;
  } finally {
    await mem.close();
  }
}

async function memoryBench() {
  const mem = await memoryGateway();
  try {
    const rssOf = () => rss(mem.pid);
    const idle = await idleSessionsRss(mem.port, 1000, rssOf);
    process.stdout.write(`\nmemory (store-and-forward): ${idle.sessions} idle sessions: RSS ${idle.before.toFixed(0)} → ${idle.during.toFixed(0)} MiB\n`);
    const big = await bigMessagesRss(mem.port, QUICK ? 5 : 20, 20_000_000, rssOf);
    process.stdout.write(`memory (store-and-forward): ${big.sessions} × ${big.sizeMB} MB in flight: peak RSS ${big.peak.toFixed(0)} MiB (${big.seconds.toFixed(1)} s)\n`);
    return { idle, big };
  } finally {
    await mem.close();
  }
}

/** A gateway (store-and-forward, built-in engine) in front of an smtp-server that takes anything. */
async function memoryGateway(limits = { maxSessions: 3000, perClient: 3000 }): Promise<{ port: number; sinkPort: number; pid: number; close: () => Promise<void> }> {
  const { SMTPServer } = await import('smtp-server');
  const sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    maxClients: 5000,
    disableReverseLookup: true, // smtp-server would spend ~100 ms on a reverse lookup before each greeting
    onData(stream, _session, cb) {
      stream.on('data', () => {});
      stream.on('end', () => cb());
    },
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const sinkPort = (sink.server.address() as { port: number }).port;
  const port = await freePort();
  const cfg = join(work, 'memory.yaml');
  writeFileSync(
    cfg,
    `data-dir: ${JSON.stringify(join(work, 'memory'))}\nlisteners:\n  - { name: mem, listen: "127.0.0.1:${port}", upstream: "127.0.0.1:${sinkPort}" }\n` +
      `limits: { max-sessions: ${limits.maxSessions}, max-sessions-per-client: ${limits.perClient} }\n`,
  );
  const c = start(process.execPath, [join(ROOT, 'bin/smtpwall.js'), 'start', '-c', cfg]);
  await waitPort(port);
  return {
    port,
    sinkPort,
    pid: c.pid!,
    close: async () => {
      stop(c);
      await new Promise<void>((r) => sink.close(() => r()));
    },
  };
}

/** What each stage of the mail path costs per message: the ladder's rows side by side. */
function stageCosts(results: Result[]): void {
  for (const sessions of SESSIONS) {
    const cpu = (path: string): number | null => results.find((x) => x.path === path && x.size === 10_000 && x.sessions === sessions)?.cpuPer1000 ?? null;
    const full = cpu('smtpwall-saf');
    const relay = cpu('node-smtp');
    if (full === null) continue;
    const rows: Array<[string, number | null]> = [
      ['logging (log database, maillog line)', ((a) => (a === null ? null : full - a))(cpu('saf-no-log'))],
      ['inspection and analysis', ((a) => (a === null ? null : full - a))(cpu('saf-no-inspect'))],
      ['the rest of smtpwall over the minimal Node SMTP relay', ((a) => (a === null || relay === null ? null : a - relay))(cpu('saf-bare'))],
      ['the minimal Node SMTP relay itself', relay],
    ];
    process.stdout.write(`\nCPU ms per 10 KB message, store-and-forward, ${sessions} sessions: ${full.toFixed(2)}\n`);
    for (const [what, ms] of rows) process.stdout.write(`  ${ms === null ? '   -' : ms.toFixed(2).padStart(5)}  ${what}\n`);
  }
}

/**
 * The minimal Node SMTP relay again at 2 and 1 sessions, rates nearer smtpwall's at 10:
 * its CPU per message rises as its rate falls (the kernel's part of a loopback write — waking
 * the peer — costs more when the peers sleep between messages: profiled, the relay's thirteen
 * writes a message took 0.17 ms at 2,152 msg/s and 0.23 ms at 1,223), so the CPU gap between
 * smtpwall and the relay at 10 sessions is partly smtpwall's lower rate. Three rounds, medians.
 */
function relayAtLowerRate(paths: ReadonlyArray<{ name: string; port: number; pid: number | null }>, results: Result[]): void {
  const relay = paths.find((p) => p.name === 'node-smtp');
  const at10 = results.find((x) => x.path === 'node-smtp' && x.size === 10_000 && x.sessions === 10);
  if (!relay || !at10) return;
  const at = (sessions: number): string => {
    const m = medianOf([1, 2, 3].map(() => measure('node-smtp', relay.port, 10_000, sessions, relay.pid, 1000)));
    return `${m.msgsPerSec.toFixed(0)} msg/s at ${sessions}, ${m.cpuPer1000?.toFixed(2) ?? '-'} ms`;
  };
  process.stdout.write(
    `\nthe minimal Node SMTP relay's CPU a 10 KB message as its rate falls (sessions): ${at10.msgsPerSec.toFixed(0)} msg/s at 10, ${at10.cpuPer1000?.toFixed(2) ?? '-'} ms; ${at(2)}; ${at(1)}\n`,
  );
}

/** The issue's targets, as ratios measured in this run: MET or MISSED, never hidden. */
function targets(results: Result[], latency: LatencyResult[], idle: { during: number } | null, big: { peak: number; sessions: number } | null): void {
  const r = (path: string, size: number, sessions: number) => results.find((x) => x.path === path && x.size === size && x.sessions === sessions);
  const lines: string[] = [];
  const check = (name: string, value: number | null, goal: number, unit: string, atMost = false): void => {
    if (value === null) return void lines.push(`  -      ${name}: not measured (peer missing)`);
    const ok = atMost ? value <= goal : value >= goal;
    lines.push(`  ${ok ? 'MET   ' : 'MISSED'} ${name}: ${value.toFixed(unit === '%' ? 0 : 2)}${unit} (target ${atMost ? '≤' : '≥'} ${goal}${unit})`);
  };
  const ratio = (a?: Result, b?: Result, f: (x: Result) => number = (x) => x.msgsPerSec) => (a && b ? (f(a) / f(b)) * 100 : null);
  check('store-and-forward vs HAProxy, 10 KB × 10 sessions, msg/s', ratio(r('smtpwall-saf', 10_000, 10), r('haproxy', 10_000, 10)), 70, '%');
  check('cut-through vs HAProxy, 10 KB × 10 sessions, msg/s', ratio(r('smtpwall-ct', 10_000, 10), r('haproxy', 10_000, 10)), 75, '%');
  check('store-and-forward relay CPU per message, 10 KB × 10 sessions', r('smtpwall-saf', 10_000, 10)?.cpuPer1000 ?? null, 0.9, ' ms', true);
  check('store-and-forward + upstream-reuse vs HAProxy, 10 KB × 10 sessions', ratio(r('smtpwall-saf-reuse', 10_000, 10), r('haproxy', 10_000, 10)), 90, '%');
  if (SESSIONS.includes(50)) check('store-and-forward + upstream-reuse vs HAProxy, 10 KB × 50 sessions', ratio(r('smtpwall-saf-reuse', 10_000, 50), r('haproxy', 10_000, 50)), 110, '%');
  // Against the in-run minimal SMTP-aware Node relay, every size and session count measured.
  for (const x of results.filter((y) => y.path === 'smtpwall-saf' || y.path === 'smtpwall-ct')) {
    check(`${x.path} vs the minimal Node SMTP relay, ${x.size / 1000} KB × ${x.sessions} sessions`, ratio(x, r('node-smtp', x.size, x.sessions)), 90, '%');
  }
  check('smtpwall + clamd vs ClamSMTP + clamd, 10 KB × 10 sessions', ratio(r('smtpwall-clamd', 10_000, 10), r('clamsmtp', 10_000, 10)), 500, '%');
  const direct = latency.find((l) => l.path === 'direct');
  const saf = latency.find((l) => l.path === 'smtpwall-saf');
  if (latency.length) check('added p99 latency, 10 KB, 1 session', direct && saf ? saf.p99 - direct.p99 : null, 2, ' ms', true);
  for (const size of SIZES.filter((s) => s >= 1_000_000)) {
    const s = Math.max(...SESSIONS);
    check(`store-and-forward vs HAProxy, ${size / 1e6} MB × ${s} sessions, MB/s`, ratio(r('smtpwall-saf', size, s), r('haproxy', size, s), (x) => x.mbPerSec), 80, '%');
    check(`cut-through vs HAProxy, ${size / 1e6} MB × ${s} sessions, MB/s`, ratio(r('smtpwall-ct', size, s), r('haproxy', size, s), (x) => x.mbPerSec), 90, '%');
  }
  if (idle) check('RSS with 1,000 idle sessions', idle.during, 150, ' MiB', true);
  if (big) check(`peak RSS with ${big.sessions} × 20 MB in flight`, big.peak, 250, ' MiB', true);
  process.stdout.write(`\ntargets (this run):\n${lines.join('\n')}\n`);
}

/** Current and peak RSS of a process and its children (workers), MiB. */
function rss(pid: number): { rssMiB: number; peakMiB: number } {
  let rssMiB = 0;
  let peakMiB = 0;
  for (const p of [pid, ...childrenOf(pid)]) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      rssMiB += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
      peakMiB += Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    } catch {
      // gone
    }
  }
  return { rssMiB, peakMiB };
}

function report(results: Result[]): void {
  const find = (path: string, r: Result) => results.find((x) => x.path === path && x.size === r.size && x.sessions === r.sessions);
  const ratio = (a: number, b: number | undefined) => (b ? `${((a / b) * 100).toFixed(0)}%` : '-');
  const rows = results.map((r) => [
    r.path,
    `${r.size / 1000} KB`,
    String(r.sessions),
    r.msgsPerSec.toFixed(0),
    r.mbPerSec.toFixed(1),
    ratio(r.msgsPerSec, find('direct', r)?.msgsPerSec),
    ratio(r.msgsPerSec, find('haproxy', r)?.msgsPerSec),
    r.path === 'clamsmtp' ? '' : ratio(r.msgsPerSec, find('clamsmtp', r)?.msgsPerSec),
    r.cpuPer1000 === null ? '' : r.cpuPer1000.toFixed(2),
    r.peakRssMiB === null ? '' : r.peakRssMiB.toFixed(0),
  ]);
  const head = ['path', 'size', 'sess', 'msg/s', 'MB/s', 'vs direct', 'vs haproxy', 'vs clamsmtp', 'cpu s/1000', 'peak RSS MiB'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\n${line(head)}\n${rows.map(line).join('\n')}\n`);
}

function write(results: Result[], inspection: InspectResult[], extra: Record<string, unknown> = {}): void {
  const out = join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), JSON.stringify({ date: new Date().toISOString(), quick: QUICK, results, inspection, ...extra }, null, 2));
  process.stdout.write(`\nwritten: bench/results/latest.json\n`);
  if (CHART && results.length) {
    const svg = renderChart(results, `${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores${QUICK ? ', --quick' : ''}; every path measured in the same run`);
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    writeFileSync(join(ROOT, 'docs/bench.svg'), svg);
    process.stdout.write('written: docs/bench.svg\n');
  }
}

try {
  await main();
} finally {
  for (const c of children) stop(c);
  await new Promise((r) => setTimeout(r, 300));
  rmSync(work, { recursive: true, force: true });
}
