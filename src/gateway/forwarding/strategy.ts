/**
 * The forwarding mode of a listener, as one strategy chosen when its session starts: where
 * the message goes while it arrives, what the upstream is told when the gate opens, and how
 * an upstream transaction is abandoned when it does not.
 *
 *   store-and-forward: the message goes to a spool; the upstream sees DATA only after an
 *     allowing verdict, so abandoning it is an RSET (the server never saw a byte).
 *   cut-through: the upstream is in DATA on its own 354 and gets the bytes as they come; only
 *     the terminator is held, so abandoning it is a reset (it must never complete).
 */

import type { StreamScan } from '../../inspect/inspector.ts';
import type { Reply } from '../../smtp/reply.ts';
import type { Forwarding } from '../enforce.ts';
import type { IncomingMessage } from '../incoming.ts';
import type { AbandonHow, UpstreamLeg } from '../upstream-leg.ts';

/** The upstream's answer to the start of a message: go (with its 354, if it gave one), or not. */
export type OpenResult = { readonly go: true; readonly reply: Reply | null } | { readonly go: false; readonly reply: Reply };

/** An allowed message handed over: the upstream's final reply, or its refusal of DATA. */
export type DeliverResult = { readonly kind: 'final'; readonly reply: Reply } | { readonly kind: 'refused'; readonly reply: Reply };

/** What a strategy uses of the upstream leg (a fake one in unit tests). */
export type UpstreamPort = Pick<UpstreamLeg, 'forward' | 'writeData' | 'finalReply' | 'abandon'>;

export interface ForwardingStrategy {
  readonly mode: Forwarding;
  /** Before the client sends the message (DATA, or the first BDAT chunk). */
  open(): Promise<OpenResult>;
  /** The message on its way in, with this mode's sink; `keepCopy`: a quarantining rule applies. */
  incoming(scan: StreamScan, keepCopy: () => boolean): IncomingMessage;
  /** The gate opened: the upstream gets what it has not seen yet and the terminator. */
  deliver(msg: IncomingMessage): Promise<DeliverResult>;
  /** A message that will never pass the gate (the client's session goes on, or ends). */
  discard(msg: IncomingMessage): Promise<void>;
  /** Ending the upstream transaction while the client's session goes on. */
  readonly abandonHow: Extract<AbandonHow, 'rset' | 'reset'>;
  /** Ending it when the client vanished in the middle of a message. */
  readonly vanishedHow: Extract<AbandonHow, 'quit' | 'reset'>;
  /**
   * The upstream is inside DATA from the first BDAT chunk on: any other command from the
   * client ends that transaction first (nothing may reach the server's DATA stream).
   */
  readonly inDataDuringBdat: boolean;
}
