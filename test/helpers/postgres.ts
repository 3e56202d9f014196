/**
 * A private PostgreSQL server for a test: `initdb` in a temporary directory, `pg_ctl start` on
 * a free loopback port (and a unix socket in that directory), stopped again by the test.
 * Debian's binaries live in /usr/lib/postgresql/N/bin; the server refuses to run as root, so
 * when the tests run as root the cluster belongs to the `postgres` user the package created.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './admin-gateway.ts';

export interface PrivatePostgres {
  /** postgresql://smtpwall@127.0.0.1:PORT/smtpwall */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Run SQL with psql as the superuser; returns its output (unaligned, tuples only). */
  psql(sql: string): string;
  /** Stop the server (fast: connections are ended), keeping its data. */
  stop(): void;
  /** Start it again on the same port. */
  start(): void;
  /** Stop it and delete its directory. */
  destroy(): void;
}

export function postgresBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(base, versions[0]!, 'bin') : null;
}

/** @param opts.tls a certificate and key: the server speaks TLS with them (ssl = on) */
export async function startPostgres(opts: { tls?: { certFile: string; keyFile: string } } = {}): Promise<PrivatePostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const port = await freePort();
  const dir = mkdtempSync('/tmp/smtpwall-pg-');
  const asRoot = userInfo().uid === 0;
  const owner = asRoot ? pgUser() : null;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const run = (tool: string, args: string[]): string => {
    const r = spawnSync(join(bin, tool), args, { encoding: 'utf8', cwd: dir, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });
    if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  let serverOpts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  if (opts.tls) {
    // The server reads its key only when it belongs to it and nobody else may read it.
    for (const [from, to] of [[opts.tls.certFile, 'server.crt'], [opts.tls.keyFile, 'server.key']] as const) {
      copyFileSync(from, join(data, to));
      chmodSync(join(data, to), 0o600);
      if (owner) chownSync(join(data, to), owner.uid, owner.gid);
    }
    serverOpts += ' -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key';
  }
  const start = (): void => void run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', serverOpts, '-w', 'start']);
  start();
  const psql = (sql: string, db = 'postgres'): string => run('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql]).trim();
  psql('CREATE ROLE smtpwall LOGIN');
  psql('CREATE DATABASE smtpwall OWNER smtpwall');
  return {
    url: `postgresql://smtpwall@127.0.0.1:${port}/smtpwall`,
    port,
    dir,
    psql: (sql) => psql(sql, 'smtpwall'),
    stop: () => void run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
    start,
    destroy() {
      spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { cwd: dir, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pgUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}
