/**
 * The `smtpwall` command: dispatches to one module per subcommand. Each returns an exit code;
 * errors a user can fix (bad config, missing file) are printed plainly, without a stack.
 */

import { SmtpwallError } from '../errors.ts';
import { HashListSyntaxError } from '../inspect/engines/signatures.ts';
import { QuarantineError } from '../quarantine/store.ts';
import { YaraError } from '../inspect/engines/analysis/yara.ts';
import { runAnalyze, runVerdicts } from './commands/analyze.ts';
import { runConfig } from './commands/config.ts';
import { runDemo } from './commands/demo.ts';
import { runLogs } from './commands/logs.ts';
import { runPolicy } from './commands/policy.ts';
import { runQuarantine } from './commands/quarantine.ts';
import { runReload, runRestart } from './commands/reload.ts';
import { runScan } from './commands/scan.ts';
import { runStart } from './commands/start.ts';

const USAGE = `usage: smtpwall <command> [options]

commands:
  start -c FILE                         run the gateway in the foreground (SIGTERM stops it,
                                        SIGHUP reloads the configuration)
  reload -c FILE                        check FILE, then make the running gateway reload it
  restart -c FILE                       check FILE, then replace the workers one by one
                                        (new code, no refused connection; workers: 2 or more)
  analyze FILE... [--json]              static analysis: verdict and reasons for each file
                                        (exit 0 benign, 1 otherwise)
  verdicts list|show SHA256|set SHA256 VERDICT --reason TEXT -c FILE
                                        the verdict store; a manual verdict wins
  quarantine list|show ID|release ID|delete ID -c FILE [--json]
                                        messages kept by profiles with quarantine: true
  logs threats|traffic -c FILE [--json] [--limit N]
                                        show threat or traffic records
  scan PATH... [--json] [-v]            scan files, .eml messages and mbox files offline
                                        (exit 0 clean, 1 threat or uninspectable, 2 error)
  config check -c FILE                  validate a configuration without starting
  policy test -c FILE [--from A] [--to B]... [--client IP] [--server IP] [--listener N]
              [--user U] [--json] MESSAGE.eml
                                        the rule, files, findings, verdicts and action the
                                        gateway would apply (exit 0 allow, 1 other, 2 error)
  demo                                  a gateway, a mailbox and two messages on loopback
`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  start: runStart,
  logs: runLogs,
  scan: runScan,
  demo: runDemo,
  config: runConfig,
  policy: runPolicy,
  reload: runReload,
  restart: runRestart,
  quarantine: runQuarantine,
  analyze: runAnalyze,
  verdicts: runVerdicts,
};

export async function main(argv: string[]): Promise<number> {
  // `smtpwall logs … | head`: a reader that stops early is normal for a CLI, not a crash.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`smtpwall: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (err) {
    if (err instanceof SmtpwallError || err instanceof HashListSyntaxError || err instanceof QuarantineError || err instanceof YaraError || (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`smtpwall ${name}: ${err.message}\n`);
    } else {
      process.stderr.write(`smtpwall ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    return 2;
  }
}
