/**
 * The store-and-forward spool: a message's wire bytes kept until the verdict. In memory up
 * to a threshold, then in a private temp file (mode 0600, in the data directory's spool/),
 * which `dispose` always removes. Memory per session is bounded by the threshold, never by
 * the message size.
 */

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SpoolError } from '../errors.ts';

const READ_CHUNK_BYTES = 256 * 1024;
/** Bytes gathered before one write to the temp file: one system call per batch, not per read. */
const WRITE_BATCH_BYTES = 256 * 1024;

export class Spool {
  #memory: Buffer[] = [];
  #memoryBytes = 0;
  #file: FileHandle | null = null;
  #path: string | null = null;
  /** On disk: bytes not yet written, at most WRITE_BATCH_BYTES. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly memoryLimit: number,
  ) {}

  get onDisk(): boolean {
    return this.#file !== null;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    // A view that is most of its buffer (a socket read is a buffer of its own) is kept as it
    // is, counted at its buffer's size; a smaller piece of a larger read is copied, or keeping
    // it would keep the whole read alive and memory would not be bounded by spool-memory.
    const view = chunk.length * 2 >= chunk.buffer.byteLength;
    const cost = view ? chunk.buffer.byteLength : chunk.length;
    if (!this.#file && this.#memoryBytes + cost <= this.memoryLimit) {
      this.#memory.push(view ? chunk : Buffer.from(chunk));
      this.#memoryBytes += cost;
      return;
    }
    try {
      if (!this.#file) await this.#spill();
      // Kept until the batch is written: the socket's read as it is, a small piece of a larger
      // read copied (as in memory: what waits stays within twice the batch).
      this.#pending.push(view ? chunk : Buffer.from(chunk));
      this.#pendingBytes += chunk.length;
      if (this.#pendingBytes >= WRITE_BATCH_BYTES) await this.#flush();
    } catch (err) {
      throw new SpoolError((err as Error).message, { cause: err });
    }
  }

  async #flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    // One writev of the reads as they are: a joined copy would allocate and copy every
    // spooled byte once more (libuv writes all of them, past partial writes and IOV_MAX).
    await this.#file!.writev(batch);
  }

  /** The spooled bytes in order, in chunks; call after the last write. */
  async *read(): AsyncGenerator<Buffer> {
    if (!this.#file) {
      yield* this.#memory;
      return;
    }
    try {
      await this.#flush();
    } catch (err) {
      throw new SpoolError((err as Error).message, { cause: err });
    }
    const stream = createReadStream(this.#path!, { highWaterMark: READ_CHUNK_BYTES });
    for await (const chunk of stream) yield chunk as Buffer;
  }

  async dispose(): Promise<void> {
    this.#memory = [];
    this.#memoryBytes = 0;
    this.#pending = [];
    this.#pendingBytes = 0;
    const file = this.#file;
    const path = this.#path;
    this.#file = null;
    this.#path = null;
    if (file) await file.close().catch(() => undefined);
    if (path) await rm(path, { force: true });
  }

  async #spill(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.#path = join(this.dir, `msg-${process.pid}-${randomBytes(8).toString('hex')}.spool`);
    this.#file = await open(this.#path, 'wx', 0o600);
    await this.#file.writev(this.#memory);
    this.#memory = [];
    this.#memoryBytes = 0;
  }
}
