/**
 * What a real sender waits for during a flood of idle connections (issue 20): a gateway with
 * `max-sessions: 200` in front of a receiving server; the time from connect to the 220
 * greeting for probe clients: at the receiving server directly, through the gateway with no
 * flood (both baselines, in the same run), then through it while 1,000 attacker connections
 * from 100 loopback addresses hold every slot they can get. (smtp-server, the receiving
 * server here, pauses 100 ms before every greeting to catch early talkers: the direct figure
 * shows it.)
 */

import { connect, type Socket } from 'node:net';

export interface FloodResult {
  readonly flooders: number;
  readonly probes: number;
  /** Greeting wait at the receiving server itself, ms. */
  readonly direct: { p50: number; p99: number };
  /** Greeting wait through the gateway without a flood, ms. */
  readonly baseline: { p50: number; p99: number };
  /** Greeting wait during the flood, ms; `refused`: probes that got a 421 instead. */
  readonly flood: { p50: number; p99: number; refused: number };
}

/** Connect, time the first reply line, QUIT. */
function probe(port: number): Promise<{ ms: number; code: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (d) => {
      text += d;
      if (!text.includes('\n')) return;
      const ms = performance.now() - t0;
      s.end('QUIT\r\n');
      s.destroy();
      resolve({ ms, code: text.slice(0, 3) });
    });
    s.on('error', () => resolve({ ms: performance.now() - t0, code: 'ERR' }));
  });
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

export async function floodBench(port: number, directPort: number, flooders = 1000, probes = 50): Promise<FloodResult> {
  const direct: number[] = [];
  for (let i = 0; i < probes; i++) direct.push((await probe(directPort)).ms);
  const base: number[] = [];
  for (let i = 0; i < probes; i++) base.push((await probe(port)).ms);
  const held: Socket[] = [];
  const during: number[] = [];
  let refused = 0;
  try {
    // Open the flood in waves, probing between them: the sender arrives while it is going on.
    for (let i = 0; i < flooders; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => new Promise<void>((resolve) => {
          const k = (i + j) % 100;
          const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.3.${1 + k}` });
          held.push(s);
          s.once('data', () => resolve());
          s.on('error', () => resolve());
          s.on('close', () => resolve());
        })),
      );
      const r = await probe(port);
      if (r.code === '220') during.push(r.ms);
      else refused++;
    }
    while (during.length + refused < probes) {
      const r = await probe(port);
      if (r.code === '220') during.push(r.ms);
      else refused++;
    }
  } finally {
    for (const s of held) s.destroy();
  }
  return { flooders, probes: during.length + refused, direct: { p50: pct(direct, 50), p99: pct(direct, 99) }, baseline: { p50: pct(base, 50), p99: pct(base, 99) }, flood: { p50: pct(during, 50), p99: pct(during, 99), refused } };
}
