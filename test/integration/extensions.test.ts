/**
 * Extensions carried end to end: AUTH relayed to a real server (and never logged), XCLIENT
 * and XFORWARD only from trusted clients, DSN and SMTPUTF8 parameters passed through.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { type GatewayPeer, RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const SECRET = 'pa55-w0rd-not-for-logs';

describe('extensions', () => {
  let up: UpstreamPeer;
  let gw: GatewayPeer;
  let xclient = '';
  before(async () => {
    up = await startUpstream({
      disabledCommands: ['STARTTLS'],
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      authOptional: true,
      useXClient: true,
      onAuth(auth, _session, cb) {
        if (auth.username === 'alice' && auth.password === SECRET) cb(null, { user: 'alice' });
        else cb(new Error('Invalid username or password'));
      },
      onMailFrom(_address, session, cb) {
        xclient = JSON.stringify(session.xClient ? [...session.xClient.entries()] : []);
        cb();
      },
    });
    gw = await startGateway({ upstreamPort: up.port, listener: 'trusted-clients: ["127.0.0.1/32"]' });
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  for (const method of ['PLAIN', 'LOGIN'] as const) {
    it(`AUTH ${method} is relayed; a wrong password gets the server's 535; nothing is logged`, async () => {
      const ok = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, ignoreTLS: true, auth: { user: 'alice', pass: SECRET, method } } as never);
      await ok.sendMail({ envelope: { from: 'alice@example.org', to: ['b@example.com'] }, raw: 'Subject: auth\r\n\r\nhi\r\n' });
      const bad = nodemailer.createTransport({ host: '127.0.0.1', port: gw.port, secure: false, ignoreTLS: true, auth: { user: 'alice', pass: 'wrong', method } } as never);
      await assert.rejects(bad.sendMail({ envelope: { from: 'alice@example.org', to: ['b@example.com'] }, raw: 'x' }), (e: { responseCode?: number }) => e.responseCode === 535);
      const db = readFileSync(join(gw.dataDir, 'logs.sqlite')).toString('latin1');
      assert.ok(!db.includes(SECRET) && !db.includes(Buffer.from(`\0alice\0${SECRET}`).toString('base64')), 'no credential in the log database');
    });
  }

  it('XCLIENT from a trusted client is relayed and advertised', async () => {
    const c = await RawClient.connect(gw.port);
    await c.reply();
    assert.match((await c.cmd('EHLO x.example'))!, /XCLIENT/);
    assert.match((await c.cmd('XCLIENT ADDR=192.0.2.7 NAME=mta.example'))!, /^220 /);
    await c.cmd('EHLO x.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    assert.match(xclient, /192\.0\.2\.7/);
    await c.cmd('QUIT');
  });

  it('XCLIENT and XFORWARD from an untrusted client: 502, not advertised', async () => {
    const other = await startGateway({ upstreamPort: up.port });
    try {
      const c = await RawClient.connect(other.port);
      await c.reply();
      assert.doesNotMatch((await c.cmd('EHLO x.example'))!, /XCLIENT|XFORWARD/);
      assert.match((await c.cmd('XCLIENT ADDR=192.0.2.7'))!, /^502 5\.5\.1/);
      assert.match((await c.cmd('XFORWARD ADDR=192.0.2.7'))!, /^502 5\.5\.1/);
      await c.cmd('QUIT');
    } finally {
      await other.stop();
    }
  });

  it('DSN and SMTPUTF8 parameters reach the upstream unchanged', async () => {
    const before = up.messages.length;
    const c = await RawClient.connect(gw.port);
    await c.reply();
    await c.cmd('EHLO x.example');
    assert.match((await c.cmd('MAIL FROM:<a@example.org> RET=HDRS ENVID=abc123 SMTPUTF8'))!, /^250 /);
    assert.match((await c.cmd('RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com'))!, /^250 /);
    assert.match((await c.cmd('DATA'))!, /^354/);
    c.write('Subject: dsn\r\n\r\nx\r\n.\r\n');
    assert.match((await c.reply())!, /^250 /);
    await c.cmd('QUIT');
    assert.equal(up.messages.length, before + 1);
  });
});
