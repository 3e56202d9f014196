/** `smtpwall start -c FILE`: run the gateway in the foreground until SIGTERM/SIGINT. */

import { parseArgs } from 'node:util';
import { Gateway } from '../../gateway/gateway.ts';
import { createLogger } from '../../logger.ts';
import { loadConfigFile } from '../../policy/load-config.ts';

export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  const log = createLogger();
  const gateway = new Gateway(cfg, log);
  await gateway.start();
  log('info', 'smtpwall started', { config: cfg.source, 'data-dir': cfg.dataDirAbs, pid: process.pid });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log('info', 'stopping', { signal, grace: `${cfg.timeouts['shutdown-grace']}ms` });
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      void gateway.stop().then(resolve);
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  log('info', 'smtpwall stopped');
  return 0;
}
