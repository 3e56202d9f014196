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
  // Only defined fields are added: deleting the empty ones afterwards turned every line's
  // object into a slow dictionary (a line per message).
  const f: Record<string, unknown> = {};
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) f[k] = v;
  };
  put('id', r.transactionId);
  put('client', r.client);
  put('helo', r.helo || undefined);
  put('from', `<${r.mailFrom}>`);
  put('to', r.rcptTo.map((x) => `<${x}>`).join(','));
  put('size', r.size);
  put('message-id', r.messageId || undefined);
  put('subject', r.subject || undefined);
  put('rule', r.rule || undefined);
  put('action', r.action);
  put('threat', threats.length ? [...new Set(threats)].join(',') : undefined);
  put('relay', r.server);
  put('reply', r.upstreamReply || undefined);
  put('queue-id', queueIdOf(r.upstreamReply) ?? undefined);
  put('client-reply', r.clientReply && r.clientReply !== r.upstreamReply ? r.clientReply : undefined);
  put('reason', r.action === 'allow' && r.upstreamReply.startsWith('2') ? undefined : r.reason || undefined);
  put('delay', (r.durationMs / 1000).toFixed(3));
  return f;
}
