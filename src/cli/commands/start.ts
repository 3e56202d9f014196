/**
 * `smtpwall start -c FILE`: run the gateway in the foreground until SIGTERM/SIGINT.
 *
 * With `workers: N` (N > 1) this process becomes a supervisor: it forks N workers (node
 * cluster) that share the listening sockets, restarts a worker that dies, and on SIGTERM
 * passes the signal on and waits for every worker's graceful stop.
 */

import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { Gateway } from '../../gateway/gateway.ts';
import { createLogger, type LogFn } from '../../logger.ts';
import { type LoadedConfig, loadConfigFile } from '../../policy/load-config.ts';

/** A worker that dies sooner than this after its start is not restarted in a tight loop. */
const RESTART_DELAY_MS = 1000;

export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  const log = createLogger();
  if (cfg.workers > 1 && cluster.isPrimary) return supervise(cfg, log);
  const gateway = new Gateway(cfg, log);
  await gateway.start();
  log('info', 'smtpwall started', { config: cfg.source, 'data-dir': cfg.dataDirAbs, pid: process.pid });
  await untilSignal((signal) => log('info', 'stopping', { signal, grace: `${cfg.timeouts['shutdown-grace']}ms` }));
  await gateway.stop();
  log('info', 'smtpwall stopped');
  // A cluster worker's IPC channel would keep it alive after a clean stop.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
}

async function supervise(cfg: LoadedConfig, log: LogFn): Promise<number> {
  // Workers accept on the shared socket themselves: the default round-robin hands every
  // connection from the supervisor to a worker over IPC, which cost more than it gained here.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let stopping = false;
  const fork = (): void => {
    const w = cluster.fork();
    w.on('exit', (code, signal) => {
      if (stopping) return;
      log('error', 'worker died; restarting', { pid: w.process.pid, code, signal });
      setTimeout(() => {
        if (!stopping) fork();
      }, RESTART_DELAY_MS);
    });
  };
  for (let i = 0; i < cfg.workers; i++) fork();
  log('info', 'smtpwall supervisor started', { workers: cfg.workers, pid: process.pid });
  await untilSignal((signal) => log('info', 'stopping workers', { signal }));
  stopping = true;
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
        }),
    ),
  );
  log('info', 'smtpwall stopped');
  return 0;
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
