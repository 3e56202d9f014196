/**
 * Every reading of a message, through the gateway in both forwarding modes: each class of
 * ambiguous message with EICAR in the reading a naive walker skips is blocked with 541; the
 * clean ambiguous controls arrive byte-identical. nodemailer sends the raw bytes as they are.
 * Also: under the antivirus action `allow`, a finding writes no threat record.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { EICAR_MESSAGES } from '../helpers/messages.ts';
import { startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';
import { READING_CASES } from '../fixtures/readings.ts';

async function sendRaw(port: number, raw: Buffer): Promise<string> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.com'] }, raw });
    return 'delivered';
  } catch (err) {
    return String((err as Error).message);
  } finally {
    t.close();
  }
}

describe('every reading, through the gateway', () => {
  let up: UpstreamPeer;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());

  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    it(`${forwarding}: each ambiguous class is blocked (541), each clean control delivered byte-identical`, async () => {
      const gw = await startGateway({ upstreamPort: up.port, forwarding });
      try {
        for (const c of READING_CASES) {
          const before = up.messages.length;
          const reply = await sendRaw(gw.port, c.message);
          if (c.infected) {
            assert.match(reply, /541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File/, c.name);
            assert.equal(up.messages.length, before, `${c.name}: nothing delivered`);
          } else {
            assert.equal(reply, 'delivered', c.name);
            assert.equal(up.messages.length, before + 1);
            assert.ok(up.messages.at(-1)!.data.equals(c.message), `${c.name}: byte-identical`);
          }
        }
      } finally {
        await gw.stop();
      }
    });
  }

  it('action allow: the message goes through, the traffic record names the rule, no threat record', async () => {
    const gw = await startGateway({ upstreamPort: up.port, action: 'allow' });
    try {
      assert.equal(await sendRaw(gw.port, EICAR_MESSAGES['base64 attachment']!), 'delivered');
      const logs = gw.logs();
      const traffic = logs.listTraffic(5);
      const threats = logs.listThreats(5);
      logs.close();
      assert.equal(traffic.at(-1)!.rule, 'scan-all');
      assert.equal(traffic.at(-1)!.action, 'allow');
      assert.deepEqual(threats, []);
    } finally {
      await gw.stop();
    }
  });
});
