/**
 * iCalendar invitations carry files inline (ATTACH;ENCODING=BASE64, folded lines): each is a
 * file of its own, named by its FILENAME parameter, and scanned. A URI attachment is a
 * reference, not content; an ordinary invitation gives no object.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR, SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';

const inspector = new Inspector({ engines: [new SignatureEngine()] });
const fold = (line: string): string => line.replace(/(.{75})/g, '$1\r\n ');
const ics = (attach: string): Buffer =>
  Buffer.from(`BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Meeting\r\n${attach}END:VEVENT\r\nEND:VCALENDAR\r\n`);
const mail = (body: Buffer): Buffer =>
  Buffer.concat([Buffer.from('From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n'), body]);

describe('calendar attachments', () => {
  it('an inline base64 ATTACH (folded) is a file, named by X-FILENAME, scanned', async () => {
    const body = ics(`${fold(`ATTACH;FMTTYPE=application/octet-stream;ENCODING=BASE64;VALUE=BINARY;X-FILENAME=agenda.exe:${EICAR.toString('base64')}`)}\r\n`);
    const r = await inspector.scanBuffer(mail(body), true, 20_000, 'msg');
    const f = r.findings.find((x) => x.threat === 'EICAR-Test-File');
    assert.equal(f?.file.path, 'msg/attach1');
    assert.equal(f?.file.name, 'agenda.exe');
  });
  it('a URI attachment and an ordinary invitation give no object', async () => {
    const r = await inspector.scanBuffer(mail(ics('ATTACH;FMTTYPE=application/pdf:https://example.com/a.pdf\r\n')), true, 20_000, 'msg');
    assert.deepEqual(r.files.map((x) => x.path), ['message', 'msg']);
  });
});
