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

import { deliver } from '../../app/deliver.ts';
import { SqliteLogStore } from '../../logs/sqlite-store.ts';
import type { LoadedConfig } from '../../policy/load-config.ts';
import { QuarantineStore } from '../../quarantine/store.ts';
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
  const store = new QuarantineStore(cfg.dataDirAbs, { maxAgeMs: cfg.quarantine['max-age'], maxBytes: cfg.quarantine['max-size'] });
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
      return release(cfg, store, need(id), { to: values.to, again: values.again }, out);
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

/**
 * To the receiving server of the entry's listener as configured now (the address the gateway
 * used then may have changed); a built-in mailbox is written directly. Exactly once: a release
 * holds the entry's lock while it sends, and a message released before is not sent again
 * without `again` (the command says when and to whom it went).
 */
async function release(cfg: LoadedConfig, store: QuarantineStore, id: string, opts: { to: string[]; again: boolean }, out: (s: string) => boolean): Promise<number> {
  const unlock = await store.lockRelease(id);
  try {
    const e = await store.get(id);
    if (e.released && !opts.again) {
      out(`NOT released ${e.id}: already released ${e.released.time} to ${(e.released.to ?? e.rcptTo).join(', ')} (${e.released.reply}); --again sends it once more`);
      return 1;
    }
    const rcptTo = opts.to.length ? opts.to : [...e.rcptTo];
    const r = await deliver(cfg, e.listener, e.upstream, e.mailFrom, rcptTo, await store.content(e));
    const ok = r.ok;
    if (ok) await store.markReleased(e, r.reply, rcptTo);
    const logs = new SqliteLogStore(cfg.dataDirAbs);
    try {
      logs.addTraffic({
        time: new Date().toISOString(), sessionId: e.id.split('.')[0]!, transactionId: `${e.id}.release`, listener: e.listener,
        client: 'quarantine', server: r.server, helo: cfg.hostname, mailFrom: e.mailFrom, rcptTo,
        size: e.size, messageId: '', subject: e.subject, forwarding: 'quarantine-release', rule: e.rule, profile: '',
        action: ok ? 'release' : 'release-failed', reason: `released from quarantine (was ${e.action}: ${e.reason})${opts.to.length ? `, to ${rcptTo.join(', ')} instead of ${e.rcptTo.join(', ')}` : ''}`,
        upstreamReply: r.reply, clientReply: '', durationMs: 0, events: [],
      });
    } finally {
      logs.close();
    }
    out(`${ok ? 'released' : 'NOT released'} ${e.id} to ${rcptTo.join(', ')} via ${r.upstream}: ${r.reply}`);
    return ok ? 0 : 1;
  } finally {
    await unlock();
  }
}
