/**
 * `npm run bench -- --ab REF`: this working tree (A) against git REF (B), side by side, for
 * the before/after of one change. This VM's speed drifts by half within minutes, so figures of
 * separate runs — even of the ladder, whose rounds are seconds apart — cannot show a change of
 * less than a third: here both gateways run at once, store-and-forward with the default
 * config, and smtp-source alternates rounds between them (A B A B …, after a warm-up of
 * 5,000 small messages' worth of bytes each), so each pair is measured at nearly the same
 * machine speed. Printed per round: CPU ms a message of each (user + system of every thread,
 * /proc) and their ratio A/B; then the median of the pair ratios. `--rounds N` (default 7),
 * `--messages N` per round (1,500), `--size BYTES` (10,000), `--idle S` seconds of idle before
 * each round (0; bursts after idle, e.g. 40, are another load than a steady one),
 * `--sessions N` (10), `--a-config YAML` (top-level config lines for A only, e.g.
 * `'capture: { when: off }'` with REF HEAD: the cost of a setting, same code on both sides),
 * `--a-env NAME=VALUE` (repeatable; A's gateway only: `NODE_OPTIONS=--max-semi-space-size=4`
 * for a V8 flag's cost, `SMTPWALL_BENCH_OFF=records,maillog` for a stage's),
 * `--fresh` (new gateway processes for every pair, warmed again, the order alternating: with
 * 1 MB messages one process of a pair can stay in a costlier state for a whole run — the
 * same code against itself read 1.41 as the median of five pairs — so large sizes need it).
 *
 * REF is checked out into a temporary git worktree that shares this tree's node_modules and
 * native build; it is removed at the end.
 */

import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchDeps } from './admin-load.ts';
import { median } from './median.ts';
import { withRefTree } from './ref-tree.ts';

export interface AbRound {
  readonly a: number;
  readonly b: number;
}

export interface AbResult {
  readonly ref: string;
  readonly rounds: readonly AbRound[];
  /** Median of the per-round ratios A/B of CPU per message. */
  readonly cpuRatio: number;
}

interface Deps extends BenchDeps {
  /** CPU ms per message of `messages` messages of `size` bytes over `sessions` sessions through `port`, by `pid`. */
  cpuPerMessage(port: number, pid: number, messages: number, sessions: number, size: number): number;
}

const waitSeconds = (s: number): Promise<void> => new Promise((r) => setTimeout(r, s * 1000));

export async function abBench(d: Deps, ref: string, opts: { rounds: number; messages: number; idle: number; sessions: number; size: number; aConfig?: string; aEnv?: Readonly<Record<string, string>>; fresh?: boolean }): Promise<AbResult> {
  return withRefTree(d.root, join(d.work, 'ab-tree'), ref, async (tree) => {
    const gateway = async (name: string, root: string, extra = '', env: Readonly<Record<string, string>> = {}): Promise<{ port: number; pid: number; stop: () => Promise<void> }> => {
      const port = await d.freePort();
      const cfg = join(d.work, `${name}.yaml`);
      writeFileSync(
        cfg,
        `data-dir: ${JSON.stringify(join(d.work, name))}\nlisteners:\n  - name: bench\n    listen: 127.0.0.1:${port}\n    upstream: 127.0.0.1:${d.sinkPort}\n    forwarding: store-and-forward\nlimits: { max-sessions: 3000, max-sessions-per-client: 3000 }\n${extra ? `${extra}\n` : ''}`,
      );
      const c = d.start(process.execPath, [join(root, 'bin/smtpwall.js'), 'start', '-c', cfg], { env: { ...process.env, ...env } });
      const exited = once(c, 'exit'); // before anything is awaited: an early exit is not missed
      await d.waitPort(port);
      return {
        port,
        pid: c.pid!,
        stop: async () => {
          d.stop(c);
          await exited;
        },
      };
    };
    // Warm-up: 5,000 small messages' worth of bytes, at least 50 messages.
    const warm = Math.max(50, Math.ceil((5000 * 10_000) / opts.size));
    const pair = async (n: number): Promise<{ measure: (first: 'a' | 'b') => Promise<AbRound>; stop: () => Promise<void> }> => {
      const a = await gateway(`ab-a${n}`, d.root, opts.aConfig, opts.aEnv);
      const b = await gateway(`ab-b${n}`, tree);
      for (const g of [a, b]) d.cpuPerMessage(g.port, g.pid, warm, opts.sessions, opts.size);
      const one = async (g: typeof a): Promise<number> => {
        if (opts.idle > 0) await waitSeconds(opts.idle);
        return d.cpuPerMessage(g.port, g.pid, opts.messages, opts.sessions, opts.size);
      };
      return {
        measure: async (first) => {
          if (first === 'a') {
            const ca = await one(a);
            return { a: ca, b: await one(b) };
          }
          const cb = await one(b);
          return { a: await one(a), b: cb };
        },
        stop: async () => {
          await Promise.all([a.stop(), b.stop()]);
        },
      };
    };
    const rounds: AbRound[] = [];
    let gateways = opts.fresh ? null : await pair(0);
    try {
      for (let i = 1; i <= opts.rounds; i++) {
        // --fresh: new processes for every pair, B measured first in every other one.
        if (opts.fresh) gateways = await pair(i);
        const r = await gateways!.measure(opts.fresh && i % 2 === 0 ? 'b' : 'a');
        if (opts.fresh) await gateways!.stop();
        rounds.push(r);
        process.stdout.write(`  round ${i}/${opts.rounds}: A ${r.a.toFixed(3)}  B ${r.b.toFixed(3)} ms a message  A/B ${(r.a / r.b).toFixed(2)}\n`);
      }
    } finally {
      if (!opts.fresh) await gateways?.stop();
    }
    const cpuRatio = median(rounds.map((r) => r.a / r.b));
    process.stdout.write(`\nA (this tree) / B (${ref}), CPU per ${opts.size / 1000} KB message, median of ${rounds.length} pairs: ${cpuRatio.toFixed(3)}\n`);
    return { ref, rounds, cpuRatio };
  });
}
