/**
 * ClamAV's clamd as an engine: every object (the raw message, each decoded file, as
 * configured) is streamed to clamd over the INSTREAM command on a connection of its own, while
 * the message arrives; the verdict is read at the object's end.
 *
 * Protocol (clamd(8)): `zINSTREAM\0`, then chunks as <4-byte big-endian length><bytes>, then a
 * zero length; the reply is `stream: OK\0`, `stream: <Name> FOUND\0` or `<text> ERROR\0`.
 * Anything but OK/FOUND — an error reply, a refused or dropped connection, garbage, no reply
 * within the timeout — rejects with EngineError, which the policy turns into the profile's
 * on-error action (default tempfail): mail never passes because the scanner failed.
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
  constructor(readonly opts: ClamdOptions) {}

  open(): EngineScan {
    return new ClamdScan(this.opts);
  }

  /** Only the objects this engine is configured for are opened (see Inspector). */
  wants(path: string): boolean {
    const isMessage = path === RAW_MESSAGE_PATH;
    return this.opts.objects === 'all' || (this.opts.objects === 'message') === isMessage;
  }
}

class ClamdScan implements EngineScan {
  #socket: Socket | null = null;
  #failure: Error | null = null;
  #reply: Buffer[] = [];
  #replyBytes = 0;
  #ended: Promise<string> | null = null;

  constructor(private readonly opts: ClamdOptions) {}

  write(chunk: Buffer): void {
    if (this.#failure || chunk.length === 0) return;
    const s = this.#connect();
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
    const s = this.#connect();
    if (!this.#failure) s.write(END_OF_STREAM);
    this.#armTimeout();
    const reply = await this.#ended!;
    const text = reply.replace(/\0+$/, '').trim();
    if (text === 'stream: OK') return [];
    const found = /^stream: (.+) FOUND$/.exec(text);
    if (found) {
      const threat = found[1]!;
      return [{ engine: CLAMD_ENGINE, threat, threatId: threatIdFor(CLAMD_ENGINE, threat), signature: `clamd:${threat}`, severity: 'high', file }];
    }
    throw new EngineError(CLAMD_ENGINE, `unexpected reply ${JSON.stringify(text.slice(0, 200))}`);
  }

  #connect(): Socket {
    if (this.#socket) return this.#socket;
    const a = this.opts.address;
    const s = 'path' in a ? connect({ path: a.path }) : connect({ host: a.host, port: a.port });
    this.#socket = s;
    s.setNoDelay(true);
    this.#ended = new Promise<string>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (err: Error | null): void => {
        clearTimeout(timer);
        s.destroy();
        if (err) reject(err);
        else resolve(Buffer.concat(this.#reply).toString('latin1'));
      };
      s.on('data', (d: Buffer) => {
        this.#reply.push(d);
        this.#replyBytes += d.length;
        if (this.#replyBytes > MAX_REPLY_BYTES) done(new EngineError(CLAMD_ENGINE, 'reply too long'));
        else if (d.includes(0)) done(null);
      });
      s.on('error', (err) => done(this.#failure ?? new EngineError(CLAMD_ENGINE, err.message, { cause: err })));
      s.on('close', () => {
        if (this.#failure) return done(this.#failure);
        if (this.#replyBytes > 0) return done(null); // some clamd builds close without the NUL
        done(new EngineError(CLAMD_ENGINE, 'connection closed without a verdict'));
      });
      // The timeout runs from the object's end: `end` writes the terminator, then waits.
      this.#armTimeout = () => {
        timer = setTimeout(() => done(new EngineError(CLAMD_ENGINE, `no verdict within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
      };
    });
    this.#ended.catch(() => undefined); // observed in end(); never an unhandled rejection
    s.write('zINSTREAM\0');
    return s;
  }

  #armTimeout: () => void = () => {};

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#socket?.destroy(err);
  }
}
