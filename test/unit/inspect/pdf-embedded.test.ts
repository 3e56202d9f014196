/**
 * Files embedded in PDFs (attachments and file-attachment annotations: /EmbeddedFile streams)
 * are members of the PDF, named by their filespec, through every standard filter: Flate (also
 * with a PNG predictor), LZW, ASCIIHex, ASCII85, RunLength and chains of them; with `#xx`
 * escapes in names; with the filespec only inside a compressed object stream. An image codec
 * on an embedded file is ARCHIVE_UNSUPPORTED, an encrypted PDF's embedded file
 * ARCHIVE_ENCRYPTED — never passed silently; a harmless attachment is a clean member.
 */

import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

/** A PDF of these objects (numbered from 1), with an xref table and a trailer. */
function pdf(objects: Array<string | Buffer>, trailer = ''): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  const offsets: number[] = [];
  let at = parts[0]!.length;
  objects.forEach((o, i) => {
    offsets.push(at);
    const body = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), typeof o === 'string' ? Buffer.from(o, 'latin1') : o, Buffer.from('\nendobj\n')]);
    parts.push(body);
    at += body.length;
  });
  const xref = `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  parts.push(Buffer.from(`${xref}trailer\n<< /Size ${objects.length + 1} /Root 1 0 R ${trailer}>>\nstartxref\n${at}\n%%EOF\n`));
  return Buffer.concat(parts);
}

const stream = (dict: string, data: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`<< ${dict} /Length ${data.length} >>\nstream\n`, 'latin1'), data, Buffer.from('\nendstream', 'latin1')]);

/** Catalog, names tree with one filespec for object 4, the page tree, and the embedded file. */
function withAttachment(fileDict: string, data: Buffer, name = 'eicar.com', trailer = ''): Buffer {
  return pdf(
    [
      '<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(x) 3 0 R] >> >> >>',
      '<< /Type /Pages /Kids [] /Count 0 >>',
      `<< /Type /Filespec /F (${name}) /UF (${name}) /EF << /F 4 0 R >> >>`,
      stream(`/Type /EmbeddedFile /Params << /Size ${EICAR.length} >> ${fileDict}`, data),
    ],
    trailer,
  );
}

function lzwEncode(data: Buffer): Buffer {
  const dict = new Map<string, number>();
  for (let i = 0; i < 256; i++) dict.set(String.fromCharCode(i), i);
  let next = 258;
  let width = 9;
  const codes: Array<[number, number]> = [[256, 9]];
  let w = '';
  for (const c of data.toString('latin1')) {
    if (dict.has(w + c)) {
      w += c;
      continue;
    }
    codes.push([dict.get(w)!, width]);
    dict.set(w + c, next++);
    if (next + 1 > 1 << width && width < 12) width++; // EarlyChange 1
    w = c;
  }
  if (w) codes.push([dict.get(w)!, width]);
  codes.push([257, width]);
  let acc = 0n;
  let bits = 0;
  const out: number[] = [];
  for (const [code, n] of codes) {
    acc = (acc << BigInt(n)) | BigInt(code);
    bits += n;
    while (bits >= 8) {
      out.push(Number((acc >> BigInt(bits - 8)) & 255n));
      bits -= 8;
    }
  }
  if (bits > 0) out.push(Number((acc << BigInt(8 - bits)) & 255n));
  return Buffer.from(out);
}

const a85 = (b: Buffer): Buffer => {
  let out = '';
  for (let i = 0; i < b.length; i += 4) {
    const chunk = Buffer.alloc(4);
    b.copy(chunk, 0, i, i + 4);
    let v = chunk.readUInt32BE(0);
    const n = Math.min(4, b.length - i);
    const digits: string[] = [];
    for (let k = 0; k < 5; k++) {
      digits.unshift(String.fromCharCode((v % 85) + 33));
      v = Math.floor(v / 85);
    }
    out += digits.slice(0, n + 1).join('');
  }
  return Buffer.from(`${out}~>`);
};

/** PNG "Sub" rows (predictor 11) of `columns` bytes, filter byte first. */
function pngSub(b: Buffer, columns: number): Buffer {
  const rows: Buffer[] = [];
  for (let r = 0; r < b.length; r += columns) {
    const row = Buffer.alloc(columns);
    b.copy(row, 0, r, r + columns);
    const enc = Buffer.alloc(columns + 1);
    enc[0] = 1;
    for (let i = 0; i < columns; i++) enc[i + 1] = (row[i]! - (i > 0 ? row[i - 1]! : 0)) & 255;
    rows.push(enc);
  }
  return Buffer.concat(rows);
}

const scan = (bytes: Buffer) => new Inspector({ engines: [new SignatureEngine()] }).scanBuffer(bytes, false, 20_000, 'doc.pdf');
const found = (r: Awaited<ReturnType<typeof scan>>, path = 'doc.pdf/eicar.com'): boolean => r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === path);

describe('files embedded in a PDF', () => {
  const cases: ReadonlyArray<readonly [string, string, Buffer]> = [
    ['FlateDecode', '/Filter /FlateDecode', deflateSync(EICAR)],
    ['Fl (abbreviated)', '/Filter /Fl', deflateSync(EICAR)],
    ['ASCIIHexDecode, with whitespace', '/Filter /ASCIIHexDecode', Buffer.from(`${EICAR.toString('hex').replace(/(..)/g, '$1 ')}>`)],
    ['ASCII85Decode', '/Filter /ASCII85Decode', a85(EICAR)],
    ['RunLengthDecode', '/Filter /RunLengthDecode', Buffer.concat([Buffer.from([EICAR.length - 1]), EICAR, Buffer.from([128])])],
    ['LZWDecode', '/Filter /LZWDecode', lzwEncode(EICAR)],
    ['a chain: ASCIIHex of Flate', '/Filter [/ASCIIHexDecode /FlateDecode]', Buffer.from(`${deflateSync(EICAR).toString('hex')}>`)],
    ['Flate with a PNG predictor', '/Filter /FlateDecode /DecodeParms << /Predictor 11 /Columns 8 >>', deflateSync(pngSub(EICAR, 8))],
    ['no filter', '', EICAR],
  ];
  for (const [name, dict, data] of cases) {
    it(`${name}: the file is a member of the PDF, found`, async () => {
      const r = await scan(withAttachment(dict, data));
      assert.ok(found(r), `${JSON.stringify(r.files.map((f) => f.path))} ${JSON.stringify(r.events)}`);
    });
  }

  it('names with #xx escapes are read as a reader reads them', async () => {
    const b = withAttachment('/Filter /Flate#44ecode', deflateSync(EICAR)).toString('latin1').replace('/Type /EmbeddedFile', '/Type /Embedded#46ile');
    assert.ok(found(await scan(Buffer.from(b, 'latin1'))));
  });

  it('a filespec only inside a compressed object stream still names the file', async () => {
    const objstm = deflateSync(Buffer.from('3 0 << /Type /Filespec /UF (inner.exe) /EF << /F 4 0 R >> >>'));
    const b = pdf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [] /Count 0 >>',
      stream('/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode', objstm),
      stream('/Type /EmbeddedFile /Filter /FlateDecode', deflateSync(EICAR)),
    ]);
    assert.ok(found(await scan(b), 'doc.pdf/inner.exe'));
  });

  it('an image codec on an embedded file: ARCHIVE_UNSUPPORTED', async () => {
    const r = await scan(withAttachment('/Filter /DCTDecode', EICAR));
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_UNSUPPORTED' && /DCTDecode/.test(e.detail ?? '')), JSON.stringify(r.events));
  });

  it('an encrypted PDF with an embedded file: ARCHIVE_ENCRYPTED', async () => {
    const r = await scan(withAttachment('/Filter /FlateDecode', Buffer.from('not really deflate'), 'x.exe', '/Encrypt 9 0 R '));
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_ENCRYPTED'), JSON.stringify(r.events));
  });

  it('damaged Flate data: ARCHIVE_CORRUPT', async () => {
    const r = await scan(withAttachment('/Filter /FlateDecode', Buffer.from('\x78\x9c not deflate at all', 'latin1')));
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT'), JSON.stringify(r.events));
  });

  it('a harmless attachment: a clean member, no event', async () => {
    const r = await scan(withAttachment('/Filter /FlateDecode', deflateSync(Buffer.from('minutes of the meeting\n')), 'minutes.txt'));
    assert.deepEqual(r.findings, []);
    assert.deepEqual(r.events, []);
    assert.ok(r.files.some((f) => f.path === 'doc.pdf/minutes.txt' && f.size === 23));
  });
});
