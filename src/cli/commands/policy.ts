/**
 * `smtpwall policy test -c FILE [--from A] [--to B]... [--client IP] [--server IP]
 * [--listener NAME] [--user U] [--json] MESSAGE.eml`: what the gateway would do with this
 * message from this sender to these recipients — the rule that matches, every file with its
 * type and flags, every finding, every verdict of every profile, and the final action with the
 * reply the client would get. The tool to run before deploying a policy change.
 * Exit 0 allow, 1 any other action, 2 error.
 */

import { readFile } from 'node:fs/promises';
import { buildInspector } from '../../app/assemble.ts';
import { decisionReply, Policy } from '../../policy/decide.ts';
import { parseHeaderBlock } from '../../inspect/mime/headers.ts';
import { headerText } from '../../inspect/mime/header-text.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig, UsageError } from '../command.ts';
import { escapeUnsafe, safeJson } from '../../logs/escape.ts';

export const policyCommand = command({
  name: 'policy',
  usage: ['policy test [-c FILE] [--from A] [--to B]... [--client IP] [--server IP] [--listener N] [--user U] [--json] MESSAGE.eml'],
  summary: 'the rule, files, findings, verdicts and action the gateway would apply to a message',
  options: {
    ...CONFIG_OPTION,
    from: { type: 'string' },
    to: { type: 'string', multiple: true, default: [] },
    client: { type: 'string', default: '192.0.2.1' },
    server: { type: 'string' },
    listener: { type: 'string' },
    user: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
  help: {
    config: CONFIG_HELP,
    from: ['ADDR', 'envelope sender (default: the address in the message\'s Return-Path, Sender or From)'],
    to: ['ADDR', 'a recipient, repeatable (default: the addresses in To, Cc and Bcc)'],
    client: ['IP', "the client's address (default 192.0.2.1)"],
    server: ['IP', "the receiving server's address (default: the listener's upstream)"],
    listener: ['NAME', 'the listener the message arrives on (default: the first)'],
    user: ['USER', 'the authenticated user, if any'],
    json: 'one JSON object',
  },
  notes: ['Exit status: 0 allow, 1 any other action, 2 error.'],
  run: runPolicy,
});

async function runPolicy({ values, positionals }: { values: { config?: string; from?: string; to: string[]; client: string; server?: string; listener?: string; user?: string; json: boolean }; positionals: string[] }): Promise<number> {
  if (positionals[0] !== 'test' || positionals.length !== 2) throw new UsageError('expected "policy test MESSAGE.eml"');
  const cfg = loadConfig(values.config);
  const listener = values.listener ? cfg.listeners.find((l) => l.name === values.listener) : cfg.listeners[0];
  if (!listener) throw new UsageError(`no listener named "${values.listener}"`);
  const bytes = await readFile(positionals[1]!);
  // The envelope is not in a message file; without --from/--to the headers stand in, and say so.
  const fromHeaders = envelopeFromHeaders(bytes);
  const mailFrom = values.from ?? fromHeaders.from;
  const rcptTo = values.to.length ? values.to : fromHeaders.to.length ? fromHeaders.to : ['postmaster@example.com'];
  const envelopeNote = [
    values.from === undefined ? `sender from the message's ${fromHeaders.fromField ?? 'headers (none found: <>)'}` : '',
    values.to.length === 0 ? (fromHeaders.to.length ? "recipients from the message's To/Cc/Bcc" : 'no recipient in the message: postmaster@example.com') : '',
  ].filter(Boolean);
  const facts = {
    listener: listener.name,
    clientAddress: values.client,
    mailFrom,
    rcptTo,
    serverAddress: values.server ?? (listener.upstream?.startsWith('mailbox:') ? '127.0.0.1' : (listener.upstream ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '')),
    user: values.user ?? null,
    direction: listener.direction,
  };
  const scan = buildInspector(cfg).begin();
  scan.write(bytes);
  const { decision: d, result, outcome } = await new Policy(cfg).evaluate(facts, () => scan.end(cfg.timeouts.scan));
  const reply = decisionReply(d, '(transaction id)');
  if (values.json) {
    process.stdout.write(`${safeJson({ facts, envelope: envelopeNote, rule: d.rule, profiles: d.profiles, action: d.action, reason: d.reason, reply, verdicts: d.verdicts.map((v) => ({ source: v.source, action: v.action, reason: v.reason, threatId: v.finding.threatId })), files: result?.files ?? [], events: result?.events ?? [] })}\n`);
    return d.action === 'allow' ? 0 : 1;
  }
  const out: string[] = [];
  if (envelopeNote.length) out.push(`envelope: ${envelopeNote.join('; ')} (--from/--to set it)`);
  out.push(`transaction: ${facts.mailFrom || '<>'} → ${facts.rcptTo.join(', ')} from ${facts.clientAddress} on listener ${facts.listener} (${facts.direction}) to ${facts.serverAddress}${facts.user ? `, user ${facts.user}` : ''}`);
  const p = d.profiles;
  out.push(`rule: ${d.rule}  (antivirus ${p.antivirus ?? '-'}, file-blocking ${p.fileBlocking ?? '-'}, data-filtering ${p.dataFiltering ?? '-'})`);
  out.push('files:');
  for (const f of result?.files ?? []) {
    out.push(`  ${f.path}${f.name && !f.path.endsWith(f.name) ? ` (${f.name})` : ''}: ${f.detectedType}${f.flags.length ? ` [${f.flags.join(', ')}]` : ''}, ${f.size} bytes`);
  }
  if (result?.events.length) out.push('events:', ...result.events.map((e) => `  ${e.name} at ${e.where}${e.detail ? ` (${e.detail})` : ''}`));
  if (!outcome.ok) out.push(`scan error: ${outcome.error}`);
  out.push('verdicts:', ...(d.verdicts.length ? d.verdicts.map((v, i) => `  ${i === 0 ? '*' : ' '} ${v.action.padEnd(12)} ${v.source.padEnd(14)} ${v.reason} [id ${v.finding.threatId}]`) : ['  (none)']));
  out.push(`action: ${d.action} — ${d.reason}`);
  if (reply) out.push(`reply: ${reply.code} ${reply.text}`);
  process.stdout.write(`${out.map(escapeUnsafe).join('\n')}\n`);
  return d.action === 'allow' ? 0 : 1;
}

/** Addresses in a header value (`Name <a@b>, c@d`): the parts with an @, angle brackets preferred. */
function addressesIn(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const m = /<([^<>\s]+@[^<>\s]+)>/.exec(part) ?? /([^\s<>",;:]+@[^\s<>",;:]+)/.exec(part);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** The sender and recipients a message's headers name: what policy test uses without --from/--to. */
export function envelopeFromHeaders(message: Buffer): { from: string; fromField: string | null; to: string[] } {
  const text = message.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const fields = parseHeaderBlock((end === -1 ? text : text.slice(0, end)).split(/\r?\n/));
  const get = (name: string): string[] => fields.filter((f) => f.name === name).flatMap((f) => addressesIn(headerText(f.value)));
  let from = '';
  let fromField: string | null = null;
  for (const name of ['return-path', 'sender', 'from']) {
    const a = get(name)[0];
    if (a) {
      from = a;
      fromField = name.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());
      break;
    }
  }
  return { from, fromField, to: [...new Set(['to', 'cc', 'bcc'].flatMap(get))] };
}
