/**
 * Each forwarding strategy against a fake upstream leg: what reaches the upstream while the
 * message arrives, when the terminator goes, what a refusal of DATA does, and how a message
 * that never passes the gate is abandoned. No sockets.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CutThrough } from '../../../src/gateway/forwarding/cut-through.ts';
import { StoreAndForward } from '../../../src/gateway/forwarding/store-and-forward.ts';
import type { UpstreamPort } from '../../../src/gateway/forwarding/strategy.ts';
import type { AbandonHow } from '../../../src/gateway/upstream-leg.ts';
import type { MessageScan } from '../../../src/inspect/inspector.ts';
import type { Limits } from '../../../src/policy/config-schema.ts';
import type { Reply } from '../../../src/smtp/reply.ts';

const dir = mkdtempSync(join(tmpdir(), 'smtpwall-fwd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const limits = (spoolMemory = 1 << 20): Limits => ({ 'spool-memory': spoolMemory, 'max-message-size': 1 << 20, 'max-line-length': 998 }) as unknown as Limits;
const reply = (code: number, text = 'ok'): Reply => ({ code, lines: [text] });

/** Records every call; replies are given in order from `replies`. */
class FakeUpstream implements UpstreamPort {
  readonly calls: string[] = [];
  readonly data: Buffer[] = [];
  readonly abandoned: AbandonHow[] = [];
  constructor(private readonly replies: Reply[] = []) {}
  async forward(line: string): Promise<Reply> {
    this.calls.push(line);
    return this.replies.shift() ?? reply(250);
  }
  async writeData(bytes: Buffer): Promise<void> {
    this.calls.push(`data ${bytes.length}`);
    this.data.push(Buffer.from(bytes));
  }
  async finalReply(): Promise<Reply> {
    this.calls.push('final');
    return this.replies.shift() ?? reply(250, '2.0.0 queued as ABC');
  }
  async abandon(how: AbandonHow): Promise<void> {
    this.calls.push(`abandon ${how}`);
    this.abandoned.push(how);
  }
}

const scan = { write() {}, end: async () => ({ findings: [], events: [], files: [] }) } as unknown as MessageScan;
const MESSAGE = Buffer.from('Subject: hello\r\n\r\nbody line\r\n..dot\r\n.\r\n');
const CONTENT = Buffer.from('Subject: hello\r\n\r\nbody line\r\n..dot\r\n'); // on the wire, dot-stuffed

describe('store-and-forward', () => {
  it('opens without a word to the upstream: our own 354', async () => {
    const up = new FakeUpstream();
    const open = await new StoreAndForward(up, limits(), dir).open();
    assert.deepEqual(open, { go: true, reply: null });
    assert.deepEqual(up.calls, []);
  });

  it('the upstream sees nothing while the message arrives; after the gate: DATA, the bytes and the terminator in one write', async () => {
    const up = new FakeUpstream([reply(354, 'go ahead'), reply(250, '2.0.0 Ok: queued as X1')]);
    const s = new StoreAndForward(up, limits(), dir);
    const msg = s.incoming(scan, () => assert.fail('store-and-forward needs no copy: the spool is one'));
    await msg.push(MESSAGE);
    assert.ok(msg.ended);
    assert.deepEqual(up.calls, []);
    const r = await s.deliver(msg);
    assert.deepEqual(r, { kind: 'final', reply: reply(250, '2.0.0 Ok: queued as X1') });
    assert.deepEqual(up.calls, ['DATA', `data ${MESSAGE.length}`, 'final']);
    assert.deepEqual(Buffer.concat(up.data), MESSAGE);
    await msg.spool!.dispose();
  });

  it('a message spooled to disk goes out chunk by chunk, the terminator last', async () => {
    const up = new FakeUpstream([reply(354)]);
    const s = new StoreAndForward(up, limits(8), dir);
    const msg = s.incoming(scan, () => false);
    await msg.push(MESSAGE);
    assert.ok(msg.spool!.onDisk);
    await s.deliver(msg);
    assert.deepEqual(Buffer.concat(up.data), MESSAGE);
    assert.deepEqual(up.data.at(-1), Buffer.from('.\r\n'));
    await msg.spool!.dispose();
  });

  it('DATA refused by the upstream: its reply, and not a byte of the message', async () => {
    const up = new FakeUpstream([reply(451, '4.3.0 try later')]);
    const s = new StoreAndForward(up, limits(), dir);
    const msg = s.incoming(scan, () => false);
    await msg.push(MESSAGE);
    assert.deepEqual(await s.deliver(msg), { kind: 'refused', reply: reply(451, '4.3.0 try later') });
    assert.deepEqual(up.data, []);
    await msg.spool!.dispose();
  });

  it('a discarded message releases its spool and leaves the upstream alone; abandoning is an RSET', async () => {
    const up = new FakeUpstream();
    const s = new StoreAndForward(up, limits(8), dir);
    const before = readdirSync(dir).length;
    const msg = s.incoming(scan, () => false);
    await msg.push(MESSAGE);
    assert.equal(readdirSync(dir).length, before + 1);
    await s.discard(msg);
    assert.equal(readdirSync(dir).length, before);
    assert.deepEqual(up.calls, []);
    assert.equal(s.abandonHow, 'rset');
    assert.equal(s.vanishedHow, 'quit');
    assert.equal(s.inDataDuringBdat, false);
  });
});

describe('cut-through', () => {
  it("opens with the upstream's DATA: its 354 is the client's", async () => {
    const up = new FakeUpstream([reply(354, 'End data')]);
    assert.deepEqual(await new CutThrough(up, limits(), dir).open(), { go: true, reply: reply(354, 'End data') });
    const refusing = new FakeUpstream([reply(554, '5.5.1 no valid recipients')]);
    assert.deepEqual(await new CutThrough(refusing, limits(), dir).open(), { go: false, reply: reply(554, '5.5.1 no valid recipients') });
  });

  it('the bytes reach the upstream as they arrive; the terminator only after the gate', async () => {
    const up = new FakeUpstream([reply(250, '2.0.0 queued')]);
    const s = new CutThrough(up, limits(), dir);
    const msg = s.incoming(scan, () => false);
    await msg.push(MESSAGE);
    assert.ok(msg.ended);
    assert.deepEqual(Buffer.concat(up.data), CONTENT);
    assert.equal(msg.copy, null);
    const r = await s.deliver(msg);
    assert.deepEqual(r, { kind: 'final', reply: reply(250, '2.0.0 queued') });
    assert.deepEqual(Buffer.concat(up.data), MESSAGE);
  });

  it('a quarantining rule gets a copy of the bytes', async () => {
    const up = new FakeUpstream();
    const s = new CutThrough(up, limits(), dir);
    const msg = s.incoming(scan, () => true);
    await msg.push(MESSAGE);
    const copy: Buffer[] = [];
    for await (const c of msg.copy!.read()) copy.push(c);
    assert.deepEqual(Buffer.concat(copy), CONTENT);
    await s.discard(msg);
  });

  it('a message that never passes the gate resets the upstream (it must not complete)', async () => {
    const up = new FakeUpstream();
    const s = new CutThrough(up, limits(), dir);
    const msg = s.incoming(scan, () => false);
    await msg.push(MESSAGE);
    await s.discard(msg);
    assert.deepEqual(up.abandoned, ['reset']);
    assert.ok(!up.data.some((d) => d.equals(Buffer.from('.\r\n'))));
    assert.equal(s.abandonHow, 'reset');
    assert.equal(s.vanishedHow, 'reset');
    assert.equal(s.inDataDuringBdat, true);
  });
});
