/**
 * The product's story between real mail servers: a sending Postfix relays through smtpwall to
 * a receiving Postfix. Clean mail arrives with its body intact; a virus is answered 541 5.4.1,
 * the sending Postfix bounces at once and the sender gets a DSN quoting that line; reset-both
 * makes Postfix defer (no bounce); reject bounces with 550. The receiving Postfix is never
 * left holding a transaction. Both forwarding modes.
 *
 * One Postfix pair, six gateways: the sending Postfix routes each recipient domain
 * (`ACTION.MODE.test`) to the gateway with that action and forwarding mode.
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
import { makeCert } from '../helpers/certs.ts';
import { everySessionEnded, freePort, type PostfixInstance, postfixUnavailable, startPostfix, waitFor } from '../../lab/postfix-instance.ts';

const MODES = { saf: 'store-and-forward', ct: 'cut-through' } as const;
const ACTIONS = ['block', 'reset-both', 'reject'] as const;
const domain = (action: string, mode: string): string => `${action}.${mode}.test`;

const CLEAN_BODY = 'Hello Bob,\n\n.a line with a leading dot\n..and two\n\xe9t\xe9 in 8 bits\nbye\n';

function message(to: string, subject: string, body: string): string {
  return `From: Alice <alice@send.test>\nTo: ${to}\nSubject: ${subject}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n${body}`;
}

function eicarMessage(to: string): string {
  const b = 'b-e2e';
  return `From: Alice <alice@send.test>\nTo: ${to}\nSubject: invoice\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${b}"\n\n--${b}\nContent-Type: text/plain\n\nsee attachment\n--${b}\nContent-Type: application/octet-stream; name="invoice.com"\nContent-Transfer-Encoding: base64\n\n${EICAR.toString('base64')}\n--${b}--\n`;
}

/** The `to=<rcpt>` delivery line of the sending Postfix, once it is final for this attempt. */
function deliveryLine(log: string, rcpt: string): string | null {
  return log.split('\n').find((l) => l.includes(`to=<${rcpt}>`) && /status=(sent|bounced|deferred)/.test(l)) ?? null;
}

const skip = postfixUnavailable();

describe('Postfix → smtpwall → Postfix', { skip: skip ?? false, timeout: 120_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'smtpwall-e2e-'));
  let sender: PostfixInstance;
  let receiver: PostfixInstance;
  const gateways: Gateway[] = [];
  const mailboxes: string[] = ['bob@tls.test'];
  for (const m of Object.keys(MODES)) for (const a of ACTIONS) mailboxes.push(`bob@${domain(a, m)}`);
  const cert = makeCert();
  let tlsGatewayPort = 0;

  before(async () => {
    const receiverPort = await freePort();
    receiver = await startPostfix({
      base,
      name: 'receiver',
      hostname: 'mx.rcpt.test',
      listen: `127.0.0.1:${receiverPort}`,
      mailboxes,
      main: ['recipient_delimiter = +', 'smtpd_client_connection_count_limit = 0'],
    });
    const routes: string[] = [];
    for (const [m, forwarding] of Object.entries(MODES)) {
      for (const action of ACTIONS) {
        const cfg = parseConfig(`data-dir: ${JSON.stringify(join(base, `gw-${m}-${action}`))}
listeners:
  - name: e2e
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:${receiverPort}
    forwarding: ${forwarding}
profiles:
  antivirus:
    av: { action: ${action} }
rules:
  - name: scan-all
    profiles: { antivirus: av }
`);
        const gw = new Gateway(cfg, silentLogger);
        const [l] = await gw.start();
        gateways.push(gw);
        routes.push(`{ ${domain(action, m)} = smtp:[127.0.0.1]:${l!.port} }`);
      }
    }
    // One more gateway terminating TLS: the sending Postfix uses STARTTLS to it.
    const tlsCfg = parseConfig(`data-dir: ${JSON.stringify(join(base, 'gw-tls'))}
listeners:
  - name: e2e-tls
    listen: 127.0.0.1:0
    upstream: 127.0.0.1:${receiverPort}
    tls: { cert: ${JSON.stringify(cert.certFile)}, key: ${JSON.stringify(cert.keyFile)} }
`);
    const tlsGw = new Gateway(tlsCfg, silentLogger);
    tlsGatewayPort = (await tlsGw.start())[0]!.port;
    gateways.push(tlsGw);
    routes.push(`{ tls.test = smtp:[127.0.0.1]:${tlsGatewayPort} }`);
    sender = await startPostfix({
      base,
      name: 'sender',
      hostname: 'mta.send.test',
      mailboxes: ['alice@send.test'],
      main: [
        'recipient_delimiter = +',
        `transport_maps = inline:{ ${routes.join(', ')} }`,
        // Retry a deferred message only much later: the test must see exactly one attempt.
        'minimal_backoff_time = 1h',
        'maximal_backoff_time = 2h',
        'queue_run_delay = 1h',
        `smtp_tls_policy_maps = inline:{ { [127.0.0.1]:${tlsGatewayPort} = encrypt } }`,
        'smtp_tls_loglevel = 1',
      ],
    });
  });

  after(async () => {
    await sender?.stop();
    await receiver?.stop();
    for (const gw of gateways) await gw.stop(500);
    rmSync(base, { recursive: true, force: true });
  });

  const context = (): string => `--- sender log ---\n${sender.log()}\n--- receiver log ---\n${receiver.log()}`;

  for (const [m, forwarding] of Object.entries(MODES)) {
    for (const action of ACTIONS) {
      const d = domain(action, m);

      it(`${forwarding}, action ${action}: clean mail is delivered with its body intact`, async () => {
        const rcpt = `bob+clean@${d}`;
        await sender.sendmail('alice@send.test', rcpt, message(rcpt, `clean ${d}`, CLEAN_BODY));
        const line = await waitFor(`delivery of ${rcpt}`, () => deliveryLine(sender.log(), rcpt), 20_000, context);
        assert.match(line, /status=sent \(250 /);
        const stored = await waitFor('the message in the receiving mailbox', () => receiver.mailbox(`bob@${d}`).find((x) => x.includes(`Subject: clean ${d}`)), 10_000, context);
        const body = stored.slice(stored.indexOf('\n\n') + 2);
        assert.equal(body, CLEAN_BODY, 'the body arrives byte for byte');
      });

      it(`${forwarding}, action ${action}: EICAR gets the action's effect on the sending Postfix`, async () => {
        const rcpt = `bob+eicar@${d}`;
        await sender.sendmail('alice@send.test', rcpt, eicarMessage(rcpt));
        const line = await waitFor(`delivery of ${rcpt}`, () => deliveryLine(sender.log(), rcpt), 20_000, context);
        if (action === 'block') {
          assert.match(line, /dsn=5\.4\.1, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File, id: [A-Z2-7]{16}\.\d+\) \(in reply to end of DATA command\)\)/);
        } else if (action === 'reject') {
          assert.match(line, /dsn=5\.7\.1, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.7\.1 Message rejected by smtpwall/);
        } else {
          assert.match(line, /status=deferred \(lost connection with 127\.0\.0\.1\[127\.0\.0\.1\] while sending end of data/);
        }
        if (action !== 'reset-both') {
          const dsn = await waitFor('the bounce in the sender\'s mailbox', () => sender.mailbox('alice@send.test').find((x) => x.includes(rcpt)), 10_000, context);
          assert.match(dsn, /Undelivered Mail Returned to Sender/);
          assert.match(dsn, action === 'block' ? /541 5\.4\.1 Content blocked by smtpwall/ : /550 5\.7\.1 Message rejected by smtpwall/);
        } else {
          await new Promise((r) => setTimeout(r, 1000));
          assert.equal(sender.mailbox('alice@send.test').filter((x) => x.includes(rcpt)).length, 0, 'deferred: no bounce');
        }
        assert.equal(receiver.mailbox(`bob@${d}`).filter((x) => x.includes('Subject: invoice')).length, 0, 'nothing delivered');
      });
    }
  }

  it('Postfix with STARTTLS to a terminating gateway: clean delivered, EICAR bounced with 541', async () => {
    await sender.sendmail('alice@send.test', 'bob+clean@tls.test', message('bob+clean@tls.test', 'clean tls', CLEAN_BODY));
    const sent = await waitFor('delivery over TLS', () => deliveryLine(sender.log(), 'bob+clean@tls.test'), 20_000, context);
    assert.match(sent, /status=sent/);
    assert.match(sender.log(), new RegExp(`TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${tlsGatewayPort}`));
    await sender.sendmail('alice@send.test', 'bob+eicar@tls.test', eicarMessage('bob+eicar@tls.test'));
    const bounced = await waitFor('EICAR over TLS', () => deliveryLine(sender.log(), 'bob+eicar@tls.test'), 20_000, context);
    assert.match(bounced, /status=bounced .*541 5\.4\.1 Content blocked by smtpwall/);
  });

  it('the receiving Postfix is never left holding a connection', async () => {
    const counts = await everySessionEnded(receiver, context);
    assert.ok(counts.connects >= 6);
  });
});
