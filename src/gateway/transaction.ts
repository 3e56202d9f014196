/**
 * One mail transaction, MAIL to end of data, and the reception of its message — the same for
 * DATA and BDAT (RFC 3030): BDAT chunks are read by their exact length and dot-stuffed into
 * one DATA stream, framed by the same strict reader, so inspection and the gate cannot tell
 * the two apart. A `BDAT … LAST` is the held terminator.
 */

import { ClientTimeoutError } from '../errors.ts';
import type { Timeouts } from '../policy/config-schema.ts';
import { DotStuffer } from '../smtp/dot-stuff.ts';
import type { ClientReader } from './client-reader.ts';
import { type LocalReply, REPLY } from './enforce.ts';
import type { IncomingMessage } from './incoming.ts';

export interface Transaction {
  /** `${session id}.${n}`: quoted in replies, key of every log record. */
  readonly id: string;
  readonly mailFrom: string;
  readonly rcptTo: string[];
  readonly started: number;
  /** The message being assembled from BDAT chunks, from the first chunk to LAST. */
  bdat: { readonly msg: IncomingMessage; readonly stuffer: DotStuffer } | null;
  /** A BDAT chunk failed: every later chunk of this transaction gets this reply (RFC 3030). */
  bdatFailed: LocalReply | null;
}

export function newTransaction(id: string, mailFrom: string): Transaction {
  return { id, mailFrom, rcptTo: [], started: Date.now(), bdat: null, bdatFailed: null };
}

/** A stand-in for records that belong to the session, not to a transaction (a TLS tunnel). */
export function sessionTransaction(id: string): Transaction {
  return newTransaction(id, '');
}

/** Why a message cannot start now (DATA or BDAT): no MAIL, no accepted recipient. */
export function messageRefusal(tx: Transaction | null): LocalReply | null {
  if (!tx) return REPLY.needMail;
  if (tx.rcptTo.length === 0) return REPLY.noRecipients;
  return null;
}

/**
 * Waits while a message arrives: each at most client-idle, all together at most
 * timeouts.message (a client sending a byte a minute must not hold a session for days).
 */
export function messageDeadline(timeouts: Timeouts): { next(): number } {
  const end = Date.now() + timeouts.message;
  return {
    next: () => {
      const left = end - Date.now();
      if (left <= 0) throw new ClientTimeoutError(`message not received within ${timeouts.message} ms`);
      return Math.min(timeouts['client-idle'], left);
    },
  };
}

/**
 * Read a DATA stream to its terminator (or the client's end of stream; `msg.ended` tells).
 * Bytes pipelined after the terminator go back to the reader.
 */
export async function receiveData(reader: ClientReader, msg: IncomingMessage, timeouts: Timeouts): Promise<void> {
  const deadline = messageDeadline(timeouts);
  while (!msg.ended) {
    const chunk = await reader.readChunk(deadline.next());
    if (chunk === null) return;
    const consumed = await msg.push(chunk);
    if (consumed < chunk.length) reader.unshift(chunk.subarray(consumed));
  }
}

/** Start assembling a BDAT message (its first chunk). */
export function startBdat(tx: Transaction, msg: IncomingMessage): NonNullable<Transaction['bdat']> {
  tx.bdat = { msg, stuffer: new DotStuffer() };
  return tx.bdat;
}

/**
 * Read one BDAT chunk of exactly `size` bytes into the message. False: the client's stream
 * ended first. At LAST the terminator follows, so the message ends like a DATA stream.
 */
export async function receiveChunk(reader: ClientReader, bdat: NonNullable<Transaction['bdat']>, size: number, last: boolean, timeouts: Timeouts): Promise<boolean> {
  const { msg, stuffer } = bdat;
  const deadline = messageDeadline(timeouts);
  let left = size;
  while (left > 0) {
    const chunk = await reader.readChunk(deadline.next());
    if (chunk === null) return false;
    const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
    if (chunk.length > left) reader.unshift(chunk.subarray(left));
    left -= piece.length;
    await msg.push(stuffer.stuff(piece));
  }
  if (last) await msg.push(stuffer.terminator());
  return true;
}
