/**
 * The maillog line's parts, and header/file-name text as people read it: RFC 2047 and 2231
 * decoded, raw UTF-8 as UTF-8 (other 8-bit bytes as Latin-1), and the Latin-1 reading of a
 * raw name still among a part's names (what file blocking judges).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { headerText, messageHeaderFacts } from '../../../src/inspect/mime/header-text.ts';
import { maillogFields, outcomeOf, queueIdOf } from '../../../src/logs/maillog.ts';
import type { TrafficRecord } from '../../../src/logs/records.ts';

const record = (over: Partial<TrafficRecord>): TrafficRecord => ({
  time: '2026-12-02T10:00:00.000Z', sessionId: 'S', transactionId: 'S.1', listener: 'in', client: '192.0.2.7:4000', server: '10.0.0.25:25',
  helo: 'mx.example.org', mailFrom: 'a@example.org', rcptTo: ['b@example.com', 'c@example.com'], size: 100, messageId: '<m@x>', subject: 'Hi',
  forwarding: 'store-and-forward', rule: 'r', profile: 'p', action: 'allow', reason: 'no threat found', upstreamReply: '250 2.0.0 Ok: queued as 4XyZ1',
  clientReply: '250 2.0.0 Ok: queued as 4XyZ1', durationMs: 42, events: [], ...over,
});

describe('the maillog line', () => {
  it('names the outcome of every action', () => {
    assert.equal(outcomeOf(record({})), 'delivered');
    assert.equal(outcomeOf(record({ action: 'alert' })), 'delivered');
    assert.equal(outcomeOf(record({ action: 'block', upstreamReply: '', clientReply: '541 5.4.1 x' })), 'blocked');
    assert.equal(outcomeOf(record({ action: 'reject', upstreamReply: '' })), 'rejected');
    assert.equal(outcomeOf(record({ action: 'tempfail', upstreamReply: '' })), 'tempfailed');
    assert.equal(outcomeOf(record({ action: 'drop', upstreamReply: '' })), 'dropped');
    assert.equal(outcomeOf(record({ action: 'reset-both', upstreamReply: '' })), 'reset');
    assert.equal(outcomeOf(record({ upstreamReply: '452 4.2.2 full', clientReply: '452 4.2.2 full' })), 'deferred');
    assert.equal(outcomeOf(record({ upstreamReply: '554 5.7.1 no', clientReply: '554 5.7.1 no' })), 'bounced');
    assert.equal(outcomeOf(record({ upstreamReply: '', clientReply: '' })), 'not delivered');
  });

  it('finds the receiving server\'s queue id in the usual replies', () => {
    assert.equal(queueIdOf('250 2.0.0 Ok: queued as 4XyZ1'), '4XyZ1'); // Postfix
    assert.equal(queueIdOf('250 OK id=1t2Abc-000123-Xy'), '1t2Abc-000123-Xy'); // Exim
    assert.equal(queueIdOf('250 2.0.0 <abc@host> Queued mail for delivery'), 'abc@host'); // Exchange
    assert.equal(queueIdOf('250 2.0.0 4ABC123 Message accepted for delivery'), null);
  });

  it('fields in reading order, each recipient, nothing empty', () => {
    const f = maillogFields(record({}), []);
    assert.deepEqual(Object.keys(f), ['id', 'client', 'helo', 'from', 'to', 'size', 'message-id', 'subject', 'rule', 'action', 'relay', 'reply', 'queue-id', 'delay']);
    assert.equal(f.to, '<b@example.com>,<c@example.com>');
    assert.equal(f.delay, '0.042');
    const b = maillogFields(record({ action: 'block', upstreamReply: '', clientReply: '541 5.4.1 blocked', reason: 'antivirus' }), ['EICAR-Test-File', 'EICAR-Test-File']);
    assert.equal(b.threat, 'EICAR-Test-File');
    assert.equal(b['client-reply'], '541 5.4.1 blocked');
    assert.equal(b.reason, 'antivirus');
    assert.equal(b.reply, undefined);
  });
});

describe('header and file-name text', () => {
  it('RFC 2047 words, raw UTF-8, Latin-1 bytes', () => {
    assert.equal(headerText('=?UTF-8?B?R3LDvMOfZSDinJM=?='), 'Grüße ✓');
    assert.equal(headerText('=?ISO-8859-1?Q?R=E9sum=E9?= and more'), 'Résumé and more');
    assert.equal(headerText(Buffer.from('Grüße', 'utf8').toString('latin1')), 'Grüße');
    assert.equal(headerText(Buffer.from([0x52, 0xe9, 0x73]).toString('latin1')), 'Rés', 'not UTF-8: Latin-1');
    assert.deepEqual(messageHeaderFacts(Buffer.from('Subject: =?utf-8?q?caf=C3=A9?=\r\n folded\r\nMessage-ID: <x@y>\r\n\r\nbody', 'latin1')), { messageId: '<x@y>', subject: 'café folded' });
  });

  it('attachment names: encoded words, RFC 2231 and raw UTF-8 all decoded; the Latin-1 reading kept as another name', async () => {
    const b64 = EICAR.toString('base64');
    const part = (headers: string): string => `--b\r\n${headers}\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`;
    const msg = Buffer.from(
      'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n' +
        part('Content-Type: application/octet-stream; name="=?UTF-8?B?4oKsdXJvLmNvbQ==?="') +
        part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''%C3%A9t%C3%A9.com") +
        part(`Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${Buffer.from('naïve.com', 'utf8').toString('latin1')}"`) +
        '--b--\r\n',
      'latin1',
    );
    const r = await new Inspector({ engines: [new SignatureEngine()] }).scanBuffer(msg, true, 10_000);
    const byPath = new Map(r.files.map((f) => [f.path, f]));
    assert.equal(byPath.get('msg/1')?.name, '€uro.com');
    assert.equal(byPath.get('msg/2')?.name, 'été.com');
    assert.equal(byPath.get('msg/3')?.name, 'naïve.com');
    assert.deepEqual(byPath.get('msg/3')?.otherNames, ['naÃ¯ve.com']);
  });
});
