/**
 * The end-of-data gate: nothing reaches the upstream's end of data without a verdict that
 * allows it. A vanished client, wire refusals (smuggling-class anomalies, size) and sink
 * failures are settled first; then the scan ends, the policy decides (policy.evaluate), the
 * message is quarantined if the deciding profile says so, and the decision is carried out:
 * delivered through the forwarding strategy, or stopped as enforce.ts plans it.
 */

import { describeError } from '../errors.ts';
import type { AnomalyEvent } from '../events.ts';
import type { Limits, Timeouts } from '../policy/config-schema.ts';
import type { Decision, Policy } from '../policy/decide.ts';
import type { TransactionFacts } from '../policy/rules.ts';
import type { Quarantine } from '../quarantine/store.ts';
import { replyToString } from '../smtp/reply.ts';
import type { ClientLeg } from './client-leg.ts';
import { carryOut, DATA_ANOMALY_REPLY, enforcementFor, type LocalReply, REPLY, transactionErrorReply } from './enforce.ts';
import type { ForwardingStrategy } from './forwarding/strategy.ts';
import type { IncomingMessage } from './incoming.ts';
import type { Journal } from './journal.ts';
import type { Transaction } from './transaction.ts';
import type { UpstreamLeg } from './upstream-leg.ts';

export interface GateContext {
  readonly sessionId: string;
  readonly listener: string;
  readonly limits: Limits;
  readonly timeouts: Timeouts;
  readonly policy: Policy;
  /** Where blocked/rejected messages are kept when the deciding profile says so. */
  readonly quarantine?: Quarantine | null;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Whether the session goes on after the message. */
export type GateEnd = 'continue' | 'closed';

export class Gate {
  constructor(
    private readonly ctx: GateContext,
    private readonly client: ClientLeg,
    private readonly upstream: UpstreamLeg,
    private readonly forwarding: ForwardingStrategy,
    private readonly journal: Journal,
    /** The transaction as rules see it (listener, client, envelope, user). */
    private readonly facts: (tx: Transaction) => TransactionFacts,
  ) {}

  async pass(tx: Transaction, msg: IncomingMessage): Promise<GateEnd> {
    try {
      if (!msg.ended) return this.#clientVanished(tx, msg);
      const refused = this.#refusal(msg);
      if (refused) {
        await this.upstream.abandon(this.forwarding.abandonHow);
        this.#refused(tx, msg, refused);
        return 'continue';
      }
      // Spool full, or the upstream died mid-stream: the message cannot be complete anywhere.
      if (msg.sinkError) return await this.failed(tx, msg.sinkError);
      const { decision, result } = await this.ctx.policy.evaluate(this.facts(tx), () => msg.scan.end(this.ctx.timeouts.scan), (err) =>
        this.ctx.log('error', 'scan failed', { session: this.ctx.sessionId, transaction: tx.id, error: describeError(err) }),
      );
      const failed = result?.errors ?? [];
      if (failed.length) {
        const e = failed[0]!;
        const engines = [...new Set(failed.map((x) => x.engine))].join(',');
        this.ctx.log('error', 'engine failed; its verdict is missing (on-error applies beside the other findings)', { session: this.ctx.sessionId, transaction: tx.id, engine: engines, objects: failed.length, error: e.message });
      }
      if (decision.quarantine) await this.#quarantine(tx, msg, decision);
      const plan = enforcementFor(decision, this.forwarding.mode, tx.id);
      if (plan.upstream !== 'deliver') {
        if (plan.reply) this.client.send(plan.reply);
        this.journal.decided(tx, msg, decision, result, '', plan.reply ? `${plan.reply.code} ${plan.reply.text}` : '');
        return await carryOut(plan, this.client, this.upstream);
      }
      const delivered = await this.forwarding.deliver(msg);
      this.client.relay(delivered.reply);
      const text = replyToString(delivered.reply);
      this.journal.decided(tx, msg, decision, result, text, delivered.kind === 'final' ? text : `${delivered.reply.code}`);
      return 'continue';
    } catch (err) {
      return await this.failed(tx, err);
    } finally {
      await msg.spool?.dispose();
      await msg.copy?.dispose();
    }
  }

  /** Any failure inside a transaction: the catalogue's 4xx with the log id, never a 2xx. */
  async failed(tx: Transaction, err: unknown): Promise<GateEnd> {
    const r = transactionErrorReply(err, tx.id);
    this.ctx.log('error', 'transaction failed', { session: this.ctx.sessionId, transaction: tx.id, error: r.detail });
    this.client.send(r);
    await this.upstream.abandon(this.forwarding.abandonHow);
    this.journal.traffic(tx, null, { ...this.#rule(tx), action: 'tempfail', reason: `error: ${r.detail}`, upstreamReply: '', clientReply: `${r.code} ${r.text}`, events: [] });
    return 'continue';
  }

  #rule(tx: Transaction): { rule: string; profile: string } {
    const { rule, profileName } = this.ctx.policy.ruleFor(this.facts(tx));
    return { rule, profile: profileName };
  }

  #clientVanished(tx: Transaction, msg: IncomingMessage): GateEnd {
    void this.upstream.abandon(this.forwarding.vanishedHow);
    this.ctx.log('warn', 'client disconnected during DATA', { session: this.ctx.sessionId, transaction: tx.id, bytes: msg.size });
    this.journal.traffic(tx, msg, { ...this.#rule(tx), action: 'none', reason: 'client disconnected before end of data', upstreamReply: '', clientReply: '', events: [] });
    return 'closed';
  }

  /** A message the wire rules refuse before any verdict (smuggling-class anomaly, size). */
  #refusal(msg: IncomingMessage): (LocalReply & { event: AnomalyEvent }) | null {
    if (msg.anomaly) return { ...DATA_ANOMALY_REPLY[msg.anomaly]!, event: { name: msg.anomaly, where: 'message' } };
    if (msg.tooBig) {
      const max = this.ctx.limits['max-message-size'];
      return { ...REPLY.tooBig(max), event: { name: 'MESSAGE_TOO_BIG', where: 'message', detail: `limit ${max}` } };
    }
    return null;
  }

  #refused(tx: Transaction, msg: IncomingMessage, refused: LocalReply & { event: AnomalyEvent }): void {
    this.client.send(refused);
    this.ctx.log('warn', 'message refused', { session: this.ctx.sessionId, transaction: tx.id, anomaly: refused.event.name });
    this.journal.traffic(tx, msg, {
      ...this.#rule(tx),
      action: 'reject',
      reason: `refused: ${refused.event.name}`,
      upstreamReply: '',
      clientReply: `${refused.code} ${refused.text}`,
      events: [refused.event.name],
    });
  }

  /** Keep a copy of a blocked/rejected message; a failure is logged, never changes the verdict. */
  async #quarantine(tx: Transaction, msg: IncomingMessage, d: Decision): Promise<void> {
    const store = this.ctx.quarantine;
    const bytes = msg.spool ?? msg.copy;
    if (!store || !bytes) return;
    try {
      if (msg.copyError) throw new Error('the copy of the message could not be written');
      const { subject } = msg.headerFacts;
      await store.put(
        {
          id: tx.id, time: new Date().toISOString(), listener: this.ctx.listener, client: this.client.label,
          upstream: this.upstream.target, mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo],
          subject, rule: d.rule, action: d.action, reason: d.reason, threat: d.threat,
        },
        bytes.read(),
      );
      this.ctx.log('info', 'message quarantined', { session: this.ctx.sessionId, transaction: tx.id });
    } catch (err) {
      this.ctx.log('error', 'quarantine failed', { session: this.ctx.sessionId, transaction: tx.id, error: describeError(err) });
    }
  }
}
