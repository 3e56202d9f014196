/**
 * The admin's everyday tools, each driven through the real `smtpwall` command: help and usage
 * for every command, --version, the default config path, scan's summary and --infected,
 * analyze on messages, policy test with the envelope from the headers, quarantine digests, and
 * — against a running `smtpwall start` — the maillog line, decoded subjects, log filters and
 * --follow, status, reload's report, the debug transcript, log-file reopening, retention,
 * dependency probes and a taken port. Every process started is stopped by its pid.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, watch, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { SqliteLogStore } from '../../src/logs/sqlite-store.ts';
import { QuarantineStore } from '../../src/quarantine/store.ts';
import { lnk } from '../helpers/analysis-fixtures.ts';
import { zip } from '../helpers/archives.ts';
import { EICAR_MESSAGES } from '../helpers/messages.ts';
import { outputMatches, startUpstream } from '../helpers/peers.ts';

const BIN = join(import.meta.dirname, '../../bin/smtpwall.js');
const PKG = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `smtpwall ARGS` in `cwd`, with SMTPWALL_CONFIG as given (unset by default). */
function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...opts.env };
  if (!opts.env?.SMTPWALL_CONFIG) delete env.SMTPWALL_CONFIG;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: opts.cwd, env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const COMMANDS = ['start', 'reload', 'restart', 'status', 'logs', 'quarantine', 'scan', 'analyze', 'verdicts', 'policy', 'config', 'demo'];

describe('smtpwall CLI: help, usage, version, default config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-tools-'));

  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `smtpwall ${PKG.version}\n`);
  });

  it('help COMMAND and COMMAND --help print that command\'s own usage, for every command', async () => {
    for (const name of COMMANDS) {
      const a = await cli(['help', name]);
      const b = await cli([name, '--help']);
      assert.equal(a.code, 0, name);
      assert.equal(b.code, 0, name);
      assert.match(a.stdout, new RegExp(`^usage: smtpwall ${name}\\b`), name);
      assert.equal(a.stdout, b.stdout, `${name}: help and --help agree`);
    }
    assert.match((await cli(['help', 'scan'])).stdout, /^usage: smtpwall scan PATH\.\.\. .*\n\noptions:\n.*--infected/s);
  });

  it('a usage mistake is one line and the usage, never a stack trace; exit 2', async () => {
    for (const args of [['scan', '--bogus'], ['logs'], ['logs', 'traffic', '--limit', 'x', '-c', 'none.yaml'], ['quarantine', 'frobnicate', '-c', join(import.meta.dirname, '../../smtpwall.example.yaml')], ['policy', 'test'], ['frobnicate'], ['help', 'frobnicate']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.doesNotMatch(r.stderr, /^\s+at /m, `${args.join(' ')}: no stack trace`);
      assert.match(r.stderr.split('\n')[0]!, /^smtpwall( \w+)?: \S/, args.join(' '));
    }
    const r = await cli(['scan', '--bogus']);
    assert.match(r.stderr, /^smtpwall scan: Unknown option '--bogus'\nusage: smtpwall scan /);
  });

  it('the configuration: -c, else $SMTPWALL_CONFIG, else ./smtpwall.yaml; none: one line', async () => {
    const here = join(dir, 'here');
    mkdirSync(here);
    writeFileSync(join(here, 'smtpwall.yaml'), 'hostname: from-cwd\nlisteners:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\n');
    writeFileSync(join(dir, 'env.yaml'), 'hostname: from-env\nlisteners:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\n');
    const cwd = await cli(['config', 'show', '--set'], { cwd: here });
    assert.equal(cwd.code, 0, cwd.stderr);
    assert.match(cwd.stdout, /^hostname = from-cwd$/m);
    const env = await cli(['config', 'show', '--set'], { cwd: here, env: { SMTPWALL_CONFIG: join(dir, 'env.yaml') } });
    assert.match(env.stdout, /^hostname = from-env$/m);
    const given = await cli(['config', 'show', '--set', '-c', join(here, 'smtpwall.yaml')], { env: { SMTPWALL_CONFIG: join(dir, 'env.yaml') } });
    assert.match(given.stdout, /^hostname = from-cwd$/m);
    const none = await cli(['logs', 'traffic'], { cwd: dir });
    assert.equal(none.code, 2);
    assert.equal(none.stderr, 'smtpwall logs: no configuration file: give -c FILE, set SMTPWALL_CONFIG, or create /etc/smtpwall/smtpwall.yaml or ./smtpwall.yaml\n');
  });

  it('config show: values with their defaults; --defaults without a file', async () => {
    const cfg = join(dir, 'show.yaml');
    writeFileSync(cfg, 'listeners:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\nlimits: { max-message-size: 10MiB }\n');
    const r = await cli(['config', 'show', '-c', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^limits\.max-message-size = 10MiB {2}# default: 25MiB$/m);
    assert.match(r.stdout, /^timeouts\.scan = 30s {2}# default$/m);
    assert.match(r.stdout, /^listeners\[0\]\.upstream = 127\.0\.0\.1:25$/m);
    const d = await cli(['config', 'show', '--defaults']);
    assert.match(d.stdout, /^log-database\.retention = 90d$/m);
    assert.match(d.stdout, /^listeners\[\]\.listen = \(required\)$/m);
  });
});

describe('smtpwall scan, analyze, policy test, quarantine digest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-tools-'));
  const empty = mkdtempSync(join(tmpdir(), 'smtpwall-nocfg-')); // no smtpwall.yaml here

  it('scan: a summary line, --infected prints only findings, and without -c it judges as the example config', async () => {
    writeFileSync(join(dir, 'a.txt'), 'clean');
    writeFileSync(join(dir, 'b.com'), EICAR);
    const pe = Buffer.alloc(512);
    pe.write('MZ');
    writeFileSync(join(dir, 'tool.zip'), zip([{ name: 'setup.exe', data: pe }]));
    const r = await cli(['scan', join(dir, 'a.txt'), join(dir, 'b.com')], { cwd: empty });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /a\.txt: OK\n/);
    assert.match(r.stdout.trimEnd().split('\n').at(-1)!, /^scanned 2 files \(0 messages, [\d.]+ KiB\) in [\d.]+ s: 1 threat in 1 of them, 0 not inspectable, 0 errors$/);
    const inf = await cli(['scan', '--infected', join(dir, 'a.txt'), join(dir, 'b.com')], { cwd: empty });
    assert.doesNotMatch(inf.stdout, /a\.txt/);
    assert.match(inf.stdout, /b\.com: FOUND EICAR-Test-File/);
    const bare = await cli(['scan', join(dir, 'tool.zip')], { cwd: empty });
    const example = await cli(['scan', '-c', join(import.meta.dirname, '../../smtpwall.example.yaml'), join(dir, 'tool.zip')], { cwd: empty });
    const verdict = (s: string): string => s.split('\n')[0]!;
    assert.equal(verdict(bare.stdout), verdict(example.stdout), 'the same engines with and without -c');
    assert.equal(bare.code, example.code);
  });

  it('analyze reads .eml and mbox input as messages and exits 1 on any threat', async () => {
    const shortcut = lnk('C:\\Windows\\System32\\cmd.exe', '/c powershell -w hidden');
    const eml = `From: a@example.org\r\nTo: b@example.com\r\nSubject: s\r\nMessage-ID: <lnk@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream; name="run.lnk"\r\nContent-Transfer-Encoding: base64\r\n\r\n${shortcut.toString('base64')}\r\n--b--\r\n`;
    writeFileSync(join(dir, 'lnk.eml'), eml);
    const a = await cli(['analyze', join(dir, 'lnk.eml')]);
    assert.equal(a.code, 1, a.stderr);
    assert.match(a.stdout, /lnk\.eml: message, \d+ file\(s\)/);
    assert.match(a.stdout, /msg\/2.*\(run\.lnk\): MALICIOUS/);
    writeFileSync(join(dir, 'eicar.eml'), EICAR_MESSAGES['base64 attachment']!);
    const e = await cli(['analyze', join(dir, 'eicar.eml')]);
    assert.equal(e.code, 1, 'a signature finding is a threat too');
    assert.match(e.stdout, /FOUND EICAR-Test-File/);
    writeFileSync(join(dir, 'box.mbox'), `From a@example.org Mon Nov 23 10:00:00 2026\n${eml.replace(/\r\n/g, '\n')}\n`);
    const m = await cli(['analyze', join(dir, 'box.mbox')]);
    assert.equal(m.code, 1);
    assert.match(m.stdout, /box\.mbox#1 <lnk@example\.org>: message/);
  });

  it('policy test takes sender and recipients from the headers when not given, and says so', async () => {
    const cfg = join(dir, 'policy.yaml');
    writeFileSync(cfg, 'listeners:\n  - { name: in, listen: "127.0.0.1:0", upstream: "10.1.1.1:25" }\nrules:\n  - { name: partner, match: { from: ["@partner.example"] }, profiles: { antivirus: default } }\n');
    writeFileSync(join(dir, 'hdr.eml'), 'From: "P. Artner" <p@partner.example>\r\nTo: u1@corp.example, "U 2" <u2@corp.example>\r\nCc: u3@corp.example\r\nSubject: x\r\n\r\nhi\r\n');
    const r = await cli(['policy', 'test', '-c', cfg, join(dir, 'hdr.eml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^envelope: sender from the message's From; recipients from the message's To\/Cc\/Bcc \(--from\/--to set it\)$/m);
    assert.match(r.stdout, /^transaction: p@partner\.example → u1@corp\.example, u2@corp\.example, u3@corp\.example /m);
    assert.match(r.stdout, /^rule: partner /m);
    const given = await cli(['policy', 'test', '-c', cfg, '--from', 'x@else.example', '--to', 'y@corp.example', join(dir, 'hdr.eml')]);
    assert.doesNotMatch(given.stdout, /^envelope:/m);
    assert.match(given.stdout, /^rule: default /m);
  });

  it('quarantine digest: one summary mail per recipient, printed or sent through the upstream', async () => {
    const up = await startUpstream();
    const received = up.messages;
    const port = up.port;
    try {
      const data = join(dir, 'qdata');
      const cfg = join(dir, 'digest.yaml');
      writeFileSync(cfg, `data-dir: ${JSON.stringify(data)}\nhostname: gw.example\nlisteners:\n  - { name: in, listen: "127.0.0.1:0", upstream: "127.0.0.1:${port}" }\nquarantine:\n  digest: { from: quarantine@corp.example, contact: helpdesk@corp.example }\n`);
      const store = new QuarantineStore(data, { maxAgeMs: 30 * 86_400_000, maxBytes: 1e9 });
      const meta = (id: string, to: string[], subject: string) => ({
        id, time: new Date().toISOString(), listener: 'in', client: '192.0.2.1:1', upstream: `127.0.0.1:${port}`, mailFrom: 'bad@evil.example',
        rcptTo: to, subject, rule: 'r', action: 'block', reason: 'x', threat: 'EICAR-Test-File',
      });
      await store.put(meta('AAAAAAAAAAAAAAAA.1', ['u1@corp.example', 'u2@corp.example'], 'Rechnung für Sie'), (async function* () { yield Buffer.from('Subject: a\r\n\r\nx\r\n'); })());
      await store.put(meta('BBBBBBBBBBBBBBBB.1', ['u1@corp.example'], 'second'), (async function* () { yield Buffer.from('Subject: b\r\n\r\ny\r\n'); })());
      const printed = await cli(['quarantine', 'digest', '-c', cfg]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.match(printed.stdout, /=== digest for <u1@corp\.example>: 2 held/);
      assert.match(printed.stdout, /=== digest for <u2@corp\.example>: 1 held/);
      assert.equal(received.length, 0, 'printing sends nothing');
      const sent = await cli(['quarantine', 'digest', '--send', '-c', cfg]);
      assert.equal(sent.code, 0, sent.stdout + sent.stderr);
      assert.match(sent.stdout, /^sent digest to <u1@corp\.example> \(2 held\): 250 /m);
      assert.deepEqual(received.map((r) => r.to), [['u1@corp.example'], ['u2@corp.example']]);
      const mail = await simpleParser(received[0]!.data);
      assert.equal(mail.subject, 'Quarantine digest: 2 messages held for you');
      assert.equal(mail.from?.value[0]?.address, 'quarantine@corp.example');
      assert.match(mail.text ?? '', /AAAAAAAAAAAAAAAA\.1/);
      assert.match(mail.text ?? '', /subject: Rechnung für Sie/, 'UTF-8 subject intact');
      assert.match(mail.text ?? '', /write to helpdesk@corp\.example and quote its id/);
    } finally {
      await up.close();
    }
  });
});

describe('scheduled quarantine digests', { timeout: 120_000 }, () => {
  it('a gateway with quarantine.digest.every sends each recipient the list of what was held for them, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-digest-'));
    const up = await startUpstream();
    const got = up.messages;
    const upPort = up.port;
    const cfg = join(dir, 'q.yaml');
    writeFileSync(cfg, `data-dir: ./data\nlisteners:\n  - { name: inbound, listen: "127.0.0.1:0", upstream: "127.0.0.1:${upPort}" }\nprofiles: { antivirus: { q: { action: block, quarantine: true } } }\nrules: [{ name: all, profiles: { antivirus: q } }]\nquarantine: { digest: { every: 500ms, from: quarantine@corp.example } }\n`);
    const child = spawn(process.execPath, [BIN, 'start', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    try {
      await outputMatches([child.stdout, child.stderr], () => out, /smtpwall started/);
      const port = Number(/listening listener=inbound address=127\.0\.0\.1:(\d+)/.exec(out)![1]);
      const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
      await assert.rejects(t.sendMail({ envelope: { from: 'mallory@evil.example', to: ['bob@corp.example'] }, raw: EICAR_MESSAGES['raw in the body']! }), /541/);
      await outputMatches([child.stdout, child.stderr], () => out, /info quarantine digest sent to=bob@corp\.example entries=1 /);
      const digest = got.find((m) => m.to[0] === 'bob@corp.example')!;
      const mail = await simpleParser(digest.data);
      assert.equal(mail.subject, 'Quarantine digest: 1 message held for you');
      assert.match(mail.text ?? '', /from: {4}<mallory@evil\.example>/);
      // The next message is reported in the next digest; the first one is not reported again.
      await assert.rejects(t.sendMail({ envelope: { from: 'eve@evil.example', to: ['bob@corp.example'] }, raw: EICAR_MESSAGES['raw in the body']! }), /541/);
      await outputMatches([child.stdout, child.stderr], () => out, /info quarantine digest sent to=bob@corp\.example entries=1 /, 2);
      const second = await simpleParser(got.filter((m) => m.to[0] === 'bob@corp.example')[1]!.data);
      assert.match(second.text ?? '', /eve@evil\.example/);
      assert.doesNotMatch(second.text ?? '', /mallory@evil\.example/);
    } finally {
      process.kill(child.pid!, 'SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await up.close();
    }
  });
});

describe('smtpwall start, as an admin runs it day to day', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-day-'));
  const children: ChildProcess[] = [];
  const received: Buffer[] = [];
  let upstream: SMTPServer;
  let upPort = 0;
  let gw: { child: ChildProcess; out: string; waitFor(re: RegExp, n?: number): Promise<void> };
  let port = 0;
  const cfgFile = join(dir, 'smtpwall.yaml');
  const data = join(dir, 'data');
  const forwarded = join(dir, 'records.jsonl');
  let unusedPort = 0;
  let holder: Server;

  function start(cfg: string) {
    const child = spawn(process.execPath, [BIN, 'start', '-c', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const run = {
      child,
      out: '',
      waitFor: (re: RegExp, n = 1): Promise<void> => outputMatches([child.stdout, child.stderr], () => run.out, re, n),
    };
    child.stdout!.on('data', (d) => (run.out += d));
    child.stderr!.on('data', (d) => (run.out += d));
    return run;
  }

  const send = (raw: string | Buffer, opts: { from?: string; to?: string[]; localAddress?: string } = {}) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, localAddress: opts.localAddress })
      .sendMail({ envelope: { from: opts.from ?? 'alice@example.org', to: opts.to ?? ['bob@example.com'] }, raw });

  before(async () => {
    upstream = new SMTPServer({
      authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], logger: false,
      onData(stream, _s, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push(Buffer.concat(chunks));
          cb(null, `Ok: queued as Q${received.length}X`);
        });
      },
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
    upPort = (upstream.server.address() as { port: number }).port;
    // A port nobody listens on, for clamd: bound and closed again.
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    unusedPort = (holder.address() as { port: number }).port;
    await new Promise<void>((resolve) => holder.close(() => resolve()));
    // An old record, past the retention, from before the gateway started.
    const old = new SqliteLogStore(data);
    old.addTraffic({
      time: '2020-01-01T00:00:00.000Z', sessionId: 'OLDOLDOLDOLDOLD0', transactionId: 'OLDOLDOLDOLDOLD0.1', listener: 'inbound', client: '192.0.2.9:1',
      server: 'x', helo: 'old', mailFrom: 'ancient@example.org', rcptTo: ['x@example.com'], size: 1, messageId: '', subject: 'old', forwarding: 'store-and-forward',
      rule: 'scan-all', profile: '', action: 'allow', reason: '', upstreamReply: '250 ok', clientReply: '250 ok', durationMs: 1, events: [],
    });
    old.close();
    writeFileSync(cfgFile, [
      `data-dir: ${JSON.stringify(data)}`,
      'listeners:',
      '  - name: inbound',
      '    listen: 127.0.0.1:0',
      `    upstream: 127.0.0.1:${upPort}`,
      'debug-peers: [127.0.0.2]',
      `engines: { clamd: { address: "127.0.0.1:${unusedPort}" } }`,
      'profiles: { antivirus: { av: { action: block, on-error: allow } } }',
      'rules: [{ name: scan-all, profiles: { antivirus: av } }]',
      'log-database: { retention: 30d }',
      `log-forwarding: [{ name: file, type: file, path: ${JSON.stringify(forwarded)}, format: json }]`,
      '',
    ].join('\n'));
    gw = start(cfgFile);
    await gw.waitFor(/smtpwall started/);
    port = Number(/listening listener=inbound address=127\.0\.0\.1:(\d+)/.exec(gw.out)![1]);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('start probes what the config depends on and warns with the fix, but serves', async () => {
    await gw.waitFor(/warn dependency down what="clamd 127\.0\.0\.1:\d+" detail=.*fix="start clamd/);
    const check = await cli(['config', 'check', '-c', cfgFile]);
    assert.equal(check.code, 1, 'valid, but clamd is down');
    assert.match(check.stdout, /^ {2}clamd 127\.0\.0\.1:\d+: DOWN \(.*\) — fix: start clamd/m);
    assert.match(check.stdout, /^ {2}upstream of inbound 127\.0\.0\.1:\d+: ok \(greeting "220 /m);
  });

  it('one maillog line per transaction, delivered and blocked, with client, envelope, subject decoded, reply and queue id', async () => {
    await send('Subject: =?UTF-8?B?R3LDvMOfZSDinJM=?=\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n', { to: ['bob@example.com', 'carol@example.com'] });
    await gw.waitFor(/info delivered id=\S+ client=127\.0\.0\.1:\d+ /);
    const line = gw.out.split('\n').find((l) => / info delivered /.test(l))!;
    assert.match(line, / from=<alice@example\.org> to=<bob@example\.com>,<carol@example\.com> size=\d+ message-id=<m1@example\.org> subject="Grüße ✓" rule=scan-all action=allow relay=127\.0\.0\.1:\d+ reply="250 Ok: queued as Q1X" queue-id=Q1X delay=\d+\.\d{3}$/);
    await assert.rejects(send(EICAR_MESSAGES['raw in the body']!, { from: 'mallory@evil.example' }));
    await gw.waitFor(/info blocked id=\S+ client=127\.0\.0\.1:\d+ .*from=<mallory@evil\.example>/);
    assert.match(gw.out, /info blocked .* to=<bob@example\.com> .*rule=scan-all action=block threat=EICAR-Test-File .*client-reply="541 5\.4\.1 Content blocked/);
  });

  it('logs: subjects decoded, filters by sender, recipient domain, action, threat, id and time', async () => {
    const all = await cli(['logs', 'traffic', '--json', '-c', cfgFile]);
    const recs = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { transactionId: string; subject: string; action: string; mailFrom: string });
    assert.equal(recs.find((r) => r.mailFrom === 'alice@example.org')?.subject, 'Grüße ✓');
    const table = await cli(['logs', 'traffic', '-c', cfgFile]);
    assert.match(table.stdout, /Grüße ✓/, 'UTF-8 shown as UTF-8, not ??');
    const ids = async (...args: string[]): Promise<string[]> => {
      const r = await cli(['logs', 'traffic', '--json', '-c', cfgFile, ...args]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim() ? r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { mailFrom: string }).mailFrom) : [];
    };
    assert.deepEqual(await ids('--from', 'mallory@evil.example'), ['mallory@evil.example']);
    assert.deepEqual(await ids('--from', 'EVIL.example'), ['mallory@evil.example'], 'a domain, any case');
    assert.deepEqual(await ids('--to', '@example.com', '--action', 'allow', '--since', '1h'), ['alice@example.org']);
    assert.deepEqual(await ids('--to', 'carol@example.com'), ['alice@example.org']);
    assert.deepEqual(await ids('--threat', 'eicar'), ['mallory@evil.example']);
    assert.deepEqual(await ids('--client', '127.0.0.1', '--action', 'block'), ['mallory@evil.example']);
    assert.deepEqual(await ids('--until', '2000-01-01'), []);
    const blocked = recs.find((r) => r.action === 'block')!;
    assert.deepEqual(await ids('--id', blocked.transactionId), ['mallory@evil.example']);
    const threats = await cli(['logs', 'threats', '--json', '-c', cfgFile, '--from', '@evil.example', '--threat', 'EICAR']);
    assert.equal(threats.stdout.trim().split('\n').length, 1);
    const bad = await cli(['logs', 'traffic', '-c', cfgFile, '--since', 'yesterday-ish']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^smtpwall logs: --since: expected a time/);
  });

  it('retention: the record older than log-database.retention is gone', async () => {
    await gw.waitFor(/log records pruned .*traffic=1/);
    const r = await cli(['logs', 'traffic', '--json', '-c', cfgFile, '--from', 'ancient@example.org']);
    assert.equal(r.stdout, '');
  });

  it('logs --follow prints each new record as it is written', async () => {
    const follow = spawn(process.execPath, [BIN, 'logs', 'traffic', '--follow', '--limit', '1', '-c', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(follow);
    let out = '';
    follow.stdout!.on('data', (d) => (out += d));
    // The newest existing record first (the positive signal that it is reading) …
    await outputMatches([follow.stdout], () => out, /blocked id=\S+ .*from=<mallory@evil\.example>/);
    await send('Subject: followed\r\n\r\nnew\r\n', { from: 'dave@example.org' });
    // … then the one written after it started.
    await outputMatches([follow.stdout], () => out, /delivered id=\S+ .*from=<dave@example\.org> .*subject=followed/);
    process.kill(follow.pid!, 'SIGTERM');
  });

  it('status: running, pid, sessions, listener, recent counts, and what is down', async () => {
    const r = await cli(['status', '-c', cfgFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^smtpwall ${PKG.version.replace(/\./g, '\\.')}: running, pid ${gw.child.pid}, up \\d+s`));
    assert.match(r.stdout, /^ {2}sessions now: 0$/m);
    assert.match(r.stdout, /^ {2}listener inbound: 127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+, 0 sessions$/m);
    assert.match(r.stdout, /^ {2}last hour: 3 messages, 1 stopped, 1 threat record$/m);
    assert.match(r.stdout, /^ {2}clamd 127\.0\.0\.1:\d+: DOWN/m);
    const json = JSON.parse((await cli(['status', '--json', '-c', cfgFile])).stdout) as { running: boolean; pid: number; workers: unknown[] };
    assert.equal(json.running, true);
    assert.equal(json.pid, gw.child.pid);
  });

  it('debug-peers: a full transcript for a listed client only, AUTH never in it', async () => {
    const before = gw.out.length;
    await send('Subject: traced\r\n\r\ntraced\r\n', { localAddress: '127.0.0.2', from: 'traced@example.org' });
    await gw.waitFor(/info delivered .*from=<traced@example\.org>/);
    const session = /info debug session=(\S+) dir=client> line="MAIL FROM:<traced@example\.org>/.exec(gw.out)?.[1];
    assert.ok(session, `a transcript of the listed client: ${gw.out.slice(before)}`);
    await gw.waitFor(new RegExp(`debug session=${session} dir=upstream> line="221 `)); // the session's last word
    const lines = gw.out.slice(before).split('\n').filter((l) => l.includes(`debug session=${session}`));
    assert.ok(lines.some((l) => / dir=upstream> line="220 /.test(l)), 'the upstream greeting');
    assert.ok(lines.some((l) => / dir=>upstream line="EHLO /.test(l)), 'what the gateway said upstream');
    assert.ok(lines.some((l) => / dir=>client line="250 /.test(l)), 'what the client was told');
    assert.ok(lines.some((l) => / dir=>upstream line=QUIT/.test(l)), 'to the end');
    assert.ok(!lines.some((l) => / line=traced$/.test(l)), 'no message data');
    // Sessions from other clients: no transcript.
    const mark = gw.out.length;
    await send('Subject: untraced\r\n\r\nx\r\n', { from: 'plain@example.org' });
    await gw.waitFor(/info delivered .*from=<plain@example\.org>/);
    assert.doesNotMatch(gw.out.slice(mark), / debug session=/);
  });

  it('reload reopens file forwarders: after logrotate renamed the file, new records go to a new one', async () => {
    await send('Subject: before rotate\r\n\r\nx\r\n', { from: 'rot1@example.org' });
    await gw.waitFor(/info delivered .*from=<rot1@example\.org>/);
    renameSync(forwarded, `${forwarded}.1`);
    const r = await cli(['reload', '-c', cfgFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await send('Subject: after rotate\r\n\r\nx\r\n', { from: 'rot2@example.org' });
    await gw.waitFor(/info delivered .*from=<rot2@example\.org>/);
    await until(dir, () => existsSync(forwarded) && readFileSync(forwarded, 'utf8').includes('rot2@example.org'));
    assert.match(readFileSync(`${forwarded}.1`, 'utf8'), /rot1@example\.org/);
    assert.doesNotMatch(readFileSync(`${forwarded}.1`, 'utf8'), /rot2@example\.org/);
  });

  it('a taken port: a second start exits 2 with one line naming the address and the process', async () => {
    const taken = join(dir, 'taken.yaml');
    writeFileSync(taken, `data-dir: ${JSON.stringify(join(dir, 'data2'))}\nlisteners:\n  - { name: inbound, listen: "127.0.0.1:${port}", upstream: "mailbox:./box" }\n`);
    const r = await cli(['start', '-c', taken]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `smtpwall start: cannot listen on 127.0.0.1:${port}: address already in use by pid ${gw.child.pid} (${process.execPath} ${BIN} start -c ${cfgFile})\n`);
  });

  it('after SIGTERM, status says it is not running (exit 1)', async () => {
    process.kill(gw.child.pid!, 'SIGTERM');
    await new Promise((resolve) => gw.child.once('exit', resolve));
    const r = await cli(['status', '-c', cfgFile]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^smtpwall: NOT running \(no control socket; data-dir /);
  });
});

/** Wait for a condition the file system shows, re-checked on each change in `dir` (fs.watch). */
function until(dir: string, ok: () => boolean, ms = 10_000): Promise<void> {
  if (ok()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const w = watch(dir, () => {
      if (!ok()) return;
      done();
      resolve();
    });
    const timer = setTimeout(() => (done(), reject(new Error('condition not met in time'))), ms);
    const done = (): void => {
      clearTimeout(timer);
      w.close();
    };
    if (ok()) (done(), resolve()); // written between the first check and the watch
  });
}
