/**
 * `smtpwall config check [-c FILE] [--no-probe]`: validate a configuration without starting
 * anything — schema, cross-references, hash lists and TLS files — say what it would run, and
 * probe what it depends on (clamd, the upstreams, data directories, 7-Zip, YARA-X).
 * Exit 0 valid and everything up, 1 valid but something is down, 2 invalid (the error names
 * file, line and key).
 *
 * `smtpwall config show [-c FILE] [--set | --defaults]`: every parameter with its effective
 * value (`postconf`), only those set in the file (`postconf -n`), or every default
 * (`postconf -d`) — all generated from the schema (policy/config-reference.ts).
 */

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { buildEngines } from '../../app/assemble.ts';
import { describeProbe, probeAll } from '../../app/health.ts';
import { clientTlsFor } from '../../gateway/tls.ts';
import { effectiveParameters, formatValue, parameters } from '../../policy/config-reference.ts';
import { escapeUnsafe } from '../../logs/escape.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, configPath, loadConfig, UsageError } from '../command.ts';
import { loadConfigFile } from '../../policy/load-config.ts';

export const configCommand = command({
  name: 'config',
  usage: ['config check [-c FILE] [--no-probe]', 'config show [-c FILE] [--set | --defaults]'],
  summary: 'validate a configuration and probe what it needs; show every parameter and its default',
  options: { ...CONFIG_OPTION, 'no-probe': { type: 'boolean', default: false }, set: { type: 'boolean', default: false }, defaults: { type: 'boolean', default: false } },
  help: {
    config: CONFIG_HELP,
    'no-probe': 'check: validate only; do not connect to clamd or the upstreams',
    set: 'show: only the parameters the file sets (like postconf -n)',
    defaults: 'show: every parameter with its default, no file needed (like postconf -d)',
  },
  notes: ['Exit status: check 0 valid and everything up, 1 valid but something it depends on is down, 2 invalid.'],
  async run({ values, positionals }) {
    const verb = positionals[0];
    if (positionals.length !== 1 || (verb !== 'check' && verb !== 'show')) throw new UsageError('expected "config check" or "config show"');
    if (verb === 'show') return show(values);
    const cfg = loadConfig(values.config);
    const engines = buildEngines(cfg); // reads the hash lists: a bad line fails here, not at start
    for (const l of cfg.listeners) clientTlsFor(l); // reads certificates and keys
    for (const e of engines) await e.close?.();
    const out: string[] = [`${cfg.source}: OK`];
    for (const l of cfg.listeners) {
      out.push(`  listener ${l.name}: ${l.listen} → ${l.upstream ?? 'original destination'} (${l.mode}, ${l.forwarding}, tls ${l.tls.implicit ? 'implicit' : l.tls.mode})`);
    }
    out.push(`  rules: ${cfg.rules.map((r) => r.name).join(', ') || '(none: built-in default, block)'}`);
    out.push(`  engines: ${engines.map((e) => e.name).join(', ')}`);
    let down = 0;
    if (!values['no-probe']) {
      for (const p of await probeAll(cfg)) {
        if (!p.ok) down++;
        out.push(`  ${describeProbe(p)}`);
      }
    }
    process.stdout.write(`${out.map(escapeUnsafe).join('\n')}\n`);
    return down ? 1 : 0;
  },
});

function show(values: { config?: string; set: boolean; defaults: boolean }): number {
  if (values.set && values.defaults) throw new UsageError('--set and --defaults exclude each other');
  const lines: string[] = [];
  if (values.defaults) {
    for (const p of parameters()) {
      if (p.kind === 'section' || p.kind === 'list') continue;
      lines.push(`${p.key} = ${p.required ? '(required)' : p.default === undefined ? '(not set)' : formatValue(p.default)}`);
    }
  } else {
    const file = configPath(values.config);
    loadConfigFile(file); // only a valid configuration is shown
    const doc = parse(readFileSync(file, 'utf8')) as unknown;
    for (const p of effectiveParameters(doc)) {
      if (values.set && !p.set) continue;
      const value = p.value === undefined ? '(not set)' : formatValue(p.value);
      const note = !p.set ? '  # default' : p.default !== undefined && formatValue(p.default) !== formatValue(p.value) ? `  # default: ${formatValue(p.default)}` : '';
      lines.push(`${p.key} = ${value}${values.set ? '' : note}`);
    }
  }
  process.stdout.write(`${lines.map(escapeUnsafe).join('\n')}\n`);
  return 0;
}
