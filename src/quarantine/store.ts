/**
 * The quarantine: copies of blocked or rejected messages, kept when the deciding profile says
 * `quarantine: true`, so an admin can look at them and release a false positive.
 *
 * Layout in DATA-DIR/quarantine: `messages/<sha256>.eml` holds the message content (dot-
 * unstuffed, as the receiving server would have stored it), content-addressed so a campaign
 * of identical messages costs one copy; `<transaction-id>.json` holds what is known about each
 * quarantined transaction (envelope, listener, upstream, rule, decision). Retention: entries
 * older than `max-age` and, beyond `max-size`, the oldest are deleted when a new one is added.
 * Files are written to a temporary name and renamed, so a crash never leaves half an entry.
 */

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface QuarantineEntry {
  /** The transaction id: the key in replies and logs. */
  readonly id: string;
  readonly time: string;
  readonly sha256: string;
  readonly size: number;
  readonly listener: string;
  readonly client: string;
  /** host:port of the receiving server the message was meant for. */
  readonly upstream: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly subject: string;
  readonly rule: string;
  readonly action: string;
  readonly reason: string;
  readonly threat: string;
  /** The gateway instance that quarantined it (the shared store's entries). */
  readonly instance?: string;
  /** The last release: when, the server's reply, and to whom (absent in entries of 0.1: the original recipients). */
  released: { readonly time: string; readonly reply: string; readonly to?: readonly string[] } | null;
}

export interface RetentionLimits {
  readonly maxAgeMs: number;
  readonly maxBytes: number;
}


/** A release lock older than this belongs to a command that died. */
const RELEASE_LOCK_STALE_MS = 10 * 60_000;

/**
 * A quarantine: this directory store, or the shared one in PostgreSQL
 * (shared-store/quarantine.ts) that every instance releases from.
 */
export interface Quarantine {
  put(meta: Omit<QuarantineEntry, 'sha256' | 'size' | 'released'>, wire: AsyncIterable<Buffer>): Promise<QuarantineEntry>;
  list(): Promise<QuarantineEntry[]>;
  get(id: string): Promise<QuarantineEntry>;
  content(entry: QuarantineEntry): Promise<Buffer>;
  markReleased(entry: QuarantineEntry, reply: string, to?: readonly string[]): Promise<void>;
  /** Hold an entry while it is released (one release at a time, across processes); returns the unlock. */
  lockRelease(id: string): Promise<() => Promise<void>>;
  delete(id: string): Promise<void>;
  prune(now?: number): Promise<number>;
}

export const QUARANTINE_ID = /^[A-Z2-7]{16}\.\d+$/;
const ID = QUARANTINE_ID;

/** The message as the receiving server would have stored it, and its SHA-256 (the content's key). */
export async function quarantineContent(id: string, wire: AsyncIterable<Buffer>): Promise<{ content: Buffer; sha256: string }> {
  if (!QUARANTINE_ID.test(id)) throw new Error(`not a transaction id: ${id}`);
  const chunks: Buffer[] = [];
  for await (const c of wire) chunks.push(c);
  const content = unstuff(Buffer.concat(chunks));
  return { content, sha256: createHash('sha256').update(content).digest('hex') };
}

export class QuarantineStore implements Quarantine {
  readonly #dir: string;
  readonly #messages: string;

  constructor(dataDir: string, private readonly limits: RetentionLimits) {
    this.#dir = join(dataDir, 'quarantine');
    this.#messages = join(this.#dir, 'messages');
    mkdirSync(this.#messages, { recursive: true, mode: 0o750 });
  }

  /** Keep a message: `wire` is the dot-stuffed DATA stream as received (CRLF lines). */
  async put(meta: Omit<QuarantineEntry, 'sha256' | 'size' | 'released'>, wire: AsyncIterable<Buffer>): Promise<QuarantineEntry> {
    const { content, sha256 } = await quarantineContent(meta.id, wire);
    const file = join(this.#messages, `${sha256}.eml`);
    const exists = await stat(file).then(() => true, () => false);
    if (!exists) await atomicWrite(file, content);
    const entry: QuarantineEntry = { ...meta, sha256, size: content.length, released: null };
    await atomicWrite(join(this.#dir, `${meta.id}.json`), Buffer.from(JSON.stringify(entry, null, 2)));
    await this.prune();
    return entry;
  }

  async list(): Promise<QuarantineEntry[]> {
    // Entries only: `ID.json` (a stray file in the directory is not an entry).
    const names = (await readdir(this.#dir)).filter((n) => n.endsWith('.json') && ID.test(n.slice(0, -5)));
    const entries = await Promise.all(names.map((n) => readFile(join(this.#dir, n), 'utf8').then((t) => JSON.parse(t) as QuarantineEntry, () => null)));
    return entries.filter((e): e is QuarantineEntry => e !== null).sort((a, b) => a.time.localeCompare(b.time));
  }

  async get(id: string): Promise<QuarantineEntry> {
    if (!ID.test(id)) throw new QuarantineError(`not a quarantine id: ${id}`);
    try {
      return JSON.parse(await readFile(join(this.#dir, `${id}.json`), 'utf8')) as QuarantineEntry;
    } catch {
      throw new QuarantineError(`no quarantined message ${id}`);
    }
  }

  async content(entry: QuarantineEntry): Promise<Buffer> {
    return readFile(join(this.#messages, `${entry.sha256}.eml`));
  }

  async markReleased(entry: QuarantineEntry, reply: string, to: readonly string[] = entry.rcptTo): Promise<void> {
    entry.released = { time: new Date().toISOString(), reply, to };
    await atomicWrite(join(this.#dir, `${entry.id}.json`), Buffer.from(JSON.stringify(entry, null, 2)));
  }

  /**
   * Hold an entry for a release: two `release` commands at once (or from two shells) must not
   * both deliver. The lock is a file created exclusively; one left by a killed command is taken
   * over after RELEASE_LOCK_STALE_MS.
   */
  async lockRelease(id: string): Promise<() => Promise<void>> {
    await this.get(id); // a clear error for an unknown id
    const file = join(this.#dir, `${id}.releasing`);
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(file)).mtimeMs;
      if (age < RELEASE_LOCK_STALE_MS) throw new QuarantineError(`${id} is being released by another command right now`);
      await writeFile(file, `${process.pid}\n`);
    }
    return () => rm(file, { force: true });
  }

  /** Delete an entry; its content goes when no other entry shares it. */
  async delete(id: string): Promise<void> {
    const entry = await this.get(id);
    await rm(join(this.#dir, `${id}.json`), { force: true });
    const others = (await this.list()).some((e) => e.sha256 === entry.sha256);
    if (!others) await rm(join(this.#messages, `${entry.sha256}.eml`), { force: true });
  }

  /** Retention: older than max-age, then oldest first while the contents exceed max-size. */
  async prune(now = Date.now()): Promise<number> {
    let entries = await this.list();
    let deleted = 0;
    for (const e of entries) {
      if (now - Date.parse(e.time) > this.limits.maxAgeMs) {
        await this.delete(e.id);
        deleted++;
      }
    }
    entries = await this.list();
    const sizes = new Map(entries.map((e) => [e.sha256, e.size]));
    let total = [...sizes.values()].reduce((a, b) => a + b, 0);
    for (const e of entries) {
      if (total <= this.limits.maxBytes) break;
      await this.delete(e.id);
      deleted++;
      if (!(await this.list()).some((x) => x.sha256 === e.sha256)) total -= e.size;
    }
    return deleted;
  }
}

export class QuarantineError extends Error {}

async function atomicWrite(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode: 0o640 });
  await rename(tmp, file);
}

/** RFC 5321 §4.5.2 in reverse: a line starting with "." lost its added dot. */
export function unstuff(wire: Buffer): Buffer {
  const text = wire.toString('latin1');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}
