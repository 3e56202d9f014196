/**
 * ClamAV's clamd as an engine: every object (the raw message, each decoded file, each archive
 * member, as configured) is streamed to clamd over INSTREAM while the message arrives; the
 * verdict is read at the object's end.
 *
 * Protocol (clamd(8)): a connection opens a session with `zIDSESSION\0`; each object is one
 * `zINSTREAM\0` command, then chunks as <4-byte big-endian length><bytes>, then a zero length;
 * the reply is `<id>: stream: OK\0`, `<id>: stream: <Name> FOUND\0` or `<id>: <text> ERROR\0`.
 * Sessions are pooled: a connection serves one object at a time and goes back to the pool
 * after a verdict, so a message of fifty parts costs no fifty TCP handshakes and clamd
 * accepts. Idle sessions close well before clamd's own IdleTimeout (30 s by default).
 *
 * Anything but OK/FOUND — an error reply, a refused or dropped connection, garbage, no reply
 * within the timeout — rejects with EngineError, which the policy turns into the profile's
 * on-error action (default tempfail): mail never passes because the scanner failed. A
 * connection that failed is never reused.
 *
 * Memory: bytes not yet taken by clamd are bounded by MAX_PENDING_BYTES per object; a clamd
 * that falls further behind fails the object instead of growing the gateway's memory.
 */

import { connect, type Socket } from 'node:net';
import { EngineError } from '../../errors.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH } from '../types.ts';
import { type Engine, type EngineScan, threatIdFor } from './engine.ts';

export const CLAMD_ENGINE = 'clamd';
/** Bytes queued towards one clamd connection before the object is failed. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** Longest reply accepted from clamd. */
const MAX_REPLY_BYTES = 4096;
const END_OF_STREAM = Buffer.alloc(4);
/** Idle sessions kept, and for how long (clamd's IdleTimeout default is 30 s). */
const POOL_MAX_IDLE = 16;
const POOL_IDLE_MS = 10_000;

export type ClamdAddress = { readonly path: string } | { readonly host: string; readonly port: number };

export interface ClamdOptions {
  readonly address: ClamdAddress;
  /** Longest wait for clamd's verdict after an object's last byte. */
  readonly timeoutMs: number;
  /** Which objects clamd sees: the whole message (clamd decodes MIME itself), decoded files, or both. */
  readonly objects: 'message' | 'files' | 'all';
}

export class ClamdEngine implements Engine {
  readonly name = CLAMD_ENGINE;
  readonly #pool: SessionPool;

  constructor(readonly opts: ClamdOptions) {
    this.#pool = new SessionPool(opts.address);
  }

  open(): EngineScan {
    return new ClamdScan(this.opts, this.#pool);
  }

  /** Only the objects this engine is configured for are opened (see Inspector). */
  wants(path: string): boolean {
    const isMessage = path === RAW_MESSAGE_PATH;
    return this.opts.objects === 'all' || (this.opts.objects === 'message') === isMessage;
  }

  /** Sessions opened so far (for tests and the benchmark: pooling at work). */
  get sessionsOpened(): number {
    return this.#pool.opened;
  }

  async close(): Promise<void> {
    this.#pool.close();
  }
}

/** One clamd connection in IDSESSION mode, serving one command at a time. */
class Session {
  readonly socket: Socket;
  #reply: Buffer[] = [];
  #replyBytes = 0;
  #waiter: ((r: { reply: string } | { error: Error }) => void) | null = null;
  dead = false;
  #deathCause: Error | null = null;

  constructor(address: ClamdAddress) {
    const s = 'path' in address ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
    this.socket = s;
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => {
      this.#reply.push(d);
      this.#replyBytes += d.length;
      if (this.#replyBytes > MAX_REPLY_BYTES) this.kill(new EngineError(CLAMD_ENGINE, 'reply too long'));
      else if (d.includes(0)) this.#settle({ reply: Buffer.concat(this.#reply).toString('latin1') });
    });
    s.on('error', (err) => this.kill(new EngineError(CLAMD_ENGINE, err.message, { cause: err })));
    s.on('close', () => this.kill(new EngineError(CLAMD_ENGINE, 'connection closed without a verdict')));
    s.write('zIDSESSION\0');
  }

  /** Start a command; its reply (or the session's failure) settles `wait()`. */
  begin(): void {
    this.#reply = [];
    this.#replyBytes = 0;
    this.socket.ref();
    this.socket.write('zINSTREAM\0');
  }

  wait(timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.dead) return reject(this.#deathCause!);
      const timer = setTimeout(() => this.kill(new EngineError(CLAMD_ENGINE, `no verdict within ${timeoutMs} ms`)), timeoutMs);
      this.#waiter = (r) => {
        clearTimeout(timer);
        if ('error' in r) reject(r.error);
        else resolve(r.reply);
      };
      if (this.#replyBytes > 0 && this.#reply.some((d) => d.includes(0))) this.#settle({ reply: Buffer.concat(this.#reply).toString('latin1') });
    });
  }

  #settle(r: { reply: string } | { error: Error }): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.(r);
  }

  kill(err: Error): void {
    if (!this.dead) {
      this.dead = true;
      this.#deathCause = err;
      this.socket.destroy();
    }
    this.#settle({ error: this.#deathCause! });
  }
}

class SessionPool {
  readonly #idle: { session: Session; timer: NodeJS.Timeout }[] = [];
  opened = 0;
  #closed = false;

  constructor(private readonly address: ClamdAddress) {}

  acquire(): Session {
    for (let entry = this.#idle.pop(); entry; entry = this.#idle.pop()) {
      clearTimeout(entry.timer);
      if (!entry.session.dead && !entry.session.socket.destroyed) return entry.session;
    }
    this.opened++;
    return new Session(this.address);
  }

  release(session: Session): void {
    if (session.dead) return;
    if (this.#closed || this.#idle.length >= POOL_MAX_IDLE) {
      this.#end(session);
      return;
    }
    session.socket.unref(); // an idle session never keeps the process alive
    const timer = setTimeout(() => {
      const i = this.#idle.findIndex((e) => e.session === session);
      if (i !== -1) this.#idle.splice(i, 1);
      this.#end(session);
    }, POOL_IDLE_MS);
    timer.unref();
    this.#idle.push({ session, timer });
  }

  #end(session: Session): void {
    session.dead = true;
    session.socket.end('zEND\0');
    session.socket.destroySoon();
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#idle.splice(0)) {
      clearTimeout(e.timer);
      this.#end(e.session);
    }
  }
}

class ClamdScan implements EngineScan {
  #session: Session | null = null;
  #failure: Error | null = null;

  constructor(private readonly opts: ClamdOptions, private readonly pool: SessionPool) {}

  write(chunk: Buffer): void {
    if (this.#failure || chunk.length === 0) return;
    const s = this.#start().socket;
    if (s.writableLength > MAX_PENDING_BYTES) {
      this.#fail(new EngineError(CLAMD_ENGINE, `clamd fell more than ${MAX_PENDING_BYTES} bytes behind`));
      return;
    }
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(chunk.length);
    s.write(len);
    s.write(chunk);
  }

  async end(file: FileInfo): Promise<Finding[]> {
    const session = this.#start();
    if (this.#failure) throw this.#failure;
    session.socket.write(END_OF_STREAM);
    const reply = await session.wait(this.opts.timeoutMs);
    const text = reply.replace(/\0+$/, '').replace(/^\d+: /, '').trim();
    if (text === 'stream: OK') {
      this.pool.release(session);
      return [];
    }
    const found = /^stream: (.+) FOUND$/.exec(text);
    if (found) {
      this.pool.release(session);
      const threat = found[1]!;
      return [{ engine: CLAMD_ENGINE, threat, threatId: threatIdFor(CLAMD_ENGINE, threat), signature: `clamd:${threat}`, severity: 'high', file }];
    }
    session.kill(new EngineError(CLAMD_ENGINE, 'unexpected reply'));
    throw new EngineError(CLAMD_ENGINE, `unexpected reply ${JSON.stringify(text.slice(0, 200))}`);
  }

  #start(): Session {
    if (this.#session === null) {
      this.#session = this.pool.acquire();
      this.#session.begin();
    }
    return this.#session;
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#session?.kill(err);
  }
}
