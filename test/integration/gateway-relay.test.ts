/**
 * The gateway core against real peers: nodemailer as the client, smtp-server as the upstream.
 * Every test runs in both forwarding modes.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { bigAttachmentMessage, CLEAN_MESSAGES, EICAR_MESSAGES, PARTIAL_MESSAGE } from '../helpers/messages.ts';
import { type GatewayPeer, RawClient, sha256, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const MODES = ['store-and-forward', 'cut-through'] as const;

function transport(port: number, extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, ...extra } as never);
}

const envelope = { from: 'sender@example.org', to: ['rcpt@example.com'] };

for (const mode of MODES) {
  describe(`gateway core, ${mode}`, () => {
    let up: UpstreamPeer;
    let gw: GatewayPeer;
    before(async () => {
      up = await startUpstream();
      gw = await startGateway({ upstreamPort: up.port, forwarding: mode });
    });
    after(async () => {
      await gw.stop();
      await up.close();
    });

    for (const [name, raw] of Object.entries(CLEAN_MESSAGES)) {
      it(`delivers a clean message byte-for-byte: ${name}`, async () => {
        const before = up.messages.length;
        const info = await transport(gw.port).sendMail({ envelope, raw });
        assert.match(info.response, /^250 /, 'the client gets the upstream server\'s own reply');
        const got = up.messages[before]!;
        const sent = raw.toString('latin1').endsWith('\r\n') ? raw : Buffer.concat([raw, Buffer.from('\r\n')]);
        assert.equal(sha256(got.data), sha256(sent));
        assert.deepEqual(got.to, envelope.to);
      });
    }

    it('delivers a 20 MB attachment byte-for-byte', async () => {
      const raw = bigAttachmentMessage(20 * 1024 * 1024 * 0.74); // ≈ 20 MB after base64
      const before = up.messages.length;
      const info = await transport(gw.port).sendMail({ envelope, raw });
      assert.match(info.response, /^250 /);
      assert.equal(sha256(up.messages[before]!.data), sha256(raw));
    });

    it('carries 100 messages over one session', async () => {
      const before = up.messages.length;
      const t = transport(gw.port, { pool: true, maxConnections: 1, maxMessages: 1000 });
      for (let i = 0; i < 100; i++) {
        const info = await t.sendMail({ envelope, raw: CLEAN_MESSAGES['leading dots']! });
        assert.match(info.response, /^250 /);
      }
      t.close();
      assert.equal(up.messages.length - before, 100);
      const logs = gw.logs();
      const sessions = new Set(logs.listTraffic(100).map((r) => r.sessionId));
      logs.close();
      assert.equal(sessions.size, 1, 'one gateway session carried all 100');
    });

    it('carries 50 concurrent sessions', async () => {
      const before = up.messages.length;
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const info = await transport(gw.port).sendMail({ envelope, raw: CLEAN_MESSAGES['8-bit body']! });
          assert.match(info.response, /^250 /, `session ${i}`);
        }),
      );
      assert.equal(up.messages.length - before, 50);
    });

    for (const [name, raw] of Object.entries(EICAR_MESSAGES)) {
      it(`blocks EICAR (${name}) with 541 5.4.1, resets the client, upstream completes nothing`, async () => {
        const before = up.messages.length;
        const closedBefore = up.closed;
        const c = await RawClient.connect(gw.port);
        assert.match((await c.begin())!, /^354 /);
        c.write(Buffer.concat([Buffer.from(raw.toString('latin1').replace(/^\./gm, '..'), 'latin1'), Buffer.from('.\r\n')]));
        const reply = await c.reply();
        assert.match(reply!, /^541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: [A-Z2-7]{16}\.1\)$/);
        assert.equal(await c.end(), 'reset', 'the client connection is reset (RST)');
        await up.waitClosed(closedBefore + 1); // the upstream session is ended, not left waiting
        assert.equal(up.messages.length, before, 'the upstream never completed the message');
        const id = /id: ([A-Z2-7]{16}\.1)/.exec(reply!)![1]!;
        const logs = gw.logs();
        const threat = logs.listThreats(50).find((t) => t.transactionId === id);
        const traffic = logs.listTraffic(500).find((t) => t.transactionId === id);
        logs.close();
        assert.ok(threat, 'a threat record names the transaction');
        assert.equal(threat.threat, 'EICAR-Test-File');
        assert.equal(threat.engine, 'signatures');
        assert.equal(threat.action, 'block');
        assert.equal(threat.rule, 'scan-all');
        assert.equal(threat.deciding, true);
        assert.match(threat.sha256, /^[0-9a-f]{64}$/);
        assert.equal(threat.direction, 'client-to-server');
        assert.ok(traffic);
        assert.equal(traffic.action, 'block');
        assert.equal(traffic.mailFrom, 'sender@example.org');
        assert.deepEqual(traffic.rcptTo, ['rcpt@example.com']);
      });
    }

    it('a message/partial fragment gets the threat action (541), not a pass', async () => {
      const before = up.messages.length;
      await assert.rejects(transport(gw.port).sendMail({ envelope, raw: PARTIAL_MESSAGE }), (err: { response?: string }) => {
        assert.match(err.response ?? '', /^541 5\.4\.1 Content blocked by smtpwall \(threat: MIME_MESSAGE_PARTIAL, id: /);
        return true;
      });
      assert.equal(up.messages.length, before);
    });

    it('nodemailer sees the 541 as a permanent failure', async () => {
      await assert.rejects(transport(gw.port).sendMail({ envelope, raw: EICAR_MESSAGES['base64 attachment']! }), (err: { responseCode?: number }) => {
        assert.equal(err.responseCode, 541);
        return true;
      });
    });
  });
}
