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

/** Where sessions put their captures: this SQLite store, or the shared one (shared-store/admin-records.ts). */
export interface CaptureSink {
  put(sessionId: string, listener: string, c: CaptureData, time?: string): void;
  get(id: string): StoredCapture | null | Promise<StoredCapture | null>;
}

/** A capture as stored: its events as JSON (bytes as offset and length) and the bytes as one blob. */
export function encodeCapture(c: CaptureData): { meta: string; data: Buffer } {
  const chunks: Buffer[] = [];
  let off = 0;
  const events = c.events.map(({ bytes, ...e }) => {
    if (!bytes) return e;
    chunks.push(bytes);
    off += bytes.length;
    return { ...e, off: off - bytes.length, len: bytes.length };
  });
  const meta: Meta = { connections: c.connections, cutBytes: c.cutBytes, events };
  return { meta: JSON.stringify(meta), data: Buffer.concat(chunks) };
}

export function decodeCapture(row: { session_id: string; time: string; listener: string; meta: string | Meta; data: Buffer }): StoredCapture {
  const meta = (typeof row.meta === 'string' ? JSON.parse(row.meta) : row.meta) as Meta;
  const events: CaptureEvent[] = meta.events.map(({ off, len, ...e }) =>
    off === undefined || len === undefined ? e : { ...e, bytes: row.data.subarray(off, off + len) },
  );
  return { sessionId: row.session_id, time: row.time, listener: row.listener, connections: meta.connections, cutBytes: meta.cutBytes, events };
}

/** The session id a capture is found by (from a session or transaction id); null: not one. */
export function captureSessionId(id: string): string | null {
  const sessionId = id.split('.')[0]!;
  return /^[A-Za-z0-9]{1,64}$/.test(sessionId) ? sessionId : null;
}

export class CaptureStore implements CaptureSink {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #get: Database.Statement;

  constructor(dataDir: string, opts: { readonly?: boolean; lockWaitMs?: number } = {}) {
    this.#db = openLogDatabase(dataDir, opts);
    this.#insert = this.#db.prepare('INSERT OR REPLACE INTO captures (session_id, time, listener, meta, data) VALUES (?, ?, ?, ?, ?)');
    this.#get = this.#db.prepare('SELECT session_id, time, listener, meta, data FROM captures WHERE session_id = ?');
  }

  put(sessionId: string, listener: string, c: CaptureData, time = new Date().toISOString()): void {
    const { meta, data } = encodeCapture(c);
    this.#insert.run(sessionId, time, listener, meta, data);
  }

  /** By session id or transaction id (`SESSION.N`); null when none was kept. */
  get(id: string): StoredCapture | null {
    const sessionId = captureSessionId(id);
    if (sessionId === null) return null;
    const row = this.#get.get(sessionId) as { session_id: string; time: string; listener: string; meta: string; data: Buffer } | undefined;
    return row ? decodeCapture(row) : null;
  }

  close(): void {
    this.#db.close();
  }
}
