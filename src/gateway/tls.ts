/**
 * TLS settings of a listener, resolved once at start: the server context for STARTTLS and
 * implicit TLS towards clients, and the client options for STARTTLS towards the upstream.
 * Certificates are read here, so a missing or unreadable file stops the gateway at start,
 * not at the first STARTTLS.
 */

import { readFileSync } from 'node:fs';
import { type ConnectionOptions, createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../errors.ts';
import type { ListenerConfig } from '../policy/config-schema.ts';

export interface ClientTls {
  readonly mode: 'terminate' | 'strip' | 'passthrough';
  readonly implicit: boolean;
  readonly passthroughAction: 'block' | 'allow';
  /** Our certificate and key, for terminate and implicit TLS; null otherwise. */
  readonly context: SecureContext | null;
  /** The same as PEM, for a TLS server (implicit TLS). */
  readonly pem: { readonly cert: Buffer; readonly key: Buffer } | null;
}

export interface UpstreamTls {
  readonly mode: 'opportunistic' | 'required' | 'off';
  /** Options for tls.connect, minus the socket. */
  readonly options: ConnectionOptions;
}

function read(path: string, what: string, listener: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`listener ${listener}: cannot read TLS ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export function clientTlsFor(l: ListenerConfig): ClientTls {
  const mode = l.tls.mode ?? 'strip';
  let context: SecureContext | null = null;
  let pem: ClientTls['pem'] = null;
  if (l.tls.cert && l.tls.key) {
    try {
      pem = { cert: read(l.tls.cert, 'cert', l.name), key: read(l.tls.key, 'key', l.name) };
      context = createSecureContext({ ...pem, minVersion: 'TLSv1.2' });
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`listener ${l.name}: TLS cert/key unusable: ${(err as Error).message}`, { cause: err });
    }
  }
  return { mode, implicit: l.tls.implicit, passthroughAction: l.tls['passthrough-action'], context, pem };
}

export function upstreamTlsFor(l: ListenerConfig, upstreamHost: string): UpstreamTls {
  const u = l['upstream-tls'];
  const servername = u.servername ?? (/^[\d.:]+$/.test(upstreamHost) ? undefined : upstreamHost);
  const options: ConnectionOptions = {
    rejectUnauthorized: u.verify !== 'none',
    minVersion: 'TLSv1.2',
    ...(servername ? { servername } : {}),
    ...(u.verify === 'pinned' && u.ca ? { ca: read(u.ca, 'ca', l.name) } : {}),
  };
  return { mode: u.mode, options };
}
