/**
 * The shared store of one process: its pool, its ordered writer, and the logs, verdicts,
 * quarantine, captures and audit records on top of them. A gateway process opens one with
 * `gateway: true` (verdicts of other instances arrive by LISTEN/NOTIFY); a CLI command opens one
 * to read or to change one thing, and closes it again.
 *
 * PostgreSQL unreachable at start: `store.down-at-start: refuse` refuses with one clear line;
 * `start` (the default) says so, keeps every record in memory (in order, bounded by
 * `store.buffer`), and connects, migrates and writes as soon as the server answers.
 */

import type pg from 'pg';
import { ConfigError, describeError } from '../errors.ts';
import type { LogFn } from '../logs/process-log.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import { clientOptions, isUnavailable, migrateShared, openPool, SchemaTooNewError, type StoreConfig } from './connection.ts';
import { PgCaptures, PgAudit } from './admin-records.ts';
import { PgLogReader, PgLogStore } from './logs.ts';
import { PgQuarantine } from './quarantine.ts';
import { PgVerdictStore } from './verdicts.ts';
import { SharedWriter } from './writer.ts';

const RETRY_MS = 1000;
/** At a stop: how long queued records may wait for PostgreSQL before they go to the process log. */
const STOP_DEADLINE_MS = 10_000;

export class SharedStore {
  readonly writer: SharedWriter;
  readonly logs: PgLogStore;
  readonly reader: PgLogReader;
  readonly verdicts: PgVerdictStore;
  readonly quarantine: PgQuarantine;
  readonly captures: PgCaptures;
  readonly audit: PgAudit;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;

  private constructor(
    readonly pool: pg.Pool,
    readonly cfg: LoadedConfig,
    private readonly log: LogFn,
    opts: { gateway: boolean },
  ) {
    const store = cfg.store!;
    const instance = cfg.instanceName;
    this.writer = new SharedWriter(pool, store.buffer, log, { ready: false });
    this.logs = new PgLogStore(this.writer, instance);
    this.reader = new PgLogReader(pool);
    this.verdicts = new PgVerdictStore(pool, this.writer, instance, opts.gateway ? clientOptions(store, instance) : null, log);
    const limits = { maxAgeMs: cfg.quarantine['max-age'], maxBytes: cfg.quarantine['max-size'] };
    this.quarantine = new PgQuarantine(pool, limits, instance, opts.gateway ? this.writer : null);
    this.captures = new PgCaptures(pool, this.writer, instance);
    this.audit = new PgAudit(pool, this.writer, instance);
  }

  /**
   * Connect and bring the schema up to date. A gateway (`gateway: true`) starts while the
   * server is down unless `down-at-start: refuse`; a CLI command always needs it now.
   * A schema newer than this code is always refused.
   */
  static async open(cfg: LoadedConfig, log: LogFn, opts: { gateway: boolean }): Promise<SharedStore> {
    const store = cfg.store as StoreConfig;
    const pool = openPool(store, cfg.instanceName, (err) => log('warn', 'shared store: a pooled connection failed; the next query opens a new one', { error: describeError(err) }));
    const s = new SharedStore(pool, cfg, log, opts);
    try {
      await migrateShared(pool);
    } catch (err) {
      if (err instanceof SchemaTooNewError || !isUnavailable(err) || !opts.gateway || store['down-at-start'] === 'refuse') {
        await pool.end().catch(() => undefined); // refusing: the error below is what matters
        if (err instanceof SchemaTooNewError) throw new ConfigError(`store.url: ${err.message}`);
        throw new ConfigError(`store.url: PostgreSQL cannot be used: ${describeError(err)}${opts.gateway ? ' (store.down-at-start: refuse)' : ''}`);
      }
      log('error', 'shared store (PostgreSQL) unreachable at start: starting anyway; records are kept in memory, in order, until it answers (store.down-at-start: start)', { error: describeError(err), buffer: store.buffer });
      s.#retryMigration();
      if (opts.gateway) await s.verdicts.start();
      return s;
    }
    s.writer.ready();
    if (opts.gateway) await s.verdicts.start();
    return s;
  }

  #retryMigration(): void {
    this.#retry = setTimeout(async () => {
      this.#retry = null;
      if (this.#closed) return;
      try {
        await migrateShared(this.pool);
      } catch (err) {
        if (err instanceof SchemaTooNewError) {
          this.log('error', `shared store: ${err.message}; records stay in memory`, {});
          return;
        }
        this.#retryMigration();
        return;
      }
      this.log('info', 'shared store (PostgreSQL) reachable: schema ready, writing the records kept in memory', { queued: this.writer.queued });
      this.writer.ready();
    }, RETRY_MS);
    this.#retry.unref();
  }

  /** Write what is queued (up to a deadline), stop listening, close the pool. */
  async close(deadlineMs = STOP_DEADLINE_MS): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    await this.verdicts.close();
    await this.writer.close(deadlineMs);
    await this.pool.end().catch((err: unknown) => this.log('warn', 'shared store: closing the pool failed', { error: describeError(err) }));
  }
}
