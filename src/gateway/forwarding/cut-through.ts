/**
 * Cut-through: DATA mode starts on the upstream's 354, not on the client's word; the bytes
 * reach the upstream as they arrive, and only the terminator is held for the verdict. A
 * message that is not allowed leaves the server in DATA without its end: the connection is
 * reset (the server discards the message) and replaced before the next command.
 */

import type { StreamScan } from '../../inspect/inspector.ts';
import type { Limits } from '../../policy/config-schema.ts';
import { IncomingMessage } from '../incoming.ts';
import { Spool } from '../spool.ts';
import { TERMINATOR } from '../upstream-leg.ts';
import type { DeliverResult, ForwardingStrategy, OpenResult, UpstreamPort } from './strategy.ts';

export class CutThrough implements ForwardingStrategy {
  readonly mode = 'cut-through';
  readonly abandonHow = 'reset';
  readonly vanishedHow = 'reset';
  readonly inDataDuringBdat = true;

  constructor(
    private readonly upstream: UpstreamPort,
    private readonly limits: Limits,
    private readonly spoolDir: string,
  ) {}

  async open(): Promise<OpenResult> {
    const go = await this.upstream.forward('DATA', [3, 4, 5]);
    return go.code === 354 ? { go: true, reply: go } : { go: false, reply: go };
  }

  incoming(scan: StreamScan, keepCopy: () => boolean): IncomingMessage {
    const { limits, upstream } = this;
    // The bytes go upstream as they come; a quarantining rule needs its own copy of them.
    const copy = keepCopy() ? new Spool(this.spoolDir, limits['spool-memory']) : null;
    const sink = copy
      ? async (wire: Buffer) => {
          // A copy that cannot be written costs the quarantine copy, never the message.
          if (!msg.copyError) await copy.write(wire).catch((err: Error) => (msg.copyError = err));
          await upstream.writeData(wire);
        }
      : (wire: Buffer) => upstream.writeData(wire);
    const msg = new IncomingMessage(scan, sink, limits['max-message-size'], limits['max-line-length'], null, copy);
    return msg;
  }

  async deliver(_msg: IncomingMessage): Promise<DeliverResult> {
    await this.upstream.writeData(TERMINATOR);
    return { kind: 'final', reply: await this.upstream.finalReply() };
  }

  async discard(msg: IncomingMessage): Promise<void> {
    await msg.copy?.dispose();
    await this.upstream.abandon('reset');
  }
}
