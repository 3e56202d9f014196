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

export class Spool {
  #memory: Buffer[] = [];
  #memoryBytes = 0;
  #file: FileHandle | null = null;
  #path: string | null = null;

  constructor(
    private readonly dir: string,
    private readonly memoryLimit: number,
  ) {}

  get onDisk(): boolean {
    return this.#file !== null;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    if (!this.#file && this.#memoryBytes + chunk.length <= this.memoryLimit) {
      // Copy: the chunk is a view into a larger socket read; keeping the view would keep the
      // whole read alive, and memory would no longer be bounded by spool-memory.
      this.#memory.push(Buffer.from(chunk));
      this.#memoryBytes += chunk.length;
      return;
    }
    try {
      if (!this.#file) await this.#spill();
      await this.#file!.write(chunk);
    } catch (err) {
      throw new SpoolError((err as Error).message, { cause: err });
    }
  }

  /** The spooled bytes in order, in chunks; call after the last write. */
  async *read(): AsyncGenerator<Buffer> {
    if (!this.#file) {
      yield* this.#memory;
      return;
    }
    const stream = createReadStream(this.#path!, { highWaterMark: READ_CHUNK_BYTES });
    for await (const chunk of stream) yield chunk as Buffer;
  }

  async dispose(): Promise<void> {
    this.#memory = [];
    this.#memoryBytes = 0;
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
    for (const b of this.#memory) await this.#file.write(b);
    this.#memory = [];
    this.#memoryBytes = 0;
  }
}
