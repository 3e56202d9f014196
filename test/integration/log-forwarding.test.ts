/**
 * Log forwarding to a real syslog daemon (Debian's rsyslog, a private instance on loopback):
 * RFC 5424 over UDP, CEF over TCP with octet counting, JSON lines to a file — the same
 * records the local database holds. A forwarder whose peer is down never delays mail nor
 * loses the local record; its failures are counted.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import type { ForwardingLogStore } from '../../src/logs/forward.ts';
import { freePort } from '../../lab/postfix-instance.ts';
import { RawClient, startGateway, startUpstream, type UpstreamPeer } from '../helpers/peers.ts';

const RSYSLOGD = '/usr/sbin/rsyslogd';

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !check(); ) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function sendTwo(port: number): Promise<void> {
  for (const body of ['clean text', EICAR.toString('latin1')]) {
    const c = await RawClient.connect(port);
    await c.begin();
    c.write(`Subject: fwd\r\n\r\n${body}\r\n.\r\n`);
    await c.reply();
    c.destroy();
  }
}

describe('log forwarding', { skip: existsSync(RSYSLOGD) ? false : 'rsyslog is not installed (apt-get install rsyslog; .ci/run does it)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-fwd-'));
  let rsyslog: ChildProcess;
  let up: UpstreamPeer;
  let udp = 0;
  let tcp = 0;
  const out = join(dir, 'syslog.out');
  before(async () => {
    udp = await freePort();
    tcp = await freePort();
    writeFileSync(join(dir, 'rsyslog.conf'), [
      'module(load="imudp")', 'module(load="imtcp")',
      `input(type="imudp" port="${udp}" address="127.0.0.1")`, `input(type="imtcp" port="${tcp}" address="127.0.0.1")`,
      'template(name="raw" type="string" string="%inputname% %rawmsg%\\n")',
      `*.* action(type="omfile" file="${out}" template="raw")`, '',
    ].join('\n'));
    rsyslog = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslog.pid')], { stdio: 'ignore' });
    // rsyslog binds its inputs after it writes the pid file: the positive signal that both are
    // listening is a probe through each of them arriving in the output file.
    const udpProbe = createSocket('udp4');
    const probed = (input: string): boolean => existsSync(out) && readFileSync(out, 'utf8').includes(`${input} probe-`);
    await until(() => {
      udpProbe.send('probe-udp', udp, '127.0.0.1');
      return probed('imudp');
    });
    udpProbe.close();
    await until(() => {
      const s = connect(tcp, '127.0.0.1', () => s.end('probe-tcp\n'));
      s.on('error', () => {});
      return probed('imtcp');
    });
    up = await startUpstream();
  });
  after(async () => {
    process.kill(rsyslog.pid!, 'SIGTERM');
    await up.close();
  });

  it('RFC 5424 over UDP, CEF over TCP and JSON lines to a file carry every record', async () => {
    const file = join(dir, 'records.jsonl');
    const gw = await startGateway({
      upstreamPort: up.port,
      extra: `log-forwarding:
  - { name: udp-5424, type: syslog, address: "udp://127.0.0.1:${udp}", format: rfc5424, facility: local3 }
  - { name: tcp-cef, type: syslog, address: "tcp://127.0.0.1:${tcp}", format: cef }
  - { name: archive, type: file, path: ${JSON.stringify(file)}, format: json }
`,
    });
    try {
      await sendTwo(gw.port);
      const records = (): string[] => readFileSync(out, 'utf8').split('\n').filter((l) => l && !l.includes(' probe-'));
      await until(() => records().length >= 6);
      const lines = records();
      const viaUdp = lines.filter((l) => l.startsWith('imudp '));
      const viaTcp = lines.filter((l) => l.startsWith('imtcp '));
      assert.equal(viaUdp.length, 3, 'two traffic records and one threat');
      assert.equal(viaTcp.length, 3);
      // local3 (19) * 8 + warning (4) for the threat, + info (6) for traffic.
      const threat = viaUdp.find((l) => l.includes(' threat [smtpwall'))!;
      assert.match(threat, /^imudp <156>1 \S+ \S+ smtpwall \d+ threat \[smtpwall@32473 type="threat" tx="[A-Z2-7]{16}\.1" action="block"\] \{/);
      const rec = JSON.parse(threat.slice(threat.indexOf('{'))) as { threat: string; filePath: string; rule: string };
      assert.equal(rec.threat, 'EICAR-Test-File');
      assert.equal(rec.rule, 'scan-all');
      assert.ok(viaUdp.some((l) => /^imudp <158>1 .* traffic .*"action":"allow"/.test(l)));
      const cef = viaTcp.find((l) => l.includes('|EICAR-Test-File|'))!;
      assert.match(cef, /CEF:0\|smtpwall\|smtpwall\|[\d.]+\|\d{8}\|EICAR-Test-File\|8\|rt=\d+ src=127\.0\.0\.1 spt=\d+ dst=127\.0\.0\.1 dpt=\d+ suser=sender@example\.org duser=rcpt@example\.com act=block cs1Label=rule cs1=scan-all/);
      await until(() => existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length >= 3);
      const json = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; action: string });
      assert.deepEqual(json.map((j) => `${j.type} ${j.action}`).sort(), ['threat block', 'traffic allow', 'traffic block']);
    } finally {
      await gw.stop();
    }
  });

  it('a forwarder whose peer is down: mail flows, local records are kept, failures are counted', async () => {
    const dead = await freePort();
    const gw = await startGateway({
      upstreamPort: up.port,
      extra: `log-forwarding:\n  - { name: down, type: syslog, address: "tcp://127.0.0.1:${dead}", format: json }\n`,
    });
    try {
      const before = up.messages.length;
      await sendTwo(gw.port);
      assert.equal(up.messages.length, before + 1, 'the clean one delivered, the EICAR one blocked');
      const logs = gw.logs();
      assert.equal(logs.listTraffic(10).length, 2);
      logs.close();
      const stats = (gw.gateway.logs as ForwardingLogStore).stats[0]!;
      assert.equal(stats.sent, 0);
      assert.match(stats.lastError, /ECONNREFUSED/);
    } finally {
      await gw.stop();
    }
  });
});

describe('log injection through the gateway', () => {
  it('a hostile file name and subject reach the JSON and CEF files, the database and `logs` escaped, JSON exact', async () => {
    const up = await startUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-inject-'));
    const jsonFile = join(dir, 'records.jsonl');
    const cefFile = join(dir, 'records.cef');
    const gw = await startGateway({
      upstreamPort: up.port,
      extra: `log-forwarding:
  - { name: json, type: file, path: ${JSON.stringify(jsonFile)}, format: json }
  - { name: cef, type: file, path: ${JSON.stringify(cefFile)}, format: cef }
`,
    });
    try {
      // RFC 2231 percent-escapes let a file name carry CR LF, ESC and a right-to-left override.
      const name = "invoice%0d%0a250 ok%1b[2J%e2%80%aetxt.exe";
      const c = await RawClient.connect(gw.port);
      await c.begin();
      c.write(
        `Subject: hello \x1b]0;owned\x07 \x9b31m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''${name}\r\n\r\n${EICAR.toString('latin1')}\r\n--b--\r\n.\r\n`,
      );
      assert.match((await c.reply())!, /^541 /);
      c.destroy();
      await until(() => existsSync(jsonFile) && existsSync(cefFile) && readFileSync(jsonFile, 'utf8').trim().split('\n').length >= 2 && readFileSync(cefFile, 'utf8').trim().split('\n').length >= 2);
      const unsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
      for (const f of [jsonFile, cefFile]) assert.doesNotMatch(readFileSync(f, 'utf8'), unsafe, f);
      const threat = readFileSync(jsonFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; fileName: string }).find((r) => r.type === 'threat')!;
      assert.equal(threat.fileName, 'invoice\r\n250 ok\x1b[2J\u202etxt.exe', 'the JSON record carries the exact name');
      const stored = gw.logs();
      const [t] = stored.listThreats(1);
      stored.close();
      assert.equal(t!.fileName, threat.fileName, 'the database keeps the exact name too');
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});
