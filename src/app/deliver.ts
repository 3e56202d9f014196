/**
 * Sending a message the gateway itself originates — a quarantine release, a digest — through
 * a fresh SMTP session to a listener's receiving server as configured now (or its built-in
 * mailbox), not through the policy again.
 */

import { MailboxServer } from '../mailbox/mailbox.ts';
import { sendMessage } from '../mailbox/smtp-client.ts';
import { parseHostPort } from '../policy/config-schema.ts';
import type { LoadedConfig } from '../policy/load-config.ts';

export interface Delivery {
  readonly ok: boolean;
  /** The server's final reply, or what went wrong. */
  readonly reply: string;
  /** The upstream as configured (host:port or mailbox:DIR). */
  readonly upstream: string;
  /** host:port connected to. */
  readonly server: string;
}

/** One message to the receiving server of `listenerName` (else the first listener's, else `fallback`). */
export async function deliver(cfg: LoadedConfig, listenerName: string, fallback: string, from: string, to: readonly string[], message: Buffer): Promise<Delivery> {
  const listener = cfg.listeners.find((l) => l.name === listenerName) ?? cfg.listeners[0];
  const upstream = listener?.upstream ?? fallback;
  let mailbox: MailboxServer | null = null;
  let target: { host: string; port: number };
  if (upstream.startsWith('mailbox:')) {
    mailbox = new MailboxServer(upstream.slice('mailbox:'.length), () => {});
    target = await mailbox.listen('127.0.0.1', 0);
  } else {
    target = parseHostPort(upstream)!;
  }
  try {
    const r = await sendMessage({ host: target.host, port: target.port, from, to: [...to], message, helo: cfg.hostname });
    const reply = r.final ? `${r.final.code} ${r.final.text}` : `no reply (${r.connectionError ?? 'connection lost'})`;
    return { ok: r.final !== null && r.final.code >= 200 && r.final.code < 300, reply, upstream, server: `${target.host}:${target.port}` };
  } finally {
    await mailbox?.close();
  }
}
