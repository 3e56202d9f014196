/**
 * Every action on the wire, as a real server (smtp-server) and a raw client see it: the reply
 * code, whether the client saw a reset or a FIN, whether the server completed a message, and
 * whether the session stays usable.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EICAR_MESSAGES } from '../helpers/messages.ts';
import { dotStuff, type GatewayPeer, RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const EICAR_MSG = `${dotStuff(EICAR_MESSAGES['base64 attachment']!.toString('latin1'))}.\r\n`;

interface Expect {
  reply: RegExp | null; // null: no reply at all
  end: 'reset' | 'fin' | 'open'; // how the client connection ends ('open': session continues)
  delivered: boolean;
}

const TABLE: Record<string, Expect> = {
  allow: { reply: /^250 /, end: 'open', delivered: true },
  alert: { reply: /^250 /, end: 'open', delivered: true },
  block: { reply: /^541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: /, end: 'reset', delivered: false },
  reject: { reply: /^550 5\.7\.1 Message rejected by smtpwall \(threat: EICAR-Test-File, id: /, end: 'open', delivered: false },
  tempfail: { reply: /^451 4\.7\.1 /, end: 'open', delivered: false },
  drop: { reply: null, end: 'fin', delivered: false },
  'reset-client': { reply: null, end: 'reset', delivered: false },
  'reset-server': { reply: null, end: 'fin', delivered: false },
  'reset-both': { reply: null, end: 'reset', delivered: false },
};

for (const mode of ['store-and-forward', 'cut-through'] as const) {
  describe(`actions on the wire, ${mode}`, () => {
    let up: UpstreamPeer;
    before(async () => {
      up = await startUpstream();
    });
    after(() => up.close());

    for (const [action, want] of Object.entries(TABLE)) {
      it(`${action}`, async () => {
        const gw: GatewayPeer = await startGateway({ upstreamPort: up.port, forwarding: mode, action });
        try {
          const before = up.messages.length;
          const closedBefore = up.closed;
          const c = await RawClient.connect(gw.port);
          assert.match((await c.begin())!, /^354 /);
          c.write(EICAR_MSG);
          const reply = await c.reply(3000);
          if (want.reply) assert.match(reply ?? '(none)', want.reply);
          else assert.equal(reply, null, 'no reply for a silent action');
          if (want.end === 'open') {
            // The session stays usable: a clean transaction right after goes through.
            assert.match((await c.cmd('MAIL FROM:<next@example.org>'))!, /^250 /);
            assert.match((await c.cmd('RCPT TO:<rcpt@example.com>'))!, /^250 /);
            assert.match((await c.cmd('DATA'))!, /^354 /);
            c.write('Subject: clean\r\n\r\nclean\r\n.\r\n');
            assert.match((await c.reply())!, /^250 /);
            assert.match((await c.cmd('QUIT'))!, /^221 /);
            await c.end();
          } else {
            assert.equal(await c.end(), want.end);
            await up.waitClosed(closedBefore + 1); // the upstream is never left waiting
          }
          const infected = up.messages.slice(before).filter((m) => m.data.includes('eicar.com'));
          assert.equal(infected.length, want.delivered ? 1 : 0, 'server completed the message?');
          const logs = gw.logs();
          const threats = logs.listThreats(10);
          logs.close();
          // The firewall model: allow is silent (the traffic record names the rule), every
          // other action logs the finding.
          if (action === 'allow') assert.equal(threats.length, 0, 'allow writes no threat record');
          else {
            assert.equal(threats.length, 1, 'the finding is logged under every action but allow');
            assert.equal(threats[0]!.action, action);
          }
        } finally {
          await gw.stop();
        }
      });
    }
  });
}
