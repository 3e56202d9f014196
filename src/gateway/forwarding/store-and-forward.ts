/**
 * Store-and-forward: our own 354 once MAIL and a RCPT were accepted upstream; the message is
 * spooled (memory, then disk) while it is inspected; an allowed message is relayed as DATA,
 * its exact bytes and the terminator. A message spooled in memory goes out with its
 * terminator in one write (one writev system call).
 */

import type { StreamScan } from '../../inspect/inspector.ts';
import type { Limits } from '../../policy/config-schema.ts';
import { IncomingMessage } from '../incoming.ts';
import { Spool } from '../spool.ts';
import { TERMINATOR } from '../upstream-leg.ts';
import type { DeliverResult, ForwardingStrategy, OpenResult, UpstreamPort } from './strategy.ts';

const GO: OpenResult = { go: true, reply: null };
/** A message up to this size is joined into one buffer for its write; a larger one is written corked. */
const JOIN_BYTES = 64 * 1024;

export class StoreAndForward implements ForwardingStrategy {
  readonly mode = 'store-and-forward';
  readonly abandonHow = 'rset';
  readonly vanishedHow = 'quit';
  readonly inDataDuringBdat = false;

  constructor(
    private readonly upstream: UpstreamPort,
    private readonly limits: Limits,
    private readonly spoolDir: string,
  ) {}

  async open(): Promise<OpenResult> {
    return GO;
  }

  incoming(scan: StreamScan, _keepCopy: () => boolean): IncomingMessage {
    // The spool is the copy a quarantining rule keeps: nothing else is needed.
    const spool = new Spool(this.spoolDir, this.limits['spool-memory']);
    return new IncomingMessage(scan, (wire) => spool.write(wire), this.limits['max-message-size'], this.limits['max-line-length'], spool);
  }

  async deliver(msg: IncomingMessage): Promise<DeliverResult> {
    const go = await this.upstream.forward('DATA', [3, 4, 5]);
    if (go.code !== 354) return { kind: 'refused', reply: go };
    const spool = msg.spool!;
    if (!spool.onDisk) {
      // The spooled chunks and the terminator in one write: a small message joined (one
      // buffer, one write), a larger one corked (writev) — a copy of a 1 MB message into one
      // buffer, and its garbage, cost a tenth of its CPU.
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of spool.read()) {
        chunks.push(chunk);
        bytes += chunk.length;
      }
      chunks.push(TERMINATOR);
      await this.upstream.writeData(bytes <= JOIN_BYTES ? Buffer.concat(chunks) : chunks);
    } else {
      for await (const chunk of spool.read()) await this.upstream.writeData(chunk);
      await this.upstream.writeData(TERMINATOR);
    }
    return { kind: 'final', reply: await this.upstream.finalReply() };
  }

  async discard(msg: IncomingMessage): Promise<void> {
    await msg.spool?.dispose();
  }
}
