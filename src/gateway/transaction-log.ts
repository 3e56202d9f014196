/**
 * Building log records from what a session knows: one traffic record per transaction, one
 * threat record per finding (logs/records.ts has the fields). Pure functions; the session
 * writes the records.
 */

import { randomBytes } from 'node:crypto';
import { messageHeaderFacts } from '../inspect/mime/header-text.ts';
import type { Finding } from '../inspect/types.ts';
import type { ThreatRecord, TrafficRecord } from '../logs/records.ts';
import type { Decision } from '../policy/decide.ts';

/** What every record of a session repeats. */
export interface SessionFacts {
  readonly sessionId: string;
  readonly listener: string;
  readonly client: string; // address:port
  readonly server: string; // address:port
  readonly forwarding: string;
}

export interface TransactionFacts {
  readonly id: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly started: number;
}

/** What the received message adds, if there was one. */
export interface MessageFacts {
  readonly size: number;
  readonly headerFacts: HeaderFacts;
}

export interface HeaderFacts {
  readonly messageId: string;
  readonly subject: string;
}

export type Outcome = Pick<TrafficRecord, 'rule' | 'profile' | 'action' | 'reason' | 'upstreamReply' | 'clientReply' | 'events'>;

export function trafficRecord(s: SessionFacts, helo: string, tx: TransactionFacts, msg: MessageFacts | null, outcome: Outcome): TrafficRecord {
  const headers = msg ? msg.headerFacts : NO_HEADERS;
  return {
    time: new Date().toISOString(),
    sessionId: s.sessionId,
    transactionId: tx.id,
    listener: s.listener,
    client: s.client,
    server: s.server,
    helo,
    mailFrom: tx.mailFrom,
    rcptTo: tx.rcptTo,
    size: msg?.size ?? 0,
    messageId: headers.messageId,
    subject: headers.subject,
    forwarding: s.forwarding,
    durationMs: Date.now() - tx.started,
    // Written out rather than spread (V8 builds objects with spreads slowly; a record a message).
    rule: outcome.rule,
    profile: outcome.profile,
    action: outcome.action,
    reason: outcome.reason,
    upstreamReply: outcome.upstreamReply,
    clientReply: outcome.clientReply,
    events: outcome.events,
  };
}

export function threatRecord(s: SessionFacts, tx: TransactionFacts, d: Decision, f: Finding): ThreatRecord {
  return {
    time: new Date().toISOString(),
    sessionId: s.sessionId,
    transactionId: tx.id,
    listener: s.listener,
    client: s.client,
    server: s.server,
    mailFrom: tx.mailFrom,
    rcptTo: tx.rcptTo,
    ...findingFields(f),
    rule: d.rule,
    profile: d.profile,
    action: d.action,
    deciding: d.deciding === f,
    direction: 'client-to-server',
  };
}

/**
 * Values from the message (file names can be built from many RFC 2231 continuations) are
 * clipped: a record stays a record, not a carrier for kilobytes of attacker text.
 */
const MAX_FIELD = 998;
const clip = (s: string): string => (s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD - 1)}…` : s);

/** What a threat record says about the finding and its file (shared with retro-alerts). */
export function findingFields(f: Finding): Pick<
  ThreatRecord,
  'threat' | 'threatId' | 'severity' | 'engine' | 'signature' | 'fileName' | 'filePath' | 'declaredType' | 'detectedType' | 'fileFlags' | 'sha256' | 'size'
> {
  return {
    threat: f.threat,
    threatId: f.threatId,
    severity: f.severity,
    engine: f.engine,
    signature: clip(f.signature),
    fileName: clip(f.file.name ?? ''),
    filePath: clip(f.file.path),
    declaredType: clip(f.file.declaredType ?? ''),
    detectedType: f.file.detectedType,
    fileFlags: f.file.flags,
    sha256: f.file.sha256,
    size: f.file.size,
  };
}

const NO_HEADERS: HeaderFacts = { messageId: '', subject: '' };

/** Message-ID and Subject for a record: decoded (inspect/mime/header-text.ts) and clipped. */
export function headerFacts(head: Buffer): HeaderFacts {
  const f = messageHeaderFacts(head);
  return { messageId: clip(f.messageId), subject: clip(f.subject) };
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Random bytes drawn in blocks: one system call per 400 sessions, not one per session. */
const POOL_BYTES = 4000;
let pool = Buffer.alloc(0);
let poolAt = 0;

/** 16 base32 characters (80 random bits): in every log line and record of a session. */
export function newSessionId(): string {
  if (poolAt + 10 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  const bytes = pool.subarray(poolAt, (poolAt += 10));
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}
