import assert from 'node:assert/strict';
import { test } from 'node:test';
import { messageHead } from '../../../src/inspect/inner-objects.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('a header block with a known field and a blank line is a message; prose is not, at its first line', () => {
  assert.equal(messageHead(b('From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n'), false), 'message');
  assert.equal(messageHead(b('From: a@example.org\nTo: b\n\nbody'), true), 'message');
  assert.equal(messageHead(b('1XXXXXXXX\r\n2XXXXXXXX\r\n'), false), 'not');
  assert.equal(messageHead(b(' leading space'), true), 'not');
  assert.equal(messageHead(b(':colon first'), true), 'not');
});

test('unknown fields alone, or one known field before prose, are not a message', () => {
  assert.equal(messageHead(b('X-A: 1\r\nX-B: 2\r\n\r\n'), false), 'not');
  assert.equal(messageHead(b('Subject: x\r\nnot a field\r\n'), false), 'not');
  assert.equal(messageHead(b('Subject: x\r\nDate: y\r\nnot a field\r\n'), false), 'message');
});

test('an mbox From line is skipped; continuation lines belong to their field', () => {
  assert.equal(messageHead(b('From someone Mon Jan 1\nFrom: a\nSubject: s\n  folded\n\n'), false), 'message');
  assert.equal(messageHead(b('Subject: s\r\n\tfolded\r\nTo: t\r\n\r\n'), false), 'message');
});

test('a partial last line waits unless final; the window is the first 4 KiB', () => {
  assert.equal(messageHead(b('Subject: s\r\nTo: t'), false), 'undecided');
  assert.equal(messageHead(b('Subject: s\r\nTo: t'), true), 'message');
  assert.equal(messageHead(b('Subject: s\r\nTo'), true), 'not'); // one field, then no field
  const long = b(`Subject: s\r\nTo: t\r\nX-Long: ${'x'.repeat(5000)}\r\n\r\n`);
  assert.equal(messageHead(long, false), 'message');
  assert.equal(messageHead(b(`Subject: s\r\nX-Long: ${'x'.repeat(5000)}`), false), 'not');
});
