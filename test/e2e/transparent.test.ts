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

/** Client, router and server namespaces joined by two veth pairs (names start with `p`), routed through the router. */
function threeNamespaces(ns: { client: string; gw: string; server: string }, p: string): void {
  for (const n of Object.values(ns)) run('ip', 'netns', 'add', n);
  const [c, gc, sv, gs] = [`${p}c${id}`, `${p}gc${id}`, `${p}s${id}`, `${p}gs${id}`];
  run('ip', 'link', 'add', c, 'type', 'veth', 'peer', 'name', gc);
  run('ip', 'link', 'add', sv, 'type', 'veth', 'peer', 'name', gs);
  run('ip', 'link', 'set', c, 'netns', ns.client);
  run('ip', 'link', 'set', gc, 'netns', ns.gw);
  run('ip', 'link', 'set', sv, 'netns', ns.server);
  run('ip', 'link', 'set', gs, 'netns', ns.gw);
  inNs(ns.client, 'ip', 'addr', 'add', `${NET.clientIp}/24`, 'dev', c);
  inNs(ns.gw, 'ip', 'addr', 'add', `${NET.gwClientSide}/24`, 'dev', gc);
  inNs(ns.gw, 'ip', 'addr', 'add', `${NET.gwServerSide}/24`, 'dev', gs);
  inNs(ns.server, 'ip', 'addr', 'add', `${NET.serverIp}/24`, 'dev', sv);
  for (const [n, devs] of [[ns.client, [c, 'lo']], [ns.gw, [gc, gs, 'lo']], [ns.server, [sv, 'lo']]] as const) {
    for (const dev of devs) inNs(n, 'ip', 'link', 'set', dev, 'up');
  }
  inNs(ns.client, 'ip', 'route', 'add', 'default', 'via', NET.gwClientSide);
  inNs(ns.server, 'ip', 'route', 'add', 'default', 'via', NET.gwServerSide);
}

const skip = why();

describe('transparent mode behind an iptables REDIRECT', { skip: skip ?? false, timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-netns-'));
  const children: ChildProcess[] = [];

  before(async () => {
    teardown();
    threeNamespaces(NS, 'v');
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

/**
 * `mode: tproxy`: the same three namespaces behind a TPROXY rule with policy routing (the
 * lines the README documents). The listener socket has IP_TRANSPARENT, the destination is the
 * accepted socket's own address, and the upstream connection leaves from the client's own
 * address: the receiving server sees the sending MTA, not the router.
 */
const TNS = { client: `stc${id}`, gw: `stg${id}`, server: `sts${id}` };

function tproxyWhy(): string | null {
  const base = why();
  if (base) return base;
  try {
    execFileSync('ip', ['netns', 'add', `stprobe${id}`], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'exec', `stprobe${id}`, 'iptables', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '-j', 'TPROXY', '--on-port', '2525', '--tproxy-mark', '0x1/0x1'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'the kernel refuses -j TPROXY rules here (xt_TPROXY missing)';
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', `stprobe${id}`], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
}

function tproxyTeardown(): void {
  for (const ns of Object.values(TNS)) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
}

describe('tproxy mode behind an iptables TPROXY rule: fully transparent', { skip: tproxyWhy() ?? false, timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-tproxy-'));
  const children: ChildProcess[] = [];

  before(async () => {
    tproxyTeardown();
    threeNamespaces(TNS, 't');
    inNs(TNS.gw, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    // The README's lines: packets of sockets the gateway holds (both legs) are delivered
    // locally; new SMTP connections from the client side go to the TPROXY listener.
    inNs(TNS.gw, 'iptables', '-t', 'mangle', '-N', 'DIVERT');
    inNs(TNS.gw, 'iptables', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '-m', 'socket', '-j', 'DIVERT');
    inNs(TNS.gw, 'iptables', '-t', 'mangle', '-A', 'DIVERT', '-j', 'MARK', '--set-mark', '1');
    inNs(TNS.gw, 'iptables', '-t', 'mangle', '-A', 'DIVERT', '-j', 'ACCEPT');
    inNs(TNS.gw, 'iptables', '-t', 'mangle', '-A', 'PREROUTING', '-i', `tgc${id}`, '-p', 'tcp', '--dport', '25', '-j', 'TPROXY', '--on-port', '2525', '--on-ip', '0.0.0.0', '--tproxy-mark', '0x1/0x1');
    inNs(TNS.gw, 'ip', 'rule', 'add', 'fwmark', '1', 'lookup', '100');
    inNs(TNS.gw, 'ip', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100');

    const mail = join(dir, 'server-mail');
    run('mkdir', '-p', mail);
    children.push(await startIn(TNS.server, [process.execPath, '--import', 'tsx', 'test/helpers/ns-smtp-server.ts', NET.serverIp, '25', mail], /ready/));
    const cfg = join(dir, 'smtpwall.yaml');
    writeFileSync(cfg, `data-dir: ./data\nlisteners:\n  - name: tproxy\n    listen: 0.0.0.0:2525\n    mode: tproxy\n    forwarding: cut-through\n`);
    children.push(await startIn(TNS.gw, [process.execPath, 'bin/smtpwall.js', 'start', '-c', cfg], /listening listener=tproxy/));
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
    tproxyTeardown();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = (kind: 'clean' | 'eicar'): { final: { code: number; text: string } | null; transcript: string[]; connectionError: string | null } =>
    JSON.parse(
      execFileSync('ip', ['netns', 'exec', TNS.client, process.execPath, '--import', 'tsx', 'test/helpers/ns-send.ts', NET.serverIp, '25', kind], { cwd: ROOT, encoding: 'utf8' }),
    );

  it('relays a clean message to the original destination, and the server sees the client\'s own address', () => {
    const r = send('clean');
    assert.equal(r.final?.code, 250, r.transcript.join('\n'));
    const files = readdirSync(join(dir, 'server-mail')).filter((f) => f.endsWith('.eml'));
    assert.equal(files.length, 1);
    assert.match(readFileSync(join(dir, 'server-mail', files[0]!), 'latin1'), /clean through a transparent gateway/);
    const meta = JSON.parse(readFileSync(join(dir, 'server-mail', files[0]!.replace('.eml', '.json')), 'utf8')) as { client: string };
    assert.equal(meta.client, NET.clientIp, 'the receiving server saw the sending client, not the router');
  });

  it('blocks EICAR with 541 and a reset, nothing reaches the server', () => {
    const before = readdirSync(join(dir, 'server-mail')).length;
    const r = send('eicar');
    assert.equal(r.final?.code, 541);
    assert.match(r.connectionError ?? '', /ECONNRESET/);
    assert.equal(readdirSync(join(dir, 'server-mail')).length, before);
  });
});
