/**
 * `smtpwall reload -c FILE`: check the configuration (errors are printed here, with file, line
 * and key, and nothing is signalled), then send SIGHUP to the running gateway whose process id
 * is in DATA-DIR/smtpwall.pid. Sessions in progress finish under the old configuration.
 * Exit 0 signalled, 2 invalid configuration or no running gateway.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildEngines } from '../../app/assemble.ts';
import { loadConfigFile } from '../../policy/load-config.ts';
import { PID_FILE } from '../../app/supervisor.ts';

export async function runReload(args: string[]): Promise<number> {
  return signalGateway(args, 'SIGHUP', 'reload');
}

/**
 * `smtpwall restart -c FILE`: check FILE the same way, then send SIGUSR2: a gateway with
 * `workers: 2` or more replaces its workers one by one with the code and configuration on
 * disk, without refusing a connection (start.ts). A single-process gateway ignores it.
 */
export async function runRestart(args: string[]): Promise<number> {
  return signalGateway(args, 'SIGUSR2', 'rolling restart');
}

async function signalGateway(args: string[], signal: NodeJS.Signals, what: string): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  for (const e of buildEngines(cfg)) await e.close?.(); // signature files must load too
  const pidFile = join(cfg.dataDirAbs, PID_FILE);
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    throw new Error(`no running gateway: ${pidFile} not found`);
  }
  try {
    process.kill(pid, signal);
  } catch (err) {
    throw new Error(`no running gateway with pid ${pid} (${(err as NodeJS.ErrnoException).code})`);
  }
  process.stdout.write(`${cfg.source}: OK; ${what} signalled to pid ${pid}\n`);
  return 0;
}
