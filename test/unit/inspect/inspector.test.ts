import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Base64Decoder } from '../../../src/inspect/decode/base64.ts';
import { QuotedPrintableDecoder } from '../../../src/inspect/decode/quoted-printable.ts';
import { EICAR, parseClamavHashDb, parseHashList, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { decodeEncodedWords, parseStructured } from '../../../src/inspect/mime/headers.ts';
import type { ScanResult } from '../../../src/inspect/types.ts';
import { CLEAN_MESSAGES, EICAR_MESSAGES, uuencode } from '../../helpers/messages.ts';
import { tnef, zip } from '../../helpers/archives.ts';
import { byteByByte, randomChunks } from '../../helpers/chunking.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

async function scan(chunks: Buffer[], inspector = new Inspector({ engines: [new SignatureEngine()] })): Promise<ScanResult> {
  const s = inspector.begin();
  for (const c of chunks) s.write(c);
  return s.end(5000);
}

const summary = (r: ScanResult) => ({
  findings: r.findings.map((f) => `${f.threat}@${f.file.path}`).sort(),
  files: r.files.map((f) => `${f.path}:${f.size}:${f.sha256}`),
  events: r.events.map((e) => `${e.name}@${e.where}`),
});

describe('Inspector: EICAR in every encoding, any chunking', () => {
  for (const [name, msg] of Object.entries(EICAR_MESSAGES)) {
    it(`finds EICAR (${name}) whole, byte by byte and in random chunks`, async () => {
      const whole = await scan([msg]);
      assert.ok(whole.findings.some((f) => f.threat === 'EICAR-Test-File'), 'found');
      assert.deepEqual(summary(await scan(byteByByte(msg))), summary(whole));
      for (const seed of [1, 2, 3]) assert.deepEqual(summary(await scan(randomChunks(msg, seed, 13))), summary(whole));
    });
  }
  for (const [name, msg] of Object.entries(CLEAN_MESSAGES)) {
    it(`finds nothing in a clean message (${name})`, async () => {
      assert.deepEqual((await scan([msg])).findings, []);
    });
  }
  it('extracts uuencoded files from text with their name, exact bytes and path', async () => {
    const r = await scan([EICAR_MESSAGES['uuencoded inside a text body']!]);
    const uu = r.files.filter((f) => f.encoding === 'uuencode');
    assert.equal(uu.length, 1, '"begin the meeting" is not a uuencoded block');
    assert.equal(uu[0]!.name, 'invoice.com');
    assert.equal(uu[0]!.path, 'msg/uu1');
    assert.equal(uu[0]!.sha256, createHash('sha256').update(EICAR).digest('hex'));
    const nested = await scan([EICAR_MESSAGES['uuencoded inside a base64 text part']!]);
    assert.ok(nested.findings.some((f) => f.file.path === 'msg/2/uu1' && f.threat === 'EICAR-Test-File'));
  });

  it('names the file and its decoded hash', async () => {
    const r = await scan([EICAR_MESSAGES['base64 attachment']!]);
    const f = r.findings[0]!;
    assert.equal(f.file.path, 'msg/2');
    assert.equal(f.file.name, 'eicar.com');
    assert.equal(f.file.sha256, createHash('sha256').update(EICAR).digest('hex'));
    assert.equal(f.file.encoding, 'base64');
    assert.match(f.threatId, /^\d{8}$/);
  });
});

describe('MIME walker', () => {
  it('follows nested multiparts and message/rfc822, keeping the CRLF before a boundary out of the part', async () => {
    const msg = b(
      'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nfirst\r\n' +
        '--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary="in ner"\r\n\r\n' +
        '--in ner\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--in ner--\r\n--outer--\r\nepilogue\r\n',
    );
    const r = await scan([msg]);
    const sizes = Object.fromEntries(r.files.map((f) => [f.path, f.size]));
    assert.equal(sizes['msg/1'], 5);
    assert.equal(sizes['msg/2/1/1'], 10);
    assert.equal(sizes['msg/epilogue'], 8, 'the epilogue is an object of its own (ripmime writes it out)');
    assert.ok(sizes['msg/2']! > 100, 'the forwarded message is also scanned whole, as the attachment clients show');
    assert.deepEqual(r.events, []);
  });
  it('raises events for depth, parts, missing boundary and unterminated multiparts', async () => {
    const deep = 'Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n'.repeat(1) +
      Array.from({ length: 30 }, (_, i) => `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`).join('') +
      'Content-Type: text/plain\r\n\r\nx\r\n';
    const inspector = new Inspector({ engines: [new SignatureEngine()], mime: { maxDepth: 5, maxParts: 3, maxHeaderBytes: 1024 } });
    const r = await scan([b(deep)], inspector);
    assert.ok(r.events.some((e) => e.name === 'MIME_DEPTH_EXCEEDED'));
    const many = `Content-Type: multipart/mixed; boundary=m\r\n\r\n${'--m\r\n\r\npart\r\n'.repeat(10)}--m--\r\n`;
    assert.ok((await scan([b(many)], inspector)).events.some((e) => e.name === 'MIME_PARTS_EXCEEDED'));
    assert.ok((await scan([b('Content-Type: multipart/mixed\r\n\r\nbody\r\n')])).events.some((e) => e.name === 'MIME_MISSING_BOUNDARY'));
    assert.ok((await scan([b('Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nno end\r\n')])).events.some((e) => e.name === 'MIME_UNTERMINATED_MULTIPART'));
  });
  it('gives the same files and findings for any chunking of random multipart bodies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 1e6 }), async (parts, seed) => {
        const body = parts
          .map((p, i) => `--q\r\nContent-Type: application/octet-stream; name=f${i}\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(p).toString('base64').replace(/(.{60})/g, '$1\r\n')}\r\n`)
          .join('');
        const msg = b(`Content-Type: multipart/mixed; boundary=q\r\n\r\n${body}--q--\r\n`);
        const whole = await scan([msg]);
        assert.deepEqual(summary(await scan(randomChunks(msg, seed, 23))), summary(whole));
        parts.forEach((p, i) => {
          const f = whole.files.find((x) => x.name === `f${i}`)!;
          assert.equal(f.sha256, createHash('sha256').update(p).digest('hex'), 'decoded bytes are exact');
        });
      }),
      { seed: 3, numRuns: 100 },
    );
  });
});

describe('inspector fuzzing (seed-fixed)', () => {
  // Messages built from pieces that exercise every branch, in random order and chunking:
  // the inspector must never throw, and must give the same files, findings and events
  // whatever the chunking.
  // A zip holding EICAR, as the base64 lines of an attachment (each line a piece).
  const zipLines = (zip([{ name: 'e.com', data: EICAR, method: 'stored' }]).toString('base64').match(/.{1,76}/g) ?? []).map((l) => `${l}\r\n`);
  // Whole encoded files, each one piece: yEnc, uuencode, an armored OpenPGP literal message,
  // and a TNEF attachment in base64 lines.
  const yenc = (data: Buffer): string => [...data].map((c) => { const e = (c + 42) & 0xff; return [0, 10, 13, 61].includes(e) ? `=${String.fromCharCode((e + 64) & 0xff)}` : String.fromCharCode(e); }).join('');
  const literal = Buffer.concat([Buffer.from([0xcb, 6 + 5 + EICAR.length]), Buffer.from('b\x05e.com\0\0\0\0', 'latin1'), EICAR]);
  const wholeFiles = [
    `=ybegin line=128 size=${EICAR.length} name=e.com\r\n${yenc(EICAR)}\r\n=yend size=${EICAR.length}\r\n`,
    uuencode(EICAR, 'u.com'),
    `-----BEGIN PGP MESSAGE-----\r\n\r\n${literal.toString('base64')}\r\n-----END PGP MESSAGE-----\r\n`,
    'Content-Type: application/ms-tnef\r\n',
    ...(tnef([{ name: 't.com', data: EICAR }]).toString('base64').match(/.{1,76}/g) ?? []).map((l) => `${l}\r\n`),
  ];
  const piece = fc.constantFrom(
    ...wholeFiles,
    'Content-Type: multipart/mixed; boundary=b\r\n',
    'Content-Type: message/rfc822\r\n',
    'Content-Transfer-Encoding: base64\r\n',
    'Content-Transfer-Encoding: quoted-printable\r\n',
    'Content-Disposition: attachment; filename*0*=utf-8\'\'%E2%82; filename*1=x.exe\r\n',
    '\r\n',
    '--b\r\n',
    '--b--\r\n',
    'begin 644 f.bin\r\n',
    'M86)C9&5F9VAI:FML;6YO<\'%R<W1U=G=X>7HQ,C,T-38W.#DP86)C9&5F9VAI\r\n',
    '`\r\nend\r\n',
    'WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNU\r\n',
    '=3D=\r\n',
    'plain text line\r\n',
    '\n',
    '\r',
    // The text encodings and wrappers read inside parts: each has a detector that must decide
    // the same way however the bytes are cut.
    '=ybegin line=128 size=12 name=a.exe\r\n',
    '=yend size=12\r\n',
    '(This file must be converted with BinHex 4.0)\r\n',
    ':#\'CTE\'9c,R4PFh3!!!!!!!!!!!!!!!!!!!!!:\r\n',
    'begin-base64 644 f.exe\r\n',
    '====\r\n',
    '-----BEGIN PGP MESSAGE-----\r\n',
    '-----END PGP MESSAGE-----\r\n',
    'Content-Type: text/plain; charset=utf-16\r\n',
    '\xff\xfeh\x00i\x00\r\x00\n\x00',
    'Content-Type: text/calendar\r\n',
    'ATTACH;ENCODING=BASE64;VALUE=BINARY:WDVPIVAlQEFQ\r\n',
    'Content-Type: text/html\r\n',
    '<a href="data:application/octet-stream;base64,WDVPIVAlQEFQWzRcUFpYNTQo">x</a>\r\n',
    'Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n',
    'Content-Transfer-Encoding: x-uuencode\r\n',
    // Containers in base64 lines, script literals, folded headers, a second boundary.
    ...zipLines,
    `<script>var p = "${Buffer.alloc(300, 0x4d).toString('base64')}";</script>\r\n`,
    'Content-Type: application/octet-stream;\r\n name="a.zip"\r\n',
    'Content-Type: multipart/alternative; boundary="c"\r\n',
    '--c\r\n',
    '--c--\r\n',
  );
  it('fixture from fuzzing: a part closed inside its headers does not lose its parent', async () => {
    // Found by the property below (seed 2): the closing boundary popped the parent multipart.
    const msg = b('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n--b\r\n--b--\r\nContent-Type: multipart/mixed; boundary=b\r\n');
    const whole = await scan([msg]);
    assert.deepEqual(summary(await scan(byteByByte(msg))), summary(whole));
    assert.deepEqual(whole.files.map((f) => f.path), ['message', 'msg/1', 'msg/epilogue']);
  });

  it('fixture from fuzzing: the readings of an ambiguous part are reported in an order of the content, not of the chunks', async () => {
    // (And an object found inside a text — an embedded message, a uuencoded file — opens when
    // its detector has seen enough, which depended on where a chunk ended: seeds 23 and 24.)
    // Found by the property below (seed 11, 3,000 runs): the two readings of an ambiguous
    // message are walked side by side, and their objects opened in an order set by the chunks.
    const msg = b('Content-Type: message/rfc822\r\nbegin 644 f.bin\r\n' + 'Content-Type: multipart/mixed; boundary=b\r\n'.repeat(3));
    const whole = await scan([msg]);
    assert.ok(whole.events.some((e) => e.name === 'MIME_AMBIGUOUS'), 'the part is ambiguous');
    for (const chunks of [byteByByte(msg), randomChunks(msg, 1, 11)]) assert.deepEqual(summary(await scan(chunks)), summary(whole));
    assert.deepEqual(whole.files.map((f) => f.path), ['message', 'msg', 'msg/1', 'msg/1/uu1', 'msg/uu1', 'msg~2', 'msg~2/uu1']);
    const inText = b("\r\nContent-Transfer-Encoding: quoted-printable\r\nM86)C9&5F9VAI:FML;6YO<'%R<W1U=G=X>7HQ,C,T-38W.#DP86)C9&5F9VAI\r\n--b--\r\nbegin 644 f.bin\r\nContent-Type: multipart/mixed; boundary=b\r\n");
    const inTextWhole = await scan([inText]);
    for (const chunks of [byteByByte(inText), randomChunks(inText, 1, 11)]) assert.deepEqual(summary(await scan(chunks)), summary(inTextWhole));
    // Binary OpenPGP packets were judged on the decoder's first piece alone (seed 25).
    const pgp = b('Content-Transfer-Encoding: base64\r\nrQ`\r\nend\r\nContent-Type: multipart/mixed; boundary=b\r\n');
    const pgpWhole = await scan([pgp]);
    assert.ok(pgpWhole.files.some((f) => f.path === 'msg/pgp1'), 'read as OpenPGP packets');
    for (const chunks of [byteByByte(pgp), randomChunks(pgp, 1, 11)]) assert.deepEqual(summary(await scan(chunks)), summary(pgpWhole));
    // A page was judged markup (and its data: URIs decoded) on its first piece alone.
    const page = b('\nContent-Type: multipart/mixed; boundary=b\r\n<a href="data:application/octet-stream;base64,WDVPIVAlQEFQWzRcUFpYNTQo">x</a>\r\n');
    const pageWhole = await scan([page]);
    assert.ok(pageWhole.files.some((f) => f.path === 'msg/data1'), 'the data: URI is an object');
    for (const chunks of [byteByByte(page), randomChunks(page, 1, 11)]) assert.deepEqual(summary(await scan(chunks)), summary(pageWhole));
  });

  it('never throws and is chunk-invariant on random structures', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(piece, fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u).toString('latin1'))), { maxLength: 60 }), fc.integer({ min: 1, max: 1e9 }), async (parts, seed) => {
        const msg = Buffer.from(parts.join(''), 'latin1');
        const whole = await scan([msg]);
        assert.deepEqual(summary(await scan(randomChunks(msg, seed, 11))), summary(whole));
      }),
      { seed: Number(process.env.FUZZ_SEED ?? 11), numRuns: Number(process.env.FUZZ_RUNS ?? 3000) },
    );
  });
});

describe('decoders and headers', () => {
  it('base64 tolerates whitespace, junk, missing padding, any line length, any split', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog!');
    const enc = data.toString('base64').replace(/=+$/, '');
    for (const variant of [enc, enc.replace(/(.{7})/g, '$1 \r\n\t'), `${enc.slice(0, 10)}*!${enc.slice(10)}`]) {
      for (const chunks of [[b(variant)], byteByByte(b(variant))]) {
        const out: Buffer[] = [];
        const d = new Base64Decoder((c) => out.push(c));
        for (const c of chunks) d.write(c);
        d.end();
        assert.equal(Buffer.concat(out).toString(), data.toString());
      }
    }
  });
  it('quoted-printable: soft breaks, escapes in any case, malformed escapes kept', () => {
    const out: Buffer[] = [];
    const d = new QuotedPrintableDecoder((c) => out.push(c));
    for (const line of ['a=3Db=3d=', 'c=ZZ d   ', 'e=']) {
      d.write(b(line));
      d.eol();
    }
    d.end();
    assert.equal(Buffer.concat(out).toString('latin1'), 'a=b=c=ZZ d\r\ne');
  });
  it('parses parameters: quoting, comments, RFC 2231 continuations and charsets, repeated names', () => {
    const ct = parseStructured('application/octet-stream (comment); name="a;b.exe"; name=second; x*0*=utf-8\'\'%E2%82%AC; x*1=rest');
    assert.equal(ct.value, 'application/octet-stream');
    assert.equal(ct.params.get('name'), 'a;b.exe');
    assert.equal(ct.params.get('x'), '€rest');
    assert.equal(decodeEncodedWords('=?utf-8?B?aW52b2ljZQ==?= =?ISO-8859-1?Q?=E9t=E9?=.pdf'), 'invoiceété.pdf');
  });
  it('ClamAV .hdb/.hsb databases: md5/sha256 with size (or *), sha1 skipped, bad lines named', async () => {
    const data = Buffer.from('known bad file');
    const md5 = createHash('md5').update(data).digest('hex');
    const sha = createHash('sha256').update(data).digest('hex');
    const db = parseClamavHashDb(
      `${md5}:${data.length}:Test.Md5\n${sha}:*:Test.Sha256:73\n${'a'.repeat(40)}:5:Test.Sha1\n${md5}:${data.length + 1}:Test.WrongSize\n`,
      'x.hsb',
    );
    assert.equal(db.skipped, 1);
    const inspector = new Inspector({ engines: [new SignatureEngine({ hashes: db.signatures })] });
    const r = await inspector.scanBuffer(data, false, 1000, 'f');
    assert.deepEqual(r.findings.map((f) => f.threat).sort(), ['Test.Md5', 'Test.Sha256']);
    assert.throws(() => parseClamavHashDb('nothex:1:X\n', 'y.hdb'), /y\.hdb:1: expected "hash:size:Name"/);
  });

  it('hash lists: parse, match whole files, and name the bad line', async () => {
    const sha = createHash('sha256').update('bad file').digest('hex');
    const md5 = createHash('md5').update('other').digest('hex');
    const list = parseHashList(`# comment\nsha256:${sha} Test.Bad.File\nmd5:${md5.toUpperCase()}  Test.Other\n`, 'x.hashes');
    const inspector = new Inspector({ engines: [new SignatureEngine({ hashes: list })] });
    const r = await inspector.scanBuffer(b('bad file'), false, 1000, 'f');
    assert.deepEqual(r.findings.map((f) => f.threat), ['Test.Bad.File']);
    assert.deepEqual((await inspector.scanBuffer(b('other'), false, 1000)).findings.map((f) => f.signature), [`md5:${md5}`]);
    assert.throws(() => parseHashList('sha256:abc Short\n', 'x.hashes'), /x\.hashes:1:/);
  });
});
