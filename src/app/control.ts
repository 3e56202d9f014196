/**
 * The control socket, DATA-DIR/control.sock (mode 0600: the gateway's user and root): how
 * `smtpwall status`, `reload` and `restart` talk to the running gateway and get the truth back
 * — what was applied and what was not — instead of a signal sent into the dark. One JSON line
 * in (`{"op":"status"}`), one JSON line out, then the connection closes. SIGHUP and SIGUSR2
 * still work for service managers; they do the same, with the answer only in the log.
 */

import type { MetricsSnapshot, MetricsView } from '../admin/metrics.ts';
import { chmodSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

export const CONTROL_SOCKET = 'control.sock';

/** One listener as a worker sees it now. */
export interface ListenerStatus {
  readonly name: string;
  readonly address: string;
  readonly upstream: string;
  readonly sessions: number;
}

/** What one gateway process (or worker) reports. */
export interface ProcessStatus {
  readonly pid: number;
  readonly started: string;
  readonly sessions: number;
  readonly listeners: readonly ListenerStatus[];
  /** What /metrics shows, counted by this process. */
  readonly metrics: MetricsSnapshot;
  readonly process: MetricsView['processes'][number];
}

export interface StatusReport {
  readonly pid: number;
  readonly version: string;
  readonly config: string;
  readonly started: string;
  readonly uptimeS: number;
  /** The processes serving mail: the gateway itself, or each worker. */
  readonly workers: readonly ProcessStatus[];
  readonly sessions: number;
}

export interface ReloadReport {
  /** Whether the new configuration is in use (by every worker). */
  readonly applied: boolean;
  /** Settings that changed but need a restart (`listener inbound`, `workers`, …). */
  readonly needsRestart: readonly string[];
  /** Why it was refused (the running configuration stays). */
  readonly error?: string;
  readonly workers: number;
}

export interface RestartReport {
  readonly applied: boolean;
  readonly replaced: number;
  readonly error?: string;
}

export interface ControlHandlers {
  status(): Promise<StatusReport>;
  reload(): Promise<ReloadReport>;
  restart(): Promise<RestartReport>;
}

export type ControlOp = keyof ControlHandlers;

/** Longest request line accepted (a request is a few bytes). */
const MAX_REQUEST = 1024;

export class ControlServer {
  readonly #server: Server;
  readonly path: string;

  constructor(dataDir: string, handlers: ControlHandlers, onError: (err: Error) => void) {
    this.path = join(dataDir, CONTROL_SOCKET);
    this.#server = createServer((s) => {
      let buf = '';
      s.setEncoding('utf8');
      s.on('error', () => s.destroy()); // a CLI that went away: nothing to answer
      s.on('data', (d: string) => {
        buf += d;
        if (buf.length > MAX_REQUEST) return void s.destroy();
        const nl = buf.indexOf('\n');
        if (nl === -1) return;
        s.removeAllListeners('data');
        let op: unknown;
        try {
          op = (JSON.parse(buf.slice(0, nl)) as { op?: unknown }).op;
        } catch {
          op = null;
        }
        const run: (() => Promise<unknown>) | null = op === 'status' || op === 'reload' || op === 'restart' ? () => handlers[op]() : null;
        if (!run) return void s.end(`${JSON.stringify({ error: `unknown request` })}\n`);
        run().then(
          (r) => s.end(`${JSON.stringify(r)}\n`),
          (err: Error) => {
            onError(err);
            s.end(`${JSON.stringify({ error: err.message })}\n`);
          },
        );
      });
    });
  }

  async listen(): Promise<void> {
    rmSync(this.path, { force: true }); // left by a gateway that was killed
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.path, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
    this.#server.unref(); // the gateway's listeners keep the process alive, not this
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

/** Ask the running gateway; rejects when nothing listens on its control socket. */
export function controlRequest<T>(dataDir: string, op: ControlOp, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const s = connect({ path: join(dataDir, CONTROL_SOCKET) });
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the gateway did not answer "${op}" within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify({ op })}\n`));
    s.on('data', (d: string) => (buf += d));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('end', () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(buf) as T & { error?: string };
        if (r && typeof r === 'object' && 'error' in r && Object.keys(r).length === 1) reject(new Error(r.error));
        else resolve(r);
      } catch {
        reject(new Error(`the gateway's answer to "${op}" was not readable`));
      }
    });
  });
}
