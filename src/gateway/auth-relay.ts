/**
 * AUTH (RFC 4954) is the upstream's business: the exchange is relayed, continuation lines
 * included, and nothing of it is logged (credentials travel in those lines). Only the user
 * name of PLAIN and LOGIN is kept, once the upstream accepts it (235), for security rules.
 */

import type { Limits, Timeouts } from '../policy/config-schema.ts';
import type { Command } from '../smtp/command.ts';
import type { ClientLeg } from './client-leg.ts';
import type { UpstreamLeg } from './upstream-leg.ts';

/** The exchange's end: the accepted user name (null if none or not accepted), or the client left. */
export type AuthEnd = { readonly user: string | null; readonly accepted: boolean } | 'eof';

export async function relayAuth(cmd: Command, client: ClientLeg, upstream: UpstreamLeg, limits: Limits, timeouts: Timeouts): Promise<AuthEnd> {
  const [mechanism = '', initial] = cmd.arg.split(/\s+/);
  const answers: string[] = initial !== undefined && initial !== '=' ? [initial] : [];
  let r = await upstream.forward(cmd.raw, [2, 3, 4, 5], 'AUTH');
  while (r.code === 334) {
    client.relay(r);
    const line = await client.reader.readLine(limits['max-command-line'], timeouts['client-idle']);
    if (line.kind === 'eof') return 'eof';
    // A malformed continuation cancels the exchange, as "*" would (RFC 4954 §4).
    const answer = line.kind === 'line' ? line.line.toString('latin1') : '*';
    answers.push(answer);
    r = await upstream.forward(answer, [2, 3, 4, 5], 'AUTH continuation');
  }
  client.relay(r);
  return r.code === 235 ? { user: authUserName(mechanism, answers), accepted: true } : { user: null, accepted: false };
}

/** The authentication identity of an accepted PLAIN or LOGIN exchange (RFC 4616), never the password. */
export function authUserName(mechanism: string, answers: readonly string[]): string | null {
  const decode = (b64: string | undefined): string | null => (b64 === undefined ? null : Buffer.from(b64, 'base64').toString('utf8'));
  const m = mechanism.toUpperCase();
  if (m === 'PLAIN') {
    const parts = decode(answers[0])?.split('\0');
    return parts && parts.length === 3 ? (parts[1] || parts[0] || null) : null;
  }
  if (m === 'LOGIN') return decode(answers[0])?.slice(0, 256) || null;
  return null;
}
