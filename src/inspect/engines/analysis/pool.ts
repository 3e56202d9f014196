/**
 * The analyzers off the event loop: a few worker threads, a bounded queue, and a deadline per
 * file. The gateway's thread keeps relaying SMTP while a 10 MB document is parsed; a file
 * that makes an analyzer loop or blow up costs one worker (terminated and replaced), never
 * the gateway.
 *
 * Failures reject with EngineError (engine `analysis`): the queue is full, the file took
 * longer than the deadline, or the worker died (out of its memory limit, a bug). The policy
 * turns them into the antivirus profile's `on-error` action, like a clamd failure — never
 * into "benign".
 *
 * Workers start on the first file, not with the gateway (an idle gateway, a test, a CLI
 * command costs no threads), and are unref'd while idle so they never hold the process open.
 */

import { Worker } from 'node:worker_threads';
import { EngineError } from '../../../errors.ts';
import type { AnalysisVerdict, AnalyzerInput } from './types.ts';

export interface AnalysisPoolOptions {
  /** Worker threads (at most; started as files arrive). */
  readonly threads: number;
  /** Files waiting for a worker beyond which new ones are refused. */
  readonly queue: number;
  /** Longest time one file may take in a worker. */
  readonly timeoutMs: number;
  /** Heap limit of each worker (MiB): a file that needs more kills only its worker. */
  readonly heapMb?: number;
}

/** What a worker is sent: the file's bytes are transferred, not copied again. */
export interface AnalysisRequest {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly detectedType: string;
  readonly name: string | null;
  readonly flags: readonly string[];
}

export type AnalysisResponse = { readonly id: number; readonly verdict: AnalysisVerdict } | { readonly id: number; readonly error: string };

interface Job {
  readonly request: AnalysisRequest;
  readonly resolve: (v: AnalysisVerdict) => void;
  readonly reject: (e: Error) => void;
}

const ENGINE = 'analysis';
const BOOT = new URL('./worker-boot.mjs', import.meta.url);

class AnalysisWorker {
  readonly thread: Worker;
  job: Job | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    heapMb: number,
    private readonly onIdle: (w: AnalysisWorker) => void,
    private readonly onDead: (w: AnalysisWorker) => void,
  ) {
    this.thread = new Worker(BOOT, { resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    this.thread.unref();
    this.thread.on('message', (m: AnalysisResponse) => {
      const job = this.job;
      if (!job || m.id !== job.request.id) return;
      this.#settle();
      if ('verdict' in m) job.resolve(m.verdict);
      else job.reject(new EngineError(ENGINE, `analysis failed: ${m.error}`));
      this.onIdle(this);
    });
    // A worker that dies (heap limit, a crash) fails its file and is replaced by the pool.
    this.thread.on('error', (err) => this.#die(new EngineError(ENGINE, `analysis worker died: ${err.message}`, { cause: err })));
    this.thread.on('exit', (code) => this.#die(new EngineError(ENGINE, `analysis worker exited (code ${code})`)));
  }

  start(job: Job, timeoutMs: number): void {
    this.job = job;
    this.thread.ref(); // a file in analysis keeps the process alive until its verdict
    this.#timer = setTimeout(() => {
      this.#die(new EngineError(ENGINE, `analysis of a ${job.request.detectedType} file took longer than ${timeoutMs} ms`));
      void this.thread.terminate();
    }, timeoutMs);
    const bytes = job.request.bytes;
    this.thread.postMessage(job.request, [bytes.buffer as ArrayBuffer]);
  }

  #settle(): void {
    clearTimeout(this.#timer);
    this.job = null;
    this.thread.unref();
  }

  #dead = false;
  #die(err: Error): void {
    if (this.#dead) return;
    this.#dead = true;
    const job = this.job;
    this.#settle();
    job?.reject(err);
    this.onDead(this);
  }
}

export class AnalysisPool {
  readonly #idle: AnalysisWorker[] = [];
  readonly #all = new Set<AnalysisWorker>();
  readonly #waiting: Job[] = [];
  #nextId = 1;
  #closed = false;
  #drained: (() => void) | null = null;

  constructor(private readonly opts: AnalysisPoolOptions) {}

  /** Files being analyzed or waiting. */
  get pending(): number {
    return this.#waiting.length + [...this.#all].filter((w) => w.job !== null).length;
  }

  /** Analyze one file in a worker. `input.bytes` is copied once into memory the worker owns. */
  run(input: AnalyzerInput): Promise<AnalysisVerdict> {
    if (this.#closed) return Promise.reject(new EngineError(ENGINE, 'analysis pool closed'));
    if (this.#waiting.length >= this.opts.queue) {
      return Promise.reject(new EngineError(ENGINE, `analysis queue full (${this.opts.queue} files waiting)`));
    }
    return new Promise<AnalysisVerdict>((resolve, reject) => {
      // A fresh copy: Buffer.concat may hand out a slice of Node's shared pool, which must not
      // be transferred (it would detach every other buffer in that slab).
      const bytes = new Uint8Array(input.bytes);
      const request: AnalysisRequest = { id: this.#nextId++, bytes, detectedType: input.detectedType, name: input.name, flags: [...input.flags] };
      this.#waiting.push({ request, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#waiting.length > 0) {
      let w = this.#idle.pop();
      if (!w && this.#all.size < this.opts.threads) w = this.#spawn();
      if (!w) return;
      w.start(this.#waiting.shift()!, this.opts.timeoutMs);
    }
    if (this.pending === 0) this.#drained?.();
  }

  #spawn(): AnalysisWorker {
    const w = new AnalysisWorker(
      this.opts.heapMb ?? 512,
      (idle) => {
        this.#idle.push(idle);
        this.#dispatch();
      },
      (dead) => {
        this.#all.delete(dead);
        const i = this.#idle.indexOf(dead);
        if (i !== -1) this.#idle.splice(i, 1);
        this.#dispatch();
      },
    );
    this.#all.add(w);
    return w;
  }

  /**
   * Refuse new files, let those queued or in analysis finish (each bounded by the deadline),
   * then stop the workers.
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.pending > 0) await new Promise<void>((r) => (this.#drained = r));
    await Promise.all([...this.#all].map((w) => w.thread.terminate()));
    this.#all.clear();
    this.#idle.length = 0;
  }
}
