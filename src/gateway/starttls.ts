/**
 * STARTTLS from the client (RFC 3207), per the listener's TLS mode once admit() let it in:
 *   terminate — our 220, a TLS handshake with our certificate, and the session goes on
 *     encrypted and inspectable (the client greets again);
 *   passthrough (with passthrough-action: allow) — STARTTLS goes to the upstream and, on its
 *     220, both connections are joined byte for byte: nothing after it can be inspected, and
 *     the session is logged as such.
 * Plaintext pipelined after STARTTLS (CVE-2011-0411 class) is never read as commands.
 */

import { TLSSocket } from 'node:tls';
import type { Timeouts } from '../policy/config-schema.ts';
import { replyToString } from '../smtp/reply.ts';
import type { ClientLeg } from './client-leg.ts';
import { REPLY } from './enforce.ts';
import type { Journal } from './journal.ts';
import type { ClientTls } from './tls.ts';
import { sessionTransaction } from './transaction.ts';
import type { UpstreamLeg } from './upstream-leg.ts';

/** A passthrough tunnel one side of which has ended is torn down after this long. */
const PASSTHROUGH_HALF_CLOSE_MS = 2000;

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface StartTlsContext {
  readonly sessionId: string;
  readonly tls: ClientTls;
  readonly timeouts: Timeouts;
  readonly log: Log;
}

/**
 * `secure`: the client leg is encrypted now (everything learnt before is forgotten);
 * `declined`: the upstream refused passthrough STARTTLS (its reply is relayed), the session
 * goes on in clear; `ended`: the handshake failed, or the tunnel has run its course.
 */
export type StartTlsEnd = 'secure' | 'declined' | 'ended';

export async function startTls(ctx: StartTlsContext, client: ClientLeg, upstream: UpstreamLeg, journal: Journal, onTunnel: () => void): Promise<StartTlsEnd> {
  return ctx.tls.mode === 'passthrough' ? passthrough(ctx, client, upstream, journal, onTunnel) : terminate(ctx, client);
}

async function terminate(ctx: StartTlsContext, client: ClientLeg): Promise<StartTlsEnd> {
  await client.flushed(); // replies owed before STARTTLS go out in clear, as the client expects
  discardInjected(ctx, client.reader.detach());
  client.send(REPLY.tlsReady);
  await client.flushed();
  const secure = new TLSSocket(client.socket, { isServer: true, secureContext: ctx.tls.context! });
  secure.on('error', () => {}); // a failed handshake ends the session through the reader
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ctx.timeouts['client-idle']);
    secure.once('secure', () => (clearTimeout(timer), resolve(true)));
    secure.once('close', () => (clearTimeout(timer), resolve(false)));
  });
  if (!ok) {
    ctx.log('warn', 'client TLS handshake failed', { session: ctx.sessionId });
    secure.destroy();
    return 'ended';
  }
  client.adopt(secure);
  return 'secure';
}

function discardInjected(ctx: StartTlsContext, bytes: Buffer): void {
  if (bytes.length === 0) return;
  ctx.log('warn', 'plaintext after STARTTLS discarded (command injection)', { session: ctx.sessionId, bytes: bytes.length });
}

async function passthrough(ctx: StartTlsContext, client: ClientLeg, upstream: UpstreamLeg, journal: Journal, onTunnel: () => void): Promise<StartTlsEnd> {
  const r = await upstream.forward('STARTTLS', [2, 4, 5]);
  if (r.code !== 220) {
    client.relay(r);
    return 'declined';
  }
  await client.flushed();
  discardInjected(ctx, client.reader.detach());
  client.relay(r);
  await client.flushed();
  const { socket: upSocket, buffered } = upstream.detach();
  if (buffered) ctx.log('warn', 'upstream sent plaintext after STARTTLS; discarded', { session: ctx.sessionId, replies: buffered });
  ctx.log('warn', 'STARTTLS passed through: session uninspectable', { session: ctx.sessionId, client: client.label });
  journal.traffic(sessionTransaction(`${ctx.sessionId}.tls`), null, {
    rule: '',
    profile: '',
    action: 'allow',
    reason: 'uninspectable: STARTTLS passed through to the upstream (tls: passthrough, passthrough-action: allow)',
    upstreamReply: replyToString(r),
    clientReply: '',
    events: ['TLS_PASSTHROUGH'],
  });
  onTunnel();
  const down = client.socket;
  down.pipe(upSocket);
  upSocket.pipe(down);
  await new Promise<void>((resolve) => {
    // Either side closing ends the tunnel; a half-closed side gets a moment, then both go.
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      down.destroy();
      upSocket.destroy();
      resolve();
    };
    const halfClosed = (): void => {
      timer ??= setTimeout(finish, PASSTHROUGH_HALF_CLOSE_MS);
    };
    down.once('close', finish);
    upSocket.once('close', finish);
    down.once('end', halfClosed);
    upSocket.once('end', halfClosed);
    upSocket.on('error', finish);
    down.on('error', finish);
  });
  return 'ended';
}
