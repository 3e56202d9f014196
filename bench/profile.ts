/**
 * `npm run bench -- --profile` (or `node --import tsx bench/profile.ts`): where a message's CPU
 * goes, per message. The gateway runs under `node --cpu-prof` (store-and-forward by default;
 * `--cut-through`; `--config YAML` adds top-level config lines), Postfix's smtp-source sends
 * 10 KB messages (`--size BYTES`) over 10 sessions (`--sessions N`) to smtp-sink: first `--warm`
 * messages (default 5,000: V8 optimises late), then `--messages` (default 4,000) whose samples
 * alone are counted — the window is taken on the clock V8's profiler uses (CLOCK_MONOTONIC, as
 * process.hrtime), so start-up, warm-up and shutdown are left out. Printed: CPU ms per message
 * in the profiler, each sample given to the innermost smtpwall source file on its stack (what
 * that file and the Node code it called cost), and the functions with the most self time. The
 * profile stays in a temporary directory for Chrome DevTools or speedscope.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitPort } from '../test/helpers/ports.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileReport {
  messages: number;
  msPerMessage: number;
  /** µs per message by innermost smtpwall file (or the Node/V8 frame when none is on the stack). */
  byFile: Array<[string, number]>;
  /** µs per message of self time, by function. */
  byFunction: Array<[string, number]>;
  profile: string;
  /** Message size in bytes (smtp-source -l). */
  size: number;
}

/** Samples between `fromUs` and `toUs` (profiler clock), idle left out, per message. */
export function analyse(p: CpuProfile, fromUs: number, toUs: number, messages: number): Omit<ProfileReport, 'profile' | 'size'> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const short = (url: string): string => url.replace(/^file:\/\//, '').replace(ROOT, '');
  const fileOf = new Map<number, string>();
  const innermostSrc = (id: number): string => {
    const known = fileOf.get(id);
    if (known !== undefined) return known;
    let key = '';
    for (let x: number | undefined = id; x !== undefined && key === ''; x = parent.get(x)) {
      const u = short(byId.get(x)!.callFrame.url);
      if (u.startsWith('src/')) key = u;
    }
    if (key === '') {
      const f = byId.get(id)!.callFrame;
      key = `(node) ${f.functionName || '(anonymous)'}${f.url ? ` ${short(f.url)}` : ''}`;
    }
    fileOf.set(id, key);
    return key;
  };
  const files = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < fromUs || t > toUs) continue;
    const node = byId.get(p.samples[i]!)!;
    if (node.callFrame.functionName === '(idle)') continue;
    const us = p.timeDeltas[i + 1] ?? 0;
    total += us;
    const file = innermostSrc(node.id);
    files.set(file, (files.get(file) ?? 0) + us);
    const f = node.callFrame;
    const fn = `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const per = (m: Map<string, number>): Array<[string, number]> => [...m].map(([k, us]): [string, number] => [k, us / messages]).sort((a, b) => b[1] - a[1]);
  return { messages, msPerMessage: total / 1000 / messages, byFile: per(files), byFunction: per(fns) };
}

/** smtp-source: `messages` of `size` bytes over `sessions` sessions to the gateway at `port`, synchronously. */
export function smtpSource(port: number, sessions: number, messages: number, size: number): void {
  const r = spawnSync('/usr/sbin/smtp-source', ['-s', String(sessions), '-l', String(size), '-m', String(messages), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`], { stdio: 'ignore', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`smtp-source exited ${r.status}`);
}

export async function profileGateway(opts: { warm: number; messages: number; sessions: number; forwarding: string; size?: number; config?: string }): Promise<ProfileReport> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-profile-'));
  const [port, sinkPort] = [await freePort(), await freePort()];
  const config = join(dir, 'gateway.yaml');
  writeFileSync(config, `data-dir: ${JSON.stringify(join(dir, 'data'))}\nlisteners:\n  - { name: bench, listen: "127.0.0.1:${port}", upstream: "127.0.0.1:${sinkPort}", forwarding: ${opts.forwarding} }\nlimits: { max-sessions: 3000, max-sessions-per-client: 3000 }\n${opts.config ? `${opts.config}\n` : ''}`);
  const children: ChildProcess[] = [];
  try {
    children.push(spawn('/usr/sbin/smtp-sink', ['-u', 'nobody', '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' }));
    const gateway = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', join(dir, 'profile'), '--cpu-prof-interval', '200', join(ROOT, 'bin/smtpwall.js'), 'start', '-c', config], { stdio: 'ignore' });
    children.push(gateway);
    await waitPort(port);
    await waitPort(sinkPort);
    const size = opts.size ?? 10_000;
    smtpSource(port, opts.sessions, opts.warm, size);
    const from = Number(process.hrtime.bigint() / 1000n);
    smtpSource(port, opts.sessions, opts.messages, size);
    const to = Number(process.hrtime.bigint() / 1000n);
    const exited = new Promise((r) => gateway.once('exit', r));
    gateway.kill('SIGTERM'); // a graceful stop writes the profile
    await exited;
    const profiles = readdirSync(join(dir, 'profile')).map((f) => join(dir, 'profile', f));
    const main = profiles.sort((a, b) => statSync(b).size - statSync(a).size)[0]!; // the main thread's is the largest
    return { ...analyse(JSON.parse(readFileSync(main, 'utf8')) as CpuProfile, from, to, opts.messages), profile: main, size };
  } finally {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
  }
}

export function printProfile(r: ProfileReport, top = 25): void {
  process.stdout.write(`\nCPU profile, ${sizeName(r.size)} messages: ${r.msPerMessage.toFixed(3)} ms a message in the profiler (${r.messages} messages after the warm-up)\n`);
  process.stdout.write('by the innermost smtpwall file on the stack, µs a message:\n');
  for (const [k, us] of r.byFile.slice(0, top)) process.stdout.write(`  ${us.toFixed(1).padStart(7)}  ${k}\n`);
  process.stdout.write('by function, self time, µs a message:\n');
  for (const [k, us] of r.byFunction.slice(0, top)) process.stdout.write(`  ${us.toFixed(1).padStart(7)}  ${k}\n`);
  process.stdout.write(`profile: ${r.profile}\n`);
}

function sizeName(bytes: number): string {
  return bytes >= 1_000_000 ? `${bytes / 1_000_000} MB` : `${bytes / 1000} KB`;
}

/** The profile run that the command line asks for (`--warm`, `--messages`, `--sessions`, `--size`, `--config`, `--cut-through`), printed. */
export async function profileFromArgs(argv: readonly string[]): Promise<void> {
  const arg = (name: string, dflt: number): number => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
  printProfile(await profileGateway({ warm: arg('--warm', 5000), messages: arg('--messages', 4000), sessions: arg('--sessions', 10), size: arg('--size', 10_000), config: argv.includes('--config') ? argv[argv.indexOf('--config') + 1] : undefined, forwarding: argv.includes('--cut-through') ? 'cut-through' : 'store-and-forward' }));
}

if (import.meta.url === `file://${process.argv[1]}`) await profileFromArgs(process.argv);
