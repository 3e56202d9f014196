/**
 * The text of a PDF as a member `(text)`, so data filtering and signatures read what a reader
 * shows: literal and hex strings, escapes, TJ arrays with kerning, ToUnicode CMaps, Flate
 * streams through the archive budget (a PDF bomb is stopped), and a PDF written by Ghostscript
 * (a real producer; skipped where `ps2pdf` is not installed).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import { DlpEngine } from '../../../src/inspect/engines/dlp.ts';
import type { Engine } from '../../../src/inspect/engines/engine.ts';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

/** An engine that keeps each object's bytes as text, by path. */
function textOf(): { engine: Engine; seen: Map<string, string> } {
  const seen = new Map<string, string>();
  const engine: Engine = {
    name: 'collect',
    open: (path) => {
      const parts: Buffer[] = [];
      return { write: (c) => void parts.push(Buffer.from(c)), end: async () => (seen.set(path, Buffer.concat(parts).toString('utf8')), []) };
    },
  };
  return { engine, seen };
}

/** A PDF with these streams (flate-compressed when asked). */
function pdf(streams: ReadonlyArray<{ data: string | Buffer; flate?: boolean }>): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n')];
  streams.forEach((s, i) => {
    const raw = Buffer.isBuffer(s.data) ? s.data : Buffer.from(s.data, 'latin1');
    const body = s.flate ? deflateSync(raw) : raw;
    parts.push(Buffer.from(`${i + 1} 0 obj\n<< /Length ${body.length}${s.flate ? ' /Filter /FlateDecode' : ''} >>\nstream\n`), body, Buffer.from('\nendstream\nendobj\n'));
  });
  parts.push(Buffer.from('%%EOF\n'));
  return Buffer.concat(parts);
}

async function extracted(bytes: Buffer): Promise<{ text: string | undefined; events: string[] }> {
  const { engine, seen } = textOf();
  const r = await new Inspector({ engines: [engine] }).scanBuffer(bytes, false, 10_000, 'd.pdf');
  return { text: seen.get('d.pdf/(text)'), events: r.events.map((e) => e.name) };
}

describe('PDF text', () => {
  it('literal strings with escapes, TJ kerning as word gaps, lines from moves down', async () => {
    const content = 'BT /F1 12 Tf 72 700 Td (Invoice \\(copy\\) \\\\ 100\\045) Tj 0 -14 Td [(IB) 20 (AN) -400 (DE89 3704 0044 0532 0130 00)] TJ 300 0 Td (same line) Tj ET';
    const { text } = await extracted(pdf([{ data: content, flate: true }]));
    assert.equal(text, 'Invoice (copy) \\ 100%\nIBAN DE89 3704 0044 0532 0130 00same line');
  });

  it('hex strings through ToUnicode CMaps (bfchar, bfrange with a start and with a list)', async () => {
    const cmap = 'begincmap 1 beginbfchar <0001> <0043> endbfchar 2 beginbfrange <0002> <0004> <0061> <0005> <0006> [<0058> <20AC>] endbfrange endcmap';
    const content = 'BT /F2 11 Tf 10 10 Td <0001000200030004> Tj 0 -12 Td <00050006> Tj ET';
    const { text } = await extracted(pdf([{ data: cmap, flate: true }, { data: content }]));
    assert.equal(text, 'Cabc\nX€');
  });

  it('data filtering and signatures see the text: card numbers counted, EICAR found inside the PDF', async () => {
    const content = `BT (cards 4111 1111 1111 1111 and 5500 0000 0000 0004) Tj 0 -12 Td (${EICAR.toString('latin1').replace(/[()\\]/g, '\\$&')}) Tj ET`;
    const dlp = new DlpEngine([{ key: 'p/pan', type: 'credit-card' }]);
    const r = await new Inspector({ engines: [new SignatureEngine(), dlp] }).scanBuffer(pdf([{ data: content, flate: true }]), false, 10_000, 'd.pdf');
    assert.deepEqual(r.findings.filter((f) => f.engine === 'signatures').map((f) => f.file.path), ['d.pdf/(text)']);
    assert.ok(r.findings.some((f) => f.engine === 'data-filtering' && f.file.path === 'd.pdf/(text)'), JSON.stringify(r.findings.map((f) => [f.engine, f.threat, f.file.path])));
  });

  it('a Flate bomb is skipped at the per-stream cap, and a one-colour bitmap is no bomb: text still found, no limit verdict', async () => {
    // Best-effort text must never block mail: a legitimate PDF's plain image inflates a
    // thousandfold, which would be an archive-ratio verdict (default block) if it counted.
    const image = Buffer.concat([Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /XObject /Subtype /Image /Width 4000 /Height 2500 /Filter /FlateDecode >>\nstream\n'), deflateSync(Buffer.alloc(10_000_000, 0xff)), Buffer.from('\nendstream\nendobj\n')]);
    const withText = Buffer.concat([image, pdf([{ data: 'BT (after the picture) Tj ET', flate: true }]).subarray(9)]);
    const pic = await extracted(withText);
    assert.equal(pic.text, 'after the picture');
    assert.deepEqual(pic.events, []);
    const t0 = Date.now();
    const bomb = await extracted(pdf([{ data: Buffer.alloc(300 * 1024 * 1024), flate: true }, { data: 'BT (still read) Tj ET', flate: true }]));
    assert.equal(bomb.text, 'still read');
    assert.deepEqual(bomb.events, []);
    assert.ok(Date.now() - t0 < 20_000);
    const damaged = pdf([{ data: 'BT (kept text) Tj ET', flate: true }]);
    const at = damaged.indexOf('stream\n') + 7;
    const cut = Buffer.concat([damaged.subarray(0, at + 12), Buffer.from('\nendstream\n%%EOF\n')]);
    const partial = await extracted(cut); // no throw: at most what inflated before the cut
    assert.ok(partial.text === undefined || 'kept text'.startsWith(partial.text), JSON.stringify(partial));
    assert.equal((await extracted(pdf([{ data: '1 0 0 1 0 0 cm 0 0 m 10 10 l S' }]))).text, undefined, 'a PDF without text has no (text) member');
  });

  it('a PDF or XML file too large to keep for its text is scanned whole, with no archive-limit verdict', async () => {
    const { DEFAULT_ARCHIVE_LIMITS } = await import('../../../src/inspect/archive/unpack.ts');
    const small = new Inspector({ engines: [], archives: { ...DEFAULT_ARCHIVE_LIMITS, maxContainerBytes: 64 * 1024 } });
    const big = pdf([{ data: `BT (${'x'.repeat(200_000)}) Tj ET` }]);
    assert.deepEqual((await small.scanBuffer(big, false, 10_000, 'big.pdf')).events, []);
    const xml = Buffer.from(`<?xml version="1.0"?><a>${'y'.repeat(200_000)}</a>`);
    assert.deepEqual((await small.scanBuffer(xml, false, 10_000, 'big.xml')).events, []);
    const zipTooBig = (await import('../../helpers/archives.ts')).zip([{ name: 'z', data: Buffer.alloc(200_000, 1), method: 'stored' }]);
    assert.deepEqual((await small.scanBuffer(zipTooBig, false, 10_000, 'z.zip')).events.map((e) => e.name), ['ARCHIVE_TOO_LARGE'], 'archives still are');
  });

  it('a PDF that Ghostscript wrote from troff: its words and the card number come out', { skip: existsSync('/usr/bin/ps2pdf') && existsSync('/usr/bin/groff') ? false : 'ps2pdf or groff missing (apt-get install ghostscript groff-base)' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-gs-'));
    writeFileSync(join(dir, 'r.tr'), 'Quarterly report\n.br\nPlease charge card 4111 1111 1111 1111 for the invoice.\n');
    const ps = spawnSync('groff', ['-Tps', join(dir, 'r.tr')]);
    assert.equal(ps.status, 0, String(ps.stderr));
    writeFileSync(join(dir, 'r.ps'), ps.stdout);
    assert.equal(spawnSync('ps2pdf', [join(dir, 'r.ps'), join(dir, 'r.pdf')]).status, 0);
    const { text } = await extracted(readFileSync(join(dir, 'r.pdf')));
    assert.match(text ?? '', /Quarterly report\s+Please charge card 4111 1111 1111 1111 for the invoice\./);
  });
});

describe('Office Open XML text', () => {
  it('a card number Word split across runs is whole in the text of word/document.xml; entities decoded, paragraphs on lines', async () => {
    const { zip } = await import('../../helpers/archives.ts');
    const documentXml =
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' +
      '<w:p><w:r><w:t>Tom &amp; Jerry</w:t></w:r></w:p>' +
      '<w:p><w:r><w:t xml:space="preserve">Card 4111 11</w:t></w:r><w:proofErr w:type="spellStart"/><w:r><w:rPr><w:b/></w:rPr><w:t>11 1111 1111</w:t></w:r></w:p>' +
      '</w:body></w:document>';
    const docx = zip([
      { name: '[Content_Types].xml', data: Buffer.from('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml"/></Types>') },
      { name: 'word/document.xml', data: Buffer.from(documentXml) },
    ]);
    const { engine, seen } = textOf();
    const dlp = new DlpEngine([{ key: 'p/pan', type: 'credit-card' }]);
    const r = await new Inspector({ engines: [engine, dlp] }).scanBuffer(docx, false, 10_000, 'letter.docx');
    assert.equal(seen.get('letter.docx/word/document.xml/(text)'), 'Tom & Jerry\nCard 4111 1111 1111 1111');
    assert.ok(!seen.has('letter.docx/[Content_Types].xml/(text)'), 'markup without text gives no member');
    assert.deepEqual(r.findings.filter((f) => f.engine === 'data-filtering').map((f) => f.file.path), ['letter.docx/word/document.xml/(text)']);
    // A number not split across runs is in the markup too: counted once, in the text.
    const plain = zip([{ name: 'word/document.xml', data: Buffer.from('<?xml version="1.0"?><w:document><w:p><w:r><w:t>4111 1111 1111 1111</w:t></w:r></w:p></w:document>') }]);
    const once = await new Inspector({ engines: [dlp] }).scanBuffer(plain, false, 10_000, 'p.docx');
    assert.deepEqual(once.findings.map((f) => [f.file.path, f.signature.match(/x(\d+)/)?.[1]]), [['p.docx/word/document.xml/(text)', '1']]);
  });
});

describe('text extraction against crafted input (each took 10 s to minutes before)', () => {
  const flatePdf = (content: string) => pdf([{ data: content, flate: true }]);
  const cases: ReadonlyArray<readonly [string, Buffer, string]> = [
    ['XML: 2 MB of "<"', Buffer.from(`<?xml version="1.0"?>${'<'.repeat(2_000_000)}`), 'x.xml'],
    ['XML: "<w:tab" 500,000 times without ">"', Buffer.from(`<?xml version="1.0"?>${'<w:tab'.repeat(500_000)}`), 'x.xml'],
    ['XML: unterminated comments', Buffer.from(`<?xml version="1.0"?>${'<!--'.repeat(500_000)}`), 'x.xml'],
    ['PDF: escaped parentheses that never close', flatePdf(`BT (${'\\('.repeat(1_000_000)} Tj ET`), 'x.pdf'],
    ['PDF: "beginbfchar" without an end, 500,000 times', flatePdf(`begincmap ${'beginbfchar <00'.repeat(500_000)}`), 'x.pdf'],
    ['PDF: 20,000 bfranges over the same 65,535 codes', flatePdf(`begincmap ${'beginbfrange <0001> <FFFF> <0041> endbfrange '.repeat(20_000)}`), 'x.pdf'],
    ['PDF: a million "stream" keywords', Buffer.from(`%PDF-1.7\n${'stream\n'.repeat(1_000_000)}`), 'x.pdf'],
  ];
  for (const [name, bytes, file] of cases) {
    it(name, async () => {
      const t0 = Date.now();
      await new Inspector({ engines: [] }).scanBuffer(bytes, false, 60_000, file);
      assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
    });
  }
});
