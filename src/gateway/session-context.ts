/**
 * What a session is given by its listener: the listener's settings and the shared parts of
 * the running gateway (inspector, policy, stores). Built per connection in gateway.ts.
 */

import type { RetroAlerts } from './retro-alerts.ts';
import type { VerdictStore } from '../inspect/engines/analysis/verdict-store.ts';
import type { StreamScan } from '../inspect/inspector.ts';
import type { FileInfo } from '../inspect/types.ts';
import type { LogStore } from '../logs/records.ts';
import type { CaptureSink } from '../logs/capture-store.ts';
import type { Limits, Timeouts } from '../policy/config-schema.ts';
import type { Policy } from '../policy/decide.ts';
import type { TransactionFacts } from '../policy/rules.ts';
import type { Quarantine } from '../quarantine/store.ts';
import type { Forwarding } from './enforce.ts';
import type { SessionState } from './commands.ts';
import type { ClientTls, UpstreamTls } from './tls.ts';
import type { UpstreamPool } from './upstream-pool.ts';

export interface SessionContext {
  readonly listener: string;
  /** The listener's direction label, for rules. */
  readonly direction?: string;
  readonly forwarding: Forwarding;
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  readonly hostname: string;
  readonly limits: Limits;
  readonly timeouts: Timeouts;
  readonly inspector: { begin(): StreamScan };
  readonly policy: Policy;
  readonly logs: LogStore;
  readonly spoolDir: string;
  /** Where blocked/rejected messages are kept when the deciding profile says so. */
  /** The client a PROXY protocol header named (proxy-protocol listeners); absent: the connection's peer. */
  readonly peer?: { readonly address: string; readonly port: number } | null;
  readonly quarantine?: Quarantine | null;
  /** Delivered files whose analysis was still running: for retro-alerts. */
  readonly retro?: RetroAlerts | null;
  /** True while records cannot be written and log-database.on-failure is tempfail. */
  readonly logsUnavailable?: () => boolean;
  /** The analysis verdict store: each judged file's sightings (which message, who got it). */
  readonly verdicts?: VerdictStore | null;
  /** Whether the analysis engine may have judged this file (others need no sighting lookup). */
  readonly judged?: (file: FileInfo) => boolean;
  readonly clientTls: ClientTls;
  readonly upstreamTls: UpstreamTls;
  /** Relay AUTH between client and upstream (offered when the upstream offers it). */
  readonly relayAuth: boolean;
  /** Clients allowed to send XCLIENT/XFORWARD (matched against the client address). */
  readonly isTrusted: (address: string) => boolean;
  /** listeners[].upstream-reuse: idle upstream sessions to take and give back. */
  readonly upstreamPool?: UpstreamPool | null;
  /** listeners[].upstream-reuse-xforward. */
  readonly upstreamXforward?: boolean;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** TPROXY: the upstream connection is made from the client's own address. */
  readonly connectAsClient?: boolean;
  /** VRFY/EXPN: relayed to the upstream, or refused with 502 (`listeners[].vrfy`). */
  readonly vrfy?: 'relay' | 'refuse';
  /** Whether the session's listener is in stress mode now (short idle timeout, one bad command). */
  readonly stressed?: (() => boolean) | null;
  /** `capture:`: which sessions' packet captures are kept, how much of each, and where. */
  readonly capture?: { readonly when: 'threats' | 'all'; readonly maxBytes: number; readonly store: CaptureSink } | null;
  /** `debug-peers`: whether a client or upstream address gets a transcript in the process log. */
  readonly debugPeer?: ((address: string) => boolean) | null;
}

/** A transaction as security rules see it. */
export function ruleFacts(ctx: SessionContext, clientAddress: string, tx: { readonly mailFrom: string; readonly rcptTo: readonly string[] }, user: string | null): TransactionFacts {
  return {
    listener: ctx.listener,
    clientAddress,
    mailFrom: tx.mailFrom,
    rcptTo: tx.rcptTo,
    serverAddress: ctx.upstreamHost,
    user,
    direction: ctx.direction ?? '',
  };
}

/** What a session is doing, for status views. */
export interface SessionSnapshot {
  readonly id: string;
  readonly client: string;
  readonly state: SessionState;
  /** Bytes of the message arriving now (0 when none is). */
  readonly messageBytes: number;
}
