/**
 * Log forwarding: every traffic and threat record, besides the local store, to syslog (RFC 5424
 * over UDP, TCP with octet counting (RFC 6587), or a unix stream socket), or as lines to a file;
 * formatted as RFC 5424 with the record as JSON, as CEF (ArcSight Common Event Format), or as
 * JSON lines. The same fields everywhere.
 *
 * A forwarding failure never blocks mail and never loses the local record: the local store is
 * written first; forwarders queue (bounded), reconnect, and count what they could not send,
 * which the gateway reports in its log. Unix *datagram* sockets (/dev/log) are not supported:
 * Node has none; point rsyslog's imuxsock at a stream socket, or use UDP/TCP.
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createWriteStream, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { escapeUnsafe, safeJson } from './escape.ts';
import type { LogStore, ThreatRecord, TrafficRecord } from './records.ts';

export type RecordKind = 'traffic' | 'threat';
export type ForwardFormat = 'rfc5424' | 'cef' | 'json';

export interface ForwarderConfig {
  readonly name: string;
  readonly type: 'syslog' | 'file';
  /** syslog: udp://host:port, tcp://host:port, unix:///path (stream). */
  readonly address?: string;
  /** file: the file records are appended to. */
  readonly path?: string;
  readonly format: ForwardFormat;
  /** syslog facility name (mail, local0 … local7). */
  readonly facility: string;
}

const VERSION = '0.1.0';
const FACILITIES: Record<string, number> = { kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23 };
/** Records queued per forwarder while its peer is unreachable; beyond, they are counted as dropped. */
const MAX_QUEUE = 10_000;
const RECONNECT_MS = 2000;

export interface ForwarderStats {
  readonly name: string;
  sent: number;
  failed: number;
  dropped: number;
  lastError: string;
}

// ---- formats ------------------------------------------------------------------------------

/** Syslog severity: threats are warnings, traffic is informational. */
const severityOf = (kind: RecordKind): number => (kind === 'threat' ? 4 : 6);

export function formatRfc5424(kind: RecordKind, r: TrafficRecord | ThreatRecord, facility: string): string {
  const pri = (FACILITIES[facility] ?? 2) * 8 + severityOf(kind);
  const sd = `[smtpwall@32473 type="${kind}" tx="${sdEscape(r.transactionId)}" action="${sdEscape(r.action)}"]`;
  return `<${pri}>1 ${r.time} ${hostname()} smtpwall ${process.pid} ${kind} ${sd} ${safeJson({ type: kind, ...r })}`;
}

const sdEscape = (s: string): string => escapeUnsafe(s.replace(/["\\\]]/g, '\\$&'));

/**
 * CEF: header fields escape | and \; extension values escape = and \ and newlines; other
 * control and bidi characters become `U+XXXX` (logs/escape.ts).
 */
export function formatCef(kind: RecordKind, r: TrafficRecord | ThreatRecord): string {
  const h = (s: string): string => escapeUnsafe(s.replace(/[\\|]/g, '\\$&'));
  const v = (s: string | number): string =>
    escapeUnsafe(
      String(s)
        .replace(/[\\=]/g, '\\$&')
        .replace(/\r\n|\n/g, '\\n')
        .replace(/\r/g, '\\r'),
    );
  const [src, spt] = splitAddress(r.client);
  const [dst, dpt] = splitAddress(r.server);
  const common: Array<[string, string | number]> = [
    ['rt', Date.parse(r.time)], ['src', src], ['spt', spt], ['dst', dst], ['dpt', dpt], ['suser', r.mailFrom], ['duser', r.rcptTo.join(',')],
    ['act', r.action], ['cs1Label', 'rule'], ['cs1', r.rule], ['cs2Label', 'transaction'], ['cs2', r.transactionId], ['deviceExternalId', r.listener],
  ];
  if (kind === 'threat') {
    const t = r as ThreatRecord;
    const sev = t.severity === 'critical' ? 10 : t.severity === 'high' ? 8 : t.severity === 'medium' ? 5 : 3;
    const ext: Array<[string, string | number]> = [
      ...common, ['fname', t.fileName], ['filePath', t.filePath], ['fileType', t.detectedType], ['fileHash', t.sha256], ['fsize', t.size],
      ['cs3Label', 'engine'], ['cs3', t.engine], ['cs4Label', 'signature'], ['cs4', t.signature], ['cs5Label', 'flags'], ['cs5', t.fileFlags.join(',')],
    ];
    return `CEF:0|smtpwall|smtpwall|${VERSION}|${h(t.threatId)}|${h(t.threat)}|${sev}|${ext.map(([k, x]) => `${k}=${v(x)}`).join(' ')}`;
  }
  const t = r as TrafficRecord;
  const ext: Array<[string, string | number]> = [...common, ['msg', t.reason], ['cs3Label', 'subject'], ['cs3', t.subject], ['in', t.size], ['cs4Label', 'events'], ['cs4', t.events.join(',')]];
  return `CEF:0|smtpwall|smtpwall|${VERSION}|traffic|mail transaction|${t.action === 'allow' ? 1 : 5}|${ext.map(([k, x]) => `${k}=${v(x)}`).join(' ')}`;
}

function splitAddress(a: string): [string, string] {
  const i = a.lastIndexOf(':');
  return i === -1 ? [a, ''] : [a.slice(0, i).replace(/^\[|\]$/g, ''), a.slice(i + 1)];
}

export function formatRecord(kind: RecordKind, r: TrafficRecord | ThreatRecord, format: ForwardFormat, facility: string): string {
  if (format === 'cef') return formatCef(kind, r);
  if (format === 'json') return safeJson({ type: kind, ...r });
  return formatRfc5424(kind, r, facility);
}

// ---- transports ---------------------------------------------------------------------------

interface Transport {
  send(line: string): void;
  /** Files: open the configured path again (log rotation). */
  reopen?(): void;
  close(): Promise<void>;
}

/** UDP: one datagram per record; a send error is counted, nothing is retried. */
class UdpTransport implements Transport {
  readonly #socket: UdpSocket;
  constructor(private readonly host: string, private readonly port: number, private readonly stats: ForwarderStats) {
    this.#socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.unref();
  }
  #fail(err: Error): void {
    this.stats.failed++;
    this.stats.lastError = err.message;
  }
  send(line: string): void {
    this.#socket.send(Buffer.from(line), this.port, this.host, (err) => (err ? this.#fail(err) : this.stats.sent++));
  }
  close(): Promise<void> {
    return new Promise((r) => this.#socket.close(() => r()));
  }
}

/**
 * TCP or unix stream: octet-counted frames (`LEN SP MSG`, RFC 6587 §3.4.1; a newline for
 * files). Records wait in a bounded queue while disconnected; the connection is retried.
 */
class StreamTransport implements Transport {
  #socket: Socket | null = null;
  #connected = false;
  #queue: string[] = [];
  #closed = false;
  #retry: NodeJS.Timeout | null = null;

  constructor(private readonly target: { host: string; port: number } | { path: string }, private readonly stats: ForwarderStats) {
    this.#connect();
  }

  #connect(): void {
    if (this.#closed) return;
    const s = 'path' in this.target ? connect({ path: this.target.path }) : connect({ host: this.target.host, port: this.target.port });
    this.#socket = s;
    s.unref();
    s.on('connect', () => {
      this.#connected = true;
      for (const line of this.#queue.splice(0)) this.#write(line);
    });
    s.on('error', (err) => {
      this.stats.lastError = err.message;
    });
    s.on('close', () => {
      this.#connected = false;
      this.#socket = null;
      if (!this.#closed) {
        this.#retry = setTimeout(() => this.#connect(), RECONNECT_MS);
        this.#retry.unref();
      }
    });
  }

  #write(line: string): void {
    const frame = Buffer.from(line);
    this.#socket!.write(Buffer.concat([Buffer.from(`${frame.length} `), frame]), (err) => {
      if (err) this.stats.failed++;
      else this.stats.sent++;
    });
  }

  send(line: string): void {
    if (this.#connected && this.#socket) return this.#write(line);
    if (this.#queue.length >= MAX_QUEUE) {
      this.stats.dropped++;
      return;
    }
    this.#queue.push(line);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.stats.dropped += this.#queue.length;
    this.#queue = [];
    const s = this.#socket;
    if (s) await new Promise<void>((r) => s.end(() => r()));
  }
}

class FileTransport implements Transport {
  #stream: WriteStream;
  constructor(private readonly path: string, private readonly stats: ForwarderStats) {
    this.#stream = this.#open();
  }

  #open(): WriteStream {
    const stream = createWriteStream(this.path, { flags: 'a' });
    stream.on('error', (err) => {
      this.stats.failed++;
      this.stats.lastError = err.message;
    });
    return stream;
  }

  /**
   * logrotate renamed the file: lines written so far finish in the old one (end() flushes),
   * new lines go to a new file at the configured path.
   */
  reopen(): void {
    const old = this.#stream;
    this.#stream = this.#open();
    old.end();
  }
  send(line: string): void {
    if (this.#stream.destroyed) {
      this.stats.failed++;
      return;
    }
    this.#stream.write(`${line}\n`, (err) => (err ? undefined : this.stats.sent++));
  }
  close(): Promise<void> {
    return new Promise((r) => this.#stream.end(() => r()));
  }
}

function transportFor(c: ForwarderConfig, stats: ForwarderStats): Transport {
  if (c.type === 'file') return new FileTransport(c.path!, stats);
  const a = c.address!;
  const m = /^(udp|tcp):\/\/(?:\[([^\]]+)\]|([^:/]+)):(\d+)$/.exec(a);
  if (m) {
    const host = m[2] ?? m[3]!;
    const port = Number(m[4]);
    return m[1] === 'udp' ? new UdpTransport(host, port, stats) : new StreamTransport({ host, port }, stats);
  }
  if (a.startsWith('unix://')) return new StreamTransport({ path: a.slice('unix://'.length) }, stats);
  throw new Error(`log forwarder ${c.name}: address "${a}" is not udp://host:port, tcp://host:port or unix:///path`);
}

// ---- the store ----------------------------------------------------------------------------

/**
 * A LogStore that writes the local store first (its errors are the caller's, as before), then
 * hands the record to every forwarder (also when the local write failed); forwarders never throw.
 */
export class ForwardingLogStore implements LogStore {
  readonly #forwarders: Array<{ config: ForwarderConfig; transport: Transport; stats: ForwarderStats }>;

  constructor(private readonly local: LogStore, configs: readonly ForwarderConfig[]) {
    this.#forwarders = configs.map((config) => {
      const stats: ForwarderStats = { name: config.name, sent: 0, failed: 0, dropped: 0, lastError: '' };
      return { config, transport: transportFor(config, stats), stats };
    });
  }

  get stats(): readonly ForwarderStats[] {
    return this.#forwarders.map((f) => f.stats);
  }

  #forward(kind: RecordKind, r: TrafficRecord | ThreatRecord): void {
    for (const f of this.#forwarders) {
      try {
        f.transport.send(formatRecord(kind, r, f.config.format, f.config.facility));
      } catch (err) {
        f.stats.failed++;
        f.stats.lastError = (err as Error).message;
      }
    }
  }

  addTraffic(r: TrafficRecord): void {
    try {
      this.local.addTraffic(r);
    } finally {
      this.#forward('traffic', r); // forwarded even when the local store failed
    }
  }

  addThreat(r: ThreatRecord): void {
    try {
      this.local.addThreat(r);
    } finally {
      this.#forward('threat', r);
    }
  }

  listTraffic(limit: number): TrafficRecord[] {
    return this.local.listTraffic(limit);
  }

  listThreats(limit: number): ThreatRecord[] {
    return this.local.listThreats(limit);
  }

  reopen(): void {
    for (const f of this.#forwarders) f.transport.reopen?.();
  }

  close(): void {
    for (const f of this.#forwarders) void f.transport.close();
    this.local.close();
  }
}
