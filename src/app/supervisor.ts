/**
 * The process around the gateway: the pid file, privileges (the data directory handed to
 * `user:` before root is dropped), signals (SIGHUP reload, SIGTERM/SIGINT graceful stop,
 * SIGUSR2 rolling restart) and, with `workers: N` (N > 1), the supervisor: it forks N workers
 * (node cluster) that share the listening sockets, restarts a worker that dies, passes SIGHUP
 * on to every worker, and on SIGTERM passes the signal on and waits for every worker's
 * graceful stop.
 *
 * SIGUSR2 (`smtpwall restart`) replaces the workers one by one — the way to load new code
 * without refusing a connection: a new worker is started (with the code and configuration on
 * disk now) and must report ready before an old one is stopped gracefully; the supervisor
 * holds the listening socket throughout, so connections queue in the kernel and are taken by
 * whichever worker accepts. A new worker that fails to start stops the rollover; the old
 * workers go on serving.
 */

import cluster, { type Worker } from 'node:cluster';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogFn } from '../logs/process-log.ts';
import { type LoadedConfig, loadConfigFile } from '../policy/load-config.ts';
import { Gateway } from './gateway.ts';
import { type ControlHandlers, ControlServer, type ProcessStatus, type ReloadReport, type RestartReport, type StatusReport } from './control.ts';
import { probeAll } from './health.ts';
import { type AdminServer, openAdmin } from '../admin/server.ts';
import { startRetention } from '../logs/retention.ts';
import { openLogDatabase } from '../logs/sqlite-store.ts';
import { portHolder } from './port-holder.ts';
import { startDigestSchedule } from './digest-run.ts';
import type { SharedStore } from '../shared-store/shared-store.ts';
import { version } from './version.ts';

export const PID_FILE = 'smtpwall.pid';

function writePid(cfg: LoadedConfig): () => void {
  mkdirSync(cfg.dataDirAbs, { recursive: true });
  const file = join(cfg.dataDirAbs, PID_FILE);
  writeFileSync(file, `${process.pid}\n`);
  return () => rmSync(file, { force: true });
}

/** A worker that dies sooner than this after its start is not restarted in a tight loop. */
const RESTART_DELAY_MS = 1000;
/** Longest wait for a new worker to report ready during a rolling restart. */
const READY_TIMEOUT_MS = 60_000;
/** What a worker tells its supervisor once its listeners are open. */
const READY = { smtpwall: 'ready' } as const;

/**
 * Run what `smtpwall start` runs until SIGTERM/SIGINT: the supervisor when `workers` > 1 (in
 * the primary process), else the gateway itself (alone, or as one of the workers).
 */
export async function runGateway(cfg: LoadedConfig, file: string, log: LogFn): Promise<number> {
  if (cfg.workers > 1 && cluster.isPrimary) return supervise(cfg, file, log);
  const owner = cfg.user ? prepareDataDir(cfg) : null;
  // The shared store first: a gateway that must refuse (schema too new, down-at-start: refuse) opens no port.
  const shared = cfg.store ? await openShared(cfg, log, true) : undefined;
  const gateway = new Gateway(cfg, log, shared ? { shared } : {});
  try {
    await gateway.start();
  } catch (err) {
    // Nothing may keep running (a built-in mailbox, a listener already open): stop, then say why.
    await gateway.stop(0).catch(() => {});
    if (cluster.isWorker) cluster.worker?.disconnect(); // else the IPC channel keeps it alive
    throw startError(err);
  }
  const removePid = cluster.isWorker ? () => {} : writePid(cfg);
  if (owner) dropPrivileges(owner, log);
  log('info', 'smtpwall started', { config: cfg.source, 'data-dir': cfg.dataDirAbs, pid: process.pid });
  if (cluster.isWorker) process.send?.(READY);
  const onHup = (): void => void reload(gateway, file, log);
  // Without a supervisor there is no one to hand the socket over: SIGUSR2 must not kill us.
  const onUsr2 = (): void => log('warn', NO_ROLLING_RESTART);
  process.on('SIGHUP', onHup);
  let control: ControlServer | null = null;
  let admin: AdminServer | null = null;
  if (cluster.isWorker) {
    process.on('message', (m: unknown) => void answerSupervisor(m, gateway, file, log));
  } else {
    process.on('SIGUSR2', onUsr2);
    const started = Date.now();
    control = await openControl(cfg, log, {
      status: async () => statusReport(cfg, started, [gateway.status()]),
      reload: () => reload(gateway, file, log),
      restart: async () => ({ applied: false, replaced: 0, error: NO_ROLLING_RESTART }),
    });
    admin = await openAdmin({
      role: 'gateway',
      status: async () => statusReport(gateway.config, started, [gateway.status()]),
      reload: () => reload(gateway, file, log),
      config: () => gateway.config,
      shared: gateway.shared,
    }, log);
  }
  probeInBackground(cfg, log);
  const stopDigests = cluster.isWorker ? () => {} : startDigestSchedule(cfg, log, shared?.quarantine);
  const stopRetention = cluster.isWorker ? () => {} : shared ? await sharedRetention(shared, () => gateway.config, log) : startRetention(cfg.dataDirAbs, () => gateway.config['log-database'].retention, log, () => gateway.config.capture.retention);
  await untilSignal((signal) => log('info', 'stopping', { signal, grace: `${cfg.timeouts['shutdown-grace']}ms` }));
  process.off('SIGHUP', onHup);
  process.off('SIGUSR2', onUsr2);
  stopDigests();
  stopRetention();
  await control?.close();
  await admin?.close();
  await gateway.stop();
  removePid();
  log('info', 'smtpwall stopped');
  // A cluster worker's IPC channel would keep it alive after a clean stop.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
}

async function supervise(cfg: LoadedConfig, file: string, log: LogFn): Promise<number> {
  /** The configuration as last reloaded (the workers have their own copies). */
  let current = cfg;
  // Workers accept on the shared socket themselves: the default round-robin hands every
  // connection from the supervisor to a worker over IPC, which cost more than it gained here.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let stopping = false;
  /** Workers being replaced, and new ones not yet ready: their exit is no death to repair. */
  const retiring = new Set<Worker>();
  const starting = new Set<Worker>();
  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('exit', (code, signal) => {
      if (stopping || retiring.has(w) || starting.has(w)) return;
      log('error', 'worker died; restarting', { pid: w.process.pid, code, signal });
      setTimeout(() => {
        if (!stopping) fork();
      }, RESTART_DELAY_MS);
    });
    return w;
  };
  // The workers open the log database at once: it is created (WAL, current schema) here first,
  // so that no two of them turn a new file into WAL together (which SQLite answers with BUSY).
  if (!cfg.store) openLogDatabase(cfg.dataDirAbs).close();
  // The first workers must all come up: one that cannot (its address is taken) stops the start.
  const first = Array.from({ length: cfg.workers }, () => {
    const w = fork();
    starting.add(w);
    return w;
  });
  try {
    await Promise.all(first.map((w) => ready(w)));
  } catch (err) {
    stopping = true;
    await Promise.all(first.map((w) => stopWorker(w)));
    throw new ListenError(`the workers could not start: ${(err as Error).message}`);
  } finally {
    for (const w of first) starting.delete(w);
  }
  let rolling = false;
  const onUsr2 = async (): Promise<RestartReport> => {
    if (rolling) return { applied: false, replaced: 0, error: 'a rolling restart is already under way' };
    if (stopping) return { applied: false, replaced: 0, error: 'the gateway is stopping' };
    rolling = true;
    let replaced = 0;
    const old = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    log('info', 'rolling restart', { workers: old.length });
    try {
      for (const w of old) {
        const fresh = fork();
        starting.add(fresh);
        try {
          await ready(fresh);
        } finally {
          starting.delete(fresh);
        }
        retiring.add(w);
        await stopWorker(w);
        retiring.delete(w);
        replaced++;
        log('info', 'worker replaced', { old: w.process.pid, new: fresh.process.pid });
      }
      log('info', 'rolling restart done', { workers: old.length });
      return { applied: true, replaced };
    } catch (err) {
      log('error', 'rolling restart stopped; the running workers go on serving', { error: (err as Error).message, replaced });
      return { applied: false, replaced, error: `rolling restart stopped after ${replaced} of ${old.length} workers: ${(err as Error).message}` };
    } finally {
      rolling = false;
    }
  };
  const onUsr2Signal = (): void => void onUsr2();
  process.on('SIGUSR2', onUsr2Signal);
  const removePid = writePid(cfg);
  log('info', 'smtpwall supervisor started', { workers: cfg.workers, pid: process.pid });
  const onHup = (): void => {
    log('info', 'reloading workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  };
  process.on('SIGHUP', onHup);
  const started = Date.now();
  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead() && !starting.has(w) && !retiring.has(w));
  const workerReload = async (): Promise<ReloadReport> => {
    const reports = await Promise.all(live().map((w) => askWorker<ReloadReport>(w, 'reload')));
    const refused = reports.find((r) => !r.applied);
    if (!refused) current = loadConfigFile(file);
    return {
      applied: reports.length > 0 && !refused,
      needsRestart: [...new Set(reports.flatMap((r) => r.needsRestart))],
      workers: reports.length,
      ...(refused ? { error: refused.error } : reports.length === 0 ? { error: 'no worker is running' } : {}),
    };
  };
  const control = await openControl(cfg, log, {
    status: async () => statusReport(cfg, started, await Promise.all(live().map((w) => askWorker<ProcessStatus>(w, 'status')))),
    reload: workerReload,
    restart: onUsr2,
  });
  // The supervisor's own connection to the shared store: its admin plane reads and audits there.
  const shared = cfg.store ? await openShared(cfg, log, false) : null;
  const admin = await openAdmin({
    role: 'supervisor',
    shared,
    status: async () => statusReport(current, started, await Promise.all(live().map((w) => askWorker<ProcessStatus>(w, 'status')))),
    reload: workerReload,
    config: () => current,
  }, log);
  probeInBackground(cfg, log);
  const stopDigests = startDigestSchedule(cfg, log, shared?.quarantine);
  const stopRetention = shared ? await sharedRetention(shared, () => current, log) : startRetention(cfg.dataDirAbs, () => current['log-database'].retention, log, () => current.capture.retention);
  await untilSignal((signal) => log('info', 'stopping workers', { signal }));
  stopDigests();
  stopRetention();
  process.off('SIGHUP', onHup);
  process.off('SIGUSR2', onUsr2Signal);
  await control?.close();
  await admin?.close();
  removePid();
  stopping = true;
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.all(workers.map((w) => stopWorker(w)));
  await shared?.close();
  log('info', 'smtpwall stopped');
  return 0;
}

/** SIGTERM (a graceful stop: transactions in flight finish) and wait for the exit. */
function stopWorker(w: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    if (w.isDead()) return resolve();
    w.once('exit', () => resolve());
    w.process.kill('SIGTERM');
  });
}

/** A new worker's report that its listeners are open; it fails if the worker dies or hangs first. */
function ready(w: Worker): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      w.process.kill('SIGKILL');
      reject(new Error(`new worker ${w.process.pid} not ready within ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    const onMessage = (m: unknown): void => {
      if ((m as typeof READY | null)?.smtpwall !== READY.smtpwall) return;
      cleanup();
      resolve();
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`new worker ${w.process.pid} exited (code ${code}) before it was ready`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('exit', onExit);
    };
    w.on('message', onMessage);
    w.once('exit', onExit);
  });
}

/**
 * Started as root with `user:` set: the data directory (logs, spool, quarantine) is given to
 * that user before anything is opened, so the gateway can write there after dropping root.
 */
function prepareDataDir(cfg: LoadedConfig): { uid: number; gid: number; name: string } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string): number => Number(execFileSync('id', [flag, cfg.user!], { encoding: 'utf8' }).trim());
  const owner = { uid: id('-u'), gid: id('-g'), name: cfg.user! };
  mkdirSync(cfg.dataDirAbs, { recursive: true, mode: 0o750 });
  chownTree(cfg.dataDirAbs, owner.uid, owner.gid);
  return owner;
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (!statSync(path).isDirectory()) return;
  for (const e of readdirSync(path)) chownTree(join(path, e), uid, gid);
}

/** After the listeners are bound (port 25 needs root or CAP_NET_BIND_SERVICE): root no more. */
function dropPrivileges(owner: { uid: number; gid: number; name: string }, log: LogFn): void {
  process.setgroups!([owner.gid]);
  process.setgid!(owner.gid);
  process.setuid!(owner.uid);
  log('info', 'privileges dropped', { user: owner.name, uid: process.getuid!(), gid: process.getgid!() });
}

/** Reload from the file; a configuration with errors is refused and the running one kept. */
async function reload(gateway: Gateway, file: string, log: LogFn): Promise<ReloadReport> {
  gateway.reopenLogs(); // logrotate's postrotate: also when the new configuration is refused
  try {
    const next = loadConfigFile(file);
    const { ignored } = await gateway.reload(next);
    log('info', 'configuration reloaded', { config: next.source, rules: next.rules.length, ...(ignored.length ? { 'needs restart': ignored.join(', ') } : {}) });
    return { applied: true, needsRestart: ignored, workers: 1 };
  } catch (err) {
    log('error', 'configuration reload refused; the running configuration stays', { error: (err as Error).message });
    return { applied: false, needsRestart: [], workers: 1, error: (err as Error).message };
  }
}

/** A listening address that is taken becomes one line naming it and, where it can be told, who holds it. */
function startError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code !== 'EADDRINUSE' && e?.code !== 'EACCES' && e?.code !== 'EADDRNOTAVAIL') return err;
  const address = `${e.address ?? '?'}:${e.port ?? '?'}`;
  if (e.code === 'EACCES') return new ListenError(`cannot listen on ${address}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`);
  if (e.code === 'EADDRNOTAVAIL') return new ListenError(`cannot listen on ${address}: no such address on this host`);
  const holder = e.port ? portHolder(e.port) : null;
  return new ListenError(`cannot listen on ${address}: address already in use${holder ? ` by pid ${holder.pid} (${holder.command})` : ''}`);
}

/** The shared store's modules (and the PostgreSQL driver) are loaded only when `store:` is configured. */
async function openShared(cfg: LoadedConfig, log: LogFn, gateway: boolean): Promise<SharedStore> {
  const { SharedStore } = await import('../shared-store/shared-store.ts');
  return SharedStore.open(cfg, log, { gateway });
}

async function sharedRetention(shared: SharedStore, cfg: () => LoadedConfig, log: LogFn): Promise<() => void> {
  const { startSharedRetention } = await import('../shared-store/retention.ts');
  return startSharedRetention(shared, cfg, log);
}

export class ListenError extends Error {
  override name = 'ListenError';
}

const NO_ROLLING_RESTART = 'rolling restart needs workers: 2 or more; restart the service instead (systemctl restart smtpwall)';

/** How long a worker may take to answer the supervisor (a reload builds engines). */
const WORKER_ANSWER_MS = 30_000;
let nextAsk = 0;

/** A question to one worker over the cluster channel, answered by `answerSupervisor`. */
function askWorker<T>(w: Worker, op: 'status' | 'reload'): Promise<T> {
  const id = ++nextAsk;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker ${w.process.pid} did not answer "${op}"`)), WORKER_ANSWER_MS);
    const onMessage = (m: { smtpwall?: string; id?: number; body?: T }): void => {
      if (m?.smtpwall === 'answer' && m.id === id) done(null, m.body as T);
    };
    const onExit = (): void => done(new Error(`worker ${w.process.pid} exited`));
    const done = (err: Error | null, body?: T): void => {
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('exit', onExit);
      if (err) reject(err);
      else resolve(body as T);
    };
    w.on('message', onMessage);
    w.once('exit', onExit);
    w.send({ smtpwall: op, id });
  });
}

async function answerSupervisor(m: unknown, gateway: Gateway, file: string, log: LogFn): Promise<void> {
  const q = m as { smtpwall?: string; id?: number } | null;
  if (q?.smtpwall !== 'status' && q?.smtpwall !== 'reload') return;
  const body = q.smtpwall === 'status' ? gateway.status() : await reload(gateway, file, log);
  process.send?.({ smtpwall: 'answer', id: q.id, body });
}

function statusReport(cfg: LoadedConfig, started: number, workers: ProcessStatus[]): StatusReport {
  return {
    pid: process.pid, version: version(), config: cfg.source, started: new Date(started).toISOString(),
    uptimeS: Math.round((Date.now() - started) / 1000), workers, sessions: workers.reduce((n, w) => n + w.sessions, 0),
  };
}

/** The control socket; a gateway that cannot open it still serves mail (the CLI falls back to signals). */
async function openControl(cfg: LoadedConfig, log: LogFn, handlers: ControlHandlers): Promise<ControlServer | null> {
  const control = new ControlServer(cfg.dataDirAbs, handlers, (err) => log('error', 'control request failed', { error: err.message }));
  try {
    await control.listen();
    return control;
  } catch (err) {
    log('warn', 'control socket not available; smtpwall status/reload/restart fall back to signals', { path: control.path, error: (err as Error).message });
    return null;
  }
}

/**
 * What the configuration depends on, probed once the listeners are open: a warning naming the
 * fix for each that is down. The gateway serves either way (mail then gets the on-error action).
 */
function probeInBackground(cfg: LoadedConfig, log: LogFn): void {
  probeAll(cfg).then(
    (probes) => {
      for (const p of probes) if (!p.ok) log('warn', 'dependency down', { what: p.what, detail: p.detail, fix: p.fix });
    },
    (err: Error) => log('error', 'probes failed', { error: err.message }),
  );
}

function untilSignal(onSignal: (signal: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const handler = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
      onSignal(signal);
      resolve();
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}
