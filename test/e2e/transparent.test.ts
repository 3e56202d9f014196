/**
 * Transparent mode in network namespaces this test creates: a client namespace, a router
 * namespace running smtpwall behind an iptables REDIRECT, and a server namespace. The client
 * connects to the SERVER's address; the kernel hands the connection to smtpwall, which reads
 * the original destination (SO_ORIGINAL_DST) and relays there. Addresses exist only inside
 * these namespaces; all are removed afterwards.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');
const id = String(process.pid % 100000);
const NS = { client: `swc${id}`, gw: `swg${id}`, server: `sws${id}` };
const NET = { clientIp: '10.231.1.2', gwClientSide: '10.231.1.1', serverIp: '10.231.2.2', gwServerSide: '10.231.2.1' };

function why(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  for (const bin of ['/usr/sbin/ip', '/usr/sbin/iptables']) if (!existsSync(bin)) return `${bin} is missing (apt-get install iproute2 iptables)`;
  if (!existsSync(join(ROOT, 'build/Release/original_dst.node'))) return 'the SO_ORIGINAL_DST addon is not built (npm rebuild)';
  try {
    execFileSync('ip', ['netns', 'add', `swprobe${id}`], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', `swprobe${id}`], { stdio: 'ignore' });
  } catch {
    return 'this machine cannot create network namespaces';
  }
  return null;
}

const run = (...args: string[]): void => void execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
const inNs = (ns: string, ...args: string[]): void => run('ip', 'netns', 'exec', ns, ...args);

function teardown(): void {
  for (const ns of Object.values(NS)) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
}

function startIn(ns: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready in ${ns}: ${out}`)), 20_000);
    const onData = (d: Buffer): void => {
      out += d;
      if (ready.test(out)) {
        clearTimeout(t);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited ${code} in ${ns}: ${out}`)));
  });
}

const skip = why();

describe('transparent mode behind an iptables REDIRECT', { skip: skip ?? false, timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-netns-'));
  const children: ChildProcess[] = [];

  before(async () => {
    teardown();
    for (const ns of Object.values(NS)) run('ip', 'netns', 'add', ns);
    run('ip', 'link', 'add', `vc${id}`, 'type', 'veth', 'peer', 'name', `vgc${id}`);
    run('ip', 'link', 'add', `vs${id}`, 'type', 'veth', 'peer', 'name', `vgs${id}`);
    run('ip', 'link', 'set', `vc${id}`, 'netns', NS.client);
    run('ip', 'link', 'set', `vgc${id}`, 'netns', NS.gw);
    run('ip', 'link', 'set', `vs${id}`, 'netns', NS.server);
    run('ip', 'link', 'set', `vgs${id}`, 'netns', NS.gw);
    inNs(NS.client, 'ip', 'addr', 'add', `${NET.clientIp}/24`, 'dev', `vc${id}`);
    inNs(NS.gw, 'ip', 'addr', 'add', `${NET.gwClientSide}/24`, 'dev', `vgc${id}`);
    inNs(NS.gw, 'ip', 'addr', 'add', `${NET.gwServerSide}/24`, 'dev', `vgs${id}`);
    inNs(NS.server, 'ip', 'addr', 'add', `${NET.serverIp}/24`, 'dev', `vs${id}`);
    for (const [ns, devs] of [[NS.client, [`vc${id}`, 'lo']], [NS.gw, [`vgc${id}`, `vgs${id}`, 'lo']], [NS.server, [`vs${id}`, 'lo']]] as const) {
      for (const dev of devs) inNs(ns, 'ip', 'link', 'set', dev, 'up');
    }
    inNs(NS.client, 'ip', 'route', 'add', 'default', 'via', NET.gwClientSide);
    inNs(NS.server, 'ip', 'route', 'add', 'default', 'via', NET.gwServerSide);
    inNs(NS.gw, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    // The rule the README documents: SMTP arriving from the client side goes to smtpwall.
    inNs(NS.gw, 'iptables', '-t', 'nat', '-A', 'PREROUTING', '-i', `vgc${id}`, '-p', 'tcp', '--dport', '25', '-j', 'REDIRECT', '--to-ports', '2525');

    const mail = join(dir, 'server-mail');
    run('mkdir', '-p', mail);
    children.push(await startIn(NS.server, [process.execPath, '--import', 'tsx', 'test/helpers/ns-smtp-server.ts', NET.serverIp, '25', mail], /ready/));
    const cfg = join(dir, 'smtpwall.yaml');
    writeFileSync(cfg, `data-dir: ./data\nlisteners:\n  - name: transparent\n    listen: 0.0.0.0:2525\n    mode: transparent\n    forwarding: cut-through\n`);
    children.push(await startIn(NS.gw, [process.execPath, 'bin/smtpwall.js', 'start', '-c', cfg], /listening listener=transparent/));
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
    teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = (kind: 'clean' | 'eicar'): { final: { code: number; text: string } | null; transcript: string[]; connectionError: string | null } =>
    JSON.parse(
      execFileSync('ip', ['netns', 'exec', NS.client, process.execPath, '--import', 'tsx', 'test/helpers/ns-send.ts', NET.serverIp, '25', kind], { cwd: ROOT, encoding: 'utf8' }),
    );

  it('relays a clean message to the original destination', () => {
    const r = send('clean');
    assert.equal(r.final?.code, 250, r.transcript.join('\n'));
    const files = readdirSync(join(dir, 'server-mail')).filter((f) => f.endsWith('.eml'));
    assert.equal(files.length, 1);
    assert.match(readFileSync(join(dir, 'server-mail', files[0]!), 'latin1'), /clean through a transparent gateway/);
    const meta = JSON.parse(readFileSync(join(dir, 'server-mail', files[0]!.replace('.eml', '.json')), 'utf8')) as { client: string };
    assert.equal(meta.client, NET.gwServerSide, 'the server saw the gateway connect (from the router)');
  });

  it('blocks EICAR with 541 and a reset, nothing reaches the server', () => {
    const before = readdirSync(join(dir, 'server-mail')).length;
    const r = send('eicar');
    assert.equal(r.final?.code, 541);
    assert.match(r.connectionError ?? '', /ECONNRESET/);
    assert.equal(readdirSync(join(dir, 'server-mail')).length, before);
  });
});
