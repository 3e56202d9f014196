/**
 * Enforcement: the one place where decisions and internal failures become SMTP replies,
 * resets and closes (DESIGN.md, action table), and the table of every fixed reply text the
 * gateway gives. The other modules of gateway/ take their replies from here; a reply that is
 * not the upstream's own comes from this file, so there is one wording for each.
 */

import { describeError, replyFor } from '../errors.ts';
import type { Action } from '../policy/actions.ts';
import { type Decision, decisionReply } from '../policy/decide.ts';
import type { ClientLeg } from './client-leg.ts';
import type { UpstreamLeg } from './upstream-leg.ts';

export type Forwarding = 'store-and-forward' | 'cut-through';

/** A reply of ours: code and text (the enhanced status code leads the text). */
export interface LocalReply {
  readonly code: number;
  readonly text: string;
}

/** Every fixed reply (Postfix's wording where Postfix has one, so logs and tools read alike). */
export const REPLY = {
  notRecognized: { code: 500, text: '5.5.2 Command not recognized' },
  notImplemented: { code: 502, text: '5.5.1 Command not implemented' },
  syntax: (verb: string): LocalReply => ({ code: 501, text: `5.5.4 Syntax: ${verb}` }),
  syntaxHostname: (verb: string): LocalReply => ({ code: 501, text: `5.5.4 Syntax: ${verb} hostname` }),
  timeout: (hostname: string): LocalReply => ({ code: 421, text: `4.4.2 ${hostname} Error: timeout exceeded` }),
  tooManyErrors: (hostname: string): LocalReply => ({ code: 421, text: `4.7.0 ${hostname} Error: too many errors` }),
  bye: (hostname: string): LocalReply => ({ code: 221, text: `2.0.0 ${hostname} Bye` }),
  tlsActive: { code: 503, text: '5.5.1 Error: TLS already active' },
  tlsMustInspect: { code: 454, text: '4.7.0 TLS not available: this session must stay inspectable' },
  tlsReady: { code: 220, text: '2.0.0 Ready to start TLS' },
  authInTransaction: { code: 503, text: '5.5.1 Error: AUTH not allowed during a mail transaction' },
  tooBig: (max: number): LocalReply => ({ code: 552, text: `5.3.4 Message size exceeds fixed limit of ${max} bytes` }),
  binaryMime: { code: 555, text: '5.5.4 BODY=BINARYMIME not supported' },
  logsUnavailable: { code: 451, text: '4.3.0 Logging temporarily unavailable, try again later' },
  tooManyRecipients: { code: 452, text: '4.5.3 Error: too many recipients' },
  needMail: { code: 503, text: '5.5.1 Error: need MAIL command' },
  noRecipients: { code: 554, text: '5.5.1 Error: no valid recipients' },
  dataAfterBdat: { code: 503, text: '5.5.1 Error: DATA after BDAT' },
  startData: { code: 354, text: 'End data with <CR><LF>.<CR><LF>' },
  bdatSyntax: { code: 501, text: '5.5.4 Syntax: BDAT size [LAST]; closing' },
  bdatChunk: (size: number): LocalReply => ({ code: 250, text: `2.0.0 Ok: ${size} octets received` }),
  // Refused connections (listener.ts)
  shuttingDown: { code: 421, text: '4.3.2 Service shutting down, try again later' },
  noDestination: { code: 421, text: '4.3.0 Error: no destination for this connection' },
  tooManyConnections: (hostname: string, which: string): LocalReply => ({ code: 421, text: `4.7.0 ${hostname} Error: too many connections ${which}` }),
  addressProbeDisabled: (verb: string): LocalReply => ({ code: 502, text: `5.5.1 ${verb} command is disabled` }),
  evicted: (hostname: string): LocalReply => ({ code: 421, text: `4.7.0 ${hostname} Error: too many connections, idle session closed; try again later` }),
} as const;

/** Replies for anomalies found by the wire reader in message data (RFC 5321 strict reading). */
export const DATA_ANOMALY_REPLY: Record<string, LocalReply> = {
  BARE_LF: { code: 550, text: '5.5.2 Message refused: bare <LF> received (RFC 5321 requires CRLF line ends)' },
  BARE_CR: { code: 550, text: '5.5.2 Message refused: bare <CR> received (RFC 5321 requires CRLF line ends)' },
  NUL_BYTE: { code: 550, text: '5.6.0 Message refused: NUL byte received' },
  LINE_TOO_LONG: { code: 550, text: '5.5.2 Message refused: line too long (RFC 5321 allows 998 octets)' },
};

export const COMMAND_ANOMALY_REPLY: Record<string, LocalReply> = {
  BARE_LF: { code: 500, text: '5.5.2 Syntax error: bare <LF> received' },
  BARE_CR: { code: 500, text: '5.5.2 Syntax error: bare <CR> received' },
  NUL_BYTE: { code: 500, text: '5.5.2 Syntax error: NUL byte received' },
  LINE_TOO_LONG: { code: 500, text: '5.5.2 Line too long' },
};

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
  readonly reply: LocalReply | null; // null: the server's reply (deliver) or silence
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

/** The plan for a decision: the reply (from the profile's templates), and each leg's fate. */
export function enforcementFor(decision: Decision, forwarding: Forwarding, transactionId: string): Enforcement {
  const row = TABLE[decision.action];
  return { reply: decisionReply(decision, transactionId), client: row.client, upstream: forwarding === 'store-and-forward' ? row.saf : row.ct };
}

/**
 * Carry out a non-delivering plan once its reply is queued: the upstream first (RSET, QUIT or
 * RST), then the client (the session goes on, or the reply is flushed and the connection is
 * reset, or it is closed in silence). Resolves with whether the session goes on.
 */
export async function carryOut(
  plan: Enforcement,
  client: Pick<ClientLeg, 'flushedAndRead' | 'reset' | 'silence' | 'destroy'>,
  upstream: Pick<UpstreamLeg, 'abandon'>,
): Promise<'continue' | 'closed'> {
  if (plan.client === 'continue') {
    await upstream.abandon(plan.upstream === 'reset' ? 'reset' : 'rset');
    return 'continue';
  }
  void upstream.abandon(plan.upstream === 'reset' ? 'reset' : 'quit');
  if (plan.client === 'reset') {
    if (plan.reply) await client.flushedAndRead();
    client.reset();
  } else {
    client.silence(); // drop: nothing more is said
    client.destroy();
  }
  return 'closed';
}

/** The reply for an internal failure: the catalogue's text plus the log id, never details. */
export function errorReply(err: unknown, logId: string): { code: number; text: string; detail: string } {
  const spec = replyFor(err);
  return { code: spec.code, text: `${spec.enhanced} ${spec.text} (id: ${logId})`, detail: describeError(err) };
}

/** A failure that ends the session: always 421, so the client knows the connection is going away. */
export function sessionErrorReply(err: unknown, sessionId: string): LocalReply & { detail: string; severe: boolean } {
  const r = errorReply(err, sessionId);
  return { code: 421, text: r.text, detail: r.detail, severe: r.code !== 421 };
}

/** A failure inside a transaction: the session goes on, so a 421 of the catalogue becomes 451. */
export function transactionErrorReply(err: unknown, transactionId: string): LocalReply & { detail: string } {
  const r = errorReply(err, transactionId);
  return { code: r.code === 421 ? 451 : r.code, text: r.text, detail: r.detail };
}
