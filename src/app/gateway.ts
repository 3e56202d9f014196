/**
 * The gateway: everything one `smtpwall start` runs, built from a loaded config — the log
 * store, the engines and inspector, the policy, the built-in mailboxes, and one Listener per
 * configured listener. Owns their lifecycle (start, reload of policy, graceful stop).
 */

import cluster from 'node:cluster';
import { join } from 'node:path';
import { RetroAlerts } from '../gateway/retro-alerts.ts';
import { SqliteVerdictStore, type VerdictStore } from '../inspect/engines/analysis/verdict-store.ts';
import type { Engine } from '../inspect/engines/engine.ts';
import { findingOfStoredVerdict } from '../inspect/engines/analysis/engine.ts';
import type { Inspector } from '../inspect/inspector.ts';
import { type BenchStage, benchOff, NO_INSPECTION, NO_RECORDS } from './bench-switches.ts';
import type { FileInfo } from '../inspect/types.ts';
import type { LogStore } from '../logs/records.ts';
import { ResilientLogStore } from '../logs/resilient-store.ts';
import { ForwardingLogStore } from '../logs/forward.ts';
import { SqliteLogStore } from '../logs/sqlite-store.ts';
import { type CaptureSink, CaptureStore } from '../logs/capture-store.ts';
import { CountingLogStore, GatewayMetrics, processFigures } from '../admin/metrics.ts';
import { type Quarantine, QuarantineStore } from '../quarantine/store.ts';
import type { SharedStore } from '../shared-store/shared-store.ts';
import { parseHostPort } from '../policy/config-schema.ts';
import { Policy } from '../policy/decide.ts';
import { compileAddressList } from '../policy/rules.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import type { LogFn } from '../logs/process-log.ts';
import { Listener } from '../gateway/listener.ts';
import { UpstreamPool } from '../gateway/upstream-pool.ts';
import { buildEngines, buildInspector, quarantines } from './assemble.ts';
import { MailboxServer } from '../mailbox/mailbox.ts';
import type { SessionContext, SessionSnapshot } from '../gateway/session.ts';
import { assertTproxySupported, assertTransparentSupported, originalDestination, tproxyDestination, transparentListenFd } from '../gateway/original-dst.ts';
import { clientTlsFor, upstreamTlsFor } from '../gateway/tls.ts';
import type { ProcessStatus } from './control.ts';


/** A load balancer's PROXY header comes at once with the connection; a peer that sends none is closed after this. */
const PROXY_HEADER_TIMEOUT_MS = 5000;

/** How often growing log-forwarding failures are reported. */
const FORWARD_REPORT_MS = 60_000;

export interface RunningListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly upstream: string;
}



export class Gateway {
  readonly #listeners: Listener[] = [];
  /** Idle upstream sessions of the listeners with upstream-reuse. */
  readonly #pools: UpstreamPool[] = [];
  readonly #mailboxes: MailboxServer[] = [];
  readonly #mailboxTargets = new Map<string, { host: string; port: number }>();
  readonly #store: LogStore;
  /** The database behind #store (SQLite, or the shared store's writer), buffering while it cannot be written. */
  readonly #local: LogStore & { readonly healthy: boolean; flush(): void };
  /** The shared PostgreSQL store (`store:`), when configured; owned (closed) by this gateway. */
  readonly #shared: SharedStore | null;
  #cfg: LoadedConfig;
  #engines: readonly Engine[];
  readonly #customEngines: boolean;
  readonly #verdicts: VerdictStore | null;
  #inspector: Inspector;
  /** Stages the benchmark switched off (SMTPWALL_BENCH_OFF; empty in production). */
  readonly #benchOff: ReadonlySet<BenchStage> = benchOff();
  #policy: Policy;
  /** `debug-peers`, compiled (null: none listed); replaced on reload. */
  #debugPeer: ((address: string) => boolean) | null;
  readonly running: RunningListener[] = [];
  /** What /metrics counts: every record logged through #store. */
  readonly metrics = new GatewayMetrics();

  /**
   * @param opts.store a log store other than the SQLite file in the data directory
   * @param opts.engines engines other than the ones the config names (embedding, extensions)
   * @param opts.shared the shared store opened for `store:` (SharedStore.open)
   */
  constructor(cfg: LoadedConfig, private readonly log: LogFn, opts: { store?: LogStore; engines?: readonly Engine[]; shared?: SharedStore } = {}) {
    this.#cfg = cfg;
    this.#shared = opts.shared ?? null;
    const db = cfg['log-database'];
    if (this.#benchOff.size) log('warn', 'SMTPWALL_BENCH_OFF is set: stages of the mail path are switched off for a benchmark', { off: [...this.#benchOff].join(',') });
    const store = this.#benchOff.has('records') ? NO_RECORDS : opts.store;
    this.#local =
      !store && this.#shared
        ? this.#shared.logs
        : new ResilientLogStore(store ?? new SqliteLogStore(cfg.dataDirAbs, { lockWaitMs: db['lock-wait'], maxBytes: db['max-size'], instance: cfg.instanceName }), db.buffer, log);
    // Counted where every record passes, under any forwarders (`gateway.logs` stays the
    // forwarding store, whose stats the caller may read).
    const local = new CountingLogStore(this.#local, this.metrics);
    if (cfg['log-forwarding'].length > 0) {
      const fwd = new ForwardingLogStore(local, cfg['log-forwarding']);
      this.#store = fwd;
      this.#reportForwarding(fwd);
    } else {
      this.#store = local;
    }
    this.#customEngines = opts.engines !== undefined;
    this.#verdicts = !cfg.engines.analysis.enabled
      ? null
      : (this.#shared?.verdicts ?? new SqliteVerdictStore(cfg.dataDirAbs, { lockWaitMs: cfg['log-database']['lock-wait'], instance: cfg.instanceName }));
    this.#engines = opts.engines ?? buildEngines(cfg, log, this.#verdicts ?? undefined);
    this.#watchLateVerdicts(this.#engines);
    // A verdict that turns bad on another instance (or by an admin there) names this
    // instance's deliveries of the file that were let through while their analysis was pending.
    this.#shared?.verdicts.onChange((v) => {
      if (v.verdict === 'malicious' || v.verdict === 'phishing') this.#retro.verdict(v.sha256, findingOfStoredVerdict(v));
    });
    this.#inspector = buildInspector(cfg, this.#engines);
    this.#policy = new Policy(cfg);
    this.#debugPeer = debugPeers(cfg);
  }

  /** Forwarding failures are reported once a minute while they grow (never per record). */
  #reportForwarding(fwd: ForwardingLogStore): void {
    const seen = new Map<string, number>();
    this.#forwardTimer = setInterval(() => {
      for (const s of fwd.stats) {
        const bad = s.failed + s.dropped;
        if (bad > (seen.get(s.name) ?? 0)) this.log('warn', 'log forwarding failures', { forwarder: s.name, sent: s.sent, failed: s.failed, dropped: s.dropped, error: s.lastError });
        seen.set(s.name, bad);
      }
    }, FORWARD_REPORT_MS);
    this.#forwardTimer.unref();
  }

  #forwardTimer: NodeJS.Timeout | null = null;

  /** Retro-alerts: late analysis verdicts matched with the messages delivered before them. */
  readonly #retro = new RetroAlerts((r) => {
    try {
      this.#store.addThreat(r);
      this.log('warn', 'retro-alert: a delivered message carried a threat', { transaction: r.transactionId, threat: r.threat, file: r.filePath });
    } catch (err) {
      this.log('error', 'retro-alert could not be logged', { transaction: r.transactionId, error: (err as Error).message });
    }
  });

  /** Which files an engine may judge (for sightings); no such engine: none. */
  #judged(): (file: FileInfo) => boolean {
    const judging = this.#engines.filter((e) => e.judges);
    return judging.length === 0 ? () => false : (f) => judging.some((e) => e.judges!(f));
  }

  #watchLateVerdicts(engines: readonly Engine[]): void {
    for (const e of engines) e.onLateVerdict?.((file, f) => this.#retro.verdict(file.sha256, f));
  }

  /** The quarantine store, created when a configuration first asks for it. */
  get #quarantine(): Quarantine {
    if (this.#shared) return this.#shared.quarantine;
    this.#quarantineStore ??= new QuarantineStore(this.#cfg.dataDirAbs, {
      maxAgeMs: this.#cfg.quarantine['max-age'],
      maxBytes: this.#cfg.quarantine['max-size'],
    });
    return this.#quarantineStore;
  }

  #quarantineStore: QuarantineStore | null = null;

  /** What a new session captures (`capture:` as last reloaded); null: nothing. */
  #captureFor(): SessionContext['capture'] {
    const c = this.#cfg.capture;
    if (c.when === 'off' || this.#benchOff.has('records')) return null;
    if (this.#shared) return { when: c.when, maxBytes: c['max-bytes'], store: this.#shared.captures };
    try {
      this.#captures ??= new CaptureStore(this.#cfg.dataDirAbs, { lockWaitMs: this.#cfg['log-database']['lock-wait'] });
    } catch (err) {
      // The log database cannot be opened now (locked, full, unreadable): this session goes
      // uncaptured, mail flows, and the next session tries again.
      this.log('error', 'packet capture store could not be opened: this session is not captured', { error: (err as Error).message });
      return null;
    }
    return { when: c.when, maxBytes: c['max-bytes'], store: this.#captures };
  }

  #captures: CaptureSink & { close(): void } | null = null;

  /** Every listener's running sessions. */
  sessions(): Array<SessionSnapshot & { listener: string }> {
    return this.#listeners.flatMap((l) => l.sessions().map((s) => ({ ...s, listener: l.name })));
  }

  /** The configuration in use (as last reloaded). */
  get config(): LoadedConfig {
    return this.#cfg;
  }

  /** Reopen file log forwarders (after logrotate renamed the file: SIGHUP, `smtpwall reload`). */
  reopenLogs(): void {
    this.#store.reopen?.();
  }

  /** What `smtpwall status` shows of this process. */
  status(): ProcessStatus {
    const listeners = this.#listeners.map((l, i) => {
      const r = this.running[i]!;
      return { name: l.name, address: `${r.host}:${r.port}`, upstream: r.upstream, sessions: l.sessions().length };
    });
    return {
      pid: process.pid,
      started: this.#started,
      sessions: listeners.reduce((n, l) => n + l.sessions, 0),
      listeners,
      metrics: this.metrics.snapshot(),
      process: processFigures(cluster.isWorker ? 'worker' : 'gateway'),
    };
  }

  readonly #started = new Date().toISOString();

  /** Write the log records still batched (they are written within 20 ms anyway). */
  flushLogs(): void {
    this.#local.flush();
  }

  get logs(): LogStore {
    return this.#store;
  }

  async start(): Promise<RunningListener[]> {
    if (this.#cfg.listeners.some((l) => l.mode === 'transparent')) assertTransparentSupported();
    if (this.#cfg.listeners.some((l) => l.mode === 'tproxy')) assertTproxySupported();
    for (const l of this.#cfg.listeners) {
      const fixed = l.upstream ? await this.#fixedUpstream(l.upstream) : null;
      const listen = parseHostPort(l.listen)!;
      const clientTls = clientTlsFor(l);
      const isTrusted = compileAddressList(l['trusted-clients']);
      const upstreamTls = upstreamTlsFor(l, fixed?.host ?? '');
      // Relay mode only (the config refuses it in transparent mode): one destination, one pool.
      const pool = l['upstream-reuse'] && fixed ? new UpstreamPool(l['upstream-reuse-max'], l['upstream-reuse-idle']) : null;
      if (pool) this.#pools.push(pool);
      const listener = new Listener(l.name, {
        host: listen.host,
        port: listen.port,
        implicitTls: clientTls.implicit ? clientTls.pem : null,
        maxSessions: this.#cfg.limits['max-sessions'],
        maxSessionsPerClient: this.#cfg.limits['max-sessions-per-client'],
        stressOccupancy: this.#cfg.limits['stress-occupancy'],
        stressIdleMs: this.#cfg.timeouts['stress-client-idle'],
        // Relay: the configured upstream. Transparent: where this connection was going
        // before the kernel redirected it to us. TPROXY: the accepted socket's own address.
        upstreamFor: (socket) => fixed ?? (l.mode === 'tproxy' ? tproxyDestination(socket, listen.port) : originalDestination(socket)),
        ...(l.mode === 'tproxy' ? { listenFd: () => transparentListenFd(listen.host, listen.port), refuseSelf: false } : {}),
        hostname: this.#cfg.hostname,
        log: this.log,
        proxy: l['proxy-protocol'] ? { from: compileAddressList(l['proxy-from']), timeoutMs: PROXY_HEADER_TIMEOUT_MS } : null,
        session: (upstream, stressed, peer): SessionContext => ({
          peer,
          listener: l.name,
          direction: l.direction,
          forwarding: l.forwarding,
          upstreamHost: upstream.host,
          upstreamPort: upstream.port,
          hostname: this.#cfg.hostname,
          limits: this.#cfg.limits,
          timeouts: this.#cfg.timeouts,
          inspector: this.#benchOff.has('inspect') ? NO_INSPECTION : this.#inspector,
          policy: this.#policy,
          logs: this.#store,
          spoolDir: join(this.#cfg.dataDirAbs, 'spool'),
          quarantine: quarantines(this.#cfg) ? this.#quarantine : null,
          retro: this.#retro,
          verdicts: this.#verdicts,
          judged: this.#judged(),
          logsUnavailable: () => (this.#cfg.store ?? this.#cfg['log-database'])['on-failure'] === 'tempfail' && !this.#local.healthy,
          clientTls,
          upstreamTls: fixed ? upstreamTls : upstreamTlsFor(l, upstream.host),
          relayAuth: l['relay-auth'],
          isTrusted,
          upstreamPool: pool,
          upstreamXforward: l['upstream-reuse-xforward'],
          log: this.log,
          debugPeer: this.#debugPeer,
          vrfy: l.vrfy,
          connectAsClient: l.mode === 'tproxy',
          stressed,
          capture: this.#captureFor(),
        }),
      });
      const bound = await listener.listen();
      this.#listeners.push(listener);
      const upstream = l.upstream ?? 'original destination';
      this.running.push({ name: l.name, host: bound.host, port: bound.port, upstream });
      this.log('info', 'listening', {
        listener: l.name,
        address: `${bound.host}:${bound.port}`,
        mode: l.mode,
        upstream,
        forwarding: l.forwarding,
        tls: clientTls.implicit ? 'implicit' : clientTls.mode,
      });
    }
    return this.running;
  }

  /** A relay listener's upstream: host:port, or a built-in mailbox (one per directory). */
  async #fixedUpstream(upstream: string): Promise<{ host: string; port: number }> {
    if (!upstream.startsWith('mailbox:')) return parseHostPort(upstream)!;
    const known = this.#mailboxTargets.get(upstream);
    if (known) return known;
    const box = new MailboxServer(upstream.slice('mailbox:'.length), (m) =>
      this.log('info', 'mailbox stored message', { file: m.file, from: m.mailFrom, to: m.rcptTo, size: m.size }),
    );
    this.#mailboxes.push(box);
    const target = await box.listen('127.0.0.1', 0);
    this.#mailboxTargets.set(upstream, target);
    return target;
  }

  /**
   * Take a new configuration for new sessions: rules, profiles, engines and their signature
   * files, limits and timeouts. Sessions in progress finish under the configuration they
   * started with (each session holds its own references). Listener changes (addresses,
   * upstreams, TLS) need a restart: they are reported and ignored. Throws, changing nothing,
   * if the new engines cannot be built (a bad signature file).
   */
  async reload(next: LoadedConfig): Promise<{ ignored: string[] }> {
    const engines = this.#customEngines ? this.#engines : buildEngines(next, this.log, this.#verdicts ?? undefined);
    if (engines !== this.#engines) this.#watchLateVerdicts(engines);
    const inspector = buildInspector(next, engines);
    const policy = new Policy(next);
    const ignored: string[] = [];
    const key = (l: LoadedConfig['listeners'][number]): string => JSON.stringify(l);
    const before = new Map(this.#cfg.listeners.map((l) => [l.name, key(l)]));
    for (const l of next.listeners) if (before.get(l.name) !== key(l)) ignored.push(`listener ${l.name}`);
    for (const name of before.keys()) if (!next.listeners.some((l) => l.name === name)) ignored.push(`listener ${name} (removed)`);
    if (next.dataDirAbs !== this.#cfg.dataDirAbs) ignored.push('data-dir');
    if (next.workers !== this.#cfg.workers) ignored.push('workers');
    if (JSON.stringify(next.store) !== JSON.stringify(this.#cfg.store)) ignored.push('store');
    if (next.instanceName !== this.#cfg.instanceName) ignored.push('instance');
    const old = this.#engines;
    this.#engines = engines;
    this.#inspector = inspector;
    this.#policy = policy;
    this.#debugPeer = debugPeers(next);
    // Listener settings stay as started; everything a session reads from the config is new.
    this.#cfg = { ...next, listeners: this.#cfg.listeners, dataDirAbs: this.#cfg.dataDirAbs, workers: this.#cfg.workers, store: this.#cfg.store, instanceName: this.#cfg.instanceName };
    if (old !== engines) {
      // Engines in use by sessions in progress keep working; pooled idle resources are closed.
      setTimeout(() => void Promise.all(old.map((e) => e.close?.())), this.#cfg.timeouts.scan).unref();
    }
    return { ignored };
  }

  /** Stop accepting, let transactions finish within the grace period, then close everything. */
  async stop(graceMs = this.#cfg.timeouts['shutdown-grace']): Promise<void> {
    await Promise.all(this.#listeners.map((l) => l.close(graceMs)));
    await Promise.all(this.#pools.map((p) => p.close()));
    await Promise.all(this.#mailboxes.map((m) => m.close()));
    await Promise.all(this.#engines.map((e) => e.close?.()));
    if (this.#forwardTimer) clearInterval(this.#forwardTimer);
    if (!this.#shared) await this.#verdicts?.close();
    this.#captures?.close();
    this.#store.close();
    await this.#shared?.close();
  }

  /** The shared store, when `store:` is configured (the admin plane of this process reads it). */
  get shared(): SharedStore | null {
    return this.#shared;
  }
}

function debugPeers(cfg: LoadedConfig): ((address: string) => boolean) | null {
  return cfg['debug-peers'].length ? compileAddressList(cfg['debug-peers']) : null;
}
