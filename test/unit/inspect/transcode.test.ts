/**
 * Text in UTF-16, UTF-32 and UTF-7 (encodings where ASCII letters are not ASCII bytes) is
 * decoded into an object of its own, `P/(text)`, before signatures, data filtering and the
 * smuggling extractor read it — in MIME parts (by byte-order mark, declared charset, or the
 * NUL pattern alone) and in archive members. Python's codecs are the reference: the decoded
 * object is byte-for-byte what Python decodes, for texts Python itself encoded. Clean
 * look-alikes (a UTF-16 newsletter) stay clean; other charsets and binaries get no such object.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { textEncodingOf, TextTranscoder } from '../../../src/inspect/decode/transcode.ts';
import { DlpEngine } from '../../../src/inspect/engines/dlp.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { identify } from '../../../src/inspect/file-type.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import type { LeafSink } from '../../../src/inspect/mime/body-decoders.ts';
import { zip } from '../../helpers/archives.ts';
import { randomChunks } from '../../helpers/chunking.ts';

const inspector = new Inspector({ engines: [new SignatureEngine(), new DlpEngine([{ key: 'p/pan', type: 'credit-card' }])] });
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const b64 = (b: Buffer): string => b.toString('base64').replace(/.{76}/g, '$&\r\n');
const message = (body: Buffer, contentType: string): Buffer =>
  Buffer.from(`Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: ${contentType}\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(body)}\r\n--b--\r\n`, 'latin1');

/** Python encodes (codec, text): the reference writer. */
function pyEncode(codec: string, text: string): Buffer {
  return execFileSync('python3', ['-c', `import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().decode('utf-8').encode(${JSON.stringify(codec)}))`], { input: Buffer.from(text, 'utf8') });
}
/** Python decodes (codec, bytes) to UTF-8: the reference reader (a BOM is dropped, as clients do). */
function pyDecode(codec: string, bytes: Buffer): Buffer {
  return execFileSync('python3', ['-c', `import sys; t = sys.stdin.buffer.read().decode(${JSON.stringify(codec)}); sys.stdout.buffer.write(t.lstrip('\\ufeff').encode('utf-8'))`], { input: bytes });
}

const EICAR_TEXT = EICAR.toString('latin1');
const PROSE = `Grüße, 東京 — the invoice is below.\r\n${EICAR_TEXT}\r\ncard 4111 1111 1111 1111, ±∞ ok\r\n`;

describe('text in UTF-16, UTF-32, UTF-7', () => {
  const CASES: ReadonlyArray<readonly [string, string, string, string]> = [
    // [what, Python codec, the declared Content-Type, Python's decoding codec]
    ['UTF-16 with a BOM (little-endian, as Python and Notepad write it), no charset', 'utf-16', 'text/plain', 'utf-16'],
    ['UTF-16LE without a BOM, charset=utf-16le', 'utf-16-le', 'text/plain; charset=utf-16le', 'utf-16-le'],
    ['UTF-16BE without a BOM, charset=utf-16 (RFC 2781: big-endian)', 'utf-16-be', 'text/html; charset="UTF-16"', 'utf-16-be'],
    ['UTF-16LE without a BOM and without a charset: the NUL pattern', 'utf-16-le', 'application/octet-stream', 'utf-16-le'],
    ['UTF-32 with a BOM', 'utf-32', 'text/plain', 'utf-32'],
    ['UTF-32BE, charset=utf-32be', 'utf-32-be', 'text/plain; charset=utf-32be', 'utf-32-be'],
    ['UTF-7, charset=utf-7', 'utf-7', 'text/plain; charset=utf-7', 'utf-7'],
  ];
  for (const [what, codec, contentType, back] of CASES) {
    it(`${what}: EICAR found in msg/1/(text), which is what Python decodes; the card counted once`, async () => {
      const body = pyEncode(codec, PROSE);
      const r = await inspector.scanBuffer(message(body, contentType), true, 10_000);
      const text = r.files.find((f) => f.path === 'msg/1/(text)');
      assert.ok(text, r.files.map((f) => f.path).join(' '));
      assert.equal(text.sha256, sha(pyDecode(back, body)), 'the decoded text is byte-for-byte what Python decodes');
      assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'msg/1/(text)'), JSON.stringify(r.findings.map((f) => [f.threat, f.file.path])));
      const cards = r.findings.filter((f) => f.engine === 'data-filtering');
      assert.deepEqual(cards.map((f) => [f.file.path, f.signature.split(':')[1]]), [['msg/1/(text)', 'p/pan x1']]);
      assert.ok(r.files.find((f) => f.path === 'msg/1')?.textEncoding);
    });
  }

  it('UTF-7 that base64-encodes every letter (no direct characters, as an attacker writes it) is read too', async () => {
    const shifted = `+${Buffer.from(EICAR_TEXT, 'utf16le').swap16().toString('base64').replace(/=+$/, '')}-`;
    const r = await inspector.scanBuffer(message(Buffer.from(`hello ${shifted} bye`, 'latin1'), 'text/plain; charset=UTF-7'), true, 10_000);
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'msg/1/(text)'));
  });

  it('a UTF-16 text file inside a zip is decoded as a member is', async () => {
    const z = zip([{ name: 'readme.txt', data: pyEncode('utf-16', PROSE) }]);
    const r = await inspector.scanBuffer(z, false, 10_000, 'docs.zip');
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'docs.zip/readme.txt/(text)'), r.files.map((f) => f.path).join(' '));
  });

  it('a UTF-16 page that smuggles an executable in a data: URI: decoded, then the smuggling is found', async () => {
    const page = `<html><body><a href="data:application/octet-stream;base64,${Buffer.concat([Buffer.from('MZ'), Buffer.alloc(300, 0x90)]).toString('base64')}" download="setup.exe">x</a></body></html>`;
    const r = await inspector.scanBuffer(message(pyEncode('utf-16', page), 'text/html; charset=utf-16'), true, 10_000);
    assert.ok(r.events.some((e) => e.name === 'HTML_SMUGGLING' && e.where.startsWith('msg/1/(text)/')), JSON.stringify(r.events));
  });

  it('clean look-alikes: a UTF-16 newsletter has no finding; Latin-1, Shift_JIS and UTF-8 parts and binaries get no decoded object', async () => {
    const news = await inspector.scanBuffer(message(pyEncode('utf-16', 'Our newsletter: 10 % off, ünïcödé, 東京.\r\n'), 'text/html; charset=utf-16'), true, 10_000);
    assert.deepEqual(news.findings, []);
    for (const [codec, ct, text] of [
      ['latin-1', 'text/plain; charset=iso-8859-1', 'Grüße 4111 1111 1111 1111\r\n'],
      ['shift_jis', 'text/plain; charset=shift_jis', '東京の請求書 4111 1111 1111 1111\r\n'],
      ['utf-8', 'text/plain; charset=utf-8', 'Grüße, 東京 4111 1111 1111 1111\r\n'],
    ] as const) {
      const r = await inspector.scanBuffer(message(pyEncode(codec, text), ct), true, 10_000);
      assert.equal(r.files.some((f) => f.path.endsWith('(text)')), false, codec);
      assert.equal(r.findings.filter((f) => f.engine === 'data-filtering').length, 1, `${codec}: the card counted once`);
    }
    const pe = Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00', 'latin1'), Buffer.alloc(4000)]);
    assert.equal(textEncodingOf(pe, null), null);
    assert.equal(textEncodingOf(Buffer.alloc(4096), null), null, 'all zeros is no text');
    assert.equal(textEncodingOf(Buffer.from('plain ASCII text, long enough to be judged by its pattern'), null), null);
  });

  it('is typed by what it says: a UTF-16 VBScript is vbs, a UTF-16 text is text (not the MPEG audio FF FE resembles)', async () => {
    const vbs = pyEncode('utf-16', 'Set sh = CreateObject("WScript.Shell")\r\nsh.Run "calc.exe"\r\n');
    assert.equal((await identify(vbs, vbs.subarray(-512))).type, 'vbs');
    const txt = pyEncode('utf-16', 'Hello, this is just a letter.\r\n');
    assert.equal((await identify(txt, txt.subarray(-512))).type, 'text');
  });

  it('hostile input is bounded: an 8 MB UTF-7 shift that never ends, 8 MB of plus signs, 8 MB of UTF-16 NULs', async () => {
    const started = Date.now();
    for (const [body, ct] of [
      [Buffer.from(`+${'AEEAQgBD'.repeat(1 << 20)}`, 'latin1'), 'text/plain; charset=utf-7'],
      [Buffer.alloc(8 << 20, '+'), 'text/plain; charset=utf-7'],
      [Buffer.alloc(8 << 20, 0), 'text/plain; charset=utf-16'],
    ] as const) {
      const r = await inspector.scanBuffer(message(body, ct), true, 60_000);
      assert.ok(r.files.some((f) => f.path === 'msg/1/(text)'));
    }
    assert.ok(Date.now() - started < 60_000, 'no hang');
  });

  it('the decision does not depend on chunking: UTF-16 whose first units hold no NUL, written 4 bytes first, is still decoded', async () => {
    // Found by the archive fuzz: `PK` and U+FEFF's bytes, then UTF-16LE text by its NUL pattern.
    const bytes = Buffer.concat([Buffer.from('PK\xff\xfe', 'latin1'), Buffer.from(`utf-16 text ${EICAR_TEXT}`, 'utf16le')]);
    for (const cut of [1, 4, 5, 100, bytes.length]) {
      const f = inspector.beginFile('x');
      f.write(bytes.subarray(0, cut));
      f.write(bytes.subarray(cut));
      const r = await f.end(10_000);
      assert.deepEqual(r.findings.map((x) => `${x.threat}@${x.file.path}`), ['EICAR-Test-File@x/(text)'], `first chunk ${cut} bytes`);
    }
  });

  it('streams: any chunking gives the same decoded bytes (surrogate pairs, UTF-7 shifts and UTF-32 units cut anywhere)', () => {
    // A shift longer than the decoder holds (東京 × 3000 is one base64 run of 16,000 characters).
    const text = `😀 mixed ${'ab+c'.repeat(50)} 𝄞 ${EICAR_TEXT} ${'東京'.repeat(3000)} ende`;
    for (const codec of ['utf-16', 'utf-16-be', 'utf-32', 'utf-7']) {
      const bytes = pyEncode(codec, text);
      const expected = pyDecode(codec.replace('-be', '-be'), bytes);
      for (const seed of [1, 2, 3, 4, 5]) {
        const out: Buffer[] = [];
        const sink: LeafSink = { write: (c) => void out.push(Buffer.from(c)), end: () => {} };
        const charset = codec === 'utf-16-be' ? 'utf-16be' : codec;
        const t = new TextTranscoder(charset, () => sink);
        for (const c of randomChunks(bytes, seed, 7)) t.write(c);
        t.end();
        assert.equal(Buffer.concat(out).toString('utf8'), expected.toString('utf8'), `${codec}, seed ${seed}`);
      }
    }
  });
});
