/**
 * message/external-body (RFC 2046 §5.2.3): the content is not in the message; a reader fetches
 * it. The reference is recorded (MIME_EXTERNAL_BODY, informational: the record and the log
 * say where it points), for URL (RFC 2017), anon-ftp and local-file access types.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { Policy } from '../../../src/policy/decide.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';

const message = (params: string): Buffer =>
  Buffer.from(
    `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee the invoice\r\n` +
      `--b\r\nContent-Type: message/external-body; ${params}\r\n\r\nContent-Type: application/octet-stream\r\n\r\n--b--\r\n`,
    'latin1',
  );

describe('message/external-body', () => {
  const CASES: ReadonlyArray<readonly [string, string]> = [
    ['access-type=URL; URL="https://files.example.net/inv oice.exe"', 'url https://files.example.net/invoice.exe'],
    ['access-type=anon-ftp; site="ftp.example.org"; directory="pub"; name="setup.exe"', 'anon-ftp ftp.example.org/pub/setup.exe'],
    ['access-type=local-file; name="/srv/share/run.bat"; site="fs.example.org"', 'local-file fs.example.org:/srv/share/run.bat'],
  ];
  for (const [params, detail] of CASES) {
    it(`records where it points: ${detail}`, async () => {
      const r = await new Inspector({ engines: [new SignatureEngine()] }).scanBuffer(message(params), true, 10_000);
      const e = r.events.find((x) => x.name === 'MIME_EXTERNAL_BODY');
      assert.ok(e, JSON.stringify(r.events));
      assert.equal(e.where, 'msg/2');
      assert.equal(e.detail, detail);
    });
  }

  it('is informational: the policy passes it (the traffic record names it)', async () => {
    const cfg = parseConfig('listeners:\n  - { name: in, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\n');
    const scan = () => new Inspector({ engines: [new SignatureEngine()] }).scanBuffer(message('access-type=URL; URL="https://x.example/a"'), true, 10_000);
    const { decision } = await new Policy(cfg).evaluate({ listener: 'in', clientAddress: '192.0.2.1', mailFrom: 'a@b', rcptTo: ['c@d'], serverAddress: '127.0.0.1', user: null, direction: 'inbound' }, scan);
    assert.equal(decision.action, 'allow');
  });
});
