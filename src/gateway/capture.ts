/**
 * The packet capture of a session (`capture:` in the config): both legs' bytes — client ⇄
 * gateway and gateway ⇄ upstream — with timestamps and directions, our resets and FINs and
 * the peers', so that a blocked transaction can be shown as the conversation it was (the
 * transcript) and exported as a pcap whose TCP streams Wireshark can follow (admin/pcap.ts).
 *
 * Bytes are taken at the socket: what the gateway read (a socket's push) and what it wrote
 * (its write), whoever in the session did the reading or writing. Under TLS the decrypted
 * conversation is captured (the TLS socket's bytes), as a decrypting capture would show it.
 *
 * Bounded: `max-bytes` of payload per session. Past it, short segments (commands, replies:
 * at most SMALL_SEGMENT bytes) are still kept up to OVERFLOW_BYTES more, so the 541 and the
 * reset after a large message are not lost; the rest is a gap — its length is kept, so the
 * exported TCP sequence numbers stay true and Wireshark shows "previous segment not captured".
 */

import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';

/** Which side of the gateway a connection is on. */
export type LegRole = 'client' | 'upstream';

export interface CapturedConnection {
  readonly role: LegRole;
  /** The peer: the sending MTA (client leg), the receiving server (upstream leg). */
  readonly peer: { readonly address: string; readonly port: number };
  /** The gateway's own end of the connection. */
  readonly local: { readonly address: string; readonly port: number };
  /** When it was tapped (ms since the epoch, fractional). */
  readonly opened: number;
  /** Encrypted from here on (bytes are the decrypted conversation). */
  readonly tls: boolean;
}

/**
 * One thing seen on a connection. `from`: who sent it. `data` carries bytes (or only their
 * count for a gap), `fin` an orderly close, `rst` a TCP reset, `tls` the start of encryption
 * (the bytes after it are the decrypted conversation).
 */
export interface CaptureEvent {
  readonly t: number;
  readonly conn: number;
  readonly from: 'peer' | 'gateway';
  readonly kind: 'data' | 'gap' | 'fin' | 'rst' | 'tls';
  readonly bytes?: Buffer;
  /** Length of a gap. */
  readonly length?: number;
}

export interface CaptureData {
  readonly connections: readonly CapturedConnection[];
  readonly events: readonly CaptureEvent[];
  /** Bytes not kept (gaps), for the marker in transcripts. */
  readonly cutBytes: number;
}

/** A segment this short is still kept past max-bytes (commands and replies). */
const SMALL_SEGMENT = 1024;
/** How much past max-bytes short segments may take. */
const OVERFLOW_BYTES = 64 * 1024;

const now = (): number => performance.timeOrigin + performance.now();

export class SessionCapture {
  readonly #connections: CapturedConnection[] = [];
  readonly #events: CaptureEvent[] = [];
  /** The sockets tapped for this capture, to unhook them in release(). */
  readonly #sockets: Socket[] = [];
  #kept = 0;
  #cut = 0;
  /** A threat record was written for one of the session's transactions. */
  threat = false;

  constructor(private readonly maxBytes: number) {}

  /** Start capturing a socket of this session (a new TCP connection, or its TLS layer). */
  tap(socket: Socket, role: LegRole): void {
    const known = sinks.get(socket);
    if (known?.capture === this) return;
    const tls = 'encrypted' in socket && (socket as { encrypted?: boolean }).encrypted === true;
    // After STARTTLS, the TLS socket is the same TCP connection: its bytes continue the stream.
    const under = tls ? this.#connections.findIndex((c) => c.role === role && c.local.port === socket.localPort && c.peer.port === socket.remotePort) : -1;
    const conn =
      under >= 0
        ? under
        : this.#connections.push({
            role,
            peer: { address: plain(socket.remoteAddress), port: socket.remotePort ?? 0 },
            local: { address: plain(socket.localAddress), port: socket.localPort ?? 0 },
            opened: now(),
            tls,
          }) - 1;
    if (under >= 0) this.#events.push({ t: now(), conn, from: 'gateway', kind: 'tls' });
    tapSocket(socket, { capture: this, conn });
    this.#sockets.push(socket);
  }

  /** Bytes on connection `conn`; `from` sent them. */
  data(conn: number, from: 'peer' | 'gateway', bytes: Buffer): void {
    if (bytes.length === 0) return;
    const over = this.#kept + bytes.length > this.maxBytes;
    if (over && (bytes.length > SMALL_SEGMENT || this.#kept + bytes.length > this.maxBytes + OVERFLOW_BYTES)) {
      this.#cut += bytes.length;
      const last = this.#events.at(-1);
      // Consecutive gaps of one direction are one gap.
      if (last && last.kind === 'gap' && last.conn === conn && last.from === from) {
        this.#events[this.#events.length - 1] = { ...last, length: last.length! + bytes.length };
      } else {
        this.#events.push({ t: now(), conn, from, kind: 'gap', length: bytes.length });
      }
      return;
    }
    this.#kept += bytes.length;
    this.#events.push({ t: now(), conn, from, kind: 'data', bytes });
  }

  end(conn: number, from: 'peer' | 'gateway', kind: 'fin' | 'rst'): void {
    // A connection ends once in each direction; a reset ends both (nothing after it counts).
    if (this.#events.some((e) => e.conn === conn && (e.kind === 'rst' || (e.kind === kind && e.from === from)))) return;
    this.#events.push({ t: now(), conn, from, kind });
  }

  /**
   * The session is over and its capture stored or not wanted: forget the bytes now. Left to
   * the garbage collector they lived until a mark-compact — likely because the sockets'
   * entries in `sinks` (a WeakMap) are ephemerons, and V8's scavenges keep the value of an
   * entry whose key is in the old generation (a socket that lived a while) until the next full
   * collection. Measured (node --trace-gc, 300 messages of 1 MB at 10 sessions): 12–27
   * mark-compacts without this, none in seven runs of eight with it (CHANGELOG).
   */
  release(): void {
    this.#events.length = 0;
    this.#connections.length = 0;
    this.#kept = this.maxBytes + OVERFLOW_BYTES; // anything reported late is a gap, not kept
    for (const socket of this.#sockets) if (sinks.get(socket)?.capture === this) sinks.set(socket, null);
    this.#sockets.length = 0;
  }

  /** What was captured, for the store. */
  snapshot(): CaptureData {
    return { connections: [...this.#connections], events: [...this.#events], cutBytes: this.#cut };
  }
}

interface Sink {
  readonly capture: SessionCapture;
  readonly conn: number;
}

/** The capture each tapped socket reports to (a pooled upstream connection changes owner). */
const sinks = new WeakMap<Socket, Sink | null>();

/**
 * Report a socket's reads, writes and ends to `sink` (null: to nobody, e.g. an upstream
 * connection parked for reuse). The socket's methods are wrapped once; later taps only change
 * where they report. The wrappers and listeners are shared by every socket (they find their
 * sink by `this`): two sockets a session, and an idle session should not carry a dozen
 * closures and once-wrappers for its capture.
 */
export function tapSocket(socket: Socket, sink: Sink | null): void {
  const known = sinks.has(socket);
  sinks.set(socket, sink);
  if (known) return;
  // Node's stream code hands every chunk read to push() (stream_base_commons onStreamRead).
  if (socket.push === READABLE_PUSH) socket.push = tappedPush;
  else {
    const push = socket.push;
    socket.push = function (this: Socket, chunk: unknown, encoding?: BufferEncoding): boolean {
      reportRead(this, chunk, encoding);
      return push.call(this, chunk, encoding);
    };
  }
  if (socket.write === WRITABLE_WRITE) socket.write = tappedWrite as Socket['write'];
  else {
    const write = socket.write;
    socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
      reportWrite(this, chunk, rest[0]);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as Socket['write'];
  }
  // Each fires once; SessionCapture.end keeps one end per direction anyway.
  socket.on('end', onPeerEnd);
  socket.on('finish', onOurFinish);
  socket.on('error', onSocketError);
}

const READABLE_PUSH = Readable.prototype.push;
const WRITABLE_WRITE = Writable.prototype.write;

function tappedPush(this: Socket, chunk: unknown, encoding?: BufferEncoding): boolean {
  reportRead(this, chunk, encoding);
  return READABLE_PUSH.call(this, chunk, encoding);
}

function tappedWrite(this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
  reportWrite(this, chunk, rest[0]);
  return (WRITABLE_WRITE as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
}

function reportRead(socket: Socket, chunk: unknown, encoding?: BufferEncoding): void {
  const s = sinks.get(socket);
  if (s && chunk !== null && chunk !== undefined) s.capture.data(s.conn, 'peer', toBuffer(chunk, encoding));
}

function reportWrite(socket: Socket, chunk: unknown, encoding: unknown): void {
  const s = sinks.get(socket);
  if (s) s.capture.data(s.conn, 'gateway', toBuffer(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined));
}

function onPeerEnd(this: Socket): void {
  report(this, 'peer', 'fin');
}

function onOurFinish(this: Socket): void {
  report(this, 'gateway', 'fin');
}

function onSocketError(this: Socket, err: NodeJS.ErrnoException): void {
  if (err.code === 'ECONNRESET') report(this, 'peer', 'rst');
}

/** The socket reports to nobody from now on (an upstream connection parked for reuse). */
export function untap(socket: Socket): void {
  if (sinks.has(socket)) sinks.set(socket, null);
}

/** Our reset of a socket (reset.ts), before it is sent. */
export function noteReset(socket: Socket): void {
  report(socket, 'gateway', 'rst');
}

function report(socket: Socket, from: 'peer' | 'gateway', kind: 'fin' | 'rst'): void {
  const s = sinks.get(socket);
  if (s) s.capture.end(s.conn, from, kind);
}

function toBuffer(chunk: unknown, encoding?: BufferEncoding): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding ?? 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.alloc(0);
}

/** `::ffff:127.0.0.1` → `127.0.0.1`. */
function plain(address: string | undefined): string {
  const a = address ?? '0.0.0.0';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
