/**
 * A listener behind a real HAProxy in TCP mode (`send-proxy` and `send-proxy-v2`): the
 * session, its records and its limits see the client HAProxy saw (a client on 127.0.0.2 or
 * 127.0.0.3), not HAProxy; a connection from an address outside proxy-from, or one whose
 * first bytes are not a PROXY header, is closed without a greeting and logged.
 */

import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Level } from '../../src/logs/process-log.ts';
import { freePort, waitPort } from '../helpers/ports.ts';
import { type GatewayPeer, RawClient, startGateway, startUpstream, type UpstreamPeer, until } from '../helpers/peers.ts';

const HAPROXY = '/usr/sbin/haproxy';


describe('proxy-protocol behind HAProxy', { skip: existsSync(HAPROXY) ? false : 'HAProxy is not installed (apt-get install haproxy)' }, () => {
  let upstream: UpstreamPeer;
  let gw: GatewayPeer;
  let haproxy: ChildProcess;
  let dir: string;
  const ports = { v1: 0, v2: 0 };
  const logged: Array<{ msg: string; fields: Record<string, unknown> }> = [];

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      upstreamPort: upstream.port,
      listener: 'proxy-protocol: true\nproxy-from: ["127.0.0.1"]',
      log: (_level: Level, msg: string, fields?: Record<string, unknown>) => void logged.push({ msg, fields: fields ?? {} }),
    });
    [ports.v1, ports.v2] = [await freePort(), await freePort()];
    dir = mkdtempSync(join(tmpdir(), 'smtpwall-haproxy-'));
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, `global\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n` +
      `frontend v1\n  bind 127.0.0.1:${ports.v1}\n  default_backend gw1\nbackend gw1\n  server s 127.0.0.1:${gw.port} send-proxy\n` +
      `frontend v2\n  bind 127.0.0.1:${ports.v2}\n  default_backend gw2\nbackend gw2\n  server s 127.0.0.1:${gw.port} send-proxy-v2\n`);
    haproxy = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: 'ignore' });
    await Promise.all([waitPort(ports.v1), waitPort(ports.v2)]);
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy.once('exit', r));
      process.kill(haproxy.pid!, 'SIGTERM');
      await exited;
    }
    await gw?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [version, from] of [['v1', '127.0.0.2'], ['v2', '127.0.0.3']] as const) {
    it(`${version}: the record names the client behind HAProxy, and the mail is relayed`, async () => {
      const c = await RawClient.connect(ports[version], from);
      const clientPort = c.socket.localPort!;
      assert.match((await c.begin()) ?? '', /^354 /);
      c.write(`Subject: via haproxy ${version}\r\n\r\nhello\r\n.\r\n`);
      assert.match((await c.reply(10_000)) ?? '', /^250 /);
      assert.match((await c.cmd('QUIT')) ?? '', /^221 /);
      c.destroy();
      const record = gw.logs().listTraffic(10).find((r) => r.subject === `via haproxy ${version}`);
      assert.ok(record, 'the traffic record');
      assert.equal(record.client, `${from}:${clientPort}`);
    });
  }

  it('a connection from outside proxy-from is closed without a greeting, and logged', async () => {
    const c = await RawClient.connect(gw.port, '127.0.0.4');
    await c.closed;
    assert.equal(await c.reply(100), null, 'no greeting');
    await until('the refusal logged', () => logged.some((l) => /not from a load balancer in proxy-from/.test(l.msg) && l.fields.client === '127.0.0.4'));
  });

  it('SMTP without the header from the load balancer\'s address is closed, and logged', async () => {
    const c = await RawClient.connect(gw.port);
    c.write('EHLO sneaky.example\r\n');
    await c.closed;
    assert.equal(await c.reply(100), null, 'no greeting');
    await until('the bad header logged', () => logged.some((l) => /no valid PROXY protocol header/.test(l.msg)));
  });
});
