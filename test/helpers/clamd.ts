/**
 * A private clamd (Debian's clamav-daemon) for tests: loopback TCP, a signature database the
 * test writes itself (freshclam cannot reach its servers here; see ../shared/LAB-NOTES.md).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EICAR } from '../../src/inspect/engines/signatures.ts';
import { freePort } from '../../lab/postfix-instance.ts';

export const CLAMD = '/usr/sbin/clamd';
/** A byte string only the test database knows: a hit proves clamd, not the built-in engine, found it. */
export const CLAMD_MARKER = 'SMTPWALL-CLAMD-TEST-MARKER-7f3a';

export function clamdUnavailable(): string | null {
  return existsSync(CLAMD) ? null : 'clamd is not installed (apt-get install clamav-daemon; .ci/run does it)';
}

export interface ClamdPeer {
  readonly port: number;
  /** The same clamd's LocalSocket. */
  readonly socket: string;
  /** SIGKILL: a scanner that dies mid-scan. */
  kill(): void;
  stop(): Promise<void>;
}

export async function startClamd(): Promise<ClamdPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-clamd-'));
  const port = await freePort();
  writeFileSync(join(dir, 'smtpwall-test.ndb'), `Smtpwall.Test.Marker:0:*:${Buffer.from(CLAMD_MARKER).toString('hex')}\n`);
  writeFileSync(join(dir, 'smtpwall-test.hdb'), `44d88612fea8a8f36de82e1278abb02f:${EICAR.length}:Smtpwall.Test.Eicar\n`);
  const conf = join(dir, 'clamd.conf');
  writeFileSync(conf, [`Foreground yes`, `TCPSocket ${port}`, `TCPAddr 127.0.0.1`, `LocalSocket ${join(dir, 'clamd.sock')}`, `DatabaseDirectory ${dir}`, `LogFile ${join(dir, 'clamd.log')}`, 'LogTime yes'].join('\n') + '\n');
  const child: ChildProcess = spawn(CLAMD, ['-c', conf], { stdio: 'ignore' });
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`clamd exited with ${child.exitCode}`);
    if (await ping(port)) break;
    if (Date.now() > until) throw new Error('clamd did not answer PING within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    socket: join(dir, 'clamd.sock'),
    kill: () => {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        const exited = new Promise((r) => child.once('exit', r));
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          // already gone (killed by a test): its exit event is on its way
        }
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (d) => (got += d));
    s.on('close', () => resolve(got.startsWith('PONG')));
    s.on('error', () => resolve(false));
    setTimeout(() => s.destroy(), 1000);
  });
}
