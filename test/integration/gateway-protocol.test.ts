/**
 * Protocol behaviour and bad input, with smtp-server as the real upstream: pipelining, EHLO
 * editing, upstream failures, client failures, and every malformed line class. Each case
 * asserts the invariants: no 2xx for an undelivered message, nothing partial completed.
 */

import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type GatewayPeer, RawClient, startGateway, startUpstream, until, type UpstreamPeer } from '../helpers/peers.ts';

/** One BDAT chunk: the command line, then exactly the chunk's bytes. */
function bdat(c: RawClient, data: string, last = false): Promise<string | null> {
  c.write(`BDAT ${Buffer.byteLength(data, 'latin1')}${last ? ' LAST' : ''}\r\n${data}`);
  return c.reply();
}

for (const mode of ['store-and-forward', 'cut-through'] as const) {
  describe(`protocol, ${mode}`, () => {
    let up: UpstreamPeer;
    let gw: GatewayPeer;
    before(async () => {
      up = await startUpstream();
      gw = await startGateway({
        upstreamPort: up.port,
        forwarding: mode,
        extra: 'limits: { max-message-size: 64KiB, max-recipients: 3 }\n',
      });
    });
    after(async () => {
      await gw.stop();
      await up.close();
    });

    it('relays a pipelined batch and answers in order, in one reply batch', async () => {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.reply();
      c.write('EHLO pipe.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n');
      assert.match((await c.reply())!, /^250-/);
      assert.match((await c.reply())!, /^250 /);
      assert.match((await c.reply())!, /^250 /);
      assert.match((await c.reply())!, /^250 /);
      assert.match((await c.reply())!, /^354 /);
      c.write('Subject: p\r\n\r\npipelined\r\n.\r\nQUIT\r\n');
      assert.match((await c.reply())!, /^250 /);
      assert.match((await c.reply())!, /^221 /);
      assert.equal(up.messages.length, before + 1);
      assert.deepEqual(up.messages[before]!.to, ['b@example.com', 'c@example.com']);
    });

    it('edits EHLO: hides STARTTLS, AUTH, BINARYMIME; caps SIZE; offers CHUNKING; refuses STARTTLS', async () => {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      const ehlo = (await c.cmd('EHLO x.example'))!;
      assert.doesNotMatch(ehlo, /STARTTLS|AUTH|BINARYMIME/);
      assert.match(ehlo, /250[- ]SIZE 65536/);
      assert.match(ehlo, /PIPELINING/);
      assert.match(ehlo, /250 CHUNKING$/);
      assert.match((await c.cmd('STARTTLS'))!, /^502 5\.5\.1/);
      c.write('BDAT 5 LAST\r\nhello');
      assert.match((await c.reply())!, /^503 5\.5\.1/);
      assert.match((await c.cmd('NOOP'))!, /^250/, 'the BDAT chunk was skipped, not read as commands');
      assert.match((await c.cmd('XYZZY'))!, /^500 5\.5\.2/);
      assert.match((await c.cmd('QUIT'))!, /^221/);
    });

    it('BDAT: pipelined chunks arrive as one message, byte for byte', async () => {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO x.example');
      const body = 'Subject: chunks\r\n\r\n.leading dot\r\nsplit li';
      const rest = 'ne across chunks\r\n..two dots\r\n';
      c.write(`MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT ${body.length}\r\n${body}BDAT ${rest.length} LAST\r\n${rest}`);
      for (let i = 0; i < 4; i++) assert.match((await c.reply())!, /^250 /);
      await c.cmd('QUIT');
      assert.equal(up.messages.length, before + 1);
      assert.equal(up.messages[before]!.data.toString('latin1'), body + rest);
    });

    it('BDAT: EICAR split across chunks is blocked at LAST with 541, client reset', async () => {
      const before = up.messages.length;
      const c = await RawClient.openTransaction(gw.port, { ehlo: 'x.example' });
      const eicar = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
      const a = `Subject: e\r\n\r\n${eicar.slice(0, 30)}`;
      const b2 = `${eicar.slice(30)}\r\n`;
      assert.match((await bdat(c, a))!, /^250 /);
      assert.match((await bdat(c, b2, true))!, /^541 5\.4\.1 /);
      assert.equal(await c.end(), 'reset');
      assert.equal(up.messages.length, before);
    });

    it('BDAT: a bare LF in a chunk is refused at LAST (550); RSET mid-BDAT discards the message', async () => {
      const before = up.messages.length;
      const c = await RawClient.openTransaction(gw.port, { ehlo: 'x.example' });
      const bad = 'Subject: x\r\n\r\nline\n.\nMAIL FROM:<evil@x>\r\n';
      assert.match((await bdat(c, bad, true))!, /^550 5\.5\.2 /);
      await c.cmd('MAIL FROM:<a@example.org>');
      await c.cmd('RCPT TO:<b@example.com>');
      assert.match((await bdat(c, 'half\r\n'))!, /^250 /);
      assert.match((await c.cmd('RSET'))!, /^250 /);
      assert.match((await c.cmd('MAIL FROM:<a@example.org>'))!, /^250 /);
      assert.match((await c.cmd('RCPT TO:<b@example.com>'))!, /^250 /);
      assert.match((await bdat(c, '', true))!, /^250 /);
      await c.cmd('QUIT');
      assert.equal(up.messages.length, before + 1, 'only the empty BDAT message arrived');
      assert.equal(up.messages[before]!.data.length, 0);
    });

    it('refuses bare LF, bare CR and NUL in commands, and over-long command lines', async () => {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      c.write('EHLO x\n');
      assert.match((await c.reply())!, /^500 5\.5\.2 .*bare <LF>/);
      c.write('NOOP\rMAIL FROM:<x@y>\r\n');
      assert.match((await c.reply())!, /^500 5\.5\.2 .*bare <CR>/);
      c.write('NOOP\x00\r\n');
      assert.match((await c.reply())!, /^500 5\.5\.2 .*NUL/);
      c.write(`NOOP ${'x'.repeat(5000)}\r\n`);
      assert.match((await c.reply())!, /^500 5\.5\.2 Line too long/);
      assert.match((await c.cmd('NOOP'))!, /^250/, 'the session goes on after each refusal');
      await c.cmd('QUIT');
    });

    for (const [name, ending, expect] of [
      ['bare LF', 'line\n.\nMAIL FROM:<evil@x>\r\n', /^550 5\.5\.2 .*bare <LF>/],
      ['bare CR', 'line\r.\rMAIL FROM:<evil@x>\r\n', /^550 5\.5\.2 .*bare <CR>/],
      ['NUL', 'line\r\n\x00.\r\n', /^550 5\.6\.0 .*NUL/],
      ['over-long line', `${'z'.repeat(1200)}\r\n`, /^550 5\.5\.2 .*line too long/],
    ] as const) {
      it(`refuses a message with ${name} after reading it to the strict end; nothing delivered`, async () => {
        const before = up.messages.length;
        const c = await RawClient.connect(gw.port);
        assert.match((await c.begin())!, /^354 /);
        c.write(`Subject: s\r\n\r\n${ending}more\r\n.\r\n`);
        assert.match((await c.reply())!, expect);
        // The session is usable (store-and-forward: same upstream; cut-through: reconnected).
        assert.match((await c.cmd('MAIL FROM:<a@example.org>'))!, /^250 /);
        assert.match((await c.cmd('RCPT TO:<b@example.com>'))!, /^250 /);
        assert.match((await c.cmd('DATA'))!, /^354 /);
        c.write('Subject: ok\r\n\r\nfine\r\n.\r\n');
        assert.match((await c.reply())!, /^250 /);
        await c.cmd('QUIT');
        assert.equal(up.messages.length, before + 1, 'only the clean message arrived');
        assert.ok(!up.messages[before]!.data.includes('evil'));
      });
    }

    it('refuses an oversize message with 552 5.3.4 (SIZE= and actual size)', async () => {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO x.example');
      assert.match((await c.cmd('MAIL FROM:<a@example.org> SIZE=100000'))!, /^552 5\.3\.4/);
      assert.match((await c.cmd('MAIL FROM:<a@example.org>'))!, /^250/);
      assert.match((await c.cmd('RCPT TO:<b@example.com>'))!, /^250/);
      assert.match((await c.cmd('DATA'))!, /^354/);
      c.write(`Subject: big\r\n\r\n${'0123456789abcdef\r\n'.repeat(5000)}.\r\n`);
      assert.match((await c.reply())!, /^552 5\.3\.4/);
      await c.cmd('QUIT');
      assert.equal(up.messages.length, before);
    });

    it('pipelined envelope with local refusals: replies in command order, state follows the upstream', async () => {
      const before = up.messages.length;
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO x.example');
      c.write(
        'MAIL FROM:<a@example.org>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:broken\r\nRCPT TO:<r2@example.com>\r\n' +
          'RCPT TO:<r3@example.com>\r\nRCPT TO:<r4@example.com>\r\nDATA\r\n',
      );
      const want = [/^250 /, /^250 /, /^501 5\.5\.4/, /^250 /, /^250 /, /^452 4\.5\.3/, /^354 /];
      for (const w of want) assert.match((await c.reply())!, w);
      c.write('Subject: p\r\n\r\nx\r\n.\r\n');
      assert.match((await c.reply())!, /^250 /);
      await c.cmd('QUIT');
      assert.deepEqual(up.messages[before]!.to, ['r1@example.com', 'r2@example.com', 'r3@example.com']);
    });

    it('caps recipients per transaction with 452 4.5.3', async () => {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO x.example');
      await c.cmd('MAIL FROM:<a@example.org>');
      for (let i = 0; i < 3; i++) assert.match((await c.cmd(`RCPT TO:<r${i}@example.com>`))!, /^250/);
      assert.match((await c.cmd('RCPT TO:<r4@example.com>'))!, /^452 4\.5\.3/);
      await c.cmd('QUIT');
    });

    it('answers out-of-sequence commands without relaying a DATA', async () => {
      const c = await RawClient.connect(gw.port);
      await c.reply();
      await c.cmd('EHLO x.example');
      assert.match((await c.cmd('DATA'))!, /^503 5\.5\.1/);
      await c.cmd('MAIL FROM:<a@example.org>');
      assert.match((await c.cmd('DATA'))!, /^554 5\.5\.1/);
      assert.match((await c.cmd('MAIL FROM:a@example.org'))!, /^501 5\.5\.4/);
      assert.match((await c.cmd('RCPT TO:<>'))!, /^501 5\.5\.4/);
      await c.cmd('QUIT');
    });

    it('when the client disappears mid-DATA, the upstream completes nothing and is released', async () => {
      const before = up.messages.length;
      const closedBefore = up.closed;
      const c = await RawClient.connect(gw.port);
      assert.match((await c.begin())!, /^354 /);
      c.write('Subject: half\r\n\r\nhalf a message\r\n');
      // The positive signal that the half message is in: the session counts its bytes.
      await until('the gateway to receive the half message', () => gw.gateway.sessions().some((s) => s.state === 'data' && s.messageBytes > 0));
      c.destroy();
      await up.waitClosed(closedBefore + 1);
      assert.equal(up.messages.length, before);
    });
  });
}

/** A scripted upstream that misbehaves on cue: for failures smtp-server will not produce. */
async function scriptedUpstream(onData: (s: Socket, line: string) => void): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.write('220 scripted ESMTP\r\n');
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        onData(s, line);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, server };
}

describe('upstream failures', () => {
  it('upstream unreachable: 421 4.4.0 and close', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const deadPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gw = await startGateway({ upstreamPort: deadPort });
    try {
      const c = await RawClient.connect(gw.port);
      assert.match((await c.reply())!, /^421 4\.4\.0 /);
      assert.notEqual(await c.end(), 'open');
    } finally {
      await gw.stop();
    }
  });

  for (const mode of ['store-and-forward', 'cut-through'] as const) {
    it(`${mode}: upstream closes during DATA → 4xx to the client, never 250`, async () => {
      let inData = false;
      const { port, server } = await scriptedUpstream((s, line) => {
        if (inData) {
          s.destroy(); // dies in the middle of the message
          return;
        }
        if (line.startsWith('EHLO')) s.write('250-scripted\r\n250 PIPELINING\r\n');
        else if (line === 'DATA') {
          inData = true;
          s.write('354 go ahead\r\n');
        } else s.write('250 ok\r\n');
      });
      const gw = await startGateway({ upstreamPort: port, forwarding: mode });
      try {
        const c = await RawClient.connect(gw.port);
        const dataReply = await c.begin();
        assert.match(dataReply!, /^354 /);
        c.write('Subject: x\r\n\r\nbody line\r\nmore\r\n.\r\n');
        const reply = await c.reply();
        assert.match(reply ?? '', /^4\d\d /, `got ${reply}`);
      } finally {
        await gw.stop();
        server.close();
      }
    });

    for (const [final, expect] of [
      ['452 4.3.1 Insufficient system storage', /^452 4\.3\.1 Insufficient system storage$/],
      ['554 5.7.1 Rejected by policy', /^554 5\.7\.1 Rejected by policy$/],
      ['354 go on', /^451 4\.3\.0 /],
    ] as const) {
      it(`${mode}: the upstream answers end of data with ${final.slice(0, 3)} → the client gets ${expect.source.slice(1, 4)}, never 250`, async () => {
        let inData = false;
        const { port, server } = await scriptedUpstream((s, line) => {
          if (inData) {
            if (line === '.') {
              inData = false;
              s.write(`${final}\r\n`);
            }
            return;
          }
          if (line.startsWith('EHLO')) s.write('250-scripted\r\n250 PIPELINING\r\n');
          else if (line === 'DATA') {
            inData = true;
            s.write('354 go ahead\r\n');
          } else if (line === 'QUIT') s.end('221 bye\r\n');
          else s.write('250 ok\r\n');
        });
        const gw = await startGateway({ upstreamPort: port, forwarding: mode });
        try {
          const c = await RawClient.connect(gw.port);
          assert.match((await c.begin())!, /^354 /);
          c.write('Subject: x\r\n\r\nbody\r\n.\r\n');
          assert.match((await c.reply())!, expect);
        } finally {
          await gw.stop();
          server.close();
        }
      });
    }

    it(`${mode}: an upstream that stops reading mid-DATA is reset after upstream-reply; the client gets 4xx`, async () => {
      const { port, server } = await scriptedUpstream((s, line) => {
        if (line.startsWith('EHLO')) s.write('250-scripted\r\n250 PIPELINING\r\n');
        else if (line === 'DATA') {
          s.write('354 go ahead\r\n');
          s.pause(); // never reads the message: the gateway's writes back up
        } else s.write('250 ok\r\n');
      });
      const gw = await startGateway({ upstreamPort: port, forwarding: mode, extra: 'timeouts: { upstream-reply: 500ms }\n' });
      try {
        const c = await RawClient.connect(gw.port);
        assert.match((await c.begin())!, /^354 /);
        const line = `${'x'.repeat(900)}\r\n`;
        c.write(`Subject: big\r\n\r\n${line.repeat(20_000)}.\r\n`); // ~18 MB: more than socket buffers hold
        assert.match((await c.reply(15_000)) ?? '', /^4\d\d /);
      } finally {
        await gw.stop();
        server.close();
      }
    });

    it(`${mode}: garbage from the upstream → 4xx, never relayed`, async () => {
      const { port, server } = await scriptedUpstream((s, line) => {
        if (line.startsWith('EHLO')) s.write('250 scripted\r\n');
        else if (line.startsWith('MAIL')) s.write('hello there, I am not SMTP\r\n');
        else s.write('250 ok\r\n');
      });
      const gw = await startGateway({ upstreamPort: port, forwarding: mode });
      try {
        const c = await RawClient.connect(gw.port);
        await c.reply();
        await c.cmd('EHLO x.example');
        const r = await c.cmd('MAIL FROM:<a@example.org>');
        assert.match(r ?? '', /^4\d\d /);
        assert.doesNotMatch(r ?? '', /not SMTP/);
      } finally {
        await gw.stop();
        server.close();
      }
    });

    it(`${mode}: a multi-line reply split across segments is relayed whole`, async () => {
      const { port, server } = await scriptedUpstream((s, line) => {
        if (line.startsWith('EHLO')) {
          s.write('250-scripted\r\n25');
          setTimeout(() => s.write('0-PIPELI'), 20);
          setTimeout(() => s.write('NING\r\n250 8BITMIME\r\n'), 40);
        } else if (line === 'QUIT') s.end('221 bye\r\n');
        else s.write('250 ok\r\n');
      });
      const gw = await startGateway({ upstreamPort: port, forwarding: mode });
      try {
        const c = await RawClient.connect(gw.port);
        await c.reply();
        const ehlo = await c.cmd('EHLO x.example');
        assert.match(ehlo!, /^250-scripted\n250-PIPELINING\n250-8BITMIME\n250-SIZE \d+\n250 CHUNKING$/);
      } finally {
        await gw.stop();
        server.close();
      }
    });
  }
});

describe('a client that closes its side after its last commands (Exim does)', () => {
  for (const forwarding of ['store-and-forward', 'cut-through'] as const) {
    for (const how of ['BDAT', 'DATA'] as const) {
      it(`${forwarding}, ${how}: MAIL, RCPT, the message and QUIT pipelined, then FIN: every reply arrives and the message is delivered`, async () => {
        const up = await startUpstream();
        const gw = await startGateway({ upstreamPort: up.port, forwarding });
        try {
          const c = await RawClient.connect(gw.port);
          await c.reply();
          await c.cmd('EHLO mta.exim.test');
          const body = `Subject: half-closed ${how}\r\n\r\nhello\r\n`;
          const tx = how === 'BDAT' ? `BDAT ${body.length} LAST\r\n${body}` : `DATA\r\n`;
          c.write(`MAIL FROM:<alice@exim.test> SIZE=1000\r\nRCPT TO:<bob@example.com>\r\n${tx}`);
          if (how === 'DATA') {
            assert.match((await c.reply())!, /^250 /);
            assert.match((await c.reply())!, /^250 /);
            assert.match((await c.reply())!, /^354 /);
            c.write(`${body}.\r\nQUIT\r\n`);
          } else {
            c.write('QUIT\r\n');
          }
          c.socket.end(); // shutdown(SHUT_WR), as Exim does after a pipelined QUIT
          const replies: string[] = [];
          for (let r = await c.reply(); r !== null; r = await c.reply()) replies.push(r.slice(0, 3));
          assert.deepEqual(replies, how === 'BDAT' ? ['250', '250', '250', '221'] : ['250', '221']);
          await c.closed;
          assert.ok(up.messages.some((m) => m.data.toString('latin1').includes(`Subject: half-closed ${how}`)), 'delivered');
        } finally {
          await gw.stop();
          await up.close();
        }
      });
    }
  }
});
