/**
 * Prometheus metrics: counters the gateway keeps as it logs (a LogStore decorator sees every
 * traffic and threat record, so the figures are exactly what the logs say), a plain JSON
 * snapshot a worker hands its supervisor, a merge of snapshots (the figures are the same
 * whether one or many workers serve a listener), and the text exposition format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), written by hand: a few
 * counters and one histogram do not need a client library.
 */

import type { LogRecord, LogStore, ThreatRecord, TrafficRecord } from '../logs/records.ts';

/** Upper bounds (seconds) of the transaction-duration histogram. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

/** What one process counted since it started: plain JSON, so it crosses cluster IPC. */
export interface MetricsSnapshot {
  /** `listener\u0000action` → count */
  readonly transactions: Record<string, number>;
  /** `engine\u0000action` → count */
  readonly threats: Record<string, number>;
  readonly upstreamErrors: Record<string, number>;
  readonly messageBytes: number;
  /** Cumulative counts per bucket of DURATION_BUCKETS, then +Inf. */
  readonly durationBuckets: number[];
  readonly durationSum: number;
}

const SEP = '\u0000';

export class GatewayMetrics {
  readonly #transactions = new Map<string, number>();
  readonly #threats = new Map<string, number>();
  readonly #upstreamErrors = new Map<string, number>();
  #messageBytes = 0;
  readonly #buckets = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  #durationSum = 0;

  traffic(r: TrafficRecord): void {
    bump(this.#transactions, `${r.listener}${SEP}${r.action}`);
    this.#messageBytes += r.size;
    const s = r.durationMs / 1000;
    this.#durationSum += s;
    let i = DURATION_BUCKETS.findIndex((b) => s <= b);
    if (i < 0) i = DURATION_BUCKETS.length;
    this.#buckets[i]!++;
    // The upstream's final reply was a 4xx or 5xx (the record's own field; no guessing from text).
    if (/^[45]\d\d/.test(r.upstreamReply)) bump(this.#upstreamErrors, r.listener);
  }

  threat(r: ThreatRecord): void {
    bump(this.#threats, `${r.engine}${SEP}${r.action}`);
  }

  snapshot(): MetricsSnapshot {
    const cumulative: number[] = [];
    let n = 0;
    for (const c of this.#buckets) cumulative.push((n += c));
    return {
      transactions: Object.fromEntries(this.#transactions),
      threats: Object.fromEntries(this.#threats),
      upstreamErrors: Object.fromEntries(this.#upstreamErrors),
      messageBytes: this.#messageBytes,
      durationBuckets: cumulative,
      durationSum: this.#durationSum,
    };
  }
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

/** The sum of several processes' snapshots. */
export function mergeSnapshots(all: readonly MetricsSnapshot[]): MetricsSnapshot {
  const add = (pick: (s: MetricsSnapshot) => Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(pick(s))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    transactions: add((s) => s.transactions),
    threats: add((s) => s.threats),
    upstreamErrors: add((s) => s.upstreamErrors),
    messageBytes: all.reduce((n, s) => n + s.messageBytes, 0),
    durationBuckets: DURATION_BUCKETS.map((_, i) => i)
      .concat(DURATION_BUCKETS.length)
      .map((i) => all.reduce((n, s) => n + (s.durationBuckets[i] ?? 0), 0)),
    durationSum: all.reduce((n, s) => n + s.durationSum, 0),
  };
}

/** A LogStore that counts what passes through it into `metrics`, then hands it on. */
export class CountingLogStore implements LogStore {
  constructor(
    private readonly inner: LogStore,
    private readonly metrics: GatewayMetrics,
  ) {}

  addTraffic(r: TrafficRecord): void {
    this.metrics.traffic(r);
    this.inner.addTraffic(r);
  }

  addThreat(r: ThreatRecord): void {
    this.metrics.threat(r);
    this.inner.addThreat(r);
  }

  addBatch(records: readonly LogRecord[]): void {
    for (const x of records) {
      if (x.kind === 'traffic') this.metrics.traffic(x.r);
      else this.metrics.threat(x.r);
    }
    if (this.inner.addBatch) this.inner.addBatch(records);
    else for (const x of records) x.kind === 'traffic' ? this.inner.addTraffic(x.r) : this.inner.addThreat(x.r);
  }

  listTraffic(limit: number): TrafficRecord[] {
    return this.inner.listTraffic(limit);
  }

  listThreats(limit: number): ThreatRecord[] {
    return this.inner.listThreats(limit);
  }

  reopen(): void {
    this.inner.reopen?.();
  }

  close(): void {
    this.inner.close();
  }
}

/** What the exposition needs beyond the counters. */
export interface MetricsView {
  readonly counters: MetricsSnapshot;
  /** Open sessions per listener (summed over workers). */
  readonly sessions: Record<string, number>;
  /** Engine → up (the last health probe). */
  readonly engines: Record<string, boolean>;
  /** Per process (the supervisor's own, or the single process): Node's figures. */
  readonly processes: ReadonlyArray<{ pid: number; role: string; rss: number; heapUsed: number; cpuSeconds: number; startSeconds: number }>;
}

/** Label values escaped as the text format wants (backslash, quote, newline). */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function renderMetrics(v: MetricsView): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const pairs = (rec: Record<string, number>, names: [string, string]): Array<[string, number]> =>
    Object.entries(rec)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, n]) => {
        const [a, b] = k.split(SEP);
        return [`${names[0]}="${label(a ?? '')}",${names[1]}="${label(b ?? '')}"`, n];
      });
  family('smtpwall_transactions_total', 'counter', 'Transactions logged, by listener and action.');
  for (const [l, n] of pairs(v.counters.transactions, ['listener', 'action'])) out.push(`smtpwall_transactions_total{${l}} ${n}`);
  family('smtpwall_threats_total', 'counter', 'Threat findings logged, by engine and action.');
  for (const [l, n] of pairs(v.counters.threats, ['engine', 'action'])) out.push(`smtpwall_threats_total{${l}} ${n}`);
  family('smtpwall_upstream_errors_total', 'counter', 'Transactions whose final upstream reply was 4xx or 5xx, by listener.');
  for (const [k, n] of Object.entries(v.counters.upstreamErrors).sort()) out.push(`smtpwall_upstream_errors_total{listener="${label(k)}"} ${n}`);
  family('smtpwall_message_bytes_total', 'counter', 'Message bytes received (as on the wire).');
  out.push(`smtpwall_message_bytes_total ${v.counters.messageBytes}`);
  family('smtpwall_scan_duration_seconds', 'histogram', 'Time from DATA/BDAT to the final reply (inspection and delivery), per transaction.');
  DURATION_BUCKETS.forEach((b, i) => out.push(`smtpwall_scan_duration_seconds_bucket{le="${b}"} ${v.counters.durationBuckets[i] ?? 0}`));
  const count = v.counters.durationBuckets.at(-1) ?? 0;
  out.push(`smtpwall_scan_duration_seconds_bucket{le="+Inf"} ${count}`, `smtpwall_scan_duration_seconds_sum ${v.counters.durationSum}`, `smtpwall_scan_duration_seconds_count ${count}`);
  family('smtpwall_sessions', 'gauge', 'Open client sessions, by listener.');
  for (const [k, n] of Object.entries(v.sessions).sort()) out.push(`smtpwall_sessions{listener="${label(k)}"} ${n}`);
  family('smtpwall_engine_up', 'gauge', 'Whether an engine or store answered its last health probe (1) or not (0).');
  for (const [k, up] of Object.entries(v.engines).sort()) out.push(`smtpwall_engine_up{engine="${label(k)}"} ${up ? 1 : 0}`);
  family('process_resident_memory_bytes', 'gauge', 'Resident memory of each smtpwall process.');
  for (const p of v.processes) out.push(`process_resident_memory_bytes{pid="${p.pid}",role="${p.role}"} ${p.rss}`);
  family('nodejs_heap_used_bytes', 'gauge', "V8 heap in use, per process.");
  for (const p of v.processes) out.push(`nodejs_heap_used_bytes{pid="${p.pid}",role="${p.role}"} ${p.heapUsed}`);
  family('process_cpu_seconds_total', 'counter', 'User and system CPU time, per process.');
  for (const p of v.processes) out.push(`process_cpu_seconds_total{pid="${p.pid}",role="${p.role}"} ${p.cpuSeconds}`);
  family('process_start_time_seconds', 'gauge', 'Start time of each process since the Unix epoch.');
  for (const p of v.processes) out.push(`process_start_time_seconds{pid="${p.pid}",role="${p.role}"} ${p.startSeconds}`);
  return `${out.join('\n')}\n`;
}

/** This process's Node figures. */
export function processFigures(role: string): MetricsView['processes'][number] {
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    pid: process.pid,
    role,
    rss: m.rss,
    heapUsed: m.heapUsed,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    startSeconds: Math.round(Date.now() / 1000 - process.uptime()),
  };
}
