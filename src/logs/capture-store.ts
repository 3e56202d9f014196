/**
 * Where packet captures are kept: the `captures` table of the log database (DATA-DIR/
 * logs.sqlite), one row per session, found by the session id or by any of its transaction
 * ids (`3XXVMZTHNWB44NG4.1`: the id a 541 reply names). The events are JSON, their bytes one
 * blob, so a capture of 1 MiB is one row and one read.
 */

import type Database from 'better-sqlite3';
import type { CaptureData, CaptureEvent, CapturedConnection } from '../gateway/capture.ts';
import { openLogDatabase } from './sqlite-store.ts';

export interface StoredCapture extends CaptureData {
  readonly sessionId: string;
  readonly time: string;
  readonly listener: string;
}

interface Meta {
  readonly connections: readonly CapturedConnection[];
  readonly cutBytes: number;
  /** Events with their bytes as an offset and length into the blob. */
  readonly events: ReadonlyArray<Omit<CaptureEvent, 'bytes'> & { off?: number; len?: number }>;
}

export class CaptureStore {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #get: Database.Statement;

  constructor(dataDir: string, opts: { readonly?: boolean; lockWaitMs?: number } = {}) {
    this.#db = openLogDatabase(dataDir, opts);
    this.#insert = this.#db.prepare('INSERT OR REPLACE INTO captures (session_id, time, listener, meta, data) VALUES (?, ?, ?, ?, ?)');
    this.#get = this.#db.prepare('SELECT session_id, time, listener, meta, data FROM captures WHERE session_id = ?');
  }

  put(sessionId: string, listener: string, c: CaptureData, time = new Date().toISOString()): void {
    const chunks: Buffer[] = [];
    let off = 0;
    const events = c.events.map(({ bytes, ...e }) => {
      if (!bytes) return e;
      chunks.push(bytes);
      off += bytes.length;
      return { ...e, off: off - bytes.length, len: bytes.length };
    });
    const meta: Meta = { connections: c.connections, cutBytes: c.cutBytes, events };
    this.#insert.run(sessionId, time, listener, JSON.stringify(meta), Buffer.concat(chunks));
  }

  /** By session id or transaction id (`SESSION.N`); null when none was kept. */
  get(id: string): StoredCapture | null {
    const sessionId = id.split('.')[0]!;
    if (!/^[A-Za-z0-9]{1,64}$/.test(sessionId)) return null;
    const row = this.#get.get(sessionId) as { session_id: string; time: string; listener: string; meta: string; data: Buffer } | undefined;
    if (!row) return null;
    const meta = JSON.parse(row.meta) as Meta;
    const events: CaptureEvent[] = meta.events.map(({ off, len, ...e }) =>
      off === undefined || len === undefined ? e : { ...e, bytes: row.data.subarray(off, off + len) },
    );
    return { sessionId: row.session_id, time: row.time, listener: row.listener, connections: meta.connections, cutBytes: meta.cutBytes, events };
  }

  close(): void {
    this.#db.close();
  }
}
