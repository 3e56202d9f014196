/**
 * The journal of a session: what it writes about its transactions — one traffic record per
 * transaction whatever its end, a threat record per finding that was not allowed quietly, a
 * sighting per judged file (which message carried it, who got it), and the hook for
 * retro-alerts when a file still under analysis was delivered. The records are built by the
 * pure functions of transaction-log.ts; this module decides which are written, and keeps a
 * failing store from stopping mail.
 */

import { describeError } from '../errors.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH, type ScanResult } from '../inspect/types.ts';
import { maillogFields, outcomeOf } from '../logs/maillog.ts';
import type { LogStore } from '../logs/records.ts';
import type { SessionCapture } from './capture.ts';
import type { Decision } from '../policy/decide.ts';
import type { RetroAlerts } from './retro-alerts.ts';
import type { VerdictStore } from '../inspect/engines/analysis/verdict-store.ts';
import type { IncomingMessage } from './incoming.ts';
import { type Outcome, type SessionFacts, threatRecord, trafficRecord, type TransactionFacts } from './transaction-log.ts';

export interface JournalContext {
  readonly logs: LogStore;
  /** The analysis verdict store: each judged file's sightings. */
  readonly verdicts?: VerdictStore | null;
  /** Whether the analysis engine may have judged this file (others need no sighting). */
  readonly judged?: (file: FileInfo) => boolean;
  /** Delivered files whose analysis was still running: for retro-alerts. */
  readonly retro?: RetroAlerts | null;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export class Journal {
  constructor(
    private readonly ctx: JournalContext,
    private readonly session: SessionFacts,
    /** The client's HELO/EHLO name as it is when a record is written. */
    private readonly helo: () => string,
    /** The session's packet capture: kept when a threat record is written (`capture.when`). */
    private readonly capture: SessionCapture | null = null,
  ) {}

  /** A transaction's traffic record (every end: delivered, stopped, refused, failed, vanished). */
  traffic(tx: TransactionFacts, rx: IncomingMessage | null, outcome: Outcome, threats: readonly string[] = []): void {
    const record = trafficRecord(this.session, this.helo(), tx, rx, outcome);
    // The mail log: one line per transaction, every outcome at one level so they stay in order.
    this.ctx.log('info', outcomeOf(record), maillogFields(record, threats));
    this.#safe(() => this.ctx.logs.addTraffic(record));
  }

  /** A message the policy decided on: its traffic record, its threats, sightings and retro hooks. */
  decided(tx: TransactionFacts, rx: IncomingMessage, d: Decision, result: ScanResult | null, upstreamReply: string, clientReply: string): void {
    const logged = loggedFindings(d, result);
    this.traffic(tx, rx, {
      rule: d.rule,
      profile: d.profile,
      action: d.action,
      reason: d.reason,
      upstreamReply,
      clientReply,
      events: (result?.events ?? []).map((e) => e.name),
    }, [...logged].map((f) => f.threat));
    for (const f of logged) this.#safe(() => this.ctx.logs.addThreat(threatRecord(this.session, tx, d, f)));
    if (logged.size > 0 && this.capture) this.capture.threat = true;
    const { messageId } = rx.headerFacts;
    const delivered = upstreamReply.startsWith('2');
    const verdicts = this.ctx.verdicts;
    if (verdicts && result && result.files.length > 0) {
      const pending = new Set(result.findings.filter((f) => f.verdict === 'pending').map((f) => f.file.sha256));
      const judged = this.ctx.judged ?? (() => true);
      const files = result.files
        .filter((f) => f.size > 0 && f.path !== RAW_MESSAGE_PATH && judged(f))
        .map((f) => ({ sha256: f.sha256, path: f.path, pending: pending.has(f.sha256) }));
      const sighting = { time: new Date().toISOString(), transactionId: tx.id, messageId, mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo], action: d.action, delivered };
      this.#safe(() => verdicts.sighted(files, sighting));
    }
    // Delivered with an analysis still running: a later malicious verdict names this message.
    const retro = this.ctx.retro;
    if (retro && delivered) {
      const s = this.session;
      for (const f of result?.findings ?? []) {
        if (f.verdict !== 'pending') continue;
        retro.delivered(f.file.sha256, {
          sessionId: s.sessionId, transactionId: tx.id, listener: s.listener, client: s.client, server: s.server,
          mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo], messageId, rule: d.rule, profile: d.profile, time: new Date().toISOString(),
        });
      }
    }
  }

  /** A failing log store must not stop mail or crash the process: report it and go on. */
  #safe(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.ctx.log('error', 'log store write failed', { session: this.session.sessionId, error: describeError(err) });
    }
  }
}

/**
 * The findings that get a threat record: every engine finding (data-filtering counts are
 * summed into their verdict instead) and every verdict's finding (an event, a blocked file, a
 * DLP score) — except those whose verdicts are all `allow` (the firewall model: allow passes
 * quietly, alert logs; the traffic record still names the rule).
 */
export function loggedFindings(d: Decision, result: ScanResult | null): Set<Finding> {
  const logged = new Set<Finding>((result?.findings ?? []).filter((f) => f.verdict !== 'count'));
  for (const v of d.verdicts) logged.add(v.finding);
  for (const f of [...logged]) {
    const mine = d.verdicts.filter((v) => v.finding === f || (v.finding.threat === f.threat && v.finding.file.path === f.file.path));
    if (mine.length > 0 && mine.every((v) => v.action === 'allow')) logged.delete(f);
  }
  return logged;
}
