/**
 * The quarantine in the shared store: index and message bytes both in PostgreSQL (decided so
 * because then one backup, one set of permissions and PostgreSQL's own replication cover all
 * of it, and no instance needs a shared file system; quarantined messages are blocked mail,
 * bounded by `quarantine.max-size`). The bytes are content-addressed (`quarantine_messages`,
 * a campaign of identical messages costs one copy); one row per quarantined transaction.
 *
 * A gateway queues a new entry through the ordered SharedWriter (the session's 541 never
 * waits for the database; during an outage the entry waits in memory with the records).
 * A release from any instance first takes the entry (`releasing_since`, set only when free
 * or stale) in one UPDATE, so two instances releasing the same message at once deliver it once.
 */

import type pg from 'pg';
import { type Quarantine, quarantineContent, QUARANTINE_ID, QuarantineError, type QuarantineEntry, type RetentionLimits } from '../quarantine/store.ts';
import { pgJson, type SharedWriter } from './writer.ts';

/** A release hold older than this belongs to a command that died. */
const RELEASE_HOLD_STALE = '10 minutes';

export class PgQuarantine implements Quarantine {
  constructor(
    private readonly pool: pg.Pool,
    private readonly limits: RetentionLimits,
    private readonly instance: string,
    /** Present in a gateway: new entries are queued; absent (the CLI): written at once. */
    private readonly writer: SharedWriter | null,
  ) {}

  async put(meta: Omit<QuarantineEntry, 'sha256' | 'size' | 'released'>, wire: AsyncIterable<Buffer>): Promise<QuarantineEntry> {
    const { content, sha256 } = await quarantineContent(meta.id, wire);
    const entry: QuarantineEntry = { ...meta, instance: this.instance, sha256, size: content.length, released: null };
    const statements = [
      { what: 'quarantined message', text: 'INSERT INTO quarantine_messages (sha256, content) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING', values: [sha256, content] },
      {
        what: 'quarantine entry',
        text: 'INSERT INTO quarantine (id, instance, time, sha256, size, entry) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING',
        values: [entry.id, this.instance, entry.time, sha256, entry.size, pgJson(entry)],
      },
    ];
    if (this.writer) for (const s of statements) this.writer.push({ kind: 'sql', ...s });
    else for (const s of statements) await this.pool.query(s.text, s.values as unknown[]);
    return entry;
  }

  async list(): Promise<QuarantineEntry[]> {
    const { rows } = await this.pool.query('SELECT entry, released FROM quarantine ORDER BY time, id');
    return rows.map(toEntry);
  }

  async get(id: string): Promise<QuarantineEntry> {
    if (!QUARANTINE_ID.test(id)) throw new QuarantineError(`not a quarantine id: ${id}`);
    const { rows } = await this.pool.query('SELECT entry, released FROM quarantine WHERE id = $1', [id]);
    if (!rows[0]) throw new QuarantineError(`no quarantined message ${id}`);
    return toEntry(rows[0]);
  }

  async content(entry: QuarantineEntry): Promise<Buffer> {
    const { rows } = await this.pool.query('SELECT content FROM quarantine_messages WHERE sha256 = $1', [entry.sha256]);
    if (!rows[0]) throw new QuarantineError(`the content of ${entry.id} is gone`);
    return rows[0].content as Buffer;
  }

  async markReleased(entry: QuarantineEntry, reply: string, to: readonly string[] = entry.rcptTo): Promise<void> {
    entry.released = { time: new Date().toISOString(), reply, to };
    await this.pool.query('UPDATE quarantine SET released = $2 WHERE id = $1', [entry.id, pgJson(entry.released)]);
  }

  async lockRelease(id: string): Promise<() => Promise<void>> {
    await this.get(id); // a clear error for an unknown id
    const token = `${this.instance}:${process.pid}:${Date.now()}`;
    const { rowCount } = await this.pool.query(
      `UPDATE quarantine SET releasing_since = now(), releasing_by = $2
       WHERE id = $1 AND (releasing_since IS NULL OR releasing_since < now() - interval '${RELEASE_HOLD_STALE}')`,
      [id, token],
    );
    if (rowCount !== 1) {
      const by = (await this.pool.query('SELECT releasing_by FROM quarantine WHERE id = $1', [id])).rows[0]?.releasing_by as string | undefined;
      throw new QuarantineError(`${id} is being released by another command right now${by ? ` (${by.split(':')[0]})` : ''}`);
    }
    return async () => {
      await this.pool.query('UPDATE quarantine SET releasing_since = NULL, releasing_by = NULL WHERE id = $1 AND releasing_by = $2', [id, token]);
    };
  }

  async delete(id: string): Promise<void> {
    const entry = await this.get(id);
    await this.pool.query('DELETE FROM quarantine WHERE id = $1', [id]);
    await this.#dropUnused(entry.sha256);
  }

  async #dropUnused(sha256: string): Promise<void> {
    await this.pool.query('DELETE FROM quarantine_messages m WHERE m.sha256 = $1 AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.sha256 = m.sha256)', [sha256]);
  }

  /** Retention: older than max-age, then oldest first while the contents exceed max-size. */
  async prune(now = Date.now()): Promise<number> {
    const cutoff = new Date(now - this.limits.maxAgeMs).toISOString();
    const old = await this.pool.query<{ sha256: string }>('DELETE FROM quarantine WHERE time < $1 RETURNING sha256', [cutoff]);
    let deleted = old.rowCount ?? 0;
    for (const sha of new Set(old.rows.map((r) => r.sha256))) await this.#dropUnused(sha);
    const { rows } = await this.pool.query<{ id: string; sha256: string; size: string }>('SELECT id, sha256, size FROM quarantine ORDER BY time, id');
    const users = new Map<string, number>();
    for (const r of rows) users.set(r.sha256, (users.get(r.sha256) ?? 0) + 1);
    let total = 0;
    const counted = new Set<string>();
    for (const r of rows) if (!counted.has(r.sha256) && counted.add(r.sha256)) total += Number(r.size);
    for (const r of rows) {
      if (total <= this.limits.maxBytes) break;
      await this.pool.query('DELETE FROM quarantine WHERE id = $1', [r.id]);
      deleted++;
      const left = users.get(r.sha256)! - 1;
      users.set(r.sha256, left);
      if (left === 0) {
        total -= Number(r.size);
        await this.#dropUnused(r.sha256);
      }
    }
    return deleted;
  }
}

function toEntry(row: { entry: QuarantineEntry; released: QuarantineEntry['released'] }): QuarantineEntry {
  return { ...row.entry, released: row.released ?? null };
}
