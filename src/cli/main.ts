/**
 * The `smtpwall` command: dispatches to one module per subcommand (each a `Command`, see
 * command.ts). Each returns an exit code: 0 done/clean, 1 a finding or a refusal the command
 * reports, 2 a usage mistake or an error. Nothing a user can cause prints a stack trace: usage
 * mistakes print one line and the command's usage, other failures one line
 * (SMTPWALL_DEBUG=1 adds the stack of an unexpected one).
 */

import { version } from '../app/version.ts';
import { type Command, usageOf, UsageError } from './command.ts';
import { analyzeCommand, verdictsCommand } from './commands/analyze.ts';
import { adminCommand } from './commands/admin.ts';
import { captureCommand } from './commands/capture.ts';
import { configCommand } from './commands/config.ts';
import { demoCommand } from './commands/demo.ts';
import { logsCommand } from './commands/logs.ts';
import { policyCommand } from './commands/policy.ts';
import { quarantineCommand } from './commands/quarantine.ts';
import { reloadCommand, restartCommand } from './commands/reload.ts';
import { scanCommand } from './commands/scan.ts';
import { startCommand } from './commands/start.ts';
import { statusCommand } from './commands/status.ts';

const COMMANDS: readonly Command[] = [
  startCommand, reloadCommand, restartCommand, statusCommand, logsCommand, captureCommand, quarantineCommand,
  scanCommand, analyzeCommand, verdictsCommand, policyCommand, configCommand, adminCommand, demoCommand,
];

function topUsage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: smtpwall COMMAND [options]',
    '       smtpwall help COMMAND | COMMAND --help    that command\'s usage and options',
    '       smtpwall --version',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'Commands that read a configuration take -c FILE; without it they use $SMTPWALL_CONFIG,',
    'else /etc/smtpwall/smtpwall.yaml, else ./smtpwall.yaml.',
    'Exit status: 0 done (clean, allowed), 1 a threat or refusal the command reports, 2 an error.',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // `smtpwall logs … | head`: a reader that stops early is normal for a CLI, not a crash.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`smtpwall ${version()}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const about = name === 'help' ? rest[0] : undefined;
    if (about) {
      const c = COMMANDS.find((x) => x.name === about);
      if (!c) return unknown(about);
      process.stdout.write(usageOf(c));
      return 0;
    }
    (name ? process.stdout : process.stderr).write(topUsage());
    return name ? 0 : 2;
  }
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) return unknown(name);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(usageOf(c));
    return 0;
  }
  try {
    return await c.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`smtpwall ${name}: ${err.message}\n${usageOf(c)}`);
      return 2;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    // Errors raised on purpose (and Node's own: ENOENT, EACCES, … name the user's file) are one
    // line; the kinds a bug raises say so, and SMTPWALL_DEBUG=1 shows where.
    const bug = (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError) && !('code' in e);
    const stack = process.env.SMTPWALL_DEBUG ? `\n${e.stack}` : bug ? ' (SMTPWALL_DEBUG=1 shows the stack; please report it)' : '';
    process.stderr.write(`smtpwall ${name}: ${bug ? 'internal error: ' : ''}${e.message.split('\n')[0]}${stack}\n`);
    return 2;
  }
}

function unknown(name: string): number {
  process.stderr.write(`smtpwall: unknown command "${name}" (smtpwall --help lists the commands)\n`);
  return 2;
}
