/**
 * `npm run bench -- --gc [REF]`: how often the gateway collects garbage under a load, counted
 * rather than timed. With large messages this machine's CPU figures are bimodal — a process
 * either falls into a run of mark-compacts or not, and the same code against itself read 1.41
 * side by side — so a change to what the gateway keeps alive is judged by the number of
 * scavenges and mark-compacts `node --trace-gc` reports over the same messages.
 *
 * Each run: a fresh gateway (store-and-forward, default config) under `--trace-gc`, smtp-source
 * sends `--warm` messages (default 100), then `--messages` (300) of `--size` bytes (1,000,000)
 * over `--sessions` (10) whose collections alone are counted, with the gateway's CPU
 * (/proc, main process) per message. `--rounds N` runs (3); with a git REF, REF's gateway (a
 * temporary worktree) runs in turn with this tree's, run by run.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitPort } from '../test/helpers/ports.ts';
import { smtpSource } from './profile.ts';
import { withRefTree } from './ref-tree.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface GcCount {
  readonly tree: string;
  readonly scavenges: number;
  readonly markCompacts: number;
  readonly cpuMsPerMessage: number;
}

interface Load {
  readonly size: number;
  readonly sessions: number;
  readonly warm: number;
  readonly messages: number;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** One fresh gateway from `root` under --trace-gc: its collections over the measured messages. */
async function countOnce(root: string, tree: string, sinkPort: number, load: Load): Promise<GcCount> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-gc-'));
  const port = await freePort();
  const config = join(dir, 'gateway.yaml');
  writeFileSync(config, `data-dir: ${JSON.stringify(join(dir, 'data'))}\nlisteners:\n  - { name: bench, listen: "127.0.0.1:${port}", upstream: "127.0.0.1:${sinkPort}", forwarding: store-and-forward }\nlimits: { max-sessions: 3000, max-sessions-per-client: 3000 }\n`);
  // The trace goes to a file, not a pipe: smtp-source runs synchronously here, and a pipe
  // nobody reads while it runs would fill and stall the gateway's writes.
  const tracePath = join(dir, 'trace-gc.log');
  const traceFd = openSync(tracePath, 'w');
  const gateway: ChildProcess = spawn(process.execPath, ['--trace-gc', join(root, 'bin/smtpwall.js'), 'start', '-c', config], { stdio: ['ignore', traceFd, 'ignore'] });
  closeSync(traceFd);
  const exited = once(gateway, 'exit');
  try {
    await waitPort(port);
    smtpSource(port, load.sessions, load.warm, load.size);
    const from = statSync(tracePath).size;
    const cpu0 = cpuSeconds(gateway.pid!);
    smtpSource(port, load.sessions, load.messages, load.size);
    const cpu1 = cpuSeconds(gateway.pid!);
    const trace = readFileSync(tracePath, 'latin1').slice(from);
    const count = (what: string): number => trace.split(what).length - 1;
    return { tree, scavenges: count(': Scavenge '), markCompacts: count(': Mark-Compact '), cpuMsPerMessage: ((cpu1 - cpu0) * 1000) / load.messages };
  } finally {
    if (gateway.exitCode === null) gateway.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function gcCountFromArgs(argv: readonly string[]): Promise<GcCount[]> {
  const num = (flag: string, dflt: number): number => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : dflt);
  const after = argv[argv.indexOf('--gc') + 1];
  const ref = after && !after.startsWith('--') ? after : null;
  const load: Load = { size: num('--size', 1_000_000), sessions: num('--sessions', 10), warm: num('--warm', 100), messages: num('--messages', 300) };
  const rounds = num('--rounds', 3);
  const work = mkdtempSync(join(tmpdir(), 'smtpwall-gc-trees-'));
  const sinkPort = await freePort();
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', 'nobody', '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
  const sinkExited = once(sink, 'exit');
  const run = async (trees: ReadonlyArray<readonly [string, string]>): Promise<GcCount[]> => {
    process.stdout.write(`\ngarbage collections over ${load.messages} messages of ${load.size} bytes at ${load.sessions} sessions (after ${load.warm}), a fresh gateway each run:\n`);
    const out: GcCount[] = [];
    for (let i = 1; i <= rounds; i++) {
      for (const [name, root] of trees) {
        const c = await countOnce(root, name, sinkPort, load);
        out.push(c);
        process.stdout.write(`  run ${i}, ${name.padEnd(10)} scavenges ${String(c.scavenges).padStart(4)}  mark-compacts ${String(c.markCompacts).padStart(4)}  CPU ${c.cpuMsPerMessage.toFixed(2)} ms a message\n`);
      }
    }
    return out;
  };
  try {
    await waitPort(sinkPort);
    const here = ['this tree', ROOT] as const;
    return ref ? await withRefTree(ROOT, join(work, 'ref'), ref, (tree) => run([here, [ref, tree]])) : await run([here]);
  } finally {
    sink.kill('SIGTERM');
    await sinkExited;
    rmSync(work, { recursive: true, force: true });
  }
}
