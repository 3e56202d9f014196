/**
 * EHLO capability editing (RFC 5321 §4.1.1.1, RFC 1869): what the upstream server offers,
 * narrowed to what the gateway carries correctly end to end.
 *
 * An extension the gateway does not understand could change how the stream must be read
 * (CHUNKING changes the data framing, STARTTLS hides the content, BINARYMIME allows bare
 * CR/LF), so capabilities are kept by allow-list, never by deny-list.
 */

import type { Reply } from './reply.ts';

export interface EhloPolicy {
  /** Extensions (upper-case keywords) passed through to the client. */
  readonly allow: ReadonlySet<string>;
  /** Our own message size limit in bytes; SIZE is advertised as min(upstream, this). */
  readonly maxMessageBytes: number;
  /** Extensions the gateway provides itself, advertised whether or not the upstream has them. */
  readonly add?: readonly string[];
}

/** Extensions relayed by default: each is handled by the gateway or harmless to it. */
export const DEFAULT_EHLO_ALLOW: ReadonlySet<string> = new Set([
  'PIPELINING', // RFC 2920: the session reads commands one at a time and batches its replies
  'SIZE', // RFC 1870: rewritten to the smaller of both limits, enforced by the gateway
  '8BITMIME', // RFC 6152: content is relayed byte for byte
  'SMTPUTF8', // RFC 6531: addresses are relayed byte for byte
  'DSN', // RFC 3461: envelope parameters are relayed unchanged
  'ENHANCEDSTATUSCODES', // RFC 2034
]);

export interface EhloEdit {
  readonly reply: Reply;
  /** Keywords that were removed, for the log. */
  readonly removed: string[];
  /** The upstream's SIZE limit, 0 if none or unlimited. */
  readonly upstreamSize: number;
}

export function editEhloReply(reply: Reply, policy: EhloPolicy): EhloEdit {
  const [greeting = '', ...caps] = reply.lines;
  const kept: string[] = [greeting];
  const removed: string[] = [];
  let upstreamSize = 0;
  let sawSize = false;
  for (const line of caps) {
    const keyword = line.split(' ', 1)[0]!.toUpperCase();
    if (!policy.allow.has(keyword)) {
      removed.push(keyword);
      continue;
    }
    if (keyword === 'SIZE') {
      sawSize = true;
      upstreamSize = Number(line.slice(5).trim()) || 0;
      kept.push(`SIZE ${effectiveSize(upstreamSize, policy.maxMessageBytes)}`);
      continue;
    }
    kept.push(line);
  }
  if (!sawSize && policy.allow.has('SIZE') && policy.maxMessageBytes > 0) {
    kept.push(`SIZE ${policy.maxMessageBytes}`);
  }
  for (const ext of policy.add ?? []) if (!kept.some((l) => l.split(' ', 1)[0]!.toUpperCase() === ext)) kept.push(ext);
  return { reply: { code: reply.code, lines: kept }, removed, upstreamSize };
}

function effectiveSize(upstream: number, ours: number): number {
  if (upstream <= 0) return ours;
  if (ours <= 0) return upstream;
  return Math.min(upstream, ours);
}
