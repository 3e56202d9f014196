/**
 * A gateway with the admin plane on, as an admin runs it (`smtpwall start` as a child
 * process), for the admin API test and the console's browser test: users alice (admin,
 * also a bearer token) and victor (viewer); EICAR is blocked and quarantined.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword } from '../../src/admin/passwords.ts';
import { EICAR_MESSAGES } from './messages.ts';
import { dotStuff, outputMatches, RawClient } from './peers.ts';

const BIN = join(import.meta.dirname, '../../bin/smtpwall.js');
export const EICAR_MSG = `${dotStuff(EICAR_MESSAGES['base64 attachment']!.toString('latin1'))}.\r\n`;
export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
export const ADMIN = basic('alice', 'alice-secret');
export const VIEWER = basic('victor', 'victor-secret');
export const TOKEN = 'Bearer t0ken-for-scripts';

import { freePort } from './ports.ts';

export { freePort };

export interface Running {
  readonly child: ChildProcess;
  readonly smtp: number;
  readonly admin: string;
  readonly dataDir: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startAdminGateway(dir: string, upstreamPort: number, workers: number, extra = ''): Promise<Running> {
  const [smtp, adminPort] = [await freePort(), await freePort()];
  const dataDir = join(dir, 'data');
  const file = join(dir, 'gw.yaml');
  writeFileSync(
    file,
    `data-dir: ${JSON.stringify(dataDir)}
workers: ${workers}
listeners:
  - { name: inbound, listen: "127.0.0.1:${smtp}", upstream: "127.0.0.1:${upstreamPort}" }
profiles:
  antivirus:
    av: { action: block, quarantine: true }
rules:
  - { name: scan-all, profiles: { antivirus: av } }
capture: { when: threats }
admin:
  listen: "127.0.0.1:${adminPort}"
  users:
    - { name: alice, password-hash: "${await hashPassword('alice-secret')}", token-hash: "${await hashPassword('t0ken-for-scripts')}", role: admin }
    - { name: victor, password-hash: "${await hashPassword('victor-secret')}", role: viewer }
${extra}`,
  );
  const g = await spawnGateway(file, [[/admin plane listening/, 1], [/listening listener=inbound/, workers]]);
  return { ...g, smtp, admin: `http://127.0.0.1:${adminPort}`, dataDir };
}

export interface SpawnedGateway {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * `smtpwall start -c CONFIG` as an admin runs it: resolves once each pattern has appeared in
 * its output the given number of times; rejects with the output if it exits before.
 */
export async function spawnGateway(config: string, ready: ReadonlyArray<readonly [RegExp, number]>): Promise<SpawnedGateway> {
  let out = '';
  const child = spawn(process.execPath, [BIN, 'start', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`smtpwall start exited ${code}: ${out}`))));
  exited.catch(() => undefined); // only a rejection while waiting for readiness matters
  for (const [re, n] of ready) await Promise.race([outputMatches([child.stdout, child.stderr], () => out, re, n), exited]);
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      process.kill(child.pid!, 'SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

export async function send(port: number, message: string): Promise<string> {
  const c = await RawClient.connect(port);
  await c.begin();
  c.write(message);
  const reply = (await c.reply(10_000))!;
  c.destroy();
  return reply;
}

