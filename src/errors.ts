/**
 * The error catalogue: every failure smtpwall raises on purpose, each with a stable code and
 * the SMTP reply it maps to by default. Only `gateway/enforce.ts` turns these into replies;
 * everything else throws them (or returns a Decision). The reply texts never carry internal
 * details: those go to the log, keyed by the transaction id the reply quotes.
 */

export interface SmtpReplySpec {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

export abstract class SmtpwallError extends Error {
  abstract readonly code: string;
  /** What a client is told when this error ends its transaction or session. */
  abstract readonly reply: SmtpReplySpec;
  override get name(): string {
    return this.constructor.name;
  }
}

/** An engine (or the whole inspection) gave no verdict before the scan deadline. */
export class ScanTimeoutError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_SCAN_TIMEOUT';
  readonly reply = { code: 451, enhanced: '4.7.1', text: 'Message could not be scanned, try again later' };
  constructor(engine: string, ms: number, opts?: ErrorOptions) {
    super(`engine ${engine} gave no verdict within ${ms} ms`, opts);
  }
}

/** An engine failed (crashed, answered garbage, could not be reached). */
export class EngineError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_ENGINE';
  readonly reply = { code: 451, enhanced: '4.7.1', text: 'Message could not be scanned, try again later' };
  constructor(engine: string, detail: string, opts?: ErrorOptions) {
    super(`engine ${engine} failed: ${detail}`, opts);
  }
}

/** The upstream server could not be reached or did not greet. */
export class UpstreamConnectError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_UPSTREAM_CONNECT';
  readonly reply = { code: 421, enhanced: '4.4.0', text: 'Service not available, upstream server unreachable' };
  constructor(target: string, detail: string, opts?: ErrorOptions) {
    super(`upstream ${target} unreachable: ${detail}`, opts);
  }
}

/** The upstream connection closed, reset or timed out while we needed it. */
export class UpstreamLostError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_UPSTREAM_LOST';
  readonly reply = { code: 421, enhanced: '4.4.2', text: 'Upstream connection lost, try again later' };
  constructor(detail: string, opts?: ErrorOptions) {
    super(`upstream connection lost: ${detail}`, opts);
  }
}

/** The upstream said something SMTP does not allow here (wrong reply class, garbage). */
export class UpstreamProtocolError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_UPSTREAM_PROTOCOL';
  readonly reply = { code: 451, enhanced: '4.3.0', text: 'Upstream protocol error, try again later' };
  constructor(detail: string, opts?: ErrorOptions) {
    super(`upstream protocol error: ${detail}`, opts);
  }
}

/** The client sent nothing for longer than the idle timeout; the session ends. */
export class ClientTimeoutError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_CLIENT_TIMEOUT';
  readonly reply = { code: 421, enhanced: '4.4.2', text: 'Error: timeout exceeded' };
}

/** The spool (memory or temp file) could not take the message. */
export class SpoolError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_SPOOL';
  readonly reply = { code: 452, enhanced: '4.3.1', text: 'Insufficient system storage, try again later' };
  constructor(detail: string, opts?: ErrorOptions) {
    super(`spool failed: ${detail}`, opts);
  }
}

/** A configuration file that cannot be used; the message names file, line and key. */
export class ConfigError extends SmtpwallError {
  readonly code = 'SMTPWALL_ERR_CONFIG';
  readonly reply = { code: 421, enhanced: '4.3.0', text: 'Service not available' };
}

/** Anything not in this catalogue: a bug. Generic reply, details only in the log. */
export const INTERNAL_ERROR_REPLY: SmtpReplySpec = {
  code: 451,
  enhanced: '4.3.0',
  text: 'Internal error, try again later',
};

export function replyFor(err: unknown): SmtpReplySpec {
  return err instanceof SmtpwallError ? err.reply : INTERNAL_ERROR_REPLY;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
