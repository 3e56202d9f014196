import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DataReader } from '../../../src/smtp/data-reader.ts';
import { byteByByte, randomChunks, splitsOf } from '../../helpers/chunking.ts';

interface Outcome {
  wire: string;
  content: string;
  consumed: number;
  ended: boolean;
  anomaly: string | null;
}

function feed(chunks: Buffer[], maxLine = 998): Outcome {
  const r = new DataReader(maxLine);
  const wire: Buffer[] = [];
  const content: Buffer[] = [];
  let consumed = 0;
  for (const c of chunks) {
    const out = r.push(c);
    wire.push(...out.wire);
    content.push(...out.content);
    consumed += out.consumed;
    if (out.ended) break;
  }
  return {
    wire: Buffer.concat(wire).toString('latin1'),
    content: Buffer.concat(content).toString('latin1'),
    consumed,
    ended: r.ended,
    anomaly: r.anomaly,
  };
}

/** A deliberately simple, line-at-a-time model of RFC 5321 DATA for valid streams. */
function reference(stream: string): { wire: string; content: string; consumed: number } | null {
  let pos = 0;
  let wire = '';
  let content = '';
  for (;;) {
    const end = stream.indexOf('\r\n', pos);
    if (end === -1) return null;
    const line = stream.slice(pos, end);
    if (line === '.') return { wire, content, consumed: end + 2 };
    wire += `${line}\r\n`;
    content += `${line.startsWith('.') ? line.slice(1) : line}\r\n`;
    pos = end + 2;
  }
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('DataReader: valid messages', () => {
  const cases = [
    '.\r\n',
    'hello\r\n.\r\n',
    'a\r\n..leading dot\r\n...two\r\n.\r\n',
    '..\r\n.\r\n',
    'x\r\n\r\n\r\n.\r\nQUIT\r\n',
    'Subject: t\r\n\r\nbody .\r\n. not end\r\n.\r\nMAIL FROM:<a@b>\r\n',
    `${'y'.repeat(998)}\r\n.\r\n`,
    '\xe9t\xe9 8-bit\r\n.\r\n',
  ];
  for (const text of cases) {
    it(`reads ${JSON.stringify(text.slice(0, 40))} identically at every split point`, () => {
      const want = reference(text)!;
      for (const chunks of splitsOf(b(text))) {
        const got = feed(chunks);
        assert.equal(got.anomaly, null);
        assert.equal(got.ended, true);
        assert.equal(got.wire, want.wire);
        assert.equal(got.content, want.content);
        assert.equal(got.consumed, want.consumed);
      }
      assert.deepEqual(feed(byteByByte(b(text))), { ...want, ended: true, anomaly: null });
    });
  }

  it('does not end before the terminator, and holds at most the bytes that could start it', () => {
    const r = new DataReader(998);
    const out = r.push(b('line\r\n.'));
    assert.equal(out.ended, false);
    assert.equal(Buffer.concat(out.wire).toString(), 'line\r\n');
    const out2 = r.push(b('\r'));
    assert.equal(out2.wire.length, 0);
    const out3 = r.push(b('\n'));
    assert.equal(out3.ended, true);
    assert.equal(out3.consumed, 1);
  });

  it('agrees with the reference model on random valid streams in random chunking', () => {
    const line = fc.stringMatching(/^[ -~\t\x80-\xff]{0,40}$/).map((s) => s.replace(/\r|\n/g, ''));
    fc.assert(
      fc.property(fc.array(fc.oneof(line, line.map((l) => `.${l}`)), { maxLength: 30 }), fc.integer({ min: 1, max: 1e9 }), (lines, seed) => {
        const text = `${lines.map((l) => `${l}\r\n`).join('')}.\r\nNEXT`;
        const want = reference(text)!;
        const got = feed(randomChunks(b(text), seed, 17));
        assert.equal(got.wire, want.wire);
        assert.equal(got.content, want.content);
        assert.equal(got.consumed, want.consumed);
        assert.equal(got.anomaly, null);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('DataReader: one strict reading (SMTP smuggling endings are refused)', () => {
  // The smtpsmug endings and more: none may end the message, all must be flagged.
  const endings: Array<[string, string]> = [
    ['\n.\n', 'BARE_LF'],
    ['\r.\r', 'BARE_CR'],
    ['\r.\n', 'BARE_CR'],
    ['\n.\r', 'BARE_LF'],
    ['\n.\r\n', 'BARE_LF'],
    ['\r\n.\n', 'BARE_LF'],
    ['\r.\r\n', 'BARE_CR'],
    ['\r\n.\r', 'BARE_CR'],
    ['\r\n\x00.\r\n', 'NUL_BYTE'],
    ['\r\n.\x00\r\n', 'NUL_BYTE'],
    ['\r\r\n.\r\n', 'BARE_CR'],
    ['\n\r\n.\r\n', 'BARE_LF'],
  ];
  for (const [ending, anomaly] of endings) {
    it(`${JSON.stringify(ending)} is an anomaly, not an end; the real CRLF.CRLF ends it`, () => {
      const smuggled = `Subject: a\r\n\r\nbody${ending}MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n`;
      // A strict server (Postfix) ends DATA at the first CRLF.CRLF, whatever came before it.
      const trueEnd = smuggled.indexOf('\r\n.\r\n') + 5;
      for (const chunks of splitsOf(b(smuggled))) {
        const got = feed(chunks);
        assert.equal(got.anomaly, anomaly);
        assert.equal(got.ended, true);
        assert.equal(got.consumed, trueEnd, 'ends only at the strict terminator');
        assert.ok(!got.wire.includes('MAIL FROM'), 'nothing after the anomaly is forwardable');
        assert.ok(!got.content.includes('MAIL FROM'), 'nothing after the anomaly is inspected as clean content');
      }
    });
  }

  it('a bare LF anywhere in the message is refused', () => {
    assert.equal(feed([b('a\nb\r\n.\r\n')]).anomaly, 'BARE_LF');
    assert.equal(feed([b('\n.\r\n')]).ended, false, '"\\n.\\r\\n" at the start is not an end');
  });

  it('an over-long line is refused (RFC 5321 §4.5.3.1.6)', () => {
    const text = `${'z'.repeat(999)}\r\n.\r\n`;
    for (const chunks of [[b(text)], randomChunks(b(text), 7, 100)]) {
      const got = feed(chunks);
      assert.equal(got.anomaly, 'LINE_TOO_LONG');
      assert.equal(got.consumed, text.length);
    }
    assert.equal(feed([b(`.${'z'.repeat(998)}\r\n.\r\n`)]).anomaly, null, 'a stuffed dot does not count');
  });

  it('random bytes in random chunking give the same result as one chunk', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 1e9 }), (bytes, seed) => {
        const buf = Buffer.concat([Buffer.from(bytes), b('\r\n.\r\n')]);
        const whole = feed([buf], 50);
        const chunked = feed(randomChunks(buf, seed, 9), 50);
        assert.deepEqual(chunked, whole);
        assert.equal(whole.ended, true);
      }),
      { seed: 7, numRuns: 500 },
    );
  });

  it('the fast reading of whole chunks decides as the per-line reading of small ones, on every kind of line', () => {
    // Whole chunks over 256 bytes go through the fast path (#skipPlainLines); chunks of at most
    // 9 bytes never do. Lines of every kind the framing decides on, near the line limit (60).
    const piece = fc.oneof(
      { weight: 6, arbitrary: fc.stringMatching(/^[ -~]{0,60}$/).map((s) => `${s}\r\n`) },
      { weight: 2, arbitrary: fc.stringMatching(/^[ -~]{0,60}$/).map((s) => `.${s}\r\n`) },
      { weight: 1, arbitrary: fc.integer({ min: 58, max: 63 }).map((n) => `${'y'.repeat(n)}\r\n`) },
      { weight: 1, arbitrary: fc.constantFrom('\r\n', '.\r\n', '..\r\n', 'a\rb\r\n', 'a\nb\r\n', 'a\x00b\r\n', 'end\n', 'end\r', '\r', '\n', '.\r', '.\n') },
    );
    fc.assert(
      fc.property(fc.array(piece, { minLength: 5, maxLength: 120 }), fc.integer({ min: 1, max: 1e9 }), (pieces, seed) => {
        const buf = b(`${pieces.join('')}\r\n.\r\nQUIT\r\n`);
        const whole = feed([buf], 60);
        for (const max of [9, 700]) {
          const chunked = feed(randomChunks(buf, seed, max), 60);
          if (whole.anomaly !== 'LINE_TOO_LONG') {
            assert.deepEqual(chunked, whole);
            continue;
          }
          // An over-long line is refused where the chunk holding its start begins: the part of
          // it read in earlier chunks was already handed on (a refused message is not relayed).
          assert.deepEqual({ ...chunked, wire: '', content: '' }, { ...whole, wire: '', content: '' });
          assert.ok(chunked.wire.startsWith(whole.wire) && chunked.content.startsWith(whole.content));
          assert.ok(!chunked.wire.slice(whole.wire.length).includes('\n'), 'at most the long line itself');
        }
      }),
      { seed: 11, numRuns: 1500 },
    );
  });

  it('a message of plain lines read in large chunks agrees with the reference model', () => {
    const text = `${Array.from({ length: 3000 }, (_, i) => `${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(i % 90)}\r\n`).join('')}.\r\nNEXT`;
    const want = reference(text)!;
    for (const size of [65536, 4096, 300]) {
      const got = feed(randomChunks(b(text), size, size));
      assert.equal(got.anomaly, null);
      assert.equal(got.wire, want.wire);
      assert.equal(got.content, want.content);
      assert.equal(got.consumed, want.consumed);
    }
  });
});
