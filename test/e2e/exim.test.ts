/**
 * The seed behaviour with Exim as the sending MTA (issue 20 §2): Exim → smtpwall → Postfix.
 * A clean message arrives with its body intact; EICAR with `block` makes Exim fail the
 * recipient at once (`**`) and bounce to the sender quoting the 541 line; `reject` bounces with
 * the 550; `reset-both` makes Exim defer (`==`, no bounce). The receiving Postfix gets nothing
 * of a stopped message. Both forwarding modes. Exim runs from an unpacked package
 * (lab/exim-instance.ts), beside the Postfix the other tests use.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway } from '../../src/app/gateway.ts';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { silentLogger } from '../../src/logs/process-log.ts';
import { parseConfig } from '../../src/policy/load-config.ts';
import { type EximInstance, eximUnavailable, startExim } from '../../lab/exim-instance.ts';
import { everySessionEnded, freePort, type PostfixInstance, postfixUnavailable, startPostfix, waitFor } from '../../lab/postfix-instance.ts';

const MODES = { saf: 'store-and-forward', ct: 'cut-through' } as const;
const ACTIONS = ['block', 'reject', 'reset-both'] as const;
const domain = (action: string, mode: string): string => `${action}.${mode}.test`;
const CLEAN_BODY = 'Hello Bob,\n\n.a line with a leading dot\nbye\n';

const message = (to: string, subject: string, body: string): string => `From: Alice <alice@exim.test>\nTo: ${to}\nSubject: ${subject}\n\n${body}`;
const eicarMessage = (to: string): string =>
  `From: Alice <alice@exim.test>\nTo: ${to}\nSubject: invoice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attachment\n--b\nContent-Type: application/octet-stream; name="invoice.com"\nContent-Transfer-Encoding: base64\n\n${EICAR.toString('base64')}\n--b--\n`;

/** Exim's log lines about one recipient. */
const linesFor = (log: string, rcpt: string): string[] => log.split('\n').filter((l) => l.includes(rcpt));

const skip = postfixUnavailable() ?? eximUnavailable();

describe('Exim → smtpwall → Postfix', { skip: skip ?? false, timeout: 120_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'smtpwall-exim-'));
  let receiver: PostfixInstance;
  let exim: EximInstance;
  const gateways: Gateway[] = [];

  before(async () => {
    const receiverPort = await freePort();
    const mailboxes = Object.keys(MODES).flatMap((m) => ACTIONS.map((a) => `bob@${domain(a, m)}`));
    receiver = await startPostfix({ base, name: 'receiver', hostname: 'mx.rcpt.test', listen: `127.0.0.1:${receiverPort}`, mailboxes, main: ['smtpd_client_connection_count_limit = 0'] });
    const routes: Record<string, number> = {};
    for (const [m, forwarding] of Object.entries(MODES)) {
      for (const action of ACTIONS) {
        const gw = new Gateway(
          parseConfig(`data-dir: ${JSON.stringify(join(base, `gw-${m}-${action}`))}\nlisteners:\n  - { name: e2e, listen: "127.0.0.1:0", upstream: "127.0.0.1:${receiverPort}", forwarding: ${forwarding} }\nprofiles:\n  antivirus:\n    av: { action: ${action} }\nrules:\n  - { name: scan-all, profiles: { antivirus: av } }\n`),
          silentLogger,
        );
        routes[domain(action, m)] = (await gw.start())[0]!.port;
        gateways.push(gw);
      }
    }
    exim = startExim({ dir: join(base, 'exim'), hostname: 'mta.exim.test', localDomain: 'exim.test', routes });
  });

  after(async () => {
    for (const gw of gateways) await gw.stop(500);
    await receiver?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const context = (): string => `--- exim ---\n${exim.log()}\n--- receiver ---\n${receiver.log()}`;

  for (const [m, forwarding] of Object.entries(MODES)) {
    for (const action of ACTIONS) {
      const d = domain(action, m);
      it(`${forwarding}, ${action}: clean mail is delivered with its body intact`, async () => {
        const rcpt = `bob@${d}`;
        await exim.send('alice@exim.test', rcpt, message(rcpt, `clean ${d}`, CLEAN_BODY));
        assert.ok(linesFor(exim.log(), rcpt).some((l) => / => bob@/.test(l)), context());
        const stored = await waitFor('the message at the receiver', () => receiver.mailbox(rcpt).find((x) => x.includes(`Subject: clean ${d}`)), 10_000, context);
        assert.equal(stored.slice(stored.indexOf('\n\n') + 2), CLEAN_BODY);
      });

      it(`${forwarding}, ${action}: EICAR gets the action's effect on the sending Exim`, async () => {
        const rcpt = `bob+eicar@${d}`.replace('+eicar', ''); // one mailbox per domain; the subject tells them apart
        const before = exim.mailbox().length;
        const mark = exim.log().length;
        await exim.send('alice@exim.test', rcpt, eicarMessage(rcpt));
        const lines = linesFor(exim.log().slice(mark), rcpt).join('\n');
        if (action === 'block') {
          assert.match(lines, /\*\* bob@\S+ .*SMTP error from remote mail server after (pipelined )?end of data: 541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: [A-Z2-7]{16}\.\d+\)/, context());
        } else if (action === 'reject') {
          assert.match(lines, /\*\* bob@\S+ .*after (pipelined )?end of data: 550 5\.7\.1 Message rejected by smtpwall/, context());
        } else {
          assert.match(lines, /== bob@\S+ .*defer/, context());
        }
        if (action !== 'reset-both') {
          const bounce = await waitFor('the bounce in alice\'s mailbox', () => exim.mailbox().slice(before).includes('Mail delivery failed') && exim.mailbox().slice(before), 10_000, context);
          assert.match(bounce, action === 'block' ? /541 5\.4\.1 Content blocked by smtpwall/ : /550 5\.7\.1 Message rejected by smtpwall/);
        } else {
          // Exim attempts once in the foreground (-odi): when send() returns it is done, so
          // "no bounce" is checked against a finished attempt, not a timer.
          assert.equal(exim.mailbox().slice(before).includes('Mail delivery failed'), false, 'deferred: no bounce');
        }
        assert.equal(receiver.mailbox(rcpt).filter((x) => x.includes('Subject: invoice')).length, 0, 'nothing delivered');
      });
    }
  }

  it('the receiving Postfix completed no stopped message and is left holding no connection', async () => {
    // 12 messages through 6 gateways: every smtpd session the gateways opened has ended.
    const counts = await everySessionEnded(receiver, context);
    assert.ok(counts.connects >= 6, `${counts.connects} sessions`);
    // Completed messages are the six clean ones: a stopped message never reached the queue
    // manager (cleanup may log a message-id of an aborted one: it reads data as it comes).
    const completed = (receiver.log().match(/postfix\/qmgr\[\d+\]: \w+: from=/g) ?? []).length;
    assert.equal(completed, 6, receiver.log());
  });
});
