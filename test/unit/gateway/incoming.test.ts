import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerBlockEnd, IncomingMessage } from '../../../src/gateway/incoming.ts';
import type { MessageScan } from '../../../src/inspect/inspector.ts';

const LF = 0x0a;
const noScan = { write() {} } as unknown as MessageScan;

/** Feed a message split at every offset pair: the kept head and its facts never change. */
test('the header block is kept up to its blank line, however the bytes are split', async () => {
  const message = 'Subject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n\r\nmore\r\n.\r\n';
  const headEnd = message.indexOf('\r\n\r\n') + 4;
  for (let i = 1; i < message.length - 5; i++) {
    for (const j of [i + 1, i + 2, i + 3]) {
      const msg = new IncomingMessage(noScan, async () => {}, 1e6, 998, null);
      for (const piece of [message.slice(0, i), message.slice(i, j), message.slice(j)]) await msg.push(Buffer.from(piece, 'latin1'));
      assert.equal(msg.head.toString('latin1'), message.slice(0, headEnd), `split at ${i}/${j}`);
      assert.deepEqual(msg.headerFacts, { messageId: '<a@b>', subject: 'café' });
    }
  }
});

test('headerBlockEnd: LF LF, LF CR LF, across chunk ends, and none', () => {
  assert.equal(headerBlockEnd(Buffer.from('a: b\n\nbody'), 0, LF), 6);
  assert.equal(headerBlockEnd(Buffer.from('a: b\r\n\r\nbody'), 0, LF), 8);
  assert.equal(headerBlockEnd(Buffer.from('\r\nbody'), 0, LF), 2); // empty header block
  assert.equal(headerBlockEnd(Buffer.from('\nbody'), 0x62, LF), 1);
  assert.equal(headerBlockEnd(Buffer.from('\nbody'), LF, 0x0d), 1);
  assert.equal(headerBlockEnd(Buffer.from('a: b\r\nc: d\r\n'), 0, 0x62), -1);
});
