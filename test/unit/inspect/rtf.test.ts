/**
 * RTF embedded objects: an OLE1 `Package` in `\objdata` gives its file under its own name, an
 * embedded OLE2 document is opened through the compound-file reader, and the obfuscations
 * exploit documents use on the hex (whitespace, line breaks, stray control words and groups,
 * `\bin` raw bytes) are read as Word reads them. Plain RTF gives no object.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { cfb, ole10Native } from '../../helpers/cfb.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
const scan = (rtf: string) => inspector.scanBuffer(Buffer.from(rtf, 'latin1'), false, 20_000, 'x.rtf');

const lp = (s: string): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(s.length + 1, 0);
  return Buffer.concat([b, Buffer.from(`${s}\0`, 'latin1')]);
};
/** An OLE1 embedded object of `className` with `native` data. */
function ole1(className: string, native: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x0501, 0);
  head.writeUInt32LE(2, 4);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(native.length, 0);
  return Buffer.concat([head, lp(className), lp(''), lp(''), size, native]);
}
const pkg = ole1('Package', ole10Native('invoice.exe', EICAR).subarray(4));
const wrap = (objdata: string): string => `{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}Hello{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata ${objdata}}}}`;

describe('RTF embedded objects', () => {
  it("an OLE1 Package's file comes out under its own name", async () => {
    const r = await scan(wrap(pkg.toString('hex')));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'x.rtf/invoice.exe'), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('obfuscated hex: whitespace, line breaks, stray control words and groups', async () => {
    const hex = pkg.toString('hex').replace(/(.{7})/g, '$1 \r\n').replace(/(.{31})/g, '$1\\par{\\*\\junk deadbeef 1}\\objupdate ');
    const r = await scan(wrap(hex));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'x.rtf/invoice.exe'), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('\\bin raw bytes instead of hex', async () => {
    const r = await scan(wrap(`\\bin${pkg.length} ${pkg.toString('latin1')}`));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === 'x.rtf/invoice.exe'));
  });

  it('an embedded OLE2 document is opened by the compound-file reader', async () => {
    const doc = cfb([{ name: 'WordDocument', data: Buffer.alloc(200, 0x41) }, { name: '\x01Ole10Native', data: ole10Native('macro.vbs', EICAR) }]);
    const r = await scan(wrap(ole1('Word.Document.8', doc).toString('hex')));
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.endsWith('/macro.vbs')), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('plain RTF: no object, no event', async () => {
    const r = await scan('{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\f0 Minutes of the meeting\\par Next week.\\par}');
    assert.deepEqual(r.files.map((f) => f.path), ['x.rtf']);
    assert.deepEqual(r.events, []);
  });
});
