/** `smtpwall logs threats|traffic -c FILE [--json] [--limit N]`: read the log database. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SqliteLogStore } from '../../logs/sqlite-store.ts';
import { loadConfigFile } from '../../policy/load-config.ts';
import { printTable } from '../table.ts';
import { safeJson } from '../../logs/escape.ts';

export async function runLogs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean', default: false },
      limit: { type: 'string', default: '50' },
    },
  });
  const kind = positionals[0];
  if (kind !== 'threats' && kind !== 'traffic') throw new Error('expected "logs threats" or "logs traffic"');
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a positive integer, got "${values.limit}"`);
  const cfg = loadConfigFile(values.config);
  if (!existsSync(join(cfg.dataDirAbs, 'logs.sqlite'))) {
    process.stderr.write(`no log database yet in ${cfg.dataDirAbs} (start the gateway first)\n`);
    return 0;
  }
  const store = new SqliteLogStore(cfg.dataDirAbs, { readonly: true });
  try {
    const rows = kind === 'threats' ? store.listThreats(limit) : store.listTraffic(limit);
    if (values.json) {
      for (const r of rows) process.stdout.write(`${safeJson(r)}\n`);
      return 0;
    }
    if (kind === 'threats') {
      printTable(
        ['time', 'transaction', 'threat', 'threat-id', 'engine', 'file', 'type', 'sha256', 'rule', 'action'],
        store.listThreats(limit).map((r) => [
          r.time, r.transactionId, r.threat, r.threatId, r.engine,
          r.fileName ? `${r.filePath} ${r.fileName}` : r.filePath, r.fileFlags?.length ? `${r.detectedType} [${r.fileFlags.join(',')}]` : r.detectedType, r.sha256.slice(0, 16), r.rule, r.action,
        ]),
      );
    } else {
      printTable(
        ['time', 'transaction', 'client', 'from', 'to', 'size', 'subject', 'rule', 'action', 'reply'],
        store.listTraffic(limit).map((r) => [
          r.time, r.transactionId, r.client, r.mailFrom, r.rcptTo.join(','), String(r.size), r.subject, r.rule, r.action,
          r.clientReply || r.upstreamReply,
        ]),
      );
    }
    return 0;
  } finally {
    store.close();
  }
}
