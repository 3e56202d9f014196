/**
 * The session's states and its command table (after Postfix smtpd's `smtpd_cmd_table` and
 * `state->where`): every verb the gateway understands, with the flags that govern it, and
 * `admit()`, the one function that decides whether a command may be handled in a state or is
 * refused locally — and with which reply. Pure: no sockets, tested state by state.
 *
 * A verb not in the table never reaches the upstream (500).
 */

import type { PathResult } from '../smtp/command.ts';
import { DEFAULT_EHLO_ALLOW, type EhloPolicy } from '../smtp/ehlo.ts';
import type { ClientTls } from './tls.ts';
import { type LocalReply, REPLY } from './enforce.ts';

/**
 * Where a session is. `greeting`: waiting for the upstream's greeting; `ready`: no mail
 * transaction; `mail`: MAIL accepted; `rcpt`: a recipient accepted; `bdat`: BDAT chunks of a
 * message have arrived, LAST has not; `data`: a message is arriving; `gate`: the message is
 * held for its verdict; `tls-handshake`: STARTTLS in progress; `tunnel`: STARTTLS passed
 * through (bytes only); `closing`: the session is ending.
 */
export type SessionState = 'greeting' | 'ready' | 'mail' | 'rcpt' | 'bdat' | 'data' | 'gate' | 'tls-handshake' | 'tunnel' | 'closing';

/** The states in which a client command is read (the others are inside a command). */
export const READING_STATES: readonly SessionState[] = ['ready', 'mail', 'rcpt', 'bdat'];

export interface CommandSpec {
  /**
   * Relayed ahead without waiting for its reply (RFC 2920 §3.1: MAIL and RCPT may be
   * followed by more commands in the same batch). Every other command waits until the
   * replies owed are settled, so replies and state changes stay in command order.
   */
  readonly pipelinable: boolean;
  /** `none`: any argument is a 501; `host`: an argument is required; `any`: the handler reads it. */
  readonly args: 'none' | 'host' | 'any';
  /** Needs a transaction with an accepted recipient (DATA, BDAT). */
  readonly needsTransaction: boolean;
  /** Refused inside a transaction (AUTH, RFC 4954 §4). */
  readonly outsideTransaction: boolean;
  /** Needs the upstream connection (a connection abandoned by a reset is replaced first). */
  readonly usesUpstream: boolean;
}

const spec = (s: Partial<CommandSpec>): CommandSpec => ({
  pipelinable: false,
  args: 'any',
  needsTransaction: false,
  outsideTransaction: false,
  usesUpstream: true,
  ...s,
});

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  HELO: spec({ args: 'host' }),
  EHLO: spec({ args: 'host' }),
  MAIL: spec({ pipelinable: true }),
  RCPT: spec({ pipelinable: true }),
  DATA: spec({ args: 'none', needsTransaction: true }),
  BDAT: spec({ needsTransaction: true }),
  RSET: spec({ args: 'none' }),
  QUIT: spec({ usesUpstream: false }),
  NOOP: spec({}),
  VRFY: spec({}),
  EXPN: spec({}),
  HELP: spec({}),
  STARTTLS: spec({ args: 'none' }),
  AUTH: spec({ outsideTransaction: true }),
  XCLIENT: spec({}),
  XFORWARD: spec({}),
};

/** What admit() needs to know of the session and its listener. */
export interface SessionView {
  readonly state: SessionState;
  /** A failed BDAT chunk's reply, repeated for every later chunk (RFC 3030 §2). */
  readonly bdatFailed: LocalReply | null;
  readonly relayAuth: boolean;
  readonly trusted: boolean;
  readonly tls: Pick<ClientTls, 'mode' | 'passthroughAction'>;
  readonly clientTls: boolean;
}

/** BDAT's argument (RFC 3030): the chunk size, and LAST. */
const BDAT_ARG = /^(\d{1,15})( +LAST)?\s*$/i;

export type Admission =
  | { readonly ok: true; readonly spec: CommandSpec; readonly bdat?: { readonly size: number; readonly last: boolean } }
  | {
      readonly ok: false;
      readonly reply: LocalReply;
      /** Counts towards max-bad-commands. */
      readonly bad: boolean;
      /** The session cannot go on (the stream cannot be framed any more). */
      readonly close?: boolean;
      /** Bytes that belong to the refused command and must be read and discarded first (a BDAT chunk). */
      readonly discard?: number;
      /** A refused `BDAT … LAST` still ends the transaction. */
      readonly endsTransaction?: boolean;
      /** Why, for the process log (refusals that are policy, not client errors). */
      readonly log?: string;
    };

const refuse = (reply: LocalReply, bad = true): Admission => ({ ok: false, reply, bad });

const inTransaction = (s: SessionState): boolean => s === 'mail' || s === 'rcpt' || s === 'bdat';

/** May `verb arg` be handled now? If not, the reply (and what else the refusal implies). */
export function admit(verb: string, arg: string, view: SessionView): Admission {
  const spec = COMMANDS[verb];
  if (!spec) return refuse(REPLY.notRecognized);
  if (spec.args === 'none' && arg !== '') return refuse(REPLY.syntax(verb));
  if (spec.args === 'host' && arg.trim() === '') return refuse(REPLY.syntaxHostname(verb));
  const { state } = view;
  switch (verb) {
    case 'AUTH':
      if (!view.relayAuth) return refuse(REPLY.notImplemented);
      break;
    case 'XCLIENT':
    case 'XFORWARD':
      if (!view.trusted) return refuse(REPLY.notImplemented);
      break;
    case 'STARTTLS':
      if (view.tls.mode === 'strip') return refuse(REPLY.notImplemented);
      if (view.clientTls) return refuse(REPLY.tlsActive);
      if (view.tls.mode === 'passthrough' && view.tls.passthroughAction === 'block') {
        return { ok: false, reply: REPLY.tlsMustInspect, bad: false, log: 'STARTTLS refused: session must stay inspectable' };
      }
      break;
    case 'DATA':
      if (state === 'bdat') return refuse(REPLY.dataAfterBdat);
      break;
    case 'BDAT': {
      const m = BDAT_ARG.exec(arg);
      // The chunk length is unknown: the stream cannot be read further.
      if (!m) return { ok: false, reply: REPLY.bdatSyntax, bad: false, close: true };
      const size = Number(m[1]);
      const last = m[2] !== undefined;
      const refusal = state === 'ready' ? REPLY.needMail : state === 'mail' ? REPLY.noRecipients : view.bdatFailed;
      if (refusal) return { ok: false, reply: refusal, bad: true, discard: size, endsTransaction: last && state !== 'ready' };
      return { ok: true, spec, bdat: { size, last } };
    }
  }
  if (spec.outsideTransaction && inTransaction(state)) return refuse(REPLY.authInTransaction);
  if (spec.needsTransaction) {
    if (state === 'ready') return refuse(REPLY.needMail);
    if (state === 'mail') return refuse(REPLY.noRecipients);
  }
  return { ok: true, spec };
}

/** MAIL's own refusals, before it is relayed: syntax, a declared SIZE over the limit, BINARYMIME. */
export function mailRefusal(p: PathResult, maxMessageBytes: number): LocalReply | null {
  if (!p.ok) return { code: p.reply.code, text: `${p.reply.enhanced} ${p.reply.text}` };
  const size = p.path.params.get('SIZE');
  const body = p.path.params.get('BODY');
  if (typeof size === 'string' && Number(size) > maxMessageBytes) return REPLY.tooBig(maxMessageBytes);
  if (typeof body === 'string' && body.toUpperCase() === 'BINARYMIME') return REPLY.binaryMime;
  return null;
}

/** What decides the extensions a session offers in its EHLO reply. */
export interface Offer {
  readonly tls: Pick<ClientTls, 'mode' | 'passthroughAction'>;
  readonly clientTls: boolean;
  readonly upstreamTls: boolean;
  readonly relayAuth: boolean;
  readonly trusted: boolean;
}

/**
 * The EHLO reply's edit: the upstream's extensions we carry, STARTTLS when we terminate TLS
 * (the content stays inspectable) or pass it through, CHUNKING always (BDAT is inspected here
 * and reaches the upstream as DATA, whatever it supports), AUTH when relayed, XCLIENT and
 * XFORWARD for trusted clients.
 */
export function ehloEdit(o: Offer, maxMessageBytes: number): EhloPolicy {
  const allow = new Set(DEFAULT_EHLO_ALLOW);
  if (o.tls.mode === 'passthrough' && o.tls.passthroughAction === 'allow' && !o.upstreamTls) allow.add('STARTTLS');
  if (o.relayAuth) allow.add('AUTH');
  if (o.trusted) for (const x of ['XCLIENT', 'XFORWARD']) allow.add(x);
  return { allow, maxMessageBytes, add: o.tls.mode === 'terminate' && !o.clientTls ? ['STARTTLS', 'CHUNKING'] : ['CHUNKING'] };
}
