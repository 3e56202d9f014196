/**
 * XDP (Adobe's XML Data Package, XFA forms): Acrobat opens the PDF an .xdp carries base64 in
 * its `<chunk>` elements, so the inspector opens it too — the PDF is a member, scanned and
 * unpacked like any PDF — and an XDP without a PDF packet is only XML text.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { byteByByte } from '../../helpers/chunking.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n1 0 obj\n<< /Length 68 >>\nstream\n'), EICAR, Buffer.from('\nendstream\nendobj\n%%EOF\n')]);
const xdp = (inner: string): Buffer =>
  Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<?xfa generator="AdobeDesigner_V7.0"?>\n<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">\n${inner}\n</xdp:xdp>\n`);

describe('XDP', () => {
  it('the PDF in the chunks (split over lines and elements) is a member, and what it holds is found', async () => {
    const b64 = pdf.toString('base64');
    const bytes = xdp(`<pdf xmlns="http://ns.adobe.com/xdp/pdf/"><document><chunk>${b64.slice(0, 40)}\n${b64.slice(40, 100)}</chunk><chunk>${b64.slice(100)}</chunk></document></pdf>`);
    const f = inspector.beginFile('form.xdp');
    for (const c of byteByByte(bytes)) f.write(c);
    const r = await f.end(10_000);
    assert.equal(r.files.find((x) => x.path === 'form.xdp/document.pdf')?.detectedType, 'pdf', JSON.stringify(r.files.map((x) => x.path)));
    assert.ok(r.findings.some((x) => x.threat === 'EICAR-Test-File' && x.file.path === 'form.xdp/document.pdf'));
  });

  it('without the XML declaration (Acrobat opens it by its name all the same)', async () => {
    const bare = Buffer.from(`<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><pdf xmlns="http://ns.adobe.com/xdp/pdf/"><document><chunk>${pdf.toString('base64')}</chunk></document></pdf></xdp:xdp>`);
    const r = await inspector.scanBuffer(bare, false, 10_000, 'form.xdp');
    assert.ok(r.findings.some((x) => x.threat === 'EICAR-Test-File' && x.file.path === 'form.xdp/document.pdf'), JSON.stringify(r.files.map((x) => [x.path, x.detectedType])));
  });

  it('an XDP with form data only: its text, no PDF member, no event', async () => {
    const r = await inspector.scanBuffer(xdp('<xfa:datasets xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/"><xfa:data><name>Alice</name></xfa:data></xfa:datasets>'), false, 10_000, 'data.xdp');
    assert.deepEqual(r.files.map((x) => x.path), ['data.xdp', 'data.xdp/(text)']);
    assert.deepEqual(r.events, []);
  });
});
