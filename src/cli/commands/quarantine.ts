/**
 * `smtpwall quarantine list|show|release|delete [ID] -c FILE [--json]`: the messages kept by
 * profiles with `quarantine: true`.
 *
 *   list            one line per entry: id, time, sender, recipients, threat, action, released
 *   show ID         the entry and the message as it was received
 *   release ID      send the message to the receiving server of its listener, through a fresh
 *                   SMTP session (not through the policy again), and record the release in the
 *                   logs; exit 1 if the server does not accept it
 *   delete ID       remove the entry (its content goes when no other entry shares it)
 */

import type { LoadedConfig } from '../../policy/load-config.ts';
import { type Quarantine, QuarantineStore } from '../../quarantine/store.ts';
import type { LogStore } from '../../logs/records.ts';
import { withShared } from '../shared.ts';
import { releaseQuarantined } from '../../quarantine/release.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig, UsageError } from '../command.ts';
import { printTable } from '../table.ts';
import { when } from './logs.ts';
import { runDigest } from './digest.ts';
import { escapeUnsafe, safeJson } from '../../logs/escape.ts';

export const quarantineCommand = command({
  name: 'quarantine',
  usage: [
    'quarantine list [-c FILE] [--json]',
    'quarantine show ID [-c FILE] [--json]',
    'quarantine release ID [-c FILE] [--to ADDR]... [--again]',
    'quarantine delete ID [-c FILE]',
    'quarantine digest [-c FILE] [--since WHEN] [--send]',
  ],
  summary: 'messages kept by profiles with quarantine: true (list, show, release, delete, digest)',
  options: {
    ...CONFIG_OPTION,
    json: { type: 'boolean', default: false },
    to: { type: 'string', multiple: true, default: [] },
    again: { type: 'boolean', default: false },
    since: { type: 'string' },
    send: { type: 'boolean', default: false },
  },
  help: {
    config: CONFIG_HELP,
    json: 'one JSON object per entry',
    to: ['ADDR', 'release: deliver to this recipient instead of the original ones (repeatable)'],
    again: 'release: deliver a message that was released before once more',
    since: ['WHEN', 'digest: entries since then (a time, or a duration ago such as 24h; default: all)'],
    send: 'digest: send each recipient their summary through the upstream (default: print them)',
  },
  notes: ['Exit status: 0 done, 1 not delivered (refused by the server, or released before), 2 error.'],
  run: runQuarantine,
});

async function runQuarantine({ values, positionals }: { values: { config?: string; json: boolean; to: string[]; again: boolean; since?: string; send: boolean }; positionals: string[] }): Promise<number> {
  const [verb, id] = positionals;
  const cfg = loadConfig(values.config);
  return withShared(cfg, async (shared) => {
    const store = shared?.quarantine ?? new QuarantineStore(cfg.dataDirAbs, { maxAgeMs: cfg.quarantine['max-age'], maxBytes: cfg.quarantine['max-size'] });
    return quarantineVerb(cfg, store, shared?.logs, verb, id, values);
  });
}

async function quarantineVerb(
  cfg: LoadedConfig,
  store: Quarantine,
  logs: LogStore | undefined,
  verb: string | undefined,
  id: string | undefined,
  values: { json: boolean; to: string[]; again: boolean; since?: string; send: boolean },
): Promise<number> {
  // One line per call: what came from the message cannot break the line or drive the terminal.
  const out = (s: string): boolean => process.stdout.write(`${escapeUnsafe(s)}\n`);
  switch (verb) {
    case 'list': {
      const entries = await store.list();
      if (values.json) for (const e of entries) out(safeJson(e));
      else {
        printTable(
          ['id', 'time', 'from', 'to', 'threat', 'action', 'released', 'subject'],
          entries.map((e) => [e.id, e.time, e.mailFrom || '<>', e.rcptTo.join(','), e.threat, e.action, e.released ? `${e.released.time}` : '-', e.subject]),
        );
      }
      return 0;
    }
    case 'show': {
      const e = await store.get(need(id));
      if (values.json) {
        out(safeJson(e));
        return 0;
      }
      for (const [k, v] of Object.entries(e)) out(`${k}: ${typeof v === 'object' ? safeJson(v) : v}`);
      // The message as received, CRLF line ends kept; anything else that could drive the
      // terminal (escape sequences, bare CR or LF) shown as U+XXXX.
      const lines = (await store.content(e)).toString('latin1').split('\r\n');
      process.stdout.write(`\n${lines.map(escapeUnsafe).join('\r\n')}`);
      return 0;
    }
    case 'release':
      return release(cfg, store, need(id), { to: values.to, again: values.again, logs }, out);
    case 'delete':
      await store.delete(need(id));
      out(`deleted ${id}`);
      return 0;
    case 'digest':
      return runDigest(cfg, store, { since: values.since === undefined ? undefined : when(values.since, '--since'), send: values.send }, out);
    default:
      throw new UsageError('expected "quarantine list", "show ID", "release ID", "delete ID" or "digest"');
  }
}

function need(id: string | undefined): string {
  if (!id) throw new UsageError('expected a quarantine ID (see "smtpwall quarantine list")');
  return id;
}

/** Says what happened in one line; exit 0 only when the message was sent now. */
async function release(cfg: LoadedConfig, store: Quarantine, id: string, opts: { to: string[]; again: boolean; logs?: LogStore | undefined }, out: (s: string) => boolean): Promise<number> {
  const r = await releaseQuarantined(cfg, store, id, { to: opts.to, again: opts.again, ...(opts.logs ? { logs: opts.logs } : {}) });
  if (r.outcome === 'already') {
    const was = r.entry.released!;
    out(`NOT released ${r.entry.id}: already released ${was.time} to ${r.to.join(', ')} (${was.reply}); --again sends it once more`);
    return 1;
  }
  out(`${r.outcome === 'released' ? 'released' : 'NOT released'} ${r.entry.id} to ${r.to.join(', ')} via ${r.via}: ${r.reply}`);
  return r.outcome === 'released' ? 0 : 1;
}
