/**
 * The gateway: everything one `smtpwall start` runs, built from a loaded config — the log
 * store, the engines and inspector, the policy, the built-in mailboxes, and one Listener per
 * configured listener. Owns their lifecycle (start, reload of policy, graceful stop).
 */

import { join } from 'node:path';
import type { Engine } from '../inspect/engines/engine.ts';
import { loadHashListFile, SignatureEngine } from '../inspect/engines/signatures.ts';
import { Inspector } from '../inspect/inspector.ts';
import type { LogStore } from '../logs/records.ts';
import { SqliteLogStore } from '../logs/sqlite-store.ts';
import { parseHostPort } from '../policy/config-schema.ts';
import { Policy } from '../policy/decide.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import type { LogFn } from '../logger.ts';
import { Listener } from './listener.ts';
import { MailboxServer } from './mailbox.ts';
import type { SessionContext } from './session.ts';
import { clientTlsFor, upstreamTlsFor } from './tls.ts';

export interface RunningListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly upstream: string;
}

/** The engines a config asks for (the built-in signature engine with its hash lists). */
export function buildEngines(cfg: LoadedConfig): Engine[] {
  const hashes = cfg.engines.signatures['hash-lists'].flatMap((p) => loadHashListFile(p));
  return [new SignatureEngine({ hashes })];
}

export function buildInspector(cfg: LoadedConfig, engines: readonly Engine[] = buildEngines(cfg)): Inspector {
  return new Inspector({
    engines,
    mime: {
      maxDepth: cfg.limits['mime-depth'],
      maxParts: cfg.limits['mime-parts'],
      maxHeaderBytes: 64 * 1024,
    },
  });
}

export class Gateway {
  readonly #listeners: Listener[] = [];
  readonly #mailboxes: MailboxServer[] = [];
  readonly #store: LogStore;
  #cfg: LoadedConfig;
  #inspector: Inspector;
  #policy: Policy;
  readonly running: RunningListener[] = [];

  /**
   * @param opts.store a log store other than the SQLite file in the data directory
   * @param opts.engines engines other than the ones the config names (embedding, extensions)
   */
  constructor(cfg: LoadedConfig, private readonly log: LogFn, opts: { store?: LogStore; engines?: readonly Engine[] } = {}) {
    this.#cfg = cfg;
    this.#store = opts.store ?? new SqliteLogStore(cfg.dataDirAbs);
    this.#inspector = buildInspector(cfg, opts.engines);
    this.#policy = new Policy(cfg);
  }

  get logs(): LogStore {
    return this.#store;
  }

  async start(): Promise<RunningListener[]> {
    const mailboxes = new Map<string, { host: string; port: number }>();
    for (const l of this.#cfg.listeners) {
      let target = l.upstream.startsWith('mailbox:') ? mailboxes.get(l.upstream) : parseHostPort(l.upstream);
      if (!target) {
        const box = new MailboxServer(l.upstream.slice('mailbox:'.length), (m) =>
          this.log('info', 'mailbox stored message', { file: m.file, from: m.mailFrom, to: m.rcptTo, size: m.size }),
        );
        this.#mailboxes.push(box);
        target = await box.listen('127.0.0.1', 0);
        mailboxes.set(l.upstream, target);
      }
      const upstream = target;
      const listen = parseHostPort(l.listen)!;
      const clientTls = clientTlsFor(l);
      const upstreamTls = upstreamTlsFor(l, upstream.host);
      const listener = new Listener(l.name, {
        host: listen.host,
        port: listen.port,
        implicitTls: clientTls.implicit ? clientTls.pem : null,
        maxSessions: this.#cfg.limits['max-sessions'],
        maxSessionsPerClient: this.#cfg.limits['max-sessions-per-client'],
        session: (): SessionContext => ({
          listener: l.name,
          forwarding: l.forwarding,
          upstreamHost: upstream.host,
          upstreamPort: upstream.port,
          hostname: this.#cfg.hostname,
          limits: this.#cfg.limits,
          timeouts: this.#cfg.timeouts,
          inspector: this.#inspector,
          policy: this.#policy,
          logs: this.#store,
          spoolDir: join(this.#cfg.dataDirAbs, 'spool'),
          clientTls,
          upstreamTls,
          log: this.log,
        }),
      });
      const bound = await listener.listen();
      this.#listeners.push(listener);
      const info = { name: l.name, host: bound.host, port: bound.port, upstream: l.upstream };
      this.running.push(info);
      this.log('info', 'listening', {
        listener: l.name,
        address: `${bound.host}:${bound.port}`,
        upstream: l.upstream,
        forwarding: l.forwarding,
        tls: clientTls.implicit ? 'implicit' : clientTls.mode,
      });
    }
    return this.running;
  }

  /** Stop accepting, let transactions finish within the grace period, then close everything. */
  async stop(graceMs = this.#cfg.timeouts['shutdown-grace']): Promise<void> {
    await Promise.all(this.#listeners.map((l) => l.close(graceMs)));
    await Promise.all(this.#mailboxes.map((m) => m.close()));
    this.#store.close();
  }
}
