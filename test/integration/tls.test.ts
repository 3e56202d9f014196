/**
 * TLS cannot be used to bypass inspection: terminate (our certificate, content inspected in
 * clear), strip (no STARTTLS for clients), passthrough (refused by default; allowed only as a
 * logged, uninspectable choice), implicit TLS listeners, STARTTLS to the upstream, and the
 * plaintext-injection class (CVE-2011-0411). Real peers: nodemailer, smtp-server, node's tls.
 */

import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { makeCert, type TestCert } from '../helpers/certs.ts';
import { EICAR_MESSAGES } from '../helpers/messages.ts';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const envelope = { from: 'a@example.org', to: ['b@example.com'] };
const clean = 'Subject: tls\r\n\r\nclean over tls\r\n';

describe('TLS', () => {
  let cert: TestCert;
  let plainUp: UpstreamPeer;
  let tlsUp: UpstreamPeer;
  before(async () => {
    cert = makeCert();
    plainUp = await startUpstream();
    tlsUp = await startUpstream({ key: cert.key, cert: cert.cert, disabledCommands: ['AUTH'] });
  });
  after(async () => {
    await plainUp.close();
    await tlsUp.close();
  });
  const tlsListener = () => `tls: { cert: ${JSON.stringify(cert.certFile)}, key: ${JSON.stringify(cert.keyFile)} }`;

  for (const mode of ['store-and-forward', 'cut-through'] as const) {
    it(`terminate (${mode}): STARTTLS offered; mail inspected inside TLS; upstream leg upgraded too`, async () => {
      const gw = await startGateway({ upstreamPort: tlsUp.port, forwarding: mode, listener: tlsListener() });
      try {
        const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
        const before = tlsUp.messages.length;
        await t.sendMail({ envelope, raw: clean });
        assert.equal(tlsUp.messages.length, before + 1);
        assert.equal(tlsUp.messages[before]!.secure, true, 'the gateway used STARTTLS to the upstream');
        const closedBefore = tlsUp.closed;
        await assert.rejects(t.sendMail({ envelope, raw: EICAR_MESSAGES['base64 attachment']! }), (e: { responseCode?: number }) => e.responseCode === 541);
        assert.equal(tlsUp.messages.length, before + 1, 'EICAR inside TLS was still blocked');
        // The TLS upstream leg is ended too (cut-through: a TCP reset under the TLS layer).
        await tlsUp.waitClosed(closedBefore + 1);
      } finally {
        await gw.stop();
      }
    });
  }

  it('cut-through reject resets the upstream; the new upstream connection is TLS again', async () => {
    const gw = await startGateway({ upstreamPort: tlsUp.port, forwarding: 'cut-through', action: 'reject' });
    try {
      const before = tlsUp.messages.length;
      const c = await RawClient.connect(gw.port);
      assert.match((await c.begin('a@example.org', ['b@example.com']))!, /^354/);
      c.write(`${EICAR_MESSAGES['raw in the body']!.toString('latin1')}.\r\n`);
      assert.match((await c.reply())!, /^550 5\.7\.1/);
      assert.match((await c.cmd('MAIL FROM:<a@example.org>'))!, /^250/);
      assert.match((await c.cmd('RCPT TO:<b@example.com>'))!, /^250/);
      assert.match((await c.cmd('DATA'))!, /^354/);
      c.write('Subject: after\r\n\r\nclean\r\n.\r\n');
      assert.match((await c.reply())!, /^250/);
      await c.cmd('QUIT');
      assert.equal(tlsUp.messages.length, before + 1);
      assert.equal(tlsUp.messages[before]!.secure, true, 'the reconnected upstream leg upgraded to TLS too');
    } finally {
      await gw.stop();
    }
  });

  it('strip (no certificate): STARTTLS hidden and refused even when the upstream offers it', async () => {
    const gw = await startGateway({ upstreamPort: tlsUp.port });
    try {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      const ehlo = await c.cmd('EHLO x.example');
      assert.doesNotMatch(ehlo!, /STARTTLS/);
      assert.match((await c.cmd('STARTTLS'))!, /^502 5\.5\.1/);
      await c.cmd('QUIT');
    } finally {
      await gw.stop();
    }
  });

  it('plaintext pipelined after STARTTLS is discarded, never executed', async () => {
    const gw = await startGateway({ upstreamPort: plainUp.port, listener: tlsListener() });
    try {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      assert.match((await c.cmd('EHLO x.example'))!, /STARTTLS/);
      c.write('STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n');
      assert.match((await c.reply())!, /^220 /);
      const secure = tlsConnect({ socket: c.socket, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      let buf = '';
      const next = () =>
        new Promise<string>((resolve) => {
          const check = () => {
            const m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(buf);
            if (m) {
              buf = buf.slice(m[0].length);
              secure.off('data', onData);
              resolve(m[0]);
            }
          };
          const onData = (d: Buffer) => {
            buf += d.toString('latin1');
            check();
          };
          secure.on('data', onData);
          check();
        });
      secure.write('EHLO x.example\r\n');
      const ehlo = await next();
      assert.doesNotMatch(ehlo, /STARTTLS/, 'not offered twice');
      secure.write('RCPT TO:<b@example.com>\r\n');
      assert.match(await next(), /^503 /, 'the injected MAIL FROM was never executed');
      secure.destroy();
    } finally {
      await gw.stop();
    }
  });

  it('implicit TLS listener (port 465 style)', async () => {
    const gw = await startGateway({ upstreamPort: plainUp.port, listener: `tls: { cert: ${JSON.stringify(cert.certFile)}, key: ${JSON.stringify(cert.keyFile)}, implicit: true }` });
    try {
      const before = plainUp.messages.length;
      const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: true, tls: { rejectUnauthorized: false } });
      await t.sendMail({ envelope, raw: clean });
      assert.equal(plainUp.messages.length, before + 1);
      await assert.rejects(t.sendMail({ envelope, raw: EICAR_MESSAGES['raw in the body']! }), (e: { responseCode?: number }) => e.responseCode === 541);
    } finally {
      await gw.stop();
    }
  });

  it('passthrough, default action block: STARTTLS answered 454, the session stays inspectable', async () => {
    const gw = await startGateway({ upstreamPort: tlsUp.port, listener: 'tls: { mode: passthrough }' });
    try {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      assert.doesNotMatch((await c.cmd('EHLO x.example'))!, /STARTTLS/);
      assert.match((await c.cmd('STARTTLS'))!, /^454 4\.7\.0 /);
      assert.match((await c.cmd('NOOP'))!, /^250/);
      await c.cmd('QUIT');
    } finally {
      await gw.stop();
    }
  });

  it('passthrough, action allow: TLS end to end, logged as uninspectable', async () => {
    const gw = await startGateway({ upstreamPort: tlsUp.port, listener: 'tls: { mode: passthrough, passthrough-action: allow }' });
    try {
      const before = tlsUp.messages.length;
      const t = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
      await t.sendMail({ envelope, raw: clean });
      assert.equal(tlsUp.messages.length, before + 1);
      assert.equal(tlsUp.messages[before]!.secure, true);
      const logs = gw.logs();
      const [rec] = logs.listTraffic(1);
      logs.close();
      assert.deepEqual(rec!.events, ['TLS_PASSTHROUGH']);
      assert.match(rec!.reason, /uninspectable/);
    } finally {
      await gw.stop();
    }
  });

  it('upstream-tls verify pinned: the pinned certificate is accepted, any other refused (4xx, no clear-text relay)', async () => {
    const good = await startGateway({
      upstreamPort: tlsUp.port,
      listener: `upstream-tls: { mode: required, verify: pinned, ca: ${JSON.stringify(cert.certFile)}, servername: localhost }`,
    });
    const other = makeCert('someone-else');
    const bad = await startGateway({
      upstreamPort: tlsUp.port,
      listener: `upstream-tls: { mode: required, verify: pinned, ca: ${JSON.stringify(other.certFile)}, servername: localhost }`,
    });
    try {
      const before = tlsUp.messages.length;
      const t = nodemailer.createTransport({ host: '127.0.0.1', port: good.port, secure: false, ignoreTLS: true });
      await t.sendMail({ envelope, raw: clean });
      assert.equal(tlsUp.messages.length, before + 1);
      assert.equal(tlsUp.messages[before]!.secure, true);
      const c = await RawClient.connect(bad.port);
      await c.reply();
      assert.match((await c.cmd('EHLO x.example'))!, /^4\d\d /, 'certificate not pinned: refused');
      assert.equal(tlsUp.messages.length, before + 1);
    } finally {
      await good.stop();
      await bad.stop();
    }
  });

  it('upstream-tls: required with an upstream that offers no STARTTLS: 4xx, never a clear-text relay', async () => {
    const gw = await startGateway({ upstreamPort: plainUp.port, listener: 'upstream-tls: { mode: required }' });
    try {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      assert.match((await c.cmd('EHLO x.example'))!, /^4\d\d /);
    } finally {
      await gw.stop();
    }
  });
});
