/**
 * Differential reading of the DATA stream: the same byte streams (SMTP-smuggling endings, the
 * smtpsmug set and more) sent to Postfix's smtpd directly, with `smtpd_forbid_bare_newline` at
 * each setting, and through smtpwall to the most lenient of them. Each stream carries a first
 * message, a non-standard "ending", then a complete second transaction ("smuggled").
 *
 * What must hold: where Postfix sees the message end at the non-standard ending (and so runs the
 * smuggled commands), smtpwall must see the same or refuse; through smtpwall, no smuggled
 * message is ever delivered, whatever the receiver would have done alone. The observed table is
 * printed (and documented in the README, "One reading of the stream").
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway } from '../../src/app/gateway.ts';
import { silentLogger } from '../../src/logs/process-log.ts';
import { parseConfig } from '../../src/policy/load-config.ts';
import { freePort, type PostfixInstance, postfixUnavailable, startPostfix, waitFor } from '../../lab/postfix-instance.ts';

const ENDINGS: ReadonlyArray<readonly [string, string]> = [
  ['LF.LF', '\n.\n'],
  ['CR.CR', '\r.\r'],
  ['CR.LF', '\r.\n'],
  ['LF.CR', '\n.\r'],
  ['LF.CRLF', '\n.\r\n'],
  ['CRLF.LF', '\r\n.\n'],
  ['CR.CRLF', '\r.\r\n'],
  ['CRLF.CR', '\r\n.\r'],
  ['CRLF NUL.CRLF', '\r\n\x00.\r\n'],
  ['CRCRLF.CRLF', '\r\r\n.\r\n'],
];
const SETTINGS = ['no', 'normalize', 'reject'] as const;

/** One raw session: greet, EHLO, MAIL, RCPT, DATA, then the stream; resolves with all the server said. */
function session(port: number, stream: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    let sent = 0;
    const steps = ['EHLO diff.test\r\n', 'MAIL FROM:<a@diff.test>\r\n', 'RCPT TO:<r@diff.test>\r\n', 'DATA\r\n', stream];
    s.on('data', (d) => {
      got += d.toString('latin1');
      // Each step goes after one more complete reply (the last line of a reply is "NNN text").
      const finals = (got.match(/^\d{3} [^\n]*\n/gm) ?? []).length;
      while (sent < steps.length && finals > sent) s.write(Buffer.from(steps[sent++]!, 'latin1'));
    });
    const done = (): void => resolve(got);
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => s.destroy(), 8000);
  });
}

describe('differential reading against Postfix smtpd', { skip: postfixUnavailable() ?? false, timeout: 240_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'smtpwall-diff-'));
  const servers = new Map<string, { pf: PostfixInstance; port: number }>();
  let gateway: Gateway;
  let gwPort = 0;
  before(async () => {
    for (const setting of SETTINGS) {
      const port = await freePort();
      const pf = await startPostfix({
        base, name: `pf-${setting}`, hostname: `${setting}.diff.test`, listen: `127.0.0.1:${port}`,
        main: [`smtpd_forbid_bare_newline = ${setting}`, 'smtpd_forbid_bare_newline_exclusions =', 'smtpd_client_restrictions =', 'smtpd_recipient_restrictions = permit_mynetworks, reject'],
        mailboxes: ['r@diff.test'],
      });
      servers.set(setting, { pf, port });
    }
    gateway = new Gateway(
      parseConfig(`data-dir: ${JSON.stringify(join(base, 'gw'))}\nlisteners:\n  - { name: d, listen: "127.0.0.1:0", upstream: "127.0.0.1:${servers.get('no')!.port}" }\n`),
      silentLogger,
    );
    gwPort = (await gateway.start())[0]!.port;
  });
  after(async () => {
    await gateway?.stop(500);
    for (const { pf } of servers.values()) await pf.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('no smuggled message through smtpwall; smtpwall ends or refuses wherever Postfix ends', async () => {
    const rows: string[] = [];
    const smuggledBehind: string[] = [];
    // Messages each Postfix said it queued: what its mailbox must hold before it is read.
    const queued = new Map<string, number>(SETTINGS.map((s) => [s, 0]));
    const count = (setting: string, reply: string): void => void queued.set(setting, queued.get(setting)! + (reply.match(/queued as/g) ?? []).length);
    for (const [name, ending] of ENDINGS) {
      const stream = (target: string): string =>
        `Subject: first ${name} ${target}\r\n\r\nbody${ending}MAIL FROM:<a@diff.test>\r\nRCPT TO:<r@diff.test>\r\nDATA\r\nSubject: smuggled ${name} ${target}\r\n\r\nsecond\r\n.\r\nQUIT\r\n`;
      const seen: string[] = [];
      for (const setting of SETTINGS) {
        const reply = await session(servers.get(setting)!.port, stream(`direct-${setting}`));
        seen.push(`${setting}: ${summarize(reply)}`);
        count(setting, reply);
      }
      const viaGw = await session(gwPort, stream('via-smtpwall'));
      seen.push(`smtpwall: ${summarize(viaGw)}`);
      count('no', viaGw); // smtpwall relays to the "no" instance, and relays its replies
      rows.push(`${name.padEnd(14)} ${seen.join(' | ')}`);
    }
    // Every message a Postfix instance queued is delivered before its mailbox is read.
    await waitFor('Postfix to deliver what it queued', () =>
      SETTINGS.every((s) => servers.get(s)!.pf.mailbox('r@diff.test').length >= queued.get(s)!),
    );
    const delivered = (setting: string) => servers.get(setting)!.pf.mailbox('r@diff.test').map((m) => /^Subject: (.*)$/m.exec(m)?.[1] ?? '?');
    const secondAccepted = (setting: string, target: string) =>
      new Set(delivered(setting).filter((x) => x.startsWith('smuggled ') && x.endsWith(` ${target}`)).map((x) => x.split(' ')[1]!));
    for (const n of secondAccepted('no', 'via-smtpwall')) smuggledBehind.push(n);
    // The strict reading: where Postfix with `reject` runs the second transaction too, the
    // stream really ended there (CRLF.CRLF was present); anywhere else it is smuggling.
    const legit = secondAccepted('reject', 'direct-reject');
    process.stdout.write(`\nending         | Postfix replies after 354, by smtpd_forbid_bare_newline | smtpwall in front of "no"\n${rows.join('\n')}\n`);
    for (const setting of SETTINGS) process.stdout.write(`Postfix ${setting} alone ran the second transaction for: ${[...secondAccepted(setting, `direct-${setting}`)].join(', ') || 'none'}\n`);
    process.stdout.write(`through smtpwall the second transaction ran for: ${smuggledBehind.join(', ') || 'none'}\n`);
    for (const n of smuggledBehind) assert.ok(legit.has(n), `${n}: smtpwall let a second transaction through where strict Postfix saw none`);
    // smtpwall refused every non-standard ending: a 550 for the first message, never a 250 for it.
    for (const r of rows) assert.match(r.split('smtpwall: ')[1]!, /^550/, r);
  });
});

/** The codes a server answered after DATA's 354: what it made of the stream. */
function summarize(reply: string): string {
  const after354 = reply.slice(reply.indexOf('\n354') + 1).split('\n').slice(1);
  return after354.map((l) => l.slice(0, 3)).filter((c) => /^\d{3}$/.test(c)).join(' ') || '(none)';
}
