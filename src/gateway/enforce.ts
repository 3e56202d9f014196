/**
 * Enforcement: the one place where decisions and internal failures become SMTP replies,
 * resets and closes (DESIGN.md, action table). The session executes what this module says;
 * it never invents a reply of its own for a verdict or an error.
 */

import { describeError, replyFor } from '../errors.ts';
import type { Action } from '../policy/actions.ts';
import { type Decision, renderReply } from '../policy/decide.ts';

export type Forwarding = 'store-and-forward' | 'cut-through';

/** What happens to the client connection after the verdict. */
export type ClientFate = 'continue' | 'reset' | 'close';
/**
 * What happens to the upstream transaction: `deliver` releases the terminator; `rset` ends
 * the transaction and keeps the connection (store-and-forward: the server never saw DATA);
 * `quit` ends the connection politely; `reset` sends TCP RST (the only way to abandon a
 * cut-through transaction whose bytes the server already has).
 */
export type UpstreamFate = 'deliver' | 'rset' | 'quit' | 'reset';

export interface Enforcement {
  readonly reply: { code: number; text: string } | null; // null: the server's reply (deliver) or silence
  readonly client: ClientFate;
  readonly upstream: UpstreamFate;
}

const TABLE: Record<Action, { client: ClientFate; saf: UpstreamFate; ct: UpstreamFate }> = {
  allow: { client: 'continue', saf: 'deliver', ct: 'deliver' },
  alert: { client: 'continue', saf: 'deliver', ct: 'deliver' },
  block: { client: 'reset', saf: 'quit', ct: 'reset' },
  reject: { client: 'continue', saf: 'rset', ct: 'reset' },
  tempfail: { client: 'continue', saf: 'rset', ct: 'reset' },
  drop: { client: 'close', saf: 'quit', ct: 'reset' },
  'reset-client': { client: 'reset', saf: 'quit', ct: 'reset' },
  'reset-server': { client: 'close', saf: 'reset', ct: 'reset' },
  'reset-both': { client: 'reset', saf: 'reset', ct: 'reset' },
};

export function enforcementFor(decision: Decision, forwarding: Forwarding, transactionId: string): Enforcement {
  const row = TABLE[decision.action];
  const values = { threat: decision.threat || 'none', id: transactionId, rule: decision.rule };
  let reply: Enforcement['reply'] = null;
  if (decision.action === 'block') reply = renderReply(decision.replies.block, values);
  else if (decision.action === 'reject') reply = renderReply(decision.replies.reject, values);
  else if (decision.action === 'tempfail') reply = renderReply(decision.replies.tempfail, values);
  return { reply, client: row.client, upstream: forwarding === 'store-and-forward' ? row.saf : row.ct };
}

/** The reply for an internal failure: the catalogue's text plus the log id, never details. */
export function errorReply(err: unknown, logId: string): { code: number; text: string; detail: string } {
  const spec = replyFor(err);
  return { code: spec.code, text: `${spec.enhanced} ${spec.text} (id: ${logId})`, detail: describeError(err) };
}

/** Replies for anomalies found by the wire reader in message data (RFC 5321 strict reading). */
export const DATA_ANOMALY_REPLY: Record<string, { code: number; text: string }> = {
  BARE_LF: { code: 550, text: '5.5.2 Message refused: bare <LF> received (RFC 5321 requires CRLF line ends)' },
  BARE_CR: { code: 550, text: '5.5.2 Message refused: bare <CR> received (RFC 5321 requires CRLF line ends)' },
  NUL_BYTE: { code: 550, text: '5.6.0 Message refused: NUL byte received' },
  LINE_TOO_LONG: { code: 550, text: '5.5.2 Message refused: line too long (RFC 5321 allows 998 octets)' },
};

export const COMMAND_ANOMALY_REPLY: Record<string, { code: number; text: string }> = {
  BARE_LF: { code: 500, text: '5.5.2 Syntax error: bare <LF> received' },
  BARE_CR: { code: 500, text: '5.5.2 Syntax error: bare <CR> received' },
  NUL_BYTE: { code: 500, text: '5.5.2 Syntax error: NUL byte received' },
  LINE_TOO_LONG: { code: 500, text: '5.5.2 Line too long' },
};
