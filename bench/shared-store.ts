/**
 * Many gateways, one store: two gateway instances on one PostgreSQL (a private server, initdb
 * in the bench's directory) against the same two instances each on its own SQLite file, in
 * interleaved rounds of the same run — msg/s of both together (10 KB, 10 sessions each, one
 * smtp-source per instance, at the same time) — and the time from a manual verdict set on
 * one instance (`smtpwall verdicts set`, returned) to the other blocking the file.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import type { BenchDeps } from './admin-load.ts';
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { postgresBin, startPostgres } from '../test/helpers/postgres.ts';
import { median } from './median.ts';

export interface SharedStoreResult {
  readonly sqliteMsgsPerSec: number;
  readonly postgresMsgsPerSec: number;
  /** postgres / sqlite − 1, per cent. */
  readonly changePct: number;
  /** ms from `verdicts set` returning on A to B's first 541 for the file, per try. */
  readonly verdictToBlockMs: readonly number[];
  readonly rounds: number;
}

const MESSAGES = 1000;

export async function sharedStoreBench(d: BenchDeps, rounds = 3): Promise<SharedStoreResult | null> {
  if (!postgresBin()) {
    process.stdout.write('skipping the shared-store run: PostgreSQL is not installed (apt-get install postgresql)\n');
    return null;
  }
  const pg = await startPostgres();
  const gateways: ChildProcess[] = [];
  try {
    const pair = async (kind: 'sqlite' | 'postgres'): Promise<{ ports: number[]; configs: string[] }> => {
      const ports: number[] = [];
      const configs: string[] = [];
      for (const name of ['a', 'b']) {
        const port = await d.freePort();
        const cfg = join(d.work, `shared-${kind}-${name}.yaml`);
        writeFileSync(
          cfg,
          `data-dir: ${JSON.stringify(join(d.work, `shared-${kind}-${name}`))}\ninstance: ${kind}-${name}\n` +
            (kind === 'postgres' ? `store: { url: "${pg.url}" }\n` : '') +
            `listeners:\n  - { name: bench, listen: "127.0.0.1:${port}", upstream: "127.0.0.1:${d.sinkPort}", forwarding: store-and-forward }\n` +
            `limits: { max-sessions: 3000, max-sessions-per-client: 3000 }\n`,
        );
        gateways.push(d.start(process.execPath, [join(d.root, 'bin/smtpwall.js'), 'start', '-c', cfg]));
        await d.waitPort(port);
        ports.push(port);
        configs.push(cfg);
      }
      return { ports, configs };
    };
    const sqlite = await pair('sqlite');
    const shared = await pair('postgres');
    await load(sqlite.ports, 200); // warm-up
    await load(shared.ports, 200);
    const s: number[] = [];
    const p: number[] = [];
    for (let i = 0; i < rounds; i++) {
      s.push(await load(sqlite.ports, MESSAGES));
      p.push(await load(shared.ports, MESSAGES));
    }
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) latencies.push(await verdictToBlock(d.root, shared.configs[0]!, shared.ports[1]!, `bench ${Date.now()} ${i}`));
    const [ms, mp] = [median(s), median(p)];
    return { sqliteMsgsPerSec: ms, postgresMsgsPerSec: mp, changePct: (mp / ms - 1) * 100, verdictToBlockMs: latencies, rounds };
  } finally {
    for (const g of gateways) d.stop(g);
    await Promise.all(gateways.map((g) => (g.exitCode === null ? new Promise((r) => g.once('exit', r)) : null)));
    pg.destroy();
  }
}

/** msg/s of `messages` 10 KB messages through each port at once (10 sessions each). */
async function load(ports: readonly number[], messages: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await Promise.all(
    ports.map(
      (port) =>
        new Promise<void>((resolve, reject) => {
          const c = spawn('/usr/sbin/smtp-source', ['-s', '10', '-l', '10000', '-m', String(messages), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`], { stdio: 'ignore' });
          c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code}`))));
        }),
    ),
  );
  return (messages * ports.length) / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** Set a manual verdict through A's config, then send the file through B until it is blocked. */
async function verdictToBlock(root: string, configA: string, portB: number, content: string): Promise<number> {
  const sha = createHash('sha256').update(content).digest('hex');
  execFileSync(process.execPath, [join(root, 'bin/smtpwall.js'), 'verdicts', 'set', sha, 'malicious', '--reason', 'bench', '-c', configA]);
  const t0 = Date.now();
  const message = `Subject: v\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=x.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(content).toString('base64')}\r\n--b--\r\n.\r\n`;
  for (;;) {
    if ((await deliver(portB, message)).startsWith('541')) return Date.now() - t0;
    if (Date.now() - t0 > 10_000) return Infinity;
  }
}

/** One SMTP transaction; the reply to the end of data. */
function deliver(port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const steps = ['EHLO bench\r\n', 'MAIL FROM:<a@example.org>\r\n', 'RCPT TO:<b@example.com>\r\n', 'DATA\r\n', message];
    let buf = '';
    s.on('data', (b) => {
      buf += b.toString('latin1');
      // One complete reply (the last line has a space after the code).
      const m = /(?:^|\n)(\d{3}) [^\n]*\n$/.exec(buf);
      if (!m) return;
      const reply = buf.slice(buf.lastIndexOf('\n', buf.length - 2) + 1).trim();
      buf = '';
      const next = steps.shift();
      if (next === undefined || !/^[23]/.test(reply)) {
        s.destroy();
        resolve(reply);
      } else s.write(next);
    });
    s.on('error', reject);
  });
}
