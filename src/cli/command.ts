/**
 * What every `smtpwall` subcommand is: a name, a usage line, its options with their help, and
 * a run function. main.ts prints `smtpwall help COMMAND` / `COMMAND --help` from the same spec
 * the arguments are parsed with, so the help cannot drift from what is accepted, and a usage
 * mistake is one line plus that command's usage — never a stack trace.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { tmpdir } from 'node:os';
import { type LoadedConfig, loadConfigFile, parseConfig } from '../policy/load-config.ts';

type Options = NonNullable<ParseArgsConfig['options']>;
export type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

/** A mistake in how the command was called: main.ts prints the message and the usage, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Command {
  readonly name: string;
  /** The synopsis lines after `usage: smtpwall `. */
  readonly usage: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** Help for each option: `[ARG, text]` for an option with a value, `text` for a switch. */
  readonly help: Readonly<Record<string, string | readonly [string, string]>>;
  readonly options: Readonly<Record<string, { readonly short?: string }>>;
  /** Lines after the options (exit codes, notes). */
  readonly notes?: readonly string[];
  run(args: string[]): Promise<number>;
}

/** A command whose options are parsed (strictly) before `run` sees them. */
export function command<const O extends Options>(spec: {
  name: string;
  usage: readonly string[];
  summary: string;
  options: O;
  help: { readonly [K in keyof O]: string | readonly [string, string] };
  notes?: readonly string[];
  run(p: Parsed<O>): Promise<number>;
}): Command {
  return {
    name: spec.name,
    usage: spec.usage,
    summary: spec.summary,
    help: spec.help as Record<string, string | readonly [string, string]>,
    options: spec.options,
    notes: spec.notes,
    run: (args) => {
      let parsed: Parsed<O>;
      try {
        parsed = parseArgs({ args, options: spec.options, allowPositionals: true, strict: true }) as Parsed<O>;
      } catch (err) {
        // node:util's messages name the option; the hint about '--' is noise for this CLI.
        throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, '').replace(/\.$/, ''));
      }
      return spec.run(parsed);
    },
  };
}

/** `usage: …`, the options with their help, and the notes. */
export function usageOf(c: Command): string {
  const lines = c.usage.map((u, i) => `${i === 0 ? 'usage:' : '      '} smtpwall ${u}`);
  const entries = Object.entries(c.help);
  if (entries.length) {
    lines.push('', 'options:');
    const rows = entries.map(([name, h]) => {
      const short = c.options[name]?.short;
      const flag = `${short ? `-${short}, ` : '    '}--${name}${typeof h === 'string' ? '' : ` ${h[0]}`}`;
      return [flag, typeof h === 'string' ? h : h[1]] as const;
    });
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [flag, text] of rows) lines.push(`  ${flag.padEnd(w)}  ${text}`);
  }
  if (c.notes?.length) lines.push('', ...c.notes);
  return `${lines.join('\n')}\n`;
}

export const CONFIG_OPTION = { config: { type: 'string', short: 'c' } } as const;
export const CONFIG_HELP = ['FILE', 'the configuration file (default: $SMTPWALL_CONFIG, /etc/smtpwall/smtpwall.yaml, ./smtpwall.yaml)'] as const;

/** Where a configuration is looked for when `-c` is not given, in this order. */
export function defaultConfigPaths(): string[] {
  const env = process.env.SMTPWALL_CONFIG;
  return [...(env ? [env] : []), '/etc/smtpwall/smtpwall.yaml', join(process.cwd(), 'smtpwall.yaml')];
}

/** The configuration file a command uses: `-c`, else the first default that exists. */
export function configPath(given: string | undefined): string {
  if (given) return given;
  const env = process.env.SMTPWALL_CONFIG;
  if (env) return env; // named explicitly: a missing file is an error, not a fallback
  const found = defaultConfigPaths().find((p) => existsSync(p));
  if (!found) throw new Error(`no configuration file: give -c FILE, set SMTPWALL_CONFIG, or create /etc/smtpwall/smtpwall.yaml or ./smtpwall.yaml`);
  return found;
}

export function loadConfig(given: string | undefined): LoadedConfig {
  return loadConfigFile(configPath(given));
}

/** The example configuration shipped with the package: what `npm start` runs. */
export const EXAMPLE_CONFIG = join(import.meta.dirname, '../../smtpwall.example.yaml');

/**
 * For commands that can work without a gateway (`scan`, `analyze`): the configuration given or
 * found, else the example configuration's engines and limits (with a throw-away data
 * directory), so a scan without `-c` judges like a gateway started on the example.
 */
export function configOrExample(given: string | undefined): LoadedConfig {
  if (given || process.env.SMTPWALL_CONFIG || defaultConfigPaths().some((p) => existsSync(p))) return loadConfig(given);
  const text = readFileSync(EXAMPLE_CONFIG, 'utf8').replace(/^data-dir:.*$/m, `data-dir: ${JSON.stringify(join(tmpdir(), `smtpwall-scan-${process.pid}`))}`);
  return parseConfig(text, '<example>');
}
