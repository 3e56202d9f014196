/**
 * The `smtpwall` command as a user runs it: start (foreground, SIGTERM), logs, scan, demo,
 * and a config error. Spawns bin/smtpwall.js; every process started is stopped by its pid.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { lnk } from '../helpers/analysis-fixtures.ts';
import { zip } from '../helpers/archives.ts';
import { CLEAN_MESSAGES, EICAR_MESSAGES } from '../helpers/messages.ts';
import { outputMatches, startUpstream, until } from '../helpers/peers.ts';

const BIN = join(import.meta.dirname, '../../bin/smtpwall.js');
const exec = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The exit code once the child has exited (also if it already had: a crash must not hang the test). */
function exitOf(child: ChildProcess, ms = 30_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${ms} ms`)), ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('smtpwall command line', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-cli-'));
  const children: ChildProcess[] = [];

  /** `smtpwall start` as a child process, its output collected, with a way to wait for a line. */
  function startCli(cfgFile: string) {
    const child = spawn(process.execPath, [BIN, 'start', '-c', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const run = {
      child,
      out: '',
      /** Wait until `re` (global) matches `n` times in the output. */
      waitFor(re: RegExp, n = 1, ms = 60_000): Promise<void> {
        const matched = outputMatches([child.stdout, child.stderr], () => run.out, re, n, ms);
        const exited = new Promise<never>((_, reject) => {
          const fail = (): void => reject(new Error(`exited while waiting for ${re} ×${n}: ${run.out}`));
          if (child.exitCode !== null || child.signalCode !== null) fail();
          else child.once('exit', fail);
        });
        exited.catch(() => {}); // only the race's outcome matters
        return Promise.race([matched, exited]);
      },
      /** The port the listener named `inbound` is bound to. */
      port: (): number => Number(/listening listener=inbound address=127\.0\.0\.1:(\d+)/.exec(run.out)![1]),
    };
    child.stdout!.on('data', (d) => (run.out += d));
    child.stderr!.on('data', (d) => (run.out += d));
    return run;
  }
  after(() => {
    for (const c of children) if (c.exitCode === null) process.kill(c.pid!, 'SIGKILL');
  });

  it('scan: exit 0 clean, 1 threat (with --json details), 2 error', async () => {
    writeFileSync(join(dir, 'clean.txt'), 'nothing to see');
    writeFileSync(join(dir, 'eicar.com'), EICAR);
    writeFileSync(join(dir, 'attached.eml'), EICAR_MESSAGES['base64 attachment']!);
    assert.equal((await cli(['scan', join(dir, 'clean.txt')])).code, 0);
    const hit = await cli(['scan', join(dir, 'eicar.com'), join(dir, 'attached.eml')]);
    assert.equal(hit.code, 1);
    assert.match(hit.stdout, /eicar\.com: FOUND EICAR-Test-File/);
    assert.match(hit.stdout, /attached\.eml: FOUND EICAR-Test-File in msg\/2 \(eicar\.com\)/);
    const json = await cli(['scan', '--json', join(dir, 'attached.eml')]);
    const [first, summary] = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual((summary as { summary: { files: number; messages: number; threats: number } }).summary, { ...(summary!.summary as object), files: 1, messages: 1, threats: 1 });
    const rec = first as { verdict: string; findings: Array<{ name: string; sha256: string }> };
    assert.equal(rec.verdict, 'threat');
    assert.equal(rec.findings[0]!.name, 'eicar.com');
    assert.equal((await cli(['scan', join(dir, 'missing')])).code, 2);
  });

  it('scan: directories, archives, mbox files; suspicious content exits 1; --verbose lists every file', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'sub', 'bundle.zip'), zip([{ name: 'docs/readme.txt', data: Buffer.from('hello') }, { name: 'docs/e.com', data: EICAR }]));
    writeFileSync(join(tree, 'note.txt'), 'clean');
    const r = await cli(['scan', tree]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /note\.txt: OK/);
    assert.match(r.stdout, /bundle\.zip: FOUND EICAR-Test-File in .*bundle\.zip\/docs\/e\.com/);
    const mbox = join(dir, 'inbox.mbox');
    writeFileSync(mbox, Buffer.concat([
      Buffer.from('From a@example.org Mon Nov 23 10:00:00 2026\n'), CLEAN_MESSAGES['leading dots']!, Buffer.from('\n\n'),
      Buffer.from('From b@example.org Mon Nov 23 10:00:00 2026\n'), EICAR_MESSAGES['base64 attachment']!, Buffer.from('\n'),
    ]));
    const m = await cli(['scan', '--json', mbox]);
    assert.equal(m.code, 1);
    const recs = m.stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; verdict: string; scannedAs: string; summary?: unknown }).filter((x) => !x.summary);
    // Each mbox message is named by its number and its Message-ID (else its Subject).
    assert.deepEqual(recs.map((x) => [x.file.replace(dir, ''), x.scannedAs, x.verdict]), [['/inbox.mbox#1 <t1@example.org>', 'message', 'clean'], ['/inbox.mbox#2 <t1@example.org>', 'message', 'threat']]);
    writeFileSync(join(dir, 'locked.zip'), zip([{ name: 'x.exe', data: Buffer.from('secret'), encrypted: true }]));
    const enc = await cli(['scan', '-v', join(dir, 'locked.zip')]);
    assert.equal(enc.code, 1);
    assert.match(enc.stdout, /locked\.zip: SUSPICIOUS ARCHIVE_ENCRYPTED at .*locked\.zip \(x\.exe\)/);
    assert.match(enc.stdout, /^ {2}.*locked\.zip: encrypted-zip, opened by smtpwall, \d+ bytes, sha256 [0-9a-f]{64}$/m);
  });

  it('policy test: rule, files, verdicts, action and reply; exit 1 for a block, 0 for allow', async () => {
    const cfg = join(dir, 'policy.yaml');
    writeFileSync(cfg, `listeners:\n  - { name: in, listen: "127.0.0.1:0", upstream: "10.1.1.1:25" }\nprofiles:\n  file-blocking:\n    fb: { rules: [{ name: no-exe, types: [exe], action: block }] }\nrules:\n  - { name: outside, match: { from: ["@outside.example"] }, profiles: { file-blocking: fb } }\n`);
    const pe = Buffer.alloc(256);
    pe.write('MZ');
    writeFileSync(join(dir, 'exe.eml'), `Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/zip; name="a.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n${zip([{ name: 'run.exe', data: pe }]).toString('base64')}\r\n--b--\r\n`);
    const hit = await cli(['policy', 'test', '-c', cfg, '--from', 'x@outside.example', '--to', 'u@corp.example', join(dir, 'exe.eml')]);
    assert.equal(hit.code, 1, hit.stderr);
    assert.match(hit.stdout, /^rule: outside {2}\(antivirus default, file-blocking fb, data-filtering -\)$/m);
    assert.match(hit.stdout, /^ {2}msg\/1\/a\.zip\/run\.exe: exe, 256 bytes$/m);
    assert.match(hit.stdout, /^action: block — file blocking fb\/no-exe: type exe in msg\/1\/a\.zip\/run\.exe$/m);
    assert.match(hit.stdout, /^reply: 541 5\.4\.1 Content blocked by smtpwall \(threat: file:exe, id: /m);
    const ok = await cli(['policy', 'test', '-c', cfg, '--from', 'x@partner.example', '--json', join(dir, 'exe.eml')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { rule: string; action: string }).action, 'allow');
  });

  it('analyze prints verdicts with reasons; verdicts set/show/list manage the store', async () => {
    writeFileSync(join(dir, 'run.lnk'), lnk('C:\\Windows\\System32\\cmd.exe', '/c powershell -w hidden'));
    writeFileSync(join(dir, 'plain.txt'), 'nothing');
    const a = await cli(['analyze', join(dir, 'run.lnk')]);
    assert.equal(a.code, 1);
    assert.match(a.stdout, /run\.lnk: MALICIOUS \(score \d+, lnk, sha256 [0-9a-f]{64}\)\n {2}\+\d+ shortcut: shortcut runs cmd\.exe with arguments/);
    assert.equal((await cli(['analyze', join(dir, 'plain.txt')])).code, 0);
    const sha = /sha256 ([0-9a-f]{64})/.exec(a.stdout)![1]!;
    const cfg = join(dir, 'verdicts.yaml');
    writeFileSync(cfg, 'data-dir: ./vdata\nlisteners:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\n');
    const set = await cli(['verdicts', 'set', sha, 'benign', '--reason', 'admin tool', '-c', cfg]);
    assert.equal(set.code, 0, set.stderr);
    assert.match((await cli(['verdicts', 'show', sha, '-c', cfg])).stdout, /benign +0 +manual .*\n {4}manual: admin tool/);
    assert.match((await cli(['verdicts', 'list', '-c', cfg, '--json'])).stdout, new RegExp(`"sha256":"${sha}","verdict":"benign"`));
    assert.equal((await cli(['verdicts', 'set', sha, 'evil', '--reason', 'x', '-c', cfg])).code, 2);
  });

  it('config check: OK with a summary, or the error naming file, line and key', async () => {
    const ok = await cli(['config', 'check', '-c', join(import.meta.dirname, '../../smtpwall.example.yaml')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /smtpwall\.example\.yaml: OK\n {2}listener inbound: 127\.0\.0\.1:2525 → mailbox:.*\(relay, store-and-forward, tls strip\)/);
    const bad = join(dir, 'bad-hashes.yaml');
    writeFileSync(join(dir, 'list.hashes'), 'sha256:1234 Too-Short\n');
    writeFileSync(bad, `listeners:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\nengines:\n  signatures:\n    hash-lists: [list.hashes]\n`);
    const r = await cli(['config', 'check', '-c', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /list\.hashes:1: expected "sha256:<64 hex> NAME"/);
  });

  it('a world-writable config file or data directory is refused, with the fix', async () => {
    const cfg = join(dir, 'open.yaml');
    const data = join(dir, 'open-data');
    writeFileSync(cfg, `data-dir: ${JSON.stringify(data)}\nlisteners:\n  - { name: a, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }\n`);
    chmodSync(cfg, 0o666);
    const r = await cli(['config', 'check', '-c', cfg]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /open\.yaml: config file is world-writable \(mode 666\): .*chmod o-w /);
    chmodSync(cfg, 0o644);
    mkdirSync(data, { mode: 0o777 });
    chmodSync(data, 0o777); // mkdir's mode is masked by the umask
    const d = await cli(['logs', 'traffic', '-c', cfg]);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /open-data: data directory is world-writable \(mode 777\)/);
    chmodSync(data, 0o750);
    assert.equal((await cli(['config', 'check', '--no-probe', '-c', cfg])).code, 0);
  });

  it('a config error names file, line and key, and exits 2', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'listeners:\n  - name: x\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:25\n    forwarding: sometimes\n');
    const r = await cli(['start', '-c', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:5:17: listeners\[0\]\.forwarding: expected one of "store-and-forward", "cut-through"/);
  });

  it('start relays and blocks, logs show it (table and --json), SIGTERM exits cleanly', async () => {
    const up = await startUpstream();
    const cfgFile = join(dir, 'smtpwall.yaml');
    writeFileSync(cfgFile, `data-dir: ./data\nlisteners:\n  - name: inbound\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:${up.port}\n`);
    const gw = startCli(cfgFile);
    const { child } = gw;
    await gw.waitFor(/listening listener=inbound/g);
    const port = gw.port();
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.com'] }, raw: 'Subject: hi\r\n\r\nclean\r\n' });
    await assert.rejects(t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.com'] }, raw: EICAR_MESSAGES['raw in the body']! }));
    const threats = await cli(['logs', 'threats', '-c', cfgFile]);
    assert.equal(threats.code, 0);
    assert.match(threats.stdout, /^time +transaction +client +from +threat/);
    assert.match(threats.stdout, /EICAR-Test-File/);
    const traffic = await cli(['logs', 'traffic', '-c', cfgFile, '--json', '--limit', '1']);
    const lines = traffic.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const rec = JSON.parse(lines[0]!) as { action: string; clientReply: string };
    assert.equal(rec.action, 'block');
    assert.match(rec.clientReply, /^541 5\.4\.1/);
    assert.equal(child.exitCode, null, `the gateway is still running: ${gw.out}`);
    process.kill(child.pid!, 'SIGTERM');
    assert.equal(await exitOf(child), 0, gw.out);
    assert.match(gw.out, /smtpwall stopped/);
    await up.close();
  });

  it('workers: 2 — two processes share the listener; SIGTERM stops all of them', async () => {
    const up = await startUpstream();
    const cfgFile = join(dir, 'workers.yaml');
    writeFileSync(cfgFile, `data-dir: ./wdata\nworkers: 2\nlisteners:\n  - name: inbound\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:${up.port}\n`);
    const gw = startCli(cfgFile);
    const { child } = gw;
    await gw.waitFor(/smtpwall started/g, 2);
    const port = gw.port();
    const pids = new Set([...gw.out.matchAll(/smtpwall started .* pid=(\d+)/g)].map((m) => Number(m[1])));
    assert.equal(pids.size, 2);
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    for (let i = 0; i < 6; i++) await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.com'] }, raw: 'Subject: w\r\n\r\nx\r\n' });
    assert.equal(up.messages.length, 6);
    // The supervisor answers status and reload for its workers (asked over the cluster channel).
    const status = await cli(['status', '-c', cfgFile]);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, new RegExp(`running, pid ${child.pid}, `));
    assert.match(status.stdout, /^ {2}sessions now: \d+ in 2 workers \(pid \d+: \d+, pid \d+: \d+\)$/m);
    const reload = await cli(['reload', '-c', cfgFile]);
    assert.equal(reload.code, 0, reload.stdout + reload.stderr);
    assert.match(reload.stdout, /reloaded \(2 workers\)/);
    assert.equal(child.exitCode, null, `the supervisor is still running: ${gw.out}`);
    process.kill(child.pid!, 'SIGTERM');
    assert.equal(await exitOf(child), 0, gw.out);
    for (const pid of pids) {
      assert.throws(() => process.kill(pid, 0), 'every worker has exited');
    }
    await up.close();
  });

  it('restart (workers: 2): workers replaced one by one under steady traffic, no connection refused, nothing lost', async () => {
    const up = await startUpstream();
    const cfgFile = join(dir, 'rolling.yaml');
    writeFileSync(cfgFile, `data-dir: ./rdata\nworkers: 2\nlisteners:\n  - name: inbound\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:${up.port}\n`);
    const gw = startCli(cfgFile);
    const { child } = gw;
    await gw.waitFor(/smtpwall started/g, 2);
    const port = gw.port();
    const before = new Set([...gw.out.matchAll(/smtpwall started .* pid=(\d+)/g)].map((m) => Number(m[1])));
    // Steady traffic: one new connection and message after another until the rollover is done.
    let sent = 0;
    const failures: string[] = [];
    let done = false;
    const traffic = (async () => {
      while (!done) {
        const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
        try {
          await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.com'] }, raw: `Subject: rolling ${sent}\r\n\r\nx\r\n` });
          sent++;
        } catch (err) {
          failures.push((err as Error).message);
        } finally {
          t.close();
        }
      }
    })();
    // Traffic is flowing (messages delivered) before the rollover starts ...
    await until('messages before the restart', () => sent >= 3, 30_000);
    const restart = await cli(['restart', '-c', cfgFile]);
    assert.equal(restart.code, 0, restart.stderr);
    await gw.waitFor(/rolling restart done/g);
    // ... and goes on through the new workers after it.
    const atDone = sent;
    await until('messages after the restart', () => sent >= atDone + 3 || failures.length > 0, 30_000);
    done = true;
    await traffic;
    assert.deepEqual(failures, [], 'no message refused or lost during the rollover');
    assert.ok(sent >= 5, `${sent} messages`);
    assert.equal(up.messages.length, sent, 'every accepted message was delivered');
    const after = [...gw.out.matchAll(/worker replaced old=(\d+) new=(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(after.length, 2, gw.out);
    assert.deepEqual(new Set(after.map(([o]) => o)), before, 'both old workers were replaced');
    for (const [old] of after) assert.throws(() => process.kill(old!, 0), 'the old worker has exited');
    process.kill(child.pid!, 'SIGTERM');
    assert.equal(await exitOf(child), 0, gw.out);
    await up.close();
  });

  it('user: started as root, binds, then runs as that user and still writes its data directory', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async () => {
    const up = await startUpstream();
    chmodSync(dir, 0o755); // mkdtemp makes it 0700: the dropped user must reach its data directory
    const cfgFile = join(dir, 'drop.yaml');
    writeFileSync(cfgFile, `data-dir: ./dropdata\nuser: nobody\nlisteners:\n  - name: inbound\n    listen: 127.0.0.1:0\n    upstream: 127.0.0.1:${up.port}\n`);
    const gw = startCli(cfgFile);
    const { child } = gw;
    await gw.waitFor(/privileges dropped/g);
    const uid = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))!;
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    assert.deepEqual([Number(uid[1]), Number(uid[2]), Number(uid[3])], [nobody, nobody, nobody], 'real, effective and saved uid');
    const port = gw.port();
    const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.com'] }, raw: 'Subject: after the drop\r\n\r\nclean\r\n' });
    assert.equal(up.messages.length, 1);
    process.kill(child.pid!, 'SIGTERM');
    assert.equal(await exitOf(child), 0, gw.out);
    assert.doesNotMatch(gw.out, /log store failed|readonly|EACCES/i);
    const traffic = await cli(['logs', 'traffic', '-c', cfgFile, '--json']);
    assert.match(traffic.stdout, /"subject":"after the drop"/);
    await up.close();
  });

  it('demo shows the whole path', async () => {
    const r = await cli(['demo']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /S: 250 2\.0\.0 Ok: stored as/);
    assert.match(r.stdout, /S: 541 5\.4\.1 Content blocked by smtpwall \(threat: EICAR-Test-File/);
    assert.match(r.stdout, /connection ended: read ECONNRESET/);
    assert.match(r.stdout, /no message \(nothing was delivered\)/);
    assert.match(r.stdout, /EICAR-Test-File +\d{8} +signatures +msg\/2 invoice\.com/);
  });

  it('usage and unknown commands', async () => {
    assert.equal((await cli(['--help'])).code, 0);
    const r = await cli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });
});
