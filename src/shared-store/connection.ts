/**
 * The connection to the shared PostgreSQL store (`store:` in the config): a pool per process
 * with the configured size, statement timeout and TLS, and the schema brought up to date at
 * start. Driver: `pg` (node-postgres) — pure JavaScript, the most used PostgreSQL client for
 * Node, with pools, LISTEN/NOTIFY on a dedicated client, and parameters sent apart from the
 * SQL text (no quoting by hand).
 *
 * Migrations are versioned (`smtpwall_schema`), forward only, each in its own transaction
 * under a transaction-scoped advisory lock, so two instances starting at once apply each
 * step exactly once; a schema newer than this code is refused (an older smtpwall must not
 * write rows a newer one does not expect).
 */

import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { LoadedConfig } from '../policy/load-config.ts';
import { PG_MIGRATIONS } from './schema.ts';

export type StoreConfig = NonNullable<LoadedConfig['store']>;

/** pg_advisory_xact_lock key of schema migrations: 'smtp' 'wall' as two int4. */
const MIGRATION_LOCK = [0x736d7470, 0x77616c6c] as const;

export class SchemaTooNewError extends Error {}

/** The pool's client options from `store:` (also for the LISTEN client, which is no pool's). */
export function clientOptions(store: StoreConfig, instance: string): pg.ClientConfig {
  const t = store.tls;
  const ssl =
    t.mode === 'off'
      ? undefined
      : {
          rejectUnauthorized: t.mode === 'verify',
          ...(t.ca ? { ca: readFileSync(t.ca, 'utf8') } : {}),
          ...(t.cert ? { cert: readFileSync(t.cert, 'utf8') } : {}),
          ...(t.key ? { key: readFileSync(t.key, 'utf8') } : {}),
        };
  return {
    connectionString: store.url,
    application_name: `smtpwall/${instance}`.slice(0, 63),
    statement_timeout: store['statement-timeout'],
    connectionTimeoutMillis: store['connect-timeout'],
    // Dead peers (a server that vanished, a cut network) are found by TCP, not by a hang.
    keepAlive: true,
    ...(ssl ? { ssl } : {}),
  };
}

/**
 * A pool that never takes the process down: an idle client's error (the server restarted,
 * `pg_terminate_backend`) is reported and the client discarded; the next query connects anew.
 */
export function openPool(store: StoreConfig, instance: string, onError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({ ...clientOptions(store, instance), max: store.pool, idleTimeoutMillis: 30_000 });
  pool.on('error', onError);
  return pool;
}

/** Bring the shared store's schema to this code's version; returns the version. */
export async function migrateShared(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS smtpwall_schema (version integer NOT NULL)').catch(async (err: unknown) => {
      // Two instances creating the table at once: one wins, the other sees a unique violation.
      if ((err as { code?: string }).code !== '23505' && (err as { code?: string }).code !== '42P07') throw err;
    });
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MIGRATION_LOCK]);
        const rows = (await client.query<{ version: number }>('SELECT version FROM smtpwall_schema')).rows;
        const version = rows[0]?.version ?? 0;
        if (version > PG_MIGRATIONS.length) {
          throw new SchemaTooNewError(`the shared store's schema is version ${version}, newer than this smtpwall knows (${PG_MIGRATIONS.length}): upgrade smtpwall on this host, or point store.url at another database`);
        }
        if (version === PG_MIGRATIONS.length) {
          await client.query('COMMIT');
          return version;
        }
        await client.query(PG_MIGRATIONS[version]!);
        if (rows.length === 0) await client.query('INSERT INTO smtpwall_schema (version) VALUES ($1)', [version + 1]);
        else await client.query('UPDATE smtpwall_schema SET version = $1', [version + 1]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined); // the connection may be gone; the error below says why
        throw err;
      }
    }
  } finally {
    client.release();
  }
}

/** An error of the connection or the server being unavailable, worth a retry (not a bad statement). */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string') {
    // Class 08 (connection exception), 57P01-03 (admin shutdown, crash shutdown, cannot connect now),
    // 57014 (statement timeout: a busy server), 55P03 (lock not available), 53 (insufficient
    // resources), 40001/40P01 (serialization failure, deadlock): the server, not the row — try again.
    if (/^(08|53|57P0[1-3]|57014|55P03|40001|40P01|ECONN|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EPIPE|EAI_AGAIN)/.test(e.code)) return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Client has encountered a connection error|not queryable/i.test(e?.message ?? '');
}
