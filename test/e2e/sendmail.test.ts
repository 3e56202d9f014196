/**
 * The seed behaviour with Sendmail as the sending MTA (issue 20 §2): Sendmail → smtpwall →
 * Postfix. A clean message arrives with its body intact; EICAR with `block` makes Sendmail
 * fail the recipient at once and bounce to the sender quoting the 541 line; `reject` bounces
 * with the 550; `reset-both` leaves the message in Sendmail's queue (deferred, no bounce). The
 * receiving Postfix gets nothing of a stopped message. Both forwarding modes. Sendmail runs
 * from unpacked packages (lab/sendmail-instance.ts), one instance per gateway, beside the
 * Postfix the other tests use.
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
import { type SendmailInstance, sendmailUnavailable, startSendmail } from '../../lab/sendmail-instance.ts';
import { everySessionEnded, freePort, type PostfixInstance, postfixUnavailable, startPostfix, waitFor } from '../../lab/postfix-instance.ts';

const MODES = { saf: 'store-and-forward', ct: 'cut-through' } as const;
const ACTIONS = ['block', 'reject', 'reset-both'] as const;
const domain = (action: string, mode: string): string => `${action}.${mode}.test`;
const CLEAN_BODY = 'Hello Bob,\n\n.a line with a leading dot\nbye\n';

const message = (to: string, subject: string, body: string): string => `From: Alice <alice@sendmail.test>\nTo: ${to}\nSubject: ${subject}\n\n${body}`;
const eicarMessage = (to: string): string =>
  `From: Alice <alice@sendmail.test>\nTo: ${to}\nSubject: invoice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attachment\n--b\nContent-Type: application/octet-stream; name="invoice.com"\nContent-Transfer-Encoding: base64\n\n${EICAR.toString('base64')}\n--b--\n`;

const skip = postfixUnavailable() ?? sendmailUnavailable();

describe('Sendmail → smtpwall → Postfix', { skip: skip ?? false, timeout: 120_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'smtpwall-sendmail-'));
  let receiver: PostfixInstance;
  const senders = new Map<string, SendmailInstance>();
  const gateways: Gateway[] = [];

  before(async () => {
    const receiverPort = await freePort();
    const mailboxes = Object.keys(MODES).flatMap((m) => ACTIONS.map((a) => `bob@${domain(a, m)}`));
    receiver = await startPostfix({ base, name: 'receiver', hostname: 'mx.rcpt.test', listen: `127.0.0.1:${receiverPort}`, mailboxes, main: ['smtpd_client_connection_count_limit = 0'] });
    for (const [m, forwarding] of Object.entries(MODES)) {
      for (const action of ACTIONS) {
        const gw = new Gateway(
          parseConfig(`data-dir: ${JSON.stringify(join(base, `gw-${m}-${action}`))}\nlisteners:\n  - { name: e2e, listen: "127.0.0.1:0", upstream: "127.0.0.1:${receiverPort}", forwarding: ${forwarding} }\nprofiles:\n  antivirus:\n    av: { action: ${action} }\nrules:\n  - { name: scan-all, profiles: { antivirus: av } }\n`),
          silentLogger,
        );
        const port = (await gw.start())[0]!.port;
        gateways.push(gw);
        senders.set(domain(action, m), startSendmail({ dir: join(base, `sendmail-${m}-${action}`), hostname: 'mta.sendmail.test', localDomain: 'sendmail.test', port }));
      }
    }
  });

  after(async () => {
    for (const gw of gateways) await gw.stop(500);
    await receiver?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  for (const [m, forwarding] of Object.entries(MODES)) {
    for (const action of ACTIONS) {
      const d = domain(action, m);
      const rcpt = `bob@${d}`;
      it(`${forwarding}, ${action}: clean mail is delivered with its body intact`, async () => {
        const sendmail = senders.get(d)!;
        const run = await sendmail.send('alice@sendmail.test', rcpt, message(rcpt, `clean ${d}`, CLEAN_BODY));
        assert.match(run.transcript, new RegExp(`${rcpt.replace('.', '\\.')}\\.\\.\\. Sent \\(`), run.transcript);
        const stored = await waitFor('the message at the receiver', () => receiver.mailbox(rcpt).find((x) => x.includes(`Subject: clean ${d}`)), 10_000, () => run.transcript + receiver.log());
        assert.equal(stored.slice(stored.indexOf('\n\n') + 2), CLEAN_BODY);
      });

      it(`${forwarding}, ${action}: EICAR gets the action's effect on the sending Sendmail`, async () => {
        const sendmail = senders.get(d)!;
        const before = sendmail.mailbox().length;
        const run = await sendmail.send('alice@sendmail.test', rcpt, eicarMessage(rcpt));
        const context = `--- sendmail -v ---\n${run.transcript}\n--- receiver ---\n${receiver.log()}`;
        if (action === 'block') {
          assert.match(run.transcript, /^541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: [A-Z2-7]{16}\.\d+\)/m, context);
        } else if (action === 'reject') {
          assert.match(run.transcript, /^550 5\.7\.1 Message rejected by smtpwall/m, context);
        }
        if (action !== 'reset-both') {
          // -odi: Sendmail returned the message to alice before send() resolved.
          const bounce = sendmail.mailbox().slice(before);
          assert.match(bounce, /Subject: Returned mail: see transcript for details/, context);
          assert.match(bounce, action === 'block' ? /\(reason: 541 5\.4\.1 Content blocked by smtpwall/ : /\(reason: 550 5\.7\.1 Message rejected by smtpwall/, context);
          // The DSN carries the gateway's enhanced status code, not a generic 5.0.0.
          assert.match(bounce, /^Action: failed$/m, context);
          assert.match(bounce, action === 'block' ? /^Status: 5\.4\.1$/m : /^Status: 5\.7\.1$/m, context);
          assert.deepEqual(sendmail.queued(), [], 'a permanent failure leaves nothing queued');
        } else {
          // The attempt ran in the foreground: when send() returns it is over, so "no bounce"
          // is checked against a finished attempt, not a timer; the message waits in the queue.
          assert.match(run.transcript, /Deferred: Connection reset by \[127\.0\.0\.1\]/, context);
          assert.equal(sendmail.mailbox().slice(before).includes('Returned mail'), false, 'deferred: no bounce');
          assert.equal(sendmail.queued().length, 1, 'deferred: the message is queued for a retry');
        }
        assert.equal(receiver.mailbox(rcpt).filter((x) => x.includes('Subject: invoice')).length, 0, 'nothing delivered');
      });
    }
  }

  it('the receiving Postfix completed no stopped message and is left holding no connection', async () => {
    // 12 messages through 6 gateways: every smtpd session the gateways opened has ended.
    const counts = await everySessionEnded(receiver, () => receiver.log());
    assert.ok(counts.connects >= 6, `${counts.connects} sessions`);
    // Completed messages are the six clean ones: a stopped message never reached the queue
    // manager (cleanup may log a message-id of an aborted one: it reads data as it comes).
    const completed = (receiver.log().match(/postfix\/qmgr\[\d+\]: \w+: from=/g) ?? []).length;
    assert.equal(completed, 6, receiver.log());
  });
});
