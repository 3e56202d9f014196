/**
 * `smtpwall start [-c FILE]`: run the gateway in the foreground until SIGTERM/SIGINT; SIGHUP
 * (or `smtpwall reload`) reloads the configuration file (a configuration with errors is refused
 * and logged, the running one stays). The process id is written to DATA-DIR/smtpwall.pid for
 * service managers, and DATA-DIR/control.sock answers `smtpwall status|reload|restart`. With
 * `workers: N` (N > 1) this process becomes the supervisor of N workers; `smtpwall restart`
 * replaces them one by one (app/supervisor.ts).
 */

import { benchOff } from '../../app/bench-switches.ts';
import { runGateway } from '../../app/supervisor.ts';
import { createLogger } from '../../logs/process-log.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, configPath } from '../command.ts';
import { loadConfigFile } from '../../policy/load-config.ts';

export const startCommand = command({
  name: 'start',
  usage: ['start [-c FILE]'],
  summary: 'run the gateway in the foreground (SIGTERM stops it, SIGHUP reloads)',
  options: { ...CONFIG_OPTION },
  help: { config: CONFIG_HELP },
  notes: ['Exit status: 0 stopped by a signal, 2 the configuration or a listening address cannot be used.'],
  async run({ values }) {
    const file = configPath(values.config);
    // SMTPWALL_BENCH_OFF=maillog (app/bench-switches.ts): the benchmark measures the log's cost.
    return runGateway(loadConfigFile(file), file, createLogger({ quiet: benchOff().has('maillog') }));
  },
});
