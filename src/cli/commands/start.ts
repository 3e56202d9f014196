/**
 * `smtpwall start -c FILE`: run the gateway in the foreground until SIGTERM/SIGINT; SIGHUP
 * reloads the configuration file (a configuration with errors is refused and logged, the
 * running one stays). The process id is written to DATA-DIR/smtpwall.pid for `smtpwall
 * reload` and service managers. With `workers: N` (N > 1) this process becomes the
 * supervisor of N workers; SIGUSR2 (`smtpwall restart`) replaces them one by one
 * (app/supervisor.ts).
 */

import { parseArgs } from 'node:util';
import { runGateway } from '../../app/supervisor.ts';
import { createLogger } from '../../logs/process-log.ts';
import { loadConfigFile } from '../../policy/load-config.ts';


export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  return runGateway(cfg, values.config, createLogger());
}
