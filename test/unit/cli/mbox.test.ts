import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MboxSplitter } from '../../../src/cli/mbox.ts';
import { byteByByte, randomChunks } from '../../helpers/chunking.ts';

function split(chunks: Buffer[]): string[] {
  const messages: string[] = [];
  let cur: Buffer[] = [];
  const s = new MboxSplitter({ data: (c) => cur.push(Buffer.from(c)), end: () => { messages.push(Buffer.concat(cur).toString('latin1')); cur = []; } });
  for (const c of chunks) s.write(c);
  s.end();
  return messages;
}

describe('mbox splitting (RFC 4155, mboxo/mboxrd)', () => {
  const mbox = Buffer.from(
    'From alice@example.org Mon Nov 23 10:00:00 2026\n' +
      'Subject: one\n\nbody one\n>From the start\n>>From deeper\nFrom inside a paragraph is not a separator\n\n' +
      'From bob@example.org Mon Nov 23 11:00:00 2026\r\n' +
      'Subject: two\r\n\r\nbody two\r\n\r\n\r\n' +
      'From carol@example.org Mon Nov 23 12:00:00 2026\n' +
      'Subject: three\n\nno final newline',
    'latin1',
  );
  const want = [
    'Subject: one\n\nbody one\nFrom the start\n>From deeper\nFrom inside a paragraph is not a separator\n',
    'Subject: two\r\n\r\nbody two\r\n\r\n',
    'Subject: three\n\nno final newline',
  ];
  it('splits at "From " lines after a blank line, unescapes >From, keeps CRLF or LF as is', () => {
    assert.deepEqual(split([mbox]), want);
  });
  it('gives the same messages for any chunking', () => {
    assert.deepEqual(split(byteByByte(mbox)), want);
    for (const seed of [1, 2, 3]) assert.deepEqual(split(randomChunks(mbox, seed, 17)), want);
  });
  it('ignores text before the first envelope line; an empty file has no messages', () => {
    assert.deepEqual(split([Buffer.from('junk\n\nFrom x Mon\nA: b\n\nc\n')]), ['A: b\n\nc\n']);
    assert.deepEqual(split([]), []);
  });
});
