/**
 * Retro-alerts: a file let through before its analysis finished (hold time exceeded, the
 * profile allowing it) whose verdict then turns out malicious or phishing. The delivered
 * message is named — transaction, Message-ID, sender, recipients, time — in a threat record
 * with action `retro-alert` (and so in every log forwarder), so an admin can pull it from the
 * mailboxes.
 *
 * Verdict and delivery may come in either order, so both sides wait for each other for
 * RETAIN_MS; both maps are bounded.
 */

import type { Finding } from '../inspect/types.ts';
import type { ThreatRecord } from '../logs/records.ts';
import { findingFields } from './transaction-log.ts';

/** Where a file went: the envelope and rule of the transaction that delivered it. */
export type DeliveredFile = Pick<
  ThreatRecord,
  'sessionId' | 'transactionId' | 'listener' | 'client' | 'server' | 'mailFrom' | 'rcptTo' | 'rule' | 'profile' | 'time'
> & { readonly messageId: string };

const RETAIN_MS = 10 * 60_000;
const MAX_ENTRIES = 10_000;

export class RetroAlerts {
  readonly #delivered = new Map<string, Array<{ d: DeliveredFile; at: number }>>();
  readonly #verdicts = new Map<string, { f: Finding | null; at: number }>();

  constructor(private readonly write: (r: ThreatRecord) => void) {}

  /** A message was delivered with this file's verdict still pending. */
  delivered(sha256: string, d: DeliveredFile): void {
    const v = this.#verdicts.get(sha256);
    if (v) return this.#alert(v.f, [d]);
    this.#prune();
    const list = this.#delivered.get(sha256) ?? [];
    list.push({ d, at: Date.now() });
    this.#delivered.set(sha256, list);
  }

  /** A late verdict (a finding, or null for benign/failed). */
  verdict(sha256: string, f: Finding | null): void {
    const waiting = this.#delivered.get(sha256);
    this.#delivered.delete(sha256);
    if (waiting) return this.#alert(f, waiting.map((w) => w.d));
    this.#prune();
    this.#verdicts.set(sha256, { f, at: Date.now() });
  }

  #alert(f: Finding | null, deliveries: readonly DeliveredFile[]): void {
    if (f === null || f.threat.startsWith('Analysis.Grayware.')) return;
    for (const d of deliveries) {
      const { messageId, time, ...tx } = d;
      this.write({
        ...tx,
        ...findingFields(f),
        time: new Date().toISOString(),
        signature: `${f.signature} — verdict after delivery: Message-ID ${messageId || '(none)'}, delivered ${time}`.slice(0, 1000),
        action: 'retro-alert',
        deciding: false,
        direction: 'client-to-server',
      });
    }
  }

  #prune(): void {
    const old = Date.now() - RETAIN_MS;
    for (const [k, v] of this.#verdicts) if (v.at < old || this.#verdicts.size > MAX_ENTRIES) this.#verdicts.delete(k);
    for (const [k, v] of this.#delivered) if (v[0]!.at < old || this.#delivered.size > MAX_ENTRIES) this.#delivered.delete(k);
  }
}
