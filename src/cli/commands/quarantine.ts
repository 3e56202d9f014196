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

import { parseArgs } from 'node:util';
import { MailboxServer } from '../../mailbox/mailbox.ts';
import { sendMessage } from '../../mailbox/smtp-client.ts';
import { SqliteLogStore } from '../../logs/sqlite-store.ts';
import { parseHostPort } from '../../policy/config-schema.ts';
import { type LoadedConfig, loadConfigFile } from '../../policy/load-config.ts';
import { type QuarantineEntry, QuarantineStore } from '../../quarantine/store.ts';
import { escapeUnsafe, safeJson } from '../../logs/escape.ts';

export async function runQuarantine(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false } },
  });
  const [verb, id] = positionals;
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  const store = new QuarantineStore(cfg.dataDirAbs, { maxAgeMs: cfg.quarantine['max-age'], maxBytes: cfg.quarantine['max-size'] });
  // One line per call: what came from the message cannot break the line or drive the terminal.
  const out = (s: string): boolean => process.stdout.write(`${escapeUnsafe(s)}\n`);
  switch (verb) {
    case 'list': {
      const entries = await store.list();
      if (values.json) for (const e of entries) out(safeJson(e));
      else for (const e of entries) out(`${e.id}  ${e.time}  ${e.mailFrom || '<>'} → ${e.rcptTo.join(',')}  ${e.threat}  ${e.action}${e.released ? `  released ${e.released.time}` : ''}  "${e.subject}"`);
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
      return release(cfg, store, await store.get(need(id)), out);
    case 'delete':
      await store.delete(need(id));
      out(`deleted ${id}`);
      return 0;
    default:
      throw new Error('expected "quarantine list|show ID|release ID|delete ID -c FILE"');
  }
}

function need(id: string | undefined): string {
  if (!id) throw new Error('expected a quarantine ID (see "smtpwall quarantine list")');
  return id;
}

/**
 * To the receiving server of the entry's listener as configured now (the address the gateway
 * used then may have changed); a built-in mailbox is written directly.
 */
async function release(cfg: LoadedConfig, store: QuarantineStore, e: QuarantineEntry, out: (s: string) => boolean): Promise<number> {
  const listener = cfg.listeners.find((l) => l.name === e.listener);
  const upstream = listener?.upstream ?? e.upstream;
  let mailbox: MailboxServer | null = null;
  let target: { host: string; port: number };
  if (upstream.startsWith('mailbox:')) {
    mailbox = new MailboxServer(upstream.slice('mailbox:'.length), () => {});
    target = await mailbox.listen('127.0.0.1', 0);
  } else {
    target = parseHostPort(upstream)!;
  }
  try {
    const r = await sendMessage({ host: target.host, port: target.port, from: e.mailFrom, to: e.rcptTo, message: await store.content(e), helo: cfg.hostname });
    const reply = r.final ? `${r.final.code} ${r.final.text}` : `no reply (${r.connectionError ?? 'connection lost'})`;
    const ok = r.final !== null && r.final.code >= 200 && r.final.code < 300;
    if (ok) await store.markReleased(e, reply);
    const logs = new SqliteLogStore(cfg.dataDirAbs);
    try {
      logs.addTraffic({
        time: new Date().toISOString(), sessionId: e.id.split('.')[0]!, transactionId: `${e.id}.release`, listener: e.listener,
        client: 'quarantine', server: `${target.host}:${target.port}`, helo: cfg.hostname, mailFrom: e.mailFrom, rcptTo: e.rcptTo,
        size: e.size, messageId: '', subject: e.subject, forwarding: 'quarantine-release', rule: e.rule, profile: '',
        action: ok ? 'release' : 'release-failed', reason: `released from quarantine (was ${e.action}: ${e.reason})`,
        upstreamReply: reply, clientReply: '', durationMs: 0, events: [],
      });
    } finally {
      logs.close();
    }
    out(`${ok ? 'released' : 'NOT released'} ${e.id} to ${upstream}: ${reply}`);
    return ok ? 0 : 1;
  } finally {
    await mailbox?.close();
  }
}
