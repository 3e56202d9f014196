/**
 * OLE2 compound files opened as containers: every stream a member (small ones reassembled from
 * the mini stream, also when their mini sectors are scattered), an OLE Package's file under its
 * own name, an Outlook attachment named by its file name, an OLE object inside an OOXML
 * document reached through the zip. Checked against Python's olefile where installed: every
 * stream it reads, the inspector scanned. A damaged compound file: ARCHIVE_CORRUPT.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { zip } from '../../helpers/archives.ts';
import { cfb, ole10Native } from '../../helpers/cfb.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
const scan = (b: Buffer, name: string) => inspector.scanBuffer(b, false, 20_000, name);
const filler = (n: number, c = 'w'): Buffer => Buffer.alloc(n, c);
const found = (r: Awaited<ReturnType<typeof scan>>, path: string): boolean => r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path === path);

const doc = (fragment: boolean): Buffer =>
  cfb(
    [
      { name: 'WordDocument', data: filler(300) },
      { name: '\x01CompObj', data: filler(100, 'c') },
      { name: 'ObjectPool', children: [{ name: '_1234', children: [{ name: '\x01Ole10Native', data: ole10Native('invoice.exe', EICAR) }] }] },
      { name: 'Data', data: Buffer.concat([filler(5000), EICAR, filler(100)]) },
    ],
    { fragment },
  );

describe('OLE2 compound files', () => {
  for (const fragment of [false, true]) {
    it(`an OLE Package's file is a member under its own name${fragment ? ' (mini sectors scattered)' : ''}`, async () => {
      const r = await scan(doc(fragment), 'x.doc');
      assert.ok(found(r, 'x.doc/ObjectPool/_1234/invoice.exe'), JSON.stringify(r.files.map((f) => f.path)));
      assert.ok(found(r, 'x.doc/Data'), 'a large stream, from regular sectors');
      assert.deepEqual(r.events, []);
    });
  }

  it("an Outlook .msg attachment is named by the attachment's file name", async () => {
    const msg = cfb([
      { name: '__substg1.0_0037001F', data: Buffer.from('Invoice\0', 'utf16le') },
      {
        name: '__attach_version1.0_#00000000',
        children: [
          { name: '__substg1.0_3707001F', data: Buffer.from('report.exe\0', 'utf16le') },
          { name: '__substg1.0_37010102', data: EICAR },
        ],
      },
    ]);
    const r = await scan(msg, 'mail.msg');
    assert.ok(found(r, 'mail.msg/__attach_version1.0_#00000000/report.exe'), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('an OLE object embedded in a docx is reached through the zip', async () => {
    const docx = zip([
      { name: '[Content_Types].xml', data: Buffer.from('<?xml version="1.0"?><Types/>') },
      { name: 'word/embeddings/oleObject1.bin', data: cfb([{ name: '\x01Ole10Native', data: ole10Native('run.bat', EICAR) }]) },
    ]);
    const r = await scan(docx, 'letter.docx');
    assert.ok(r.findings.some((f) => f.threat === 'EICAR-Test-File' && f.file.path.endsWith('oleObject1.bin/run.bat')), JSON.stringify(r.files.map((f) => f.path)));
  });

  it('a file with an OLE2 signature and nothing readable after it: ARCHIVE_CORRUPT', async () => {
    const r = await scan(Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(600, 0x41)]), 'bad.doc');
    assert.ok(r.events.some((e) => e.name === 'ARCHIVE_CORRUPT' && /OLE2/.test(e.detail ?? '')), JSON.stringify(r.events));
  });

  it('every stream olefile reads was scanned', { skip: existsSync('/usr/lib/python3/dist-packages/olefile') ? false : 'python3-olefile is not installed (.ci/run installs it)' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-ole-'));
    const file = join(dir, 'x.doc');
    writeFileSync(file, doc(true));
    const script = 'import olefile,sys,hashlib\no=olefile.OleFileIO(sys.argv[1])\nfor s in o.listdir():\n  print(hashlib.sha256(o.openstream(s).read()).hexdigest())\n';
    const listed = execFileSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(listed.length, 4, 'olefile reads four streams');
    const r = await scan(doc(true), 'x.doc');
    const scanned = new Set(r.files.map((f) => f.sha256));
    for (const h of listed) assert.ok(scanned.has(h), `olefile read a stream the inspector did not scan: ${h}`);
    assert.ok(scanned.has(createHash('sha256').update(EICAR).digest('hex')));
  });
});
