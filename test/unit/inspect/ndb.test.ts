import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type BodySignature, compileBodySignature, parseNdb } from '../../../src/inspect/engines/ndb.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import type { FileInfo } from '../../../src/inspect/types.ts';

const info = (b: Buffer, detectedType = 'text', path = 'f'): FileInfo => ({
  path, name: null, declaredType: null, detectedType, flags: [], depth: 0, layers: 0, size: b.length, sha256: '', md5: '', encoding: null,
});

async function found(sigs: BodySignature[], data: Buffer, chunk = data.length || 1, detectedType = 'text'): Promise<string[]> {
  const scan = new SignatureEngine({ patterns: sigs }).open();
  for (let i = 0; i < data.length; i += chunk) scan.write(data.subarray(i, i + chunk));
  return (await scan.end(info(data, detectedType))).map((f) => f.threat).sort();
}

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Reference: the whole signature as one RegExp over the whole buffer. */
function reference(sig: BodySignature, data: Buffer): boolean {
  const src = sig.parts.map((p, i) => (i === 0 ? '' : `[\\s\\S]{${p.gapMin},}?`) + p.regex.source).join('');
  return new RegExp(src).test(data.toString('latin1'));
}

describe('ClamAV .ndb body signatures', () => {
  const table: ReadonlyArray<readonly [string, string, string, readonly string[], readonly string[]]> = [
    // [what, offset, hex signature, data that matches, data that does not]
    ['plain bytes', '*', hex('evil-payload'), ['xx evil-payload yy'], ['evil-paylo4d']],
    ['?? any byte', '*', `${hex('ABCD')}????${hex('EFGH')}`, ['ABCD12EFGH', 'ABCD\0\xffEFGH'], ['ABCD1EFGH', 'ABCD123EFGH']],
    ['nibbles a? and ?a', '*', `${hex('WXYZ')}4?${hex('Q')}?1`, ['WXYZAQ1', 'WXYZOQa'], ['WXYZaQ1', 'WXYZAQ2']],
    ['{n}', '*', `${hex('head')}{3}${hex('tail')}`, ['head123tail'], ['head12tail', 'head1234tail']],
    ['{n-m}', '*', `${hex('head')}{1-3}${hex('tail')}`, ['head1tail', 'head123tail'], ['headtail', 'head1234tail']],
    ['{-m} and [n-m]', '*', `${hex('head')}{-2}${hex('mid!')}[1-2]${hex('tail')}`, ['headmid!.tail', 'head..mid!..tail'], ['head...mid!.tail', 'headmid!tail']],
    ['* unbounded, in order', '*', `${hex('first')}*${hex('second')}`, ['first ... second', 'firstsecond'], ['second first', 'firs second']],
    ['{n-} at least n', '*', `${hex('first')}{4-}${hex('second')}`, ['first1234second', 'first123456second'], ['first123second']],
    ['(aa|bb) alternatives', '*', `${hex('pre-')}(${hex('X')}|${hex('YY')})${hex('-post')}`, ['pre-X-post', 'pre-YY-post'], ['pre-Z-post', 'pre-XY-post']],
    ['!(aa|bb) negation', '*', `${hex('pre-')}!(${hex('X')}|${hex('Y')})${hex('-post')}`, ['pre-Z-post'], ['pre-X-post', 'pre-Y-post']],
    ['absolute offset', '4', hex('MAGIC'), ['0123MAGIC...'], ['012MAGIC', '01234MAGIC']],
    ['offset range n,m', '2,3', hex('MAGIC'), ['01MAGIC', '01234MAGIC'], ['0MAGIC', '012345MAGIC']],
    ['EOF-n', 'EOF-5', hex('LAST!'), ['....LAST!'], ['...LAST!.', 'LAST!LAST!x']],
  ];
  for (const [what, offset, sig, yes, no] of table) {
    it(`${what}: ${sig}`, async () => {
      const s = compileBodySignature('T', 0, offset, sig);
      for (const y of yes) for (const chunk of [1, 2, 5, 1000]) assert.deepEqual(await found([s], b(y), chunk), ['T'], `${JSON.stringify(y)} in chunks of ${chunk}`);
      for (const n of no) for (const chunk of [1, 3, 1000]) assert.deepEqual(await found([s], b(n), chunk), [], `${JSON.stringify(n)} in chunks of ${chunk}`);
    });
  }

  it('parses a file, keeps what it can use and names what it skips', () => {
    const { signatures, skipped } = parseNdb(
      [
        '# comment',
        `Test.One:0:*:${hex('payload')}`,
        `Test.Pe:1:EP+0:${hex('payload')}`,
        `Test.Short:0:*:4142??4344`,
        `Test.Word:0:*:${hex('word')}(B)${hex('more')}`,
        `Test.Flevel:0:*:${hex('payload2')}:51:255`,
        '',
      ].join('\n'),
      'x.ndb',
    );
    assert.deepEqual(signatures.map((s) => s.threat), ['Test.One', 'Test.Flevel']);
    assert.equal(skipped.length, 3);
    assert.match(skipped[0]!, /^x\.ndb:3: Test\.Pe: offset "EP\+0" is not supported/);
    assert.match(skipped[1]!, /4 consecutive fixed bytes/);
    assert.throws(() => parseNdb('just garbage', 'bad.ndb'), /bad\.ndb:1: expected Name:TargetType:Offset:HexSignature/);
  });

  it('applies target types: PE signatures only on PE files, mail signatures only on the raw message', async () => {
    const pe = compileBodySignature('PeOnly', 1, '*', hex('marker'));
    assert.deepEqual(await found([pe], b('..marker..'), 100, 'exe'), ['PeOnly']);
    assert.deepEqual(await found([pe], b('..marker..'), 100, 'text'), []);
  });

  it('1,000 signatures in one pass: finds exactly the planted ones, in any chunking', async () => {
    const sigs = Array.from({ length: 1000 }, (_, i) => compileBodySignature(`Sig.${String(i).padStart(4, '0')}`, 0, '*', hex(`sig-${String(i).padStart(4, '0')}-tail`)));
    const data = Buffer.concat([Buffer.alloc(5000, 0x2e), b('sig-0007-tail'), Buffer.alloc(3000, 0x20), b('sig-0999-tail sig-0500-tai')]);
    for (const chunk of [1, 7, 4096, data.length]) assert.deepEqual(await found(sigs, data, chunk), ['Sig.0007', 'Sig.0999']);
  });

  it('agrees with a whole-buffer RegExp for random signatures, data and chunkings', async () => {
    const alphabet = 'abcAB';
    const word = fc.string({ unit: fc.constantFrom(...alphabet), minLength: 4, maxLength: 6 });
    const sigArb = fc.tuple(word, fc.constantFrom('??', '{1-3}', '*', '{2-}', '(61|6262)', ''), word);
    await fc.assert(
      fc.asyncProperty(sigArb, fc.string({ unit: fc.constantFrom(...alphabet, 'x'), maxLength: 80 }), fc.integer({ min: 1, max: 9 }), async ([w1, mid, w2], text, chunk) => {
        const s = compileBodySignature('R', 0, '*', `${hex(w1)}${mid}${hex(w2)}`);
        const data = b(text);
        const want = reference(s, data) ? ['R'] : [];
        assert.deepEqual(await found([s], data, chunk), want);
      }),
      { seed: 7, numRuns: 1500 },
    );
  });
});

describe('anchor choice', () => {
  it('anchors EICAR on bytes rare in mail, so a body of letters is not a hit every byte', async () => {
    const { BodyMatcher, anchorCommonness } = await import('../../../src/inspect/engines/body-matcher.ts');
    const { EICAR } = await import('../../../src/inspect/engines/signatures.ts');
    const m = new BodyMatcher([compileBodySignature('EICAR', 0, '*', EICAR.toString('hex'), 'high')]);
    const [anchor] = [...m.anchors.keys()];
    const first = String.fromCharCode((anchor! >>> 24) & 0xff);
    assert.doesNotMatch(first, /[A-Za-z0-9\s]/, `anchor starts with ${JSON.stringify(first)}`);
    assert.ok(anchorCommonness(anchor! >>> 0) < anchorCommonness(Buffer.from('X5O!').readUInt32BE(0)));
    // Found anywhere, in any chunking, among X's (what Postfix's smtp-source sends).
    const body = Buffer.concat([Buffer.alloc(5000, 'X'), EICAR, Buffer.alloc(5000, 'X')]);
    for (const chunk of [1, 3, 64, body.length]) assert.deepEqual(await found([compileBodySignature('EICAR', 0, '*', EICAR.toString('hex'), 'high')], body, chunk), ['EICAR']);
  });
});
