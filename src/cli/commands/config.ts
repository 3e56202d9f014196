/**
 * `smtpwall config check -c FILE`: validate a configuration without starting anything —
 * schema, cross-references, hash lists and TLS files — and say what it would run.
 * Exit 0 valid, 2 invalid (the error names file, line and key).
 */

import { parseArgs } from 'node:util';
import { buildEngines } from '../../app/assemble.ts';
import { clientTlsFor } from '../../gateway/tls.ts';
import { loadConfigFile } from '../../policy/load-config.ts';

export async function runConfig(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
  if (positionals[0] !== 'check') throw new Error('expected "config check -c FILE"');
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  const engines = buildEngines(cfg); // reads the hash lists: a bad line fails here, not at start
  for (const l of cfg.listeners) clientTlsFor(l); // reads certificates and keys
  process.stdout.write(`${cfg.source}: OK\n`);
  for (const l of cfg.listeners) {
    process.stdout.write(`  listener ${l.name}: ${l.listen} → ${l.upstream ?? 'original destination'} (${l.mode}, ${l.forwarding}, tls ${l.tls.implicit ? 'implicit' : l.tls.mode})\n`);
  }
  process.stdout.write(`  rules: ${cfg.rules.map((r) => r.name).join(', ') || '(none: built-in default, block)'}\n`);
  process.stdout.write(`  engines: ${engines.map((e) => e.name).join(', ')}\n`);
  return 0;
}
