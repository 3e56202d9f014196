/**
 * Packet captures and audit records in the shared store: a capture is queued like every
 * other write (the session that kept it never waits), found again from any instance by its
 * session or transaction id; an audit row names the instance whose admin plane or CLI did it.
 */

import type pg from 'pg';
import type { CaptureData } from '../gateway/capture.ts';
import { type CaptureSink, captureSessionId, decodeCapture, encodeCapture, type StoredCapture } from '../logs/capture-store.ts';
import { pgText, type SharedWriter } from './writer.ts';

export class PgCaptures implements CaptureSink {
  constructor(private readonly pool: pg.Pool, private readonly writer: SharedWriter, private readonly instance: string) {}

  put(sessionId: string, listener: string, c: CaptureData, time = new Date().toISOString()): void {
    const { meta, data } = encodeCapture(c);
    this.writer.push({
      kind: 'sql',
      what: 'capture',
      text: `INSERT INTO captures (session_id, instance, time, listener, meta, data) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (session_id) DO UPDATE SET time = $3, meta = $5, data = $6`,
      values: [sessionId, this.instance, time, listener, pgText(meta), data],
    });
  }

  async get(id: string): Promise<StoredCapture | null> {
    const sessionId = captureSessionId(id);
    if (sessionId === null) return null;
    const { rows } = await this.pool.query('SELECT session_id, time, listener, meta, data FROM captures WHERE session_id = $1', [sessionId]);
    return rows[0] ? decodeCapture(rows[0]) : null;
  }
}

export class PgAudit {
  constructor(private readonly pool: pg.Pool, private readonly writer: SharedWriter, private readonly instance: string) {}

  /** Queued with the records, in order. */
  add(user: string, action: string, target: string, detail: string, client: string, time = new Date().toISOString()): void {
    this.writer.push({
      kind: 'sql',
      what: 'audit record',
      text: 'INSERT INTO audit (uid, instance, time, "user", action, target, detail, client) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (uid) DO NOTHING',
      values: [this.writer.uid(), this.instance, time, pgText(user), action, pgText(target), pgText(detail), pgText(client)],
    });
  }

  async list(limit: number): Promise<Array<Record<string, unknown>>> {
    return (await this.pool.query('SELECT time, instance, "user", action, target, detail, client FROM audit ORDER BY id DESC LIMIT $1', [limit])).rows;
  }
}
