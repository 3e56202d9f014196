/**
 * The command table and admit(), without sockets: every verb in every state in which the
 * session reads commands, accepted or refused with which reply; then the listener settings
 * that change the answer (AUTH relay, trusted clients, TLS modes), BDAT's framing rules, and
 * MAIL's local refusals and the EHLO offer.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admit, COMMANDS, ehloEdit, mailRefusal, READING_STATES, type SessionState, type SessionView } from '../../../src/gateway/commands.ts';
import { parsePath } from '../../../src/smtp/command.ts';

const view = (state: SessionState, over: Partial<SessionView> = {}): SessionView => ({
  state,
  bdatFailed: null,
  relayAuth: true,
  trusted: true,
  tls: { mode: 'terminate', passthroughAction: 'block' },
  clientTls: false,
  ...over,
});

/** What admit() answers: 'ok', or the refusal's code and its first words. */
function answer(verb: string, arg: string, v: SessionView): string {
  const a = admit(verb, arg, v);
  return a.ok ? 'ok' : `${a.reply.code} ${a.reply.text}`;
}

// verb, argument, and the answer in ready / mail / rcpt / bdat
const MATRIX: ReadonlyArray<readonly [string, string, string, string, string, string]> = [
  ['HELO', 'client.example', 'ok', 'ok', 'ok', 'ok'],
  ['EHLO', 'client.example', 'ok', 'ok', 'ok', 'ok'],
  ['MAIL', 'FROM:<a@example.org>', 'ok', 'ok', 'ok', 'ok'], // relayed: the upstream judges a nested MAIL
  ['RCPT', 'TO:<b@example.org>', 'ok', 'ok', 'ok', 'ok'],
  ['DATA', '', '503 5.5.1 Error: need MAIL command', '554 5.5.1 Error: no valid recipients', 'ok', '503 5.5.1 Error: DATA after BDAT'],
  ['BDAT', '10', '503 5.5.1 Error: need MAIL command', '554 5.5.1 Error: no valid recipients', 'ok', 'ok'],
  ['RSET', '', 'ok', 'ok', 'ok', 'ok'],
  ['QUIT', '', 'ok', 'ok', 'ok', 'ok'],
  ['NOOP', '', 'ok', 'ok', 'ok', 'ok'],
  ['VRFY', 'someone', 'ok', 'ok', 'ok', 'ok'],
  ['EXPN', 'list', 'ok', 'ok', 'ok', 'ok'],
  ['HELP', '', 'ok', 'ok', 'ok', 'ok'],
  ['STARTTLS', '', 'ok', 'ok', 'ok', 'ok'],
  ['AUTH', 'PLAIN AGFAAGI=', 'ok', '503 5.5.1 Error: AUTH not allowed during a mail transaction', '503 5.5.1 Error: AUTH not allowed during a mail transaction', '503 5.5.1 Error: AUTH not allowed during a mail transaction'],
  ['XCLIENT', 'ADDR=192.0.2.1', 'ok', 'ok', 'ok', 'ok'],
  ['XFORWARD', 'ADDR=192.0.2.1', 'ok', 'ok', 'ok', 'ok'],
  ['TURN', '', '500 5.5.2 Command not recognized', '500 5.5.2 Command not recognized', '500 5.5.2 Command not recognized', '500 5.5.2 Command not recognized'],
  ['ETRN', 'example.org', '500 5.5.2 Command not recognized', '500 5.5.2 Command not recognized', '500 5.5.2 Command not recognized', '500 5.5.2 Command not recognized'],
];

describe('admit(): every command in every state', () => {
  it('the matrix covers every verb of the table', () => {
    for (const verb of Object.keys(COMMANDS)) assert.ok(MATRIX.some((m) => m[0] === verb), verb);
  });
  for (const [verb, arg, ...answers] of MATRIX) {
    it(`${verb} ${arg}`.trim(), () => {
      READING_STATES.forEach((state, i) => assert.equal(answer(verb, arg, view(state)), answers[i], `${verb} in ${state}`));
    });
  }
});

describe('admit(): arguments', () => {
  it('commands without arguments refuse one with 501 Syntax', () => {
    for (const verb of ['DATA', 'RSET', 'STARTTLS']) assert.equal(answer(verb, 'x', view('rcpt')), `501 5.5.4 Syntax: ${verb}`);
  });
  it('HELO and EHLO need a host name', () => {
    assert.equal(answer('HELO', '', view('ready')), '501 5.5.4 Syntax: HELO hostname');
    assert.equal(answer('EHLO', '   ', view('ready')), '501 5.5.4 Syntax: EHLO hostname');
  });
  it('syntax is judged before state: DATA with an argument and no MAIL is a 501', () => {
    assert.equal(answer('DATA', 'now', view('ready')), '501 5.5.4 Syntax: DATA');
  });
  it('a refusal counts as a bad command unless it is policy (454) or closes', () => {
    const a = admit('DATA', '', view('ready'));
    assert.ok(!a.ok && a.bad);
  });
});

describe('admit(): BDAT framing', () => {
  it('an unreadable size closes the session (the stream cannot be framed)', () => {
    for (const arg of ['', 'x', '-1', '10 FIRST', '1234567890123456']) {
      const a = admit('BDAT', arg, view('rcpt'));
      assert.ok(!a.ok && a.close && !a.bad && a.reply.code === 501, arg);
    }
  });
  it('size and LAST are parsed', () => {
    const a = admit('BDAT', '42 last', view('rcpt'));
    assert.ok(a.ok);
    assert.deepEqual(a.bdat, { size: 42, last: true });
  });
  it('a refused chunk is discarded first; a refused LAST ends the transaction', () => {
    const a = admit('BDAT', '7 LAST', view('mail'));
    assert.ok(!a.ok);
    assert.equal(a.discard, 7);
    assert.equal(a.endsTransaction, true);
    const b = admit('BDAT', '7', view('ready'));
    assert.ok(!b.ok && b.discard === 7 && !b.endsTransaction);
  });
  it('after a failed chunk every later chunk gets the same reply (RFC 3030 §2)', () => {
    const failed = { code: 452, text: '4.3.1 Insufficient system storage' };
    for (const state of ['rcpt', 'bdat'] as const) {
      const a = admit('BDAT', '5', view(state, { bdatFailed: failed }));
      assert.ok(!a.ok);
      assert.deepEqual(a.reply, failed);
      assert.equal(a.discard, 5);
    }
  });
});

describe('admit(): listener settings', () => {
  it('AUTH without relay-auth is not implemented', () => {
    assert.equal(answer('AUTH', 'PLAIN x', view('ready', { relayAuth: false })), '502 5.5.1 Command not implemented');
    // ... which is said before the transaction rule
    assert.equal(answer('AUTH', 'PLAIN x', view('rcpt', { relayAuth: false })), '502 5.5.1 Command not implemented');
  });
  it('XCLIENT and XFORWARD only from trusted clients', () => {
    for (const verb of ['XCLIENT', 'XFORWARD']) assert.equal(answer(verb, 'NAME=x', view('ready', { trusted: false })), '502 5.5.1 Command not implemented');
  });
  it('STARTTLS per TLS mode', () => {
    assert.equal(answer('STARTTLS', '', view('ready', { tls: { mode: 'strip', passthroughAction: 'block' } })), '502 5.5.1 Command not implemented');
    assert.equal(answer('STARTTLS', '', view('ready', { clientTls: true })), '503 5.5.1 Error: TLS already active');
    const blocked = admit('STARTTLS', '', view('ready', { tls: { mode: 'passthrough', passthroughAction: 'block' } }));
    assert.ok(!blocked.ok && blocked.reply.code === 454 && !blocked.bad && blocked.log);
    assert.equal(answer('STARTTLS', '', view('ready', { tls: { mode: 'passthrough', passthroughAction: 'allow' } })), 'ok');
  });
});

describe('the command table', () => {
  it('only MAIL and RCPT are relayed ahead (RFC 2920 §3.1)', () => {
    assert.deepEqual(Object.entries(COMMANDS).filter(([, s]) => s.pipelinable).map(([v]) => v), ['MAIL', 'RCPT']);
  });
  it('only QUIT can be answered without an upstream connection', () => {
    assert.deepEqual(Object.entries(COMMANDS).filter(([, s]) => !s.usesUpstream).map(([v]) => v), ['QUIT']);
  });
});

describe('MAIL refusals and the EHLO offer', () => {
  it('MAIL: syntax, SIZE over the limit, BINARYMIME', () => {
    assert.equal(mailRefusal(parsePath('FROM:a@example.org', 'FROM'), 1000)?.code, 501);
    assert.deepEqual(mailRefusal(parsePath('FROM:<a@example.org> SIZE=1001', 'FROM'), 1000), { code: 552, text: '5.3.4 Message size exceeds fixed limit of 1000 bytes' });
    assert.equal(mailRefusal(parsePath('FROM:<a@example.org> SIZE=1000', 'FROM'), 1000), null);
    assert.equal(mailRefusal(parsePath('FROM:<a@example.org> BODY=binarymime', 'FROM'), 1000)?.code, 555);
    assert.equal(mailRefusal(parsePath('FROM:<> BODY=8BITMIME', 'FROM'), 1000), null);
  });
  it('EHLO: STARTTLS ours when terminating, the upstream\'s when passing through, CHUNKING always', () => {
    const base = { tls: { mode: 'terminate' as const, passthroughAction: 'block' as const }, clientTls: false, upstreamTls: false, relayAuth: false, trusted: false };
    assert.deepEqual(ehloEdit(base, 10).add, ['STARTTLS', 'CHUNKING']);
    assert.deepEqual(ehloEdit({ ...base, clientTls: true }, 10).add, ['CHUNKING']);
    assert.ok(!ehloEdit(base, 10).allow.has('STARTTLS'));
    const pass = ehloEdit({ ...base, tls: { mode: 'passthrough', passthroughAction: 'allow' } }, 10);
    assert.ok(pass.allow.has('STARTTLS'));
    assert.ok(!ehloEdit({ ...base, tls: { mode: 'passthrough', passthroughAction: 'allow' }, upstreamTls: true }, 10).allow.has('STARTTLS'));
    assert.ok(ehloEdit({ ...base, relayAuth: true }, 10).allow.has('AUTH'));
    assert.ok(ehloEdit({ ...base, trusted: true }, 10).allow.has('XCLIENT'));
    assert.ok(!ehloEdit(base, 10).allow.has('XFORWARD'));
  });
});
