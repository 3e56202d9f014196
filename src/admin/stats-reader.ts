/**
 * Asks the dashboard's query thread (stats-thread.ts) for figures; the thread starts on the
 * first question and does not keep the process alive.
 */

import { Worker } from 'node:worker_threads';
import type { LogStats } from '../logs/sqlite-store.ts';

const BOOT = new URL('./stats-boot.mjs', import.meta.url);

export class StatsReader {
  #worker: Worker | null = null;
  #next = 1;
  readonly #waiting = new Map<number, { resolve: (s: LogStats) => void; reject: (e: Error) => void }>();

  constructor(private readonly dataDir: string) {}

  query(since: string, bucketChars: 15 | 16): Promise<LogStats> {
    const worker = this.#start();
    const id = this.#next++;
    return new Promise<LogStats>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, since, bucketChars });
    });
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(BOOT, { workerData: { dataDir: this.dataDir } });
    w.unref();
    w.on('message', (m: { id: number; stats?: LogStats; error?: string }) => {
      const waiting = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (m.error !== undefined) waiting?.reject(new Error(m.error));
      else waiting?.resolve(m.stats!);
    });
    const fail = (err: Error): void => {
      // Every question in flight fails; the next one starts a new thread.
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
      this.#worker = null;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the dashboard's query thread exited (${code})`)));
    this.#worker = w;
    return w;
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    await w?.terminate();
  }
}
