/**
 * The SMTP behaviours real senders rely on (issue 20 §3), through smtpwall to a real Postfix:
 * every command answered as Postfix answers it directly (RSET in every state, NOOP, HELP,
 * VRFY, EXPN, QUIT in every state), HELO clients without ESMTP, the null sender, 8-bit MIME,
 * SMTPUTF8 addresses, DSN parameters carried unchanged — proven by the success DSN the
 * receiving Postfix sends back, which travels through a second gateway to the sender's
 * Postfix intact — and VRFY/EXPN refused by configuration, logged either way.
 *
 *   client ──▶ gateway G1 ──▶ Postfix R (bob@r.test) ──DSN──▶ gateway G2 ──▶ Postfix S (alice@s.test)
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway } from '../../src/app/gateway.ts';
import { SqliteLogStore } from '../../src/logs/sqlite-store.ts';
import { parseConfig } from '../../src/policy/load-config.ts';
import { freePort, type PostfixInstance, postfixUnavailable, startPostfix, waitFor } from '../../lab/postfix-instance.ts';
import { RawClient } from '../helpers/peers.ts';

const skip = postfixUnavailable();

describe('SMTP behaviours through smtpwall, against Postfix', { skip: skip ?? false, timeout: 180_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'smtpwall-behave-'));
  let r: PostfixInstance;
  let s: PostfixInstance;
  let rPort = 0;
  const gateways: Gateway[] = [];
  const ports: Record<'g1' | 'g2' | 'refuse', number> = { g1: 0, g2: 0, refuse: 0 };
  const logLines: string[] = [];

  const gateway = async (name: string, upstreamPort: number, extra = ''): Promise<number> => {
    const gw = new Gateway(
      parseConfig(`data-dir: ${JSON.stringify(join(base, name))}\nlisteners:\n  - { name: ${name}, listen: "127.0.0.1:0", upstream: "127.0.0.1:${upstreamPort}"${extra} }\n`),
      (level, msg, fields) => logLines.push(`${name} ${level} ${msg} ${JSON.stringify(fields ?? {})}`),
    );
    gateways.push(gw);
    return (await gw.start())[0]!.port;
  };

  before(async () => {
    const sPort = await freePort();
    s = await startPostfix({ base, name: 's', hostname: 'mx.s.test', listen: `127.0.0.1:${sPort}`, mailboxes: ['alice@s.test'], main: ['smtpd_client_connection_count_limit = 0'] });
    ports.g2 = await gateway('g2', sPort);
    rPort = await freePort();
    r = await startPostfix({
      base, name: 'r', hostname: 'mx.r.test', listen: `127.0.0.1:${rPort}`, mailboxes: ['bob@r.test'],
      main: ['smtpd_client_connection_count_limit = 0', `transport_maps = inline:{ { s.test = smtp:[127.0.0.1]:${ports.g2} } }`, 'smtputf8_enable = yes'],
    });
    ports.g1 = await gateway('g1', rPort);
    ports.refuse = await gateway('refuse', rPort, ', vrfy: refuse');
  });

  after(async () => {
    for (const g of gateways) await g.stop(500);
    await r?.stop();
    await s?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  const context = (): string => `--- R ---\n${r.log()}\n--- S ---\n${s.log()}`;
  /** A reply with what differs between servers and sessions (names, queue ids) taken out. */
  const shape = (reply: string | null): string =>
    (reply ?? 'CLOSED')
      .replace(/mx\.r\.test|smtpwall/g, 'HOST')
      .replace(/queued as \w+/, 'queued as ID')
      // EHLO's capability lines are edited by the gateway on purpose (README, "EHLO and extensions").
      .replace(/^(250-[^\n]*)\n[\s\S]*$/, '$1 (capabilities)');

  /** The same dialogue with Postfix directly and through the gateway: the replies must agree. */
  async function both(lines: string[]): Promise<{ direct: string[]; via: string[] }> {
    const talk = async (port: number): Promise<string[]> => {
      const c = await RawClient.connect(port);
      const out = [shape(await c.reply())];
      for (const l of lines) out.push(shape(await c.cmd(l)));
      c.destroy();
      return out;
    };
    return { direct: await talk(rPort), via: await talk(ports.g1) };
  }

  it('RSET in every state, NOOP, HELP, VRFY, EXPN: answered as Postfix answers them', async () => {
    const { direct, via } = await both([
      'RSET', 'NOOP', 'HELP', 'VRFY bob@r.test', 'EXPN bob@r.test',
      'EHLO client.example', 'RSET', 'MAIL FROM:<a@example.org>', 'RSET', 'MAIL FROM:<a@example.org>', 'RCPT TO:<bob@r.test>', 'RSET', 'NOOP',
      'RCPT TO:<bob@r.test>', // after RSET: no transaction
    ]);
    assert.deepEqual(via, direct);
    assert.ok(logLines.some((l) => /^g1 info address probe .*"verb":"VRFY","arg":"bob@r.test","reply":"252 /.test(l)), 'VRFY is logged with its answer');
  });

  it('QUIT in every state: 221 and the connection closed, as Postfix does', async () => {
    for (const before of [[], ['EHLO c.example'], ['EHLO c.example', 'MAIL FROM:<a@example.org>'], ['EHLO c.example', 'MAIL FROM:<a@example.org>', 'RCPT TO:<bob@r.test>']]) {
      const { direct, via } = await both([...before, 'QUIT']);
      assert.deepEqual(via, direct, before.join(', '));
      assert.match(via.at(-1)!, /^221 /);
    }
  });

  /** One transaction through G1; returns the final reply and the stored message. */
  async function deliver(opts: { helo: string; from: string; mailParams?: string; rcptParams?: string; body: string; subject: string }): Promise<{ reply: string; stored: string }> {
    const c = await RawClient.connect(ports.g1);
    assert.match((await c.reply())!, /^220 /);
    assert.match((await c.cmd(opts.helo))!, /^250[ -]/);
    // SMTPUTF8 addresses go as UTF-8 bytes (RawClient writes a string byte per character).
    assert.match((await c.cmd(Buffer.from(`MAIL FROM:<${opts.from}>${opts.mailParams ?? ''}`, 'utf8').toString('latin1')))!, /^250 /);
    assert.match((await c.cmd(`RCPT TO:<bob@r.test>${opts.rcptParams ?? ''}`))!, /^250 /);
    assert.match((await c.cmd('DATA'))!, /^354 /);
    c.write(Buffer.from(`Subject: ${opts.subject}\r\n\r\n${opts.body}\r\n.\r\n`, 'latin1'));
    const reply = (await c.reply(20_000))!;
    await c.cmd('QUIT');
    c.destroy();
    const stored = await waitFor(`${opts.subject} in bob's mailbox`, () => r.mailbox('bob@r.test').find((m) => m.includes(`Subject: ${opts.subject}`)), 20_000, context);
    return { reply, stored };
  }

  it('a HELO client without ESMTP, and 8-bit content: delivered byte for byte', async () => {
    const body = 'caf\xe9 cr\xe8me \xfc\xf1\xee\r\n..dot-stuffed line\r\nend';
    const { reply, stored } = await deliver({ helo: 'HELO old.example', from: 'old@example.org', body, subject: 'helo only' });
    assert.match(reply, /^250 /);
    assert.ok(stored.includes('caf\xe9 cr\xe8me \xfc\xf1\xee\n.dot-stuffed line\nend'), 'the 8-bit body arrived unchanged (dot-unstuffed once; Postfix stores LF line ends)');
  });

  it('the null sender (bounces must pass) and an SMTPUTF8 sender: delivered with their envelope', async () => {
    const bounce = await deliver({ helo: 'EHLO mta.example', from: '', body: 'This is a delivery status notification.', subject: 'bounce' });
    assert.match(bounce.reply, /^250 /);
    assert.match(bounce.stored, /^Return-Path: <>$/m);
    const utf8 = await deliver({ helo: 'EHLO mta.example', from: 'ålice@exämple.org', mailParams: ' SMTPUTF8', body: 'utf8', subject: 'utf8 sender' });
    assert.match(utf8.reply, /^250 /);
    assert.match(Buffer.from(utf8.stored, 'latin1').toString('utf8'), /^Return-Path: <ålice@exämple\.org>$/m);
  });

  it('DSN parameters are carried unchanged: the success notice names the ENVID and ORCPT, and travels back through a gateway intact', async () => {
    const { reply } = await deliver({
      helo: 'EHLO mta.s.test', from: 'alice@s.test', mailParams: ' RET=HDRS ENVID=env-4711', rcptParams: ' NOTIFY=SUCCESS ORCPT=rfc822;bob@r.test',
      body: 'please confirm', subject: 'dsn wanted',
    });
    assert.match(reply, /^250 /);
    const dsn = await waitFor('the success DSN in alice\'s mailbox at S', () => s.mailbox('alice@s.test').find((m) => /Original-Envelope-Id: env-4711/.test(m)), 30_000, context);
    assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(dsn, /^Original-Recipient: rfc822; ?bob@r\.test$/m);
    assert.match(dsn, /^Action: delivered/m);
    assert.match(dsn, /^Return-Path: <>$/m, 'a DSN has the null sender');
    assert.doesNotMatch(dsn, /please confirm/, 'RET=HDRS: headers only');
    const g2 = gateways[0]!;
    g2.flushLogs();
    const logs = new SqliteLogStore(join(base, 'g2'), { readonly: true });
    const t = logs.listTraffic(10).find((x) => x.mailFrom === '' && x.rcptTo.includes('alice@s.test'));
    logs.close();
    assert.ok(t, 'the DSN went through gateway G2');
    assert.equal(t.action, 'allow');
    assert.match(t.upstreamReply, /^250 /);
  });

  it('vrfy: refuse answers VRFY and EXPN with 502 5.5.1 itself, logged', async () => {
    const c = await RawClient.connect(ports.refuse);
    await c.reply();
    await c.cmd('EHLO c.example');
    assert.match((await c.cmd('VRFY bob@r.test'))!, /^502 5\.5\.1 VRFY command is disabled/);
    assert.match((await c.cmd('EXPN staff'))!, /^502 5\.5\.1 EXPN command is disabled/);
    assert.match((await c.cmd('NOOP'))!, /^250 /, 'the session goes on');
    c.destroy();
    assert.ok(logLines.some((l) => /^refuse info address probe .*"verb":"EXPN","arg":"staff","reply":"502 5.5.1/.test(l)));
  });
});
