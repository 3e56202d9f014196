/**
 * `smtpwall policy test -c FILE [--from A] [--to B]... [--client IP] [--server IP]
 * [--listener NAME] [--user U] [--json] MESSAGE.eml`: what the gateway would do with this
 * message from this sender to these recipients — the rule that matches, every file with its
 * type and flags, every finding, every verdict of every profile, and the final action with the
 * reply the client would get. The tool to run before deploying a policy change.
 * Exit 0 allow, 1 any other action, 2 error.
 */

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { buildInspector } from '../../app/assemble.ts';
import { decisionReply, Policy } from '../../policy/decide.ts';
import { loadConfigFile } from '../../policy/load-config.ts';
import { escapeUnsafe, safeJson } from '../../logs/escape.ts';

export async function runPolicy(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      from: { type: 'string', default: '' },
      to: { type: 'string', multiple: true, default: [] },
      client: { type: 'string', default: '192.0.2.1' },
      server: { type: 'string' },
      listener: { type: 'string' },
      user: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals[0] !== 'test' || positionals.length !== 2) throw new Error('expected "policy test -c FILE [--from A] [--to B] [--client IP] MESSAGE.eml"');
  if (!values.config) throw new Error('missing -c FILE (the configuration file)');
  const cfg = loadConfigFile(values.config);
  const listener = values.listener ? cfg.listeners.find((l) => l.name === values.listener) : cfg.listeners[0];
  if (!listener) throw new Error(`no listener named "${values.listener}"`);
  const facts = {
    listener: listener.name,
    clientAddress: values.client,
    mailFrom: values.from,
    rcptTo: values.to.length ? values.to : ['postmaster@example.com'],
    serverAddress: values.server ?? (listener.upstream?.startsWith('mailbox:') ? '127.0.0.1' : (listener.upstream ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '')),
    user: values.user ?? null,
    direction: listener.direction,
  };
  const bytes = await readFile(positionals[1]!);
  const scan = buildInspector(cfg).begin();
  scan.write(bytes);
  const { decision: d, result, outcome } = await new Policy(cfg).evaluate(facts, () => scan.end(cfg.timeouts.scan));
  const reply = decisionReply(d, '(transaction id)');
  if (values.json) {
    process.stdout.write(`${safeJson({ facts, rule: d.rule, profiles: d.profiles, action: d.action, reason: d.reason, reply, verdicts: d.verdicts.map((v) => ({ source: v.source, action: v.action, reason: v.reason, threatId: v.finding.threatId })), files: result?.files ?? [], events: result?.events ?? [] })}\n`);
    return d.action === 'allow' ? 0 : 1;
  }
  const out: string[] = [];
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
