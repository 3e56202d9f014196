/**
 * Latency and memory measurements for `npm run bench`, with a client of its own (smtp-source
 * reports no per-message times):
 *
 * - latency: one session, messages one after another; each timed from MAIL FROM to the 250
 *   after the end of data. p50/p99 per path, and what each adds over the direct path.
 * - idle sessions: N connections that each said EHLO and then wait; the gateway's RSS.
 * - big messages in flight: N sessions each sending one large message at once; the gateway's
 *   peak RSS while they are in flight (store-and-forward spools to disk past spool-memory).
 */

import { connect, type Socket } from 'node:net';

/** A line-oriented SMTP client: enough to time transactions, nothing more. */
export class BenchClient {
  #buf = '';
  #waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('close', () => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static open(port: number): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new BenchClient(s)));
      s.once('error', reject);
    });
  }

  /** The next complete reply's code. */
  async reply(): Promise<number> {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*(\d{3})(?: [^\n]*)?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return Number(m[1]);
      }
      if (this.socket.destroyed) throw new Error('connection closed');
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  async cmd(line: string, expect: number): Promise<void> {
    this.socket.write(`${line}\r\n`);
    const code = await this.reply();
    if (code !== expect) throw new Error(`${line.split(' ')[0]}: expected ${expect}, got ${code}`);
  }

  async hello(): Promise<void> {
    if ((await this.reply()) !== 220) throw new Error('no greeting');
    await this.cmd('EHLO bench.example', 250);
  }

  /** One transaction; returns milliseconds from MAIL FROM to the final 250. */
  async send(body: Buffer): Promise<number> {
    const t0 = process.hrtime.bigint();
    await this.cmd('MAIL FROM:<bench@example.org>', 250);
    await this.cmd('RCPT TO:<sink@example.com>', 250);
    await this.cmd('DATA', 354);
    this.socket.write(body);
    this.socket.write('.\r\n');
    const code = await this.reply();
    if (code !== 250) throw new Error(`end of data: ${code}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }

  close(): void {
    this.socket.end('QUIT\r\n');
    this.socket.destroy();
  }
}

/** A message body of about `size` bytes in 78-byte lines (no line starts with a dot). */
export function benchBody(size: number): Buffer {
  const line = `${'x'.repeat(76)}\r\n`;
  const head = 'From: bench@example.org\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n';
  return Buffer.from(head + line.repeat(Math.max(1, Math.floor((size - head.length) / line.length))), 'latin1');
}

export interface LatencyResult {
  readonly path: string;
  readonly p50: number;
  readonly p99: number;
  readonly messages: number;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export async function measureLatency(path: string, port: number, messages: number, size = 10_000): Promise<LatencyResult> {
  const c = await BenchClient.open(port);
  await c.hello();
  const body = benchBody(size);
  for (let i = 0; i < 20; i++) await c.send(body); // warm-up: JIT, connection to the upstream
  const times: number[] = [];
  for (let i = 0; i < messages; i++) times.push(await c.send(body));
  c.close();
  times.sort((a, b) => a - b);
  return { path, p50: percentile(times, 50), p99: percentile(times, 99), messages };
}

/** RSS of a process (and its children: workers), MiB, current and peak. */
export type RssOf = () => { rssMiB: number; peakMiB: number };

export async function idleSessionsRss(port: number, sessions: number, rssOf: RssOf): Promise<{ sessions: number; before: number; during: number }> {
  const before = rssOf().rssMiB;
  const clients: BenchClient[] = [];
  for (let i = 0; i < sessions; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, sessions - i) }, () => BenchClient.open(port)));
    await Promise.all(batch.map((c) => c.hello()));
    clients.push(...batch);
  }
  await new Promise((r) => setTimeout(r, 500));
  const during = rssOf().rssMiB;
  for (const c of clients) c.close();
  return { sessions: clients.length, before, during };
}

export async function bigMessagesRss(port: number, sessions: number, size: number, rssOf: RssOf): Promise<{ sessions: number; sizeMB: number; peak: number; seconds: number }> {
  const body = benchBody(size);
  let peak = rssOf().rssMiB;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf().rssMiB)), 50);
  const t0 = Date.now();
  try {
    await Promise.all(
      Array.from({ length: sessions }, async () => {
        const c = await BenchClient.open(port);
        await c.hello();
        await c.send(body);
        c.close();
      }),
    );
  } finally {
    clearInterval(sampler);
  }
  return { sessions, sizeMB: size / 1e6, peak: Math.max(peak, rssOf().rssMiB), seconds: (Date.now() - t0) / 1000 };
}
