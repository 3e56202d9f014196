/**
 * Probes of what a configuration depends on: the data directories (writable), clamd (PING and
 * VERSION: the engine and signature database versions), each relay listener's upstream
 * (connect, greeting, QUIT), 7-Zip and YARA-X when configured. `smtpwall config check`,
 * `smtpwall status` and `smtpwall start` run them; a probe that fails says what is down and
 * what fixes it. None of them changes anything (a probe file is written and removed).
 */

import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { SevenZipTool } from '../inspect/archive/seven-zip-tool.ts';
import { BsdtarTool } from '../inspect/archive/bsdtar-tool.ts';
import { YaraRules } from '../inspect/engines/analysis/yara.ts';
import { parseHostPort } from '../policy/config-schema.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import { quarantines } from './assemble.ts';

export interface Probe {
  /** What was probed, e.g. `clamd 127.0.0.1:3310`. */
  readonly what: string;
  readonly ok: boolean;
  /** What it answered (versions, greeting), or what failed. */
  readonly detail: string;
  /** For a failed probe: what the admin can do. */
  readonly fix?: string;
}

const PROBE_TIMEOUT_MS = 3000;

export async function probeAll(cfg: LoadedConfig, timeoutMs = PROBE_TIMEOUT_MS): Promise<Probe[]> {
  const probes: Array<Promise<Probe> | Probe> = [writable(cfg.dataDirAbs, 'data-dir'), writable(join(cfg.dataDirAbs, 'spool'), 'spool')];
  if (quarantines(cfg)) probes.push(writable(join(cfg.dataDirAbs, 'quarantine'), 'quarantine'));
  if (cfg.engines.clamd) probes.push(clamd(cfg.engines.clamd.address, timeoutMs));
  cfg.listeners.forEach((l, i) => {
    if (l.upstream && !l.upstream.startsWith('mailbox:')) probes.push(upstream(l.name, l.upstream, `listeners[${i}].upstream`, timeoutMs));
  });
  probes.push(sevenZip(cfg), bsdtar(cfg));
  if (cfg.engines.analysis.enabled && cfg.engines.analysis.yara.length > 0) probes.push(yara(cfg.engines.analysis.yara));
  if (cfg.store) probes.push(sharedStore(cfg, timeoutMs));
  return (await Promise.all(probes)).filter((p): p is Probe => p !== null);
}

/** The shared store: connect, the server's version and the schema's (nothing is migrated here). */
async function sharedStore(cfg: LoadedConfig, timeoutMs: number): Promise<Probe> {
  const store = cfg.store!;
  const url = new URL(store.url);
  const what = `store postgresql://${url.host}${url.pathname}`;
  const [pg, { clientOptions }] = await Promise.all([import('pg'), import('../shared-store/connection.ts')]);
  const client = new pg.default.Client({ ...clientOptions(store, cfg.instanceName), connectionTimeoutMillis: Math.min(timeoutMs, store['connect-timeout']) });
  client.on('error', () => undefined); // a probe: the failure is its answer
  try {
    await client.connect();
    const server = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const schema = await client.query<{ version: number }>('SELECT version FROM smtpwall_schema').then((r) => `schema ${r.rows[0]?.version ?? 0}`, () => 'no schema yet (created at the first start)');
    return { what, ok: true, detail: `PostgreSQL ${server}, ${schema}` };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message, fix: 'check store.url (host, port, database, user), that PostgreSQL runs and accepts this host (pg_hba.conf), and store.tls' };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function writable(dir: string, name: string): Probe {
  const what = `${name} ${dir}`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const f = join(dir, `.probe-${process.pid}`);
    writeFileSync(f, '');
    rmSync(f);
    return { what, ok: true, detail: 'writable' };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message, fix: `make ${dir} writable by the gateway's user (see user: in the config)` };
  }
}

/** One exchange with clamd: `zPING` → PONG, `zVERSION` → `ClamAV 1.0.7/27480/Tue Dec  1 …`. */
export async function clamdCommand(address: string, command: string, timeoutMs: number): Promise<string> {
  const target = address.startsWith('/') ? { path: address } : parseHostPort(address)!;
  const reply = await exchange('path' in target ? connect({ path: target.path }) : connect(target), `z${command}\0`, (b) => b.includes(0), timeoutMs);
  return reply.toString('latin1').replace(/\0[\s\S]*$/, '').trim();
}

async function clamd(address: string, timeoutMs: number): Promise<Probe> {
  const what = `clamd ${address}`;
  try {
    const pong = await clamdCommand(address, 'PING', timeoutMs);
    if (pong !== 'PONG') return { what, ok: false, detail: `answered "${pong}" to PING`, fix: 'check engines.clamd.address points at clamd' };
    const version = await clamdCommand(address, 'VERSION', timeoutMs);
    return { what, ok: true, detail: version };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message, fix: 'start clamd (systemctl start clamav-daemon) or correct engines.clamd.address; until then mail gets the antivirus profile\'s on-error action' };
  }
}

async function upstream(listener: string, address: string, key: string, timeoutMs: number): Promise<Probe> {
  const what = `upstream of ${listener} ${address}`;
  try {
    const s = connect(parseHostPort(address)!);
    const greeting = await exchange(s, null, (b) => /(^|\n)\d{3} [^\n]*\n/.test(b.toString('latin1')), timeoutMs, false);
    const last = greeting.toString('latin1').trim().split(/\r?\n/).at(-1)!;
    s.end('QUIT\r\n');
    s.destroy();
    const ok = last.startsWith('220');
    return { what, ok, detail: `greeting "${last.slice(0, 200)}"`, ...(ok ? {} : { fix: 'the receiving server refuses sessions; mail is deferred until it greets with 220' }) };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message, fix: `start the receiving server or correct ${key}; until then clients get 421 and retry` };
  }
}

async function sevenZip(cfg: LoadedConfig): Promise<Probe> {
  const z = cfg.engines['seven-zip'];
  if (z.path === 'off') return { what: '7-Zip', ok: true, detail: 'off (engines.seven-zip.path): 7z, RAR, CAB, xz, … are reported as ARCHIVE_UNSUPPORTED' };
  let tool: SevenZipTool | null;
  try {
    tool = SevenZipTool.find(z.path, z.timeout);
  } catch (err) {
    return { what: `7-Zip ${z.path}`, ok: false, detail: (err as Error).message, fix: 'install 7zip (apt-get install 7zip) or correct engines.seven-zip.path' };
  }
  if (!tool) return { what: '7-Zip /usr/bin/7zz', ok: false, detail: 'not installed', fix: 'apt-get install 7zip; until then 7z, RAR, CAB, xz, … are ARCHIVE_UNSUPPORTED (on-unscannable decides)' };
  const version = await new Promise<string>((resolve) => {
    execFile(tool.binary, [], { timeout: timeoutOf(cfg) }, (_err, stdout) => resolve(/7-Zip[^\n]*/.exec(String(stdout))?.[0]?.trim() ?? 'version unknown'));
  });
  return { what: `7-Zip ${tool.binary}`, ok: true, detail: version };
}

function bsdtar(cfg: LoadedConfig): Probe {
  const t = cfg.engines.bsdtar;
  if (t.path === 'off') return { what: 'bsdtar', ok: true, detail: 'off (engines.bsdtar.path): RAR is reported as ARCHIVE_UNSUPPORTED' };
  try {
    const tool = BsdtarTool.find(t.path, t.timeout);
    if (tool) return { what: `bsdtar ${tool.binary}`, ok: true, detail: 'unpacks RAR' };
    return { what: 'bsdtar /usr/bin/bsdtar', ok: false, detail: 'not installed', fix: 'apt-get install libarchive-tools; until then RAR is ARCHIVE_UNSUPPORTED (on-unscannable decides)' };
  } catch (err) {
    return { what: `bsdtar ${t.path}`, ok: false, detail: (err as Error).message, fix: 'install libarchive-tools or correct engines.bsdtar.path' };
  }
}

const timeoutOf = (cfg: LoadedConfig): number => Math.min(cfg.engines['seven-zip'].timeout, PROBE_TIMEOUT_MS);

function yara(files: readonly string[]): Probe {
  const what = `YARA-X rules ${files.join(', ')}`;
  try {
    YaraRules.load(files);
    return { what, ok: true, detail: 'compiled' };
  } catch (err) {
    return { what, ok: false, detail: (err as Error).message, fix: 'install @litko/yara-x (see the README) or fix the rules' };
  }
}

/** Write `send` (if any), collect until `done` says the reply is whole, or fail on timeout/close. */
function exchange(s: Socket, send: string | null, done: (b: Buffer) => boolean, timeoutMs: number, close = true): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    let settled = false;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.removeAllListeners('data');
      if (close || err) s.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    s.on('error', (err) => finish(err));
    s.on('close', () => finish(new Error('connection closed before an answer')));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (done(Buffer.concat(chunks))) finish(null);
    });
    if (send !== null) s.write(send);
  });
}

/** For a log or terminal line: `clamd 127.0.0.1:3310: DOWN (connect ECONNREFUSED …) — fix: …`. */
export function describeProbe(p: Probe): string {
  return `${p.what}: ${p.ok ? 'ok' : 'DOWN'} (${p.detail})${p.fix && !p.ok ? ` — fix: ${p.fix}` : ''}`;
}
