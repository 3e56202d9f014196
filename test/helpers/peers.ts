/**
 * Test peers: a real SMTP server from npm (smtp-server) as the upstream, the gateway itself
 * built from a YAML config, and a raw socket client that reports exactly how a connection
 * ended (FIN or RST).
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { Gateway } from '../../src/app/gateway.ts';
import type { Engine } from '../../src/inspect/engines/engine.ts';
import { SqliteLogStore } from '../../src/logs/sqlite-store.ts';
import { type LogFn, silentLogger } from '../../src/logs/process-log.ts';
import { parseConfig } from '../../src/policy/load-config.ts';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface ReceivedMessage {
  from: string;
  to: string[];
  data: Buffer;
  /** The gateway's connection to this server was TLS. */
  secure: boolean;
}

export interface UpstreamPeer {
  port: number;
  messages: ReceivedMessage[];
  /** Sessions opened and closed, to see that none is left hanging. */
  opened: number;
  closed: number;
  /** Resolves when `closed` reaches n. */
  waitClosed(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startUpstream(extra: Partial<SMTPServerOptions> = {}): Promise<UpstreamPeer> {
  const peer: UpstreamPeer = {
    port: 0,
    messages: [],
    opened: 0,
    closed: 0,
    waitClosed: async (n, ms = 3000) => {
      const until = Date.now() + ms;
      while (peer.closed < n) {
        if (Date.now() > until) throw new Error(`upstream sessions closed: ${peer.closed}, wanted ${n}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: async () => {},
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    size: 200 * 1024 * 1024,
    onConnect(_s, cb) {
      peer.opened++;
      cb();
    },
    onClose() {
      peer.closed++;
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        peer.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          secure: session.secure,
        });
        cb();
      });
    },
    ...extra,
  });
  server.on('error', () => {}); // a reset from the gateway is expected in some tests
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  peer.port = (server.server.address() as { port: number }).port;
  peer.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return peer;
}

export interface GatewayPeer {
  port: number;
  gateway: Gateway;
  dataDir: string;
  logs(): SqliteLogStore;
  stop(): Promise<void>;
}

export async function startGateway(opts: {
  upstreamPort: number;
  forwarding?: 'store-and-forward' | 'cut-through';
  action?: string;
  extra?: string;
  /** YAML lines added to the listener (indented by this helper). */
  listener?: string;
  /** More profile types, YAML under `profiles:` (e.g. `data-filtering: { … }`, indented by this helper). */
  profiles?: string;
  /** More entries of the rule's profiles map, e.g. `data-filtering: pii`. */
  ruleProfiles?: string;
  /** Engines instead of the configured ones; a function gets the gateway's data directory. */
  engines?: Engine[] | ((dataDir: string) => Engine[]);
  /** The gateway's process log (default: silent). */
  log?: LogFn;
}): Promise<GatewayPeer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'smtpwall-test-'));
  const cfg = parseConfig(`data-dir: ${JSON.stringify(dataDir)}
listeners:
  - name: test
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:${opts.upstreamPort}
    forwarding: ${opts.forwarding ?? 'store-and-forward'}
${(opts.listener ?? '').split('\n').map((l) => `    ${l}`).join('\n')}
profiles:
  antivirus:
    av: { action: ${opts.action ?? 'block'} }
${(opts.profiles ?? '').split('\n').map((l) => `  ${l}`).join('\n')}
rules:
  - name: scan-all
    profiles: { antivirus: av${opts.ruleProfiles ? `, ${opts.ruleProfiles}` : ''} }
${opts.extra ?? ''}`);
  const engines = typeof opts.engines === 'function' ? opts.engines(dataDir) : opts.engines;
  const gateway = new Gateway(cfg, opts.log ?? silentLogger, engines ? { engines } : {});
  const [l] = await gateway.start();
  return {
    port: l!.port,
    gateway,
    dataDir,
    logs: () => {
      gateway.flushLogs(); // records are batched (within 20 ms); what this test reads is in
      return new SqliteLogStore(dataDir, { readonly: true });
    },
    stop: async () => {
      await gateway.stop(500);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A raw SMTP client: write bytes, read replies, and learn how the connection ended. */
export class RawClient {
  readonly socket: Socket;
  #buf = '';
  #waiters: Array<() => void> = [];
  ended: 'open' | 'fin' | 'reset' | 'error' = 'open';
  endError = '';
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('end', () => {
        if (this.ended === 'open') this.ended = 'fin';
        this.#wake();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => {
        this.ended = e.code === 'ECONNRESET' ? 'reset' : 'error';
        this.endError = e.code ?? e.message;
        this.#wake();
      });
      socket.on('close', () => {
        this.#wake();
        resolve();
      });
    });
  }

  /** @param localAddress the client's own address (another loopback address, 127.0.0.2, …) */
  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  write(s: string | Buffer): void {
    this.socket.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  }

  /** The next complete reply (multi-line joined with \n), or null if the connection ended. */
  async reply(ms = 5000): Promise<string | null> {
    const until = Date.now() + ms;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0].replace(/\r\n$/, '').replace(/\r\n/g, '\n');
      }
      if (this.ended !== 'open' || this.socket.destroyed) return null;
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no reply within ${ms} ms; buffer: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async cmd(line: string): Promise<string | null> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** EHLO, MAIL, RCPT, DATA; returns the DATA reply. */
  async begin(from = 'sender@example.org', to = ['rcpt@example.com']): Promise<string | null> {
    await this.reply(); // greeting
    await this.cmd('EHLO client.example.org');
    await this.cmd(`MAIL FROM:<${from}>`);
    for (const t of to) await this.cmd(`RCPT TO:<${t}>`);
    return this.cmd('DATA');
  }

  /**
   * A client inside a transaction: connected, greeted, EHLO, MAIL and every RCPT accepted
   * (each asserted 2xx). What most protocol tests start from.
   */
  static async openTransaction(port: number, opts: { from?: string; to?: readonly string[]; ehlo?: string; mailParams?: string } = {}): Promise<RawClient> {
    const c = await RawClient.connect(port);
    const expect = (what: string, r: string | null): void => {
      if (!r?.startsWith('2')) throw new Error(`${what} answered ${JSON.stringify(r)}`);
    };
    expect('greeting', await c.reply());
    expect('EHLO', await c.cmd(`EHLO ${opts.ehlo ?? 'client.example.org'}`));
    expect('MAIL', await c.cmd(`MAIL FROM:<${opts.from ?? 'a@example.org'}>${opts.mailParams ? ` ${opts.mailParams}` : ''}`));
    for (const t of opts.to ?? ['b@example.com']) expect('RCPT', await c.cmd(`RCPT TO:<${t}>`));
    return c;
  }

  /** Write and wait until the bytes are handed to the kernel (on loopback: at the peer's socket). */
  async writeFlushed(s: string | Buffer): Promise<void> {
    await new Promise<void>((resolve, reject) => this.socket.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s, (err) => (err ? reject(err) : resolve())));
  }

  /** Wait for the connection to end; reports how. */
  async end(ms = 3000): Promise<'fin' | 'reset' | 'error' | 'open'> {
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, ms))]);
    return this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Wait until `check()` holds, looking again every few milliseconds: for state that has no event
 * of its own (a gateway's sessions). The condition is the positive signal; the interval is not
 * synchronisation, only how often it is read.
 */
export async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves when the collected output of `streams` matches `re` `n` times (checked on every chunk). */
export function outputMatches(streams: ReadonlyArray<NodeJS.ReadableStream | null | undefined>, read: () => string, re: RegExp, n = 1, ms = 60_000): Promise<void> {
  const count = (): number => (read().match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`)) ?? []).length;
  if (count() >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (cleanup(), reject(new Error(`waiting for ${re} ×${n}: ${read()}`))), ms);
    const onData = (): void => {
      // The collector's own 'data' listener was added first, so read() already has this chunk.
      if (count() >= n) (cleanup(), resolve());
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      for (const s of streams) s?.off('data', onData);
    };
    for (const s of streams) s?.on('data', onData);
  });
}

/** RFC 5321 transparency for raw tests. */
export function dotStuff(msg: string): string {
  return msg.replace(/^\./gm, '..');
}
