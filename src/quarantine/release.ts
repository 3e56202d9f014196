/**
 * Releasing a quarantined message, shared by `smtpwall quarantine release` and the admin API:
 * to the receiving server of the entry's listener as configured now (the address the gateway
 * used then may have changed); a built-in mailbox is written directly. Exactly once: a release
 * holds the entry's lock while it sends, and a message released before is not sent again
 * without `again`. Every attempt is a traffic record (action release or release-failed).
 */

import { deliver } from '../app/deliver.ts';
import { SqliteLogStore } from '../logs/sqlite-store.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import type { LogStore } from '../logs/records.ts';
import type { Quarantine, QuarantineEntry } from './store.ts';

export interface ReleaseResult {
  /** released: sent now; already: released before (not sent again); refused: the server said no. */
  readonly outcome: 'released' | 'already' | 'refused';
  readonly entry: QuarantineEntry;
  readonly to: readonly string[];
  /** The receiving server's reply (for `already`: the reply of the earlier release). */
  readonly reply: string;
  /** Where it went (host:port or mailbox). */
  readonly via: string;
}

/**
 * @param logs where the release's traffic record goes (the shared store's, when configured);
 *   absent: the SQLite log database of the data directory, opened for this one record
 */
export async function releaseQuarantined(cfg: LoadedConfig, store: Quarantine, id: string, opts: { to: readonly string[]; again: boolean; logs?: LogStore }): Promise<ReleaseResult> {
  const unlock = await store.lockRelease(id);
  try {
    const e = await store.get(id);
    if (e.released && !opts.again) return { outcome: 'already', entry: e, to: e.released.to ?? e.rcptTo, reply: e.released.reply, via: '' };
    const rcptTo = opts.to.length ? [...opts.to] : [...e.rcptTo];
    const r = await deliver(cfg, e.listener, e.upstream, e.mailFrom, rcptTo, await store.content(e));
    if (r.ok) await store.markReleased(e, r.reply, rcptTo);
    const logs = opts.logs ?? new SqliteLogStore(cfg.dataDirAbs, { instance: cfg.instanceName });
    try {
      logs.addTraffic({
        time: new Date().toISOString(), sessionId: e.id.split('.')[0]!, transactionId: `${e.id}.release`, listener: e.listener,
        client: 'quarantine', server: r.server, helo: cfg.hostname, mailFrom: e.mailFrom, rcptTo,
        size: e.size, messageId: '', subject: e.subject, forwarding: 'quarantine-release', rule: e.rule, profile: '',
        action: r.ok ? 'release' : 'release-failed', reason: `released from quarantine (was ${e.action}: ${e.reason})${opts.to.length ? `, to ${rcptTo.join(', ')} instead of ${e.rcptTo.join(', ')}` : ''}`,
        upstreamReply: r.reply, clientReply: '', durationMs: 0, events: [],
      });
    } finally {
      if (!opts.logs) logs.close();
    }
    return { outcome: r.ok ? 'released' : 'refused', entry: e, to: rcptTo, reply: r.reply, via: r.upstream };
  } finally {
    await unlock();
  }
}
