/**
 * The maillog line: one process-log line per transaction, whatever its end, in the spirit of
 * Postfix's `postfix/smtp[…]: QUEUEID: to=<…>, relay=…, delay=…, status=sent (250 …)` — so
 * `grep user@example.com` or `grep QUEUEID` finds what happened to a message. Built from the
 * same traffic record the log database gets; the process log escapes every value.
 *
 *   2026-12-02T10:00:00.123Z info delivered id=K3…Q.1 client=192.0.2.7:40112 helo=mx.example.org
 *     from=<a@example.org> to=<b@example.com>,<c@example.com> size=1204 message-id=<x@y>
 *     subject="Invoice" rule=scan-all action=allow relay=127.0.0.1:25
 *     reply="250 2.0.0 Ok: queued as 4XyZ" queue-id=4XyZ delay=0.042
 */

import type { TrafficRecord } from './records.ts';

/** What happened to the message, in one word (the line's message). */
export function outcomeOf(r: Pick<TrafficRecord, 'action' | 'upstreamReply' | 'clientReply'>): string {
  if (r.upstreamReply.startsWith('2') && (r.action === 'allow' || r.action === 'alert')) return 'delivered';
  switch (r.action) {
    case 'block':
      return 'blocked';
    case 'reject':
      return 'rejected';
    case 'tempfail':
      return 'tempfailed';
    case 'drop':
      return 'dropped';
    case 'reset-client':
    case 'reset-server':
    case 'reset-both':
      return 'reset';
    default:
      // allow/alert not accepted upstream, a refusal, a vanished client, an error
      if (r.clientReply.startsWith('4') || r.upstreamReply.startsWith('4')) return 'deferred';
      if (r.clientReply.startsWith('5') || r.upstreamReply.startsWith('5')) return 'bounced';
      return 'not delivered';
  }
}

/** `queued as X` / `id=X` / `<X> Queued` in an upstream's reply: the receiving server's queue id. */
export function queueIdOf(reply: string): string | null {
  const m = /queued as ([A-Za-z0-9.@_-]+)/i.exec(reply) ?? /\bid=([A-Za-z0-9.@_-]+)/.exec(reply) ?? /<([^<>\s]+)>\s+queued/i.exec(reply);
  return m ? m[1]! : null;
}

/** The maillog line's fields, in reading order (empty ones left out). */
export function maillogFields(r: TrafficRecord, threats: readonly string[]): Record<string, unknown> {
  const f: Record<string, unknown> = {
    id: r.transactionId,
    client: r.client,
    helo: r.helo || undefined,
    from: `<${r.mailFrom}>`,
    to: r.rcptTo.map((x) => `<${x}>`).join(','),
    size: r.size,
    'message-id': r.messageId || undefined,
    subject: r.subject || undefined,
    rule: r.rule || undefined,
    action: r.action,
    threat: threats.length ? [...new Set(threats)].join(',') : undefined,
    relay: r.server,
    reply: r.upstreamReply || undefined,
    'queue-id': queueIdOf(r.upstreamReply) ?? undefined,
    'client-reply': r.clientReply && r.clientReply !== r.upstreamReply ? r.clientReply : undefined,
    reason: r.action === 'allow' && r.upstreamReply.startsWith('2') ? undefined : r.reason || undefined,
    delay: (r.durationMs / 1000).toFixed(3),
  };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return f;
}
