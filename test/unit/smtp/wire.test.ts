import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommand, parsePath } from '../../../src/smtp/command.ts';
import { editEhloReply } from '../../../src/smtp/ehlo.ts';
import { readCommandLine } from '../../../src/smtp/line-reader.ts';
import { censorText, formatReply, ReplyParser, ReplyProtocolError } from '../../../src/smtp/reply.ts';
import { splitsOf } from '../../helpers/chunking.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('readCommandLine', () => {
  it('returns a CRLF line and where the next starts', () => {
    const r = readCommandLine(b('NOOP\r\nQUIT\r\n'), 0, 512);
    assert.equal(r.kind, 'line');
    if (r.kind === 'line') {
      assert.equal(r.line.toString(), 'NOOP');
      assert.equal(r.next, 6);
    }
  });
  const bad: Array<[string, string]> = [
    ['NOOP\n', 'BARE_LF'],
    ['\n', 'BARE_LF'],
    ['NO\rOP\r\n', 'BARE_CR'],
    ['NOOP\r\r\n', 'BARE_CR'],
    ['NO\x00OP\r\n', 'NUL_BYTE'],
    [`NOOP ${'x'.repeat(600)}\r\n`, 'LINE_TOO_LONG'],
  ];
  for (const [input, anomaly] of bad) {
    it(`refuses ${JSON.stringify(input.slice(0, 12))} as ${anomaly}`, () => {
      const r = readCommandLine(b(input), 0, 512);
      assert.equal(r.kind, 'bad');
      if (r.kind === 'bad') {
        assert.equal(r.anomaly, anomaly);
        assert.equal(r.next, input.length);
      }
    });
  }
  it('waits for more bytes, and overflows past the limit without an LF', () => {
    assert.equal(readCommandLine(b('NOOP\r'), 0, 512).kind, 'incomplete');
    assert.equal(readCommandLine(b('x'.repeat(513)), 0, 512).kind, 'overflow');
  });
});

describe('ReplyParser', () => {
  it('parses multi-line replies at every split point', () => {
    const wire = b('250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354 go\r\n');
    for (const chunks of splitsOf(wire)) {
      const p = new ReplyParser();
      const replies = chunks.flatMap((c) => p.push(c));
      assert.deepEqual(replies, [
        { code: 250, lines: ['mx.example', 'PIPELINING', 'SIZE 1000'] },
        { code: 354, lines: ['go'] },
      ]);
    }
  });
  it('accepts a bare code and LF line ends from servers', () => {
    assert.deepEqual(new ReplyParser().push(b('250\n')), [{ code: 250, lines: [''] }]);
  });
  for (const bad of ['hello\r\n', '250-a\r\n251 b\r\n', '2500 x\r\n', '199 x\r\n', '650 x\r\n']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => new ReplyParser().push(b(bad)), ReplyProtocolError);
    });
  }
  it('bounds line length and line count', () => {
    assert.throws(() => new ReplyParser().push(b(`250 ${'x'.repeat(5000)}\r\n`)), ReplyProtocolError);
    assert.throws(() => new ReplyParser().push(b('250-x\r\n'.repeat(101))), ReplyProtocolError);
  });
  it('formats and censors', () => {
    assert.equal(formatReply(250, ['a', 'b']).toString(), '250-a\r\n250 b\r\n');
    assert.equal(censorText('ok\x1b[31m\xe9'), 'ok?[31m?');
  });
});

describe('parsePath', () => {
  it('parses addresses and parameters', () => {
    const r = parsePath('FROM:<a@b.example> SIZE=123 BODY=8BITMIME SMTPUTF8', 'FROM');
    assert.ok(r.ok);
    if (r.ok) {
      assert.equal(r.path.address, 'a@b.example');
      assert.equal(r.path.params.get('SIZE'), '123');
      assert.equal(r.path.params.get('SMTPUTF8'), true);
    }
    const nul = parsePath('from: <>', 'FROM');
    assert.ok(nul.ok && nul.path.address === '');
    const quoted = parsePath('TO:<"a >b"@c.example>', 'TO');
    assert.ok(quoted.ok && quoted.path.address === '"a >b"@c.example');
    const routed = parsePath('TO:<@relay.example:user@c.example>', 'TO');
    assert.ok(routed.ok && routed.path.address === 'user@c.example');
  });
  for (const bad of ['FROM:a@b', 'FROM:<a@b', 'FROM:<a b@c>', 'FROM:<a@b>junk', 'TO:<a@b>', 'FROM:<a@b> SIZE=1 =x']) {
    it(`refuses ${JSON.stringify(bad)} with 501 5.5.4`, () => {
      const r = parsePath(bad, 'FROM');
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.reply.code, 501);
    });
  }
  it('splits verb and argument keeping the raw line', () => {
    assert.deepEqual(parseCommand(b('mail FROM:<x@y>')), { verb: 'MAIL', arg: 'FROM:<x@y>', raw: 'mail FROM:<x@y>' });
  });
});

describe('editEhloReply', () => {
  it('keeps only allowed extensions and rewrites SIZE to the smaller limit', () => {
    const e = editEhloReply(
      { code: 250, lines: ['mx.example', 'PIPELINING', 'SIZE 10240000', 'STARTTLS', 'CHUNKING', 'AUTH PLAIN LOGIN', 'BINARYMIME', '8BITMIME', 'XCLIENT NAME'] },
      { allow: new Set(['PIPELINING', 'SIZE', '8BITMIME']), maxMessageBytes: 1000 },
    );
    assert.deepEqual(e.reply.lines, ['mx.example', 'PIPELINING', 'SIZE 1000', '8BITMIME']);
    assert.deepEqual(e.removed, ['STARTTLS', 'CHUNKING', 'AUTH', 'BINARYMIME', 'XCLIENT']);
    assert.equal(e.upstreamSize, 10240000);
  });
  it('advertises our SIZE when the upstream has none', () => {
    const e = editEhloReply({ code: 250, lines: ['mx'] }, { allow: new Set(['SIZE']), maxMessageBytes: 5 });
    assert.deepEqual(e.reply.lines, ['mx', 'SIZE 5']);
  });
});
