/**
 * `smtpwall reload [-c FILE]` and `smtpwall restart [-c FILE]`: check the configuration here
 * first (errors are printed with file, line and key, and the gateway is not asked), then ask
 * the running gateway over its control socket and print what it applied and what not.
 *
 * reload: rules, profiles, engines, limits and timeouts for new sessions (sessions in progress
 * finish under the old configuration); listener, data-dir and workers changes need a restart
 * and are named. restart: with `workers: 2` or more, the workers are replaced one by one with
 * the code and configuration on disk, no connection refused; a single process says it cannot.
 *
 * Exit 0 applied, 1 not applied (refused, or a restart with one worker), 2 invalid
 * configuration or no running gateway. A gateway without a control socket (an older version)
 * gets the signal (SIGHUP/SIGUSR2) and the answer is only in its log.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEngines } from '../../app/assemble.ts';
import { controlRequest, type ReloadReport, type RestartReport } from '../../app/control.ts';
import { PID_FILE } from '../../app/supervisor.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig } from '../command.ts';

const ANSWER_TIMEOUT_MS = 10 * 60_000; // a rolling restart waits for every worker's graceful stop

export const reloadCommand = command({
  name: 'reload',
  usage: ['reload [-c FILE]'],
  summary: 'check FILE, then make the running gateway reload it, and say what was applied',
  options: { ...CONFIG_OPTION },
  help: { config: CONFIG_HELP },
  notes: ['Exit status: 0 applied, 1 refused by the gateway, 2 invalid configuration or no running gateway.'],
  async run({ values }) {
    const cfg = loadConfig(values.config);
    for (const e of buildEngines(cfg)) await e.close?.(); // signature files must load too
    const r = await ask<ReloadReport>(cfg.dataDirAbs, 'reload', 'SIGHUP');
    if (!r) return 0;
    if (!r.applied) {
      process.stdout.write(`${cfg.source}: reload NOT applied: ${r.error ?? 'refused'}; the running configuration stays\n`);
      return 1;
    }
    process.stdout.write(`${cfg.source}: reloaded (${r.workers} worker${r.workers === 1 ? '' : 's'}): rules, profiles, engines, limits and timeouts apply to new sessions\n`);
    if (r.needsRestart.length) process.stdout.write(`  not applied, needs a restart: ${r.needsRestart.join(', ')}\n`);
    return 0;
  },
});

export const restartCommand = command({
  name: 'restart',
  usage: ['restart [-c FILE]'],
  summary: 'check FILE, then replace the workers one by one (new code, no refused connection)',
  options: { ...CONFIG_OPTION },
  help: { config: CONFIG_HELP },
  notes: ['Needs workers: 2 or more. Exit status: 0 every worker replaced, 1 not (or only partly), 2 invalid configuration or no running gateway.'],
  async run({ values }) {
    const cfg = loadConfig(values.config);
    for (const e of buildEngines(cfg)) await e.close?.();
    const r = await ask<RestartReport>(cfg.dataDirAbs, 'restart', 'SIGUSR2');
    if (!r) return 0;
    if (!r.applied) {
      process.stdout.write(`${cfg.source}: restart NOT done: ${r.error ?? 'refused'}\n`);
      return 1;
    }
    process.stdout.write(`${cfg.source}: restarted: ${r.replaced} worker${r.replaced === 1 ? '' : 's'} replaced\n`);
    return 0;
  },
});

/** The gateway's answer; null when only a signal could be sent (no control socket). */
async function ask<T>(dataDir: string, op: 'reload' | 'restart', signal: NodeJS.Signals): Promise<T | null> {
  try {
    return await controlRequest<T>(dataDir, op, ANSWER_TIMEOUT_MS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
  }
  const pidFile = join(dataDir, PID_FILE);
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    throw new Error(`no running gateway: no control socket and no ${pidFile}`);
  }
  try {
    process.kill(pid, signal);
  } catch (err) {
    throw new Error(`no running gateway with pid ${pid} (${(err as NodeJS.ErrnoException).code})`);
  }
  process.stdout.write(`no control socket; ${signal} sent to pid ${pid} (the gateway's log says what was applied)\n`);
  return null;
}
