/**
 * Log records: one traffic record per transaction, one threat record per finding. These are
 * the fields an admin needs to explain a decision; every store and forwarder writes the same.
 */

export interface TrafficRecord {
  readonly time: string; // ISO 8601, end of the transaction
  readonly sessionId: string;
  readonly transactionId: string;
  readonly listener: string;
  readonly client: string; // address:port
  readonly server: string; // address:port of the upstream
  readonly helo: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly size: number; // message bytes as received (wire, dot-stuffed)
  readonly messageId: string;
  readonly subject: string;
  readonly forwarding: string;
  readonly rule: string;
  readonly profile: string;
  readonly action: string;
  readonly reason: string;
  readonly upstreamReply: string; // the upstream's final reply, or '' if none
  readonly clientReply: string; // what the client was told, or '' (drop/reset)
  readonly durationMs: number;
  readonly events: readonly string[]; // anomaly names
  /** The gateway instance that wrote it; the store fills it in when a writer leaves it out. */
  readonly instance?: string;
}

export interface ThreatRecord {
  readonly time: string;
  readonly sessionId: string;
  readonly transactionId: string;
  readonly listener: string;
  readonly client: string;
  readonly server: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly threat: string;
  readonly threatId: string;
  readonly severity: string;
  readonly engine: string;
  readonly signature: string;
  readonly fileName: string;
  readonly filePath: string;
  readonly declaredType: string;
  readonly detectedType: string;
  /** `type-mismatch`, `double-extension`, `rtlo`, `macros` (see inspect/file-flags.ts). */
  readonly fileFlags: readonly string[];
  readonly sha256: string;
  readonly size: number;
  readonly rule: string;
  readonly profile: string;
  readonly action: string;
  /** Whether this finding decided the action (others were found but did not set it). */
  readonly deciding: boolean;
  readonly direction: string; // client-to-server for SMTP DATA
  /** The gateway instance that wrote it; the store fills it in when a writer leaves it out. */
  readonly instance?: string;
}

/** One record of either kind, for batched writes. */
export type LogRecord = { readonly kind: 'traffic'; readonly r: TrafficRecord } | { readonly kind: 'threat'; readonly r: ThreatRecord };

export interface LogStore {
  addTraffic(r: TrafficRecord): void;
  addThreat(r: ThreatRecord): void;
  /** Write several records at once, in order, all or none (a store that can: one transaction). */
  addBatch?(records: readonly LogRecord[]): void;
  listTraffic(limit: number): TrafficRecord[];
  listThreats(limit: number): ThreatRecord[];
  /** Reopen files written to (log rotation); a store without files has nothing to do. */
  reopen?(): void;
  close(): void;
}
