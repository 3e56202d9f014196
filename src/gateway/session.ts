/**
 * A session: one client connection paired with one upstream connection, relaying the SMTP
 * conversation command by command and holding every message at the end-of-data gate until
 * the policy has a verdict.
 *
 * Contract:
 *   - every client command is read whole (CRLF only), checked, and either answered locally
 *     (syntax, limits, extensions we do not carry) or relayed; the upstream's reply is
 *     checked for the class the command allows and relayed censored;
 *   - a message is accepted (2xx) only when the upstream accepted exactly its bytes;
 *   - DATA follows the listener's forwarding mode (store-and-forward or cut-through); the
 *     terminator reaches the upstream only after an allowing verdict;
 *   - replies to pipelined commands are batched and written when the session next waits for
 *     the client (one write per batch; TCP_NODELAY is set).
 * What it never does: decide (policy does) or phrase a verdict or error reply (enforce does).
 */

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { ClientTimeoutError, describeError, UpstreamLostError, UpstreamProtocolError } from '../errors.ts';
import type { AnomalyEvent } from '../events.ts';
import { DLP_ENGINE } from '../inspect/engines/dlp.ts';
import type { Inspector } from '../inspect/inspector.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH, type ScanResult } from '../inspect/types.ts';
import type { LogStore, ThreatRecord, TrafficRecord } from '../logs/records.ts';
import type { Limits, Timeouts } from '../policy/config-schema.ts';
import type { Decision, Policy, ScanOutcome } from '../policy/decide.ts';
import type { TransactionFacts } from '../policy/rules.ts';
import type { QuarantineStore } from '../quarantine/store.ts';
import { PENDING_THREAT_PREFIX } from '../analysis/engine.ts';
import type { RetroAlerts } from '../analysis/retro.ts';
import type { VerdictStore } from '../analysis/verdict-store.ts';
import { type Command, parseCommand, parsePath } from '../smtp/command.ts';
import { DotStuffer } from '../smtp/dot-stuff.ts';
import { DEFAULT_EHLO_ALLOW, editEhloReply } from '../smtp/ehlo.ts';
import { censorText, formatReply, type Reply, replyToString } from '../smtp/reply.ts';
import { ClientReader } from './client-reader.ts';
import {
  COMMAND_ANOMALY_REPLY,
  DATA_ANOMALY_REPLY,
  type Enforcement,
  enforcementFor,
  errorReply,
  type Forwarding,
} from './enforce.ts';
import { IncomingMessage } from './incoming.ts';
import { resetConnection } from './reset.ts';
import { Spool } from './spool.ts';
import { headerFacts, newSessionId, type Outcome, type SessionFacts, threatRecord, trafficRecord } from './transaction-log.ts';
import type { ClientTls, UpstreamTls } from './tls.ts';
import { Upstream } from './upstream.ts';

/** End of data (RFC 5321 §4.1.1.4): the part of the stream the gate holds back. */
const TERMINATOR = Buffer.from('.\r\n');
/** A passthrough tunnel one side of which has ended is torn down after this long. */
const PASSTHROUGH_HALF_CLOSE_MS = 2000;
/** Longest wait between a final reply and the reset that follows it (see #flushedAndRead). */
const RESET_LINGER_MS = 200;

export interface SessionContext {
  readonly listener: string;
  /** The listener's direction label, for rules. */
  readonly direction?: string;
  readonly forwarding: Forwarding;
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  readonly hostname: string;
  readonly limits: Limits;
  readonly timeouts: Timeouts;
  readonly inspector: Inspector;
  readonly policy: Policy;
  readonly logs: LogStore;
  readonly spoolDir: string;
  /** Where blocked/rejected messages are kept when the deciding profile says so. */
  readonly quarantine?: QuarantineStore | null;
  /** Delivered files whose analysis was still running: for retro-alerts. */
  readonly retro?: RetroAlerts | null;
  /** True while records cannot be written and log-database.on-failure is tempfail. */
  readonly logsUnavailable?: () => boolean;
  /** The analysis verdict store: each judged file's sightings (which message, who got it). */
  readonly verdicts?: VerdictStore | null;
  /** Whether the analysis engine may have judged this file (others need no sighting lookup). */
  readonly judged?: (file: FileInfo) => boolean;
  readonly clientTls: ClientTls;
  readonly upstreamTls: UpstreamTls;
  /** Relay AUTH between client and upstream (offered when the upstream offers it). */
  readonly relayAuth: boolean;
  /** Clients allowed to send XCLIENT/XFORWARD (matched against the client address). */
  readonly isTrusted: (address: string) => boolean;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

interface Transaction {
  /** `${session.id}.${n}`: quoted in replies, key of every log record. */
  readonly id: string;
  readonly mailFrom: string;
  readonly rcptTo: string[];
  readonly started: number;
  /** The message being assembled from BDAT chunks, from the first chunk to LAST. */
  bdat: { readonly msg: IncomingMessage; readonly stuffer: DotStuffer } | null;
  /** A BDAT chunk failed: every later chunk of this transaction gets this reply (RFC 3030). */
  bdatFailed: { code: number; text: string } | null;
}


type Handler = (cmd: Command) => Promise<void>;

export class Session {
  /** 16-char base32 id, in every log line and record of this session. */
  readonly id = newSessionId();
  #socket: Socket;
  /** The TCP socket under a STARTTLS upgrade, for resets. */
  #tcp: Socket | undefined;
  #reader: ClientReader;
  /** The client leg is encrypted (implicit TLS, or after STARTTLS). */
  #clientTls = false;
  /** The client may send XCLIENT/XFORWARD. */
  readonly #trusted: boolean;
  readonly #ctx: SessionContext;
  readonly #client: string;
  #out: Buffer[] = [];
  #upstream: Upstream | null = null;
  /** The HELO/EHLO line the client used, replayed when the upstream must be reconnected. */
  #heloCommand: string | null = null;
  #helo = '';
  #tx: Transaction | null = null;
  /** MAIL/RCPT relayed ahead whose replies are still to come, oldest first. */
  #pending: Array<{ readonly label: string; readonly apply: (r: Reply) => void }> = [];
  #transactions = 0;
  #badCommands = 0;
  #closing = false;
  readonly #commands: Record<string, Handler>;

  constructor(socket: Socket, ctx: SessionContext) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#client = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#clientTls = socket instanceof TLSSocket;
    this.#trusted = ctx.isTrusted(socket.remoteAddress ?? '');
    socket.setNoDelay(true);
    this.#reader = new ClientReader(socket, () => this.#flush());
    // Dispatch table (Postfix smtpd_cmd_table): only verbs we understand reach the upstream.
    const relay: Handler = (c) => this.#relaySimple(c);

    this.#commands = {
      HELO: (c) => this.#hello(c),
      EHLO: (c) => this.#hello(c),
      MAIL: (c) => this.#mail(c),
      RCPT: (c) => this.#rcpt(c),
      DATA: (c) => this.#data(c),
      RSET: (c) => this.#rset(c),
      QUIT: (c) => this.#quit(c),
      NOOP: relay,
      VRFY: relay,
      EXPN: relay,
      HELP: relay,
      BDAT: (c) => this.#bdat(c),
      STARTTLS: (c) => this.#starttls(c),
      AUTH: (c) => this.#auth(c),
      XCLIENT: (c) => this.#trustedOnly(c),
      XFORWARD: (c) => this.#trustedOnly(c),
    };
  }

  get clientAddress(): string {
    return this.#socket.remoteAddress ?? '';
  }

  /** Run the session to its end; never rejects (every failure is answered and logged). */
  async run(): Promise<void> {
    try {
      await this.#greet();
      while (!this.#closing) {
        // Envelope commands relayed ahead are settled before the session waits for the client.
        if (this.#pending.length && !this.#reader.hasLine()) await this.#drainPending();
        const r = await this.#reader.readLine(this.#ctx.limits['max-command-line'], this.#ctx.timeouts['client-idle']);
        if (r.kind === 'eof') break;
        if (r.kind === 'bad' || r.kind === 'overflow') {
          await this.#drainPending();
          const anomaly = r.kind === 'bad' ? r.anomaly : 'LINE_TOO_LONG';
          const rep = COMMAND_ANOMALY_REPLY[anomaly]!;
          this.#ctx.log('warn', 'command refused', { session: this.id, anomaly });
          this.#bad(rep.code, rep.text);
          continue;
        }
        if (r.kind !== 'line') continue;
        const cmd = parseCommand(r.line);
        // Only MAIL and RCPT are relayed ahead (RFC 2920 §3.1); any other command waits for
        // their replies, so replies and state changes stay in command order.
        if (cmd.verb !== 'MAIL' && cmd.verb !== 'RCPT') await this.#drainPending();
        if (cmd.verb !== 'BDAT' && this.#tx?.bdat && this.#ctx.forwarding === 'cut-through') {
          // The upstream is inside DATA for the chunks so far: no command may reach it now.
          await this.#dropTransaction();
        }
        if (!(await this.#upstreamStillThere(cmd.verb))) break;
        const handler = this.#commands[cmd.verb];
        if (handler) await handler(cmd);
        else this.#bad(500, '5.5.2 Command not recognized');
      }
    } catch (err) {
      this.#failSession(err);
    } finally {
      this.#flush();
      await this.#finish();
    }
  }

  // ---- connection set-up and teardown -------------------------------------------------------

  async #greet(): Promise<void> {
    const { upstreamHost, upstreamPort, timeouts } = this.#ctx;
    const { upstream, greeting } = await Upstream.connect(upstreamHost, upstreamPort, timeouts['upstream-connect']);
    this.#upstream = upstream;
    this.#relay(greeting);
    if (greeting.code !== 220) this.#closing = true;
  }

  /** Before relaying a command: a server that spoke unasked (421 before closing) ends the session. */
  async #upstreamStillThere(verb: string): Promise<boolean> {
    if (this.#pending.length) return true; // replies are expected: none of them is unsolicited
    const up = this.#upstream;
    if (!up) {
      if (verb === 'QUIT' || !(verb in this.#commands)) return true; // nothing to relay
      try {
        await this.#reconnectUpstream();
        return true;
      } catch (err) {
        this.#failSession(err);
        return false;
      }
    }
    const unsolicited = up.takeUnsolicited();
    if (unsolicited || !up.alive) {
      this.#ctx.log('warn', 'upstream ended the session', {
        session: this.id,
        reply: unsolicited ? replyToString(unsolicited) : 'connection closed',
      });
      this.#failSession(new UpstreamLostError(unsolicited ? `unsolicited ${unsolicited.code}` : 'closed'));
      return false;
    }
    return true;
  }

  /**
   * Cut-through transactions can only be abandoned by resetting the upstream; the client's
   * session goes on, so a fresh upstream connection is opened and greeted the way the client
   * greeted (its EHLO replayed, the reply consumed here).
   */
  async #reconnectUpstream(): Promise<void> {
    const { upstreamHost, upstreamPort, timeouts } = this.#ctx;
    const { upstream, greeting } = await Upstream.connect(upstreamHost, upstreamPort, timeouts['upstream-connect']);
    if (greeting.code !== 220) {
      upstream.reset();
      throw new UpstreamLostError(`reconnect greeting ${greeting.code}`);
    }
    this.#upstream = upstream;
    if (this.#heloCommand) {
      const r = await upstream.command(this.#heloCommand, timeouts['upstream-reply']);
      if (r.code !== 250) {
        upstream.reset();
        this.#upstream = null;
        throw new UpstreamLostError(`reconnect ${this.#heloCommand.split(' ')[0]} answered ${r.code}`);
      }
      // The new connection gets the same TLS protection as the first one.
      if (this.#heloCommand.toUpperCase().startsWith('EHLO')) await this.#upstreamStartTls(this.#heloCommand, r);
    }
  }

  /** An error that ends the session: its catalogue reply (421 class), then close. */
  #failSession(err: unknown): void {
    if (this.#socket.destroyed) return;
    if (err instanceof ClientTimeoutError) {
      this.#reply(421, `4.4.2 ${this.#ctx.hostname} Error: timeout exceeded`);
      this.#ctx.log('info', 'client timed out', { session: this.id });
    } else {
      const r = errorReply(err, this.id);
      // Session-ending errors are 421 so the client knows the connection is going away.
      this.#reply(421, r.text);
      this.#ctx.log(r.code === 421 ? 'warn' : 'error', 'session failed', { session: this.id, error: r.detail });
    }
    this.#closing = true;
  }

  /** End both legs; the session (and so a graceful shutdown) waits for the upstream's QUIT. */
  async #finish(): Promise<void> {
    this.#closing = true;
    if (!this.#socket.destroyed) {
      this.#socket.end();
      this.#socket.destroySoon();
    }
    const up = this.#upstream;
    this.#upstream = null;
    if (up) await up.quit();
  }

  // ---- replies to the client ---------------------------------------------------------------

  #reply(code: number, text: string | readonly string[]): void {
    this.#out.push(formatReply(code, text));
  }

  /** Relay an upstream reply, censored (no control bytes or non-ASCII reach the client). */
  #relay(r: Reply): void {
    this.#reply(r.code, r.lines.map(censorText));
  }

  #flush(): void {
    if (this.#out.length === 0 || this.#socket.destroyed) return;
    const bytes = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
    this.#out = [];
    this.#socket.write(bytes);
  }

  /** Flush and wait until the kernel has the bytes, so a reset right after cannot lose them. */
  async #flushed(): Promise<void> {
    if (this.#out.length === 0 || this.#socket.destroyed) return;
    const bytes = Buffer.concat(this.#out);
    this.#out = [];
    await new Promise<void>((resolve) => this.#socket.write(bytes, () => resolve()));
  }

  /**
   * Flush a final reply and give the client a moment to read it before a reset. An RST that
   * arrives while the reply is still unread in the client's receive queue makes Linux report
   * plain end-of-file instead of ECONNRESET; waiting for the client's next bytes (it read the
   * reply and answered, typically QUIT) or RESET_LINGER_MS makes the reset visible as one.
   */
  async #flushedAndRead(): Promise<void> {
    await this.#flushed();
    if (this.#socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#socket.off('data', done);
        this.#socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, RESET_LINGER_MS);
      this.#socket.on('data', done);
      this.#socket.on('close', done);
    });
  }

  #bad(code: number, text: string): void {
    this.#reply(code, text);
    this.#badCommands++;
    if (this.#badCommands >= this.#ctx.limits['max-bad-commands']) {
      this.#reply(421, `4.7.0 ${this.#ctx.hostname} Error: too many errors`);
      this.#ctx.log('warn', 'too many bad commands', { session: this.id, count: this.#badCommands });
      this.#closing = true;
    }
  }

  // ---- relayed commands --------------------------------------------------------------------

  /**
   * Send a command upstream and read its reply, which must be of a class the command allows
   * (RFC 5321 §4.3.2); anything else is a protocol error, never relayed.
   */
  async #forward(line: string, allowed: ReadonlyArray<2 | 3 | 4 | 5>, label = line.split(' ')[0]!): Promise<Reply> {
    this.#send(line);
    return this.#awaitReply(allowed, label);
  }

  #send(line: string): void {
    const up = this.#upstream;
    if (!up) throw new UpstreamLostError('no upstream connection');
    up.write(Buffer.from(`${line}\r\n`, 'latin1'));
  }

  /** Relay MAIL/RCPT now and settle its reply later, in order (RFC 2920 pipelining). */
  #sendAhead(line: string, label: string, apply: (r: Reply) => void): void {
    if (this.#pending.length === 0) this.#upstream?.cork(); // one write for the whole batch
    this.#send(line);
    this.#pending.push({ label, apply });
  }

  async #drainPending(): Promise<void> {
    if (this.#pending.length === 0) return;
    this.#upstream?.uncork();
    while (this.#pending.length) {
      const p = this.#pending[0]!;
      const r = await this.#awaitReply([2, 4, 5], p.label);
      this.#pending.shift();
      p.apply(r);
    }
  }

  async #awaitReply(allowed: ReadonlyArray<2 | 3 | 4 | 5>, label: string): Promise<Reply> {
    const up = this.#upstream;
    if (!up) throw new UpstreamLostError('no upstream connection');
    const r = await up.reply(this.#ctx.timeouts['upstream-reply']);
    const cls = Math.floor(r.code / 100) as 2 | 3 | 4 | 5;
    if (!allowed.includes(cls)) {
      up.reset();
      this.#upstream = null;
      throw new UpstreamProtocolError(`unexpected ${r.code} to ${label}`);
    }
    return r;
  }

  async #relaySimple(cmd: Command): Promise<void> {
    this.#relay(await this.#forward(cmd.raw, [2, 4, 5]));
  }

  async #hello(cmd: Command): Promise<void> {
    if (cmd.arg.trim() === '') {
      this.#bad(501, `5.5.4 Syntax: ${cmd.verb} hostname`);
      return;
    }
    let r = await this.#forward(cmd.raw, [2, 4, 5]);
    if (cmd.verb === 'EHLO' && r.code === 250) r = await this.#upstreamStartTls(cmd.raw, r);
    if (r.code === 250) {
      this.#heloCommand = cmd.raw;
      this.#helo = cmd.arg.trim();
      await this.#dropTransaction(); // RFC 5321 §4.1.4: EHLO/HELO reset the transaction state
    }
    if (cmd.verb === 'EHLO' && r.code === 250) {
      const tls = this.#ctx.clientTls;
      const passthrough = tls.mode === 'passthrough' && tls.passthroughAction === 'allow' && !this.#upstream?.tls;
      const allow = new Set(DEFAULT_EHLO_ALLOW);
      if (passthrough) allow.add('STARTTLS');
      if (this.#ctx.relayAuth) allow.add('AUTH');
      if (this.#trusted) for (const x of ['XCLIENT', 'XFORWARD']) allow.add(x);
      const edit = editEhloReply(r, {
        allow,
        maxMessageBytes: this.#ctx.limits['max-message-size'],
        // BDAT is inspected here and reaches the upstream as DATA: offered whatever it supports.
        // STARTTLS is ours to offer when we terminate TLS (the content stays inspectable).
        add: tls.mode === 'terminate' && !this.#clientTls ? ['STARTTLS', 'CHUNKING'] : ['CHUNKING'],
      });
      this.#relay(edit.reply);
    } else this.#relay(r);
  }

  /**
   * TLS towards the upstream (RFC 3207), decided on its first EHLO reply: when it offers
   * STARTTLS (or `upstream-tls: required`), upgrade, greet again, and use the new reply.
   * Passthrough listeners leave STARTTLS to the client.
   */
  async #upstreamStartTls(ehlo: string, first: Reply): Promise<Reply> {
    const up = this.#upstream!;
    const { mode, options } = this.#ctx.upstreamTls;
    if (mode === 'off' || up.tls || this.#ctx.clientTls.mode === 'passthrough') return first;
    const offered = first.lines.slice(1).some((l) => l.toUpperCase() === 'STARTTLS');
    if (!offered) {
      if (mode === 'required') throw new UpstreamProtocolError('upstream does not offer STARTTLS (upstream-tls: required)');
      return first;
    }
    const go = await up.command('STARTTLS', this.#ctx.timeouts['upstream-reply']);
    if (go.code !== 220) {
      if (mode === 'required') throw new UpstreamProtocolError(`upstream refused STARTTLS with ${go.code}`);
      return first;
    }
    const { injected } = await up.startTls({ ...options, host: this.#ctx.upstreamHost }, this.#ctx.timeouts['upstream-connect']);
    if (injected) this.#ctx.log('warn', 'upstream sent plaintext after STARTTLS; discarded', { session: this.id, replies: injected });
    return this.#forward(ehlo, [2, 4, 5]);
  }

  /** STARTTLS from the client, per the listener's TLS mode (strip, terminate, passthrough). */
  async #starttls(cmd: Command): Promise<void> {
    const tls = this.#ctx.clientTls;
    if (cmd.arg !== '') return this.#bad(501, '5.5.4 Syntax: STARTTLS');
    if (tls.mode === 'strip') return this.#bad(502, '5.5.1 Command not implemented');
    if (this.#clientTls) return this.#bad(503, '5.5.1 Error: TLS already active');
    if (tls.mode === 'passthrough') {
      if (tls.passthroughAction === 'block') {
        this.#ctx.log('info', 'STARTTLS refused: session must stay inspectable', { session: this.id });
        this.#reply(454, '4.7.0 TLS not available: this session must stay inspectable');
        return;
      }
      return this.#passthrough();
    }
    await this.#flushed(); // replies owed before STARTTLS go out in clear, as the client expects
    this.#discardInjected(this.#reader.detach());
    this.#reply(220, '2.0.0 Ready to start TLS');
    await this.#flushed();
    const secure = new TLSSocket(this.#socket, { isServer: true, secureContext: tls.context! });
    secure.on('error', () => {}); // a failed handshake ends the session through the reader
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.#ctx.timeouts['client-idle']);
      secure.once('secure', () => (clearTimeout(timer), resolve(true)));
      secure.once('close', () => (clearTimeout(timer), resolve(false)));
    });
    if (!ok) {
      this.#ctx.log('warn', 'client TLS handshake failed', { session: this.id });
      secure.destroy();
      this.#closing = true;
      return;
    }
    this.#tcp = this.#socket;
    this.#socket = secure;
    this.#reader = new ClientReader(secure, () => this.#flush());
    this.#clientTls = true;
    // RFC 3207 §4.2: everything learned before TLS is forgotten; the client greets again.
    this.#helo = '';
    await this.#dropTransaction();
  }

  /** Plaintext pipelined after STARTTLS (CVE-2011-0411 class): never read as commands. */
  #discardInjected(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#ctx.log('warn', 'plaintext after STARTTLS discarded (command injection)', { session: this.id, bytes: bytes.length });
  }

  /**
   * `tls: passthrough` with `passthrough-action: allow`: STARTTLS goes to the upstream and,
   * on its 220, both connections are joined byte for byte. Nothing after this point can be
   * inspected; the session is logged as such.
   */
  async #passthrough(): Promise<void> {
    const r = await this.#forward('STARTTLS', [2, 4, 5]);
    if (r.code !== 220) return this.#relay(r);
    await this.#flushed();
    this.#discardInjected(this.#reader.detach());
    this.#relay(r);
    await this.#flushed();
    const { socket: upSocket, buffered } = this.#upstream!.detach();
    this.#upstream = null;
    if (buffered) this.#ctx.log('warn', 'upstream sent plaintext after STARTTLS; discarded', { session: this.id, replies: buffered });
    this.#ctx.log('warn', 'STARTTLS passed through: session uninspectable', { session: this.id, client: this.#client });
    this.#safeLog(() =>
      this.#ctx.logs.addTraffic({
        ...this.#traffic({ id: `${this.id}.tls`, mailFrom: '', rcptTo: [], started: Date.now(), bdat: null, bdatFailed: null }, null, {
          rule: '',
          profile: '',
          action: 'allow',
          reason: 'uninspectable: STARTTLS passed through to the upstream (tls: passthrough, passthrough-action: allow)',
          upstreamReply: replyToString(r),
          clientReply: '',
          events: ['TLS_PASSTHROUGH'],
        }),
      }),
    );
    const client = this.#socket;
    client.pipe(upSocket);
    upSocket.pipe(client);
    await new Promise<void>((resolve) => {
      // Either side closing ends the tunnel; a half-closed side gets a moment, then both go.
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        client.destroy();
        upSocket.destroy();
        resolve();
      };
      const halfClosed = (): void => {
        timer ??= setTimeout(finish, PASSTHROUGH_HALF_CLOSE_MS);
      };
      client.once('close', finish);
      upSocket.once('close', finish);
      client.once('end', halfClosed);
      upSocket.once('end', halfClosed);
      upSocket.on('error', finish);
      client.on('error', finish);
    });
    this.#closing = true;
  }

  /**
   * AUTH (RFC 4954) is the upstream's business: the exchange is relayed, continuation lines
   * included, and nothing of it is logged (credentials travel in those lines). Only the user
   * name of PLAIN and LOGIN is kept, once the upstream accepts it (235), for security rules.
   */
  async #auth(cmd: Command): Promise<void> {
    if (!this.#ctx.relayAuth) return this.#bad(502, '5.5.1 Command not implemented');
    if (this.#tx) return this.#bad(503, '5.5.1 Error: AUTH not allowed during a mail transaction');
    const [mechanism = '', initial] = cmd.arg.split(/\s+/);
    const answers: string[] = initial !== undefined && initial !== '=' ? [initial] : [];
    let r = await this.#forward(cmd.raw, [2, 3, 4, 5], 'AUTH');
    while (r.code === 334) {
      this.#relay(r);
      const line = await this.#reader.readLine(this.#ctx.limits['max-command-line'], this.#ctx.timeouts['client-idle']);
      if (line.kind === 'eof') {
        this.#closing = true;
        return;
      }
      // A malformed continuation cancels the exchange, as "*" would (RFC 4954 §4).
      const answer = line.kind === 'line' ? line.line.toString('latin1') : '*';
      answers.push(answer);
      r = await this.#forward(answer, [2, 3, 4, 5], 'AUTH continuation');
    }
    if (r.code === 235) this.#authUser = authUserName(mechanism, answers);
    this.#relay(r);
  }

  /**
   * Waits while a message arrives: each at most client-idle, all together at most
   * timeouts.message (a client sending a byte a minute must not hold a session for days).
   */
  #messageDeadline(): { next(): number } {
    const end = Date.now() + this.#ctx.timeouts.message;
    return {
      next: () => {
        const left = end - Date.now();
        if (left <= 0) throw new ClientTimeoutError(`message not received within ${this.#ctx.timeouts.message} ms`);
        return Math.min(this.#ctx.timeouts['client-idle'], left);
      },
    };
  }

  /** The user name the upstream accepted with AUTH (PLAIN, LOGIN), for rules; null if none. */
  #authUser: string | null = null;

  /** XCLIENT/XFORWARD tell the upstream who the client is: only trusted clients may say so. */
  async #trustedOnly(cmd: Command): Promise<void> {
    if (!this.#trusted) return this.#bad(502, '5.5.1 Command not implemented');
    this.#relay(await this.#forward(cmd.raw, [2, 4, 5]));
  }

  async #mail(cmd: Command): Promise<void> {
    const p = parsePath(cmd.arg, 'FROM');
    const size = p.ok ? p.path.params.get('SIZE') : undefined;
    const body = p.ok ? p.path.params.get('BODY') : undefined;
    const max = this.#ctx.limits['max-message-size'];
    if (!p.ok || (typeof size === 'string' && Number(size) > max) || (typeof body === 'string' && body.toUpperCase() === 'BINARYMIME')) {
      await this.#drainPending(); // a local reply must not overtake relayed ones
      if (!p.ok) this.#bad(p.reply.code, `${p.reply.enhanced} ${p.reply.text}`);
      else if (typeof size === 'string' && Number(size) > max) this.#reply(552, `5.3.4 Message size exceeds fixed limit of ${max} bytes`);
      else this.#reply(555, '5.5.4 BODY=BINARYMIME not supported');
      return;
    }
    // log-database.on-failure: tempfail — no transaction the log database cannot account for.
    if (this.#ctx.logsUnavailable?.()) {
      await this.#drainPending();
      this.#reply(451, '4.3.0 Logging temporarily unavailable, try again later');
      this.#ctx.log('warn', 'transaction refused: log database cannot be written (log-database.on-failure: tempfail)', { session: this.id, client: this.#client });
      return;
    }
    const mailFrom = p.path.address;
    this.#sendAhead(cmd.raw, 'MAIL', (r) => {
      if (r.code >= 200 && r.code < 300) {
        this.#transactions++;
        this.#tx = {
          id: `${this.id}.${this.#transactions}`,
          mailFrom,
          rcptTo: [],
          started: Date.now(),
          bdat: null,
          bdatFailed: null,
        };
      }
      this.#relay(r);
    });
  }

  async #rcpt(cmd: Command): Promise<void> {
    const p = parsePath(cmd.arg, 'TO');
    const max = this.#ctx.limits['max-recipients'];
    const pendingRcpts = this.#pending.filter((x) => x.label === 'RCPT').length;
    if (!p.ok || (this.#tx?.rcptTo.length ?? 0) + pendingRcpts >= max) {
      await this.#drainPending(); // settle what is in flight, then judge with the real count
      if (!p.ok) return this.#bad(p.reply.code, `${p.reply.enhanced} ${p.reply.text}`);
      if (this.#tx && this.#tx.rcptTo.length >= max) return this.#reply(452, '4.5.3 Error: too many recipients');
    }
    const address = p.path.address;
    this.#sendAhead(cmd.raw, 'RCPT', (r) => {
      // The transaction is the one current when the reply is applied (its MAIL was applied first).
      if (this.#tx && r.code >= 200 && r.code < 300) this.#tx.rcptTo.push(address);
      this.#relay(r);
    });
  }

  async #rset(cmd: Command): Promise<void> {
    if (cmd.arg !== '') {
      this.#bad(501, '5.5.4 Syntax: RSET');
      return;
    }
    await this.#dropTransaction();
    this.#relay(await this.#forward('RSET', [2, 4, 5]));
  }

  /** Forget the transaction; a half-received BDAT message is discarded, never delivered. */
  async #dropTransaction(): Promise<void> {
    const tx = this.#tx;
    this.#tx = null;
    if (tx?.bdat) await this.#discardMessage(tx.bdat.msg);
  }

  async #quit(_cmd: Command): Promise<void> {
    const up = this.#upstream;
    this.#upstream = null;
    let r: Reply | null = null;
    if (up?.alive) {
      r = await up.command('QUIT', 2000).catch(() => null);
      up.close();
    }
    this.#reply(221, r && r.code === 221 ? r.lines.map(censorText) : [`2.0.0 ${this.#ctx.hostname} Bye`]);
    this.#closing = true;
  }

  // ---- DATA, BDAT and the end-of-data gate -------------------------------------------------

  async #data(cmd: Command): Promise<void> {
    const tx = this.#tx;
    if (cmd.arg !== '') return this.#bad(501, '5.5.4 Syntax: DATA');
    if (!tx) return this.#bad(503, '5.5.1 Error: need MAIL command');
    if (tx.rcptTo.length === 0) return this.#bad(554, '5.5.1 Error: no valid recipients');
    if (tx.bdat) return this.#bad(503, '5.5.1 Error: DATA after BDAT');
    this.#tx = null; // whatever happens now, this transaction ends with this DATA
    let msg: IncomingMessage;
    if (this.#ctx.forwarding === 'cut-through') {
      // DATA mode starts on the upstream's 354, not on the client's word.
      let go: Reply;
      try {
        go = await this.#forward('DATA', [3, 4, 5]);
      } catch (err) {
        return this.#transactionFailed(tx, err);
      }
      this.#relay(go);
      if (go.code !== 354) return;
      msg = this.#incoming(tx);
    } else {
      // Our own 354: MAIL and at least one RCPT were accepted upstream.
      this.#reply(354, 'End data with <CR><LF>.<CR><LF>');
      msg = this.#incoming(tx);
    }
    try {
      const deadline = this.#messageDeadline();
      while (!msg.ended) {
        const chunk = await this.#reader.readChunk(deadline.next());
        if (chunk === null) break;
        const consumed = await msg.push(chunk);
        if (consumed < chunk.length) this.#reader.unshift(chunk.subarray(consumed));
      }
    } catch (err) {
      await this.#discardMessage(msg);
      throw err; // client timeout: the session ends with 421, the upstream never completes
    }
    await this.#gate(tx, msg);
  }

  /**
   * BDAT (RFC 3030). Chunks are read by their exact length, dot-stuffed into one DATA stream
   * and framed by the same strict reader as DATA, so inspection and the gate are identical;
   * the upstream receives the message as DATA (no CHUNKING needed there). `BDAT … LAST` is
   * the held terminator. A failed transaction still has its chunks read and discarded, each
   * answered with the failure (RFC 3030 §2).
   */
  async #bdat(cmd: Command): Promise<void> {
    const m = /^(\d{1,15})( +LAST)?\s*$/i.exec(cmd.arg);
    if (!m) {
      this.#reply(501, '5.5.4 Syntax: BDAT size [LAST]; closing');
      this.#closing = true; // the chunk length is unknown: the stream cannot be read further
      return;
    }
    const size = Number(m[1]);
    const last = m[2] !== undefined;
    const tx = this.#tx;
    const refusal = !tx
      ? { code: 503, text: '5.5.1 Error: need MAIL command' }
      : tx.rcptTo.length === 0
        ? { code: 554, text: '5.5.1 Error: no valid recipients' }
        : tx.bdatFailed;
    if (refusal) {
      if (!(await this.#reader.discard(size, this.#ctx.timeouts['client-idle']))) return;
      if (tx && last) this.#tx = null;
      return this.#bad(refusal.code, refusal.text);
    }
    const t = tx!;
    if (!t.bdat) {
      if (this.#ctx.forwarding === 'cut-through') {
        let go: Reply;
        try {
          go = await this.#forward('DATA', [3, 4, 5]);
        } catch (err) {
          this.#tx = null;
          await this.#reader.discard(size, this.#ctx.timeouts['client-idle']);
          return this.#transactionFailed(t, err);
        }
        if (go.code !== 354) {
          t.bdatFailed = { code: go.code, text: go.lines.map(censorText).join(' ') };
          if (!(await this.#reader.discard(size, this.#ctx.timeouts['client-idle']))) return;
          if (last) this.#tx = null;
          return this.#relay(go);
        }
      }
      t.bdat = { msg: this.#incoming(t), stuffer: new DotStuffer() };
    }
    const { msg, stuffer } = t.bdat;
    let left = size;
    try {
      const deadline = this.#messageDeadline();
      while (left > 0) {
        const chunk = await this.#reader.readChunk(deadline.next());
        if (chunk === null) {
          this.#tx = null;
          return this.#gate(t, msg);
        }
        const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
        if (chunk.length > left) this.#reader.unshift(chunk.subarray(left));
        left -= piece.length;
        await msg.push(stuffer.stuff(piece));
      }
    } catch (err) {
      this.#tx = null;
      await this.#discardMessage(msg);
      throw err;
    }
    if (!last) {
      this.#reply(250, `2.0.0 Ok: ${size} octets received`);
      return;
    }
    this.#tx = null;
    await msg.push(stuffer.terminator());
    await this.#gate(t, msg);
  }

  #incoming(tx: Transaction): IncomingMessage {
    const { limits, inspector, spoolDir } = this.#ctx;
    const scan = inspector.begin();
    if (this.#ctx.forwarding === 'cut-through') {
      const up = this.#upstream!;
      // The bytes go upstream as they come; a quarantining rule needs its own copy of them.
      const copy = this.#ctx.quarantine && this.#ctx.policy.mayQuarantine(this.#facts(tx)) ? new Spool(spoolDir, limits['spool-memory']) : null;
      const sink = copy
        ? async (wire: Buffer) => {
            // A copy that cannot be written costs the quarantine copy, never the message.
            if (!this.#brokenCopies.has(copy)) await copy.write(wire).catch(() => this.#brokenCopies.add(copy));
            await up.writeData(wire, this.#ctx.timeouts['upstream-reply']);
          }
        : (wire: Buffer) => up.writeData(wire, this.#ctx.timeouts['upstream-reply']);
      return new IncomingMessage(scan, sink, limits['max-message-size'], limits['max-line-length'], null, copy);
    }
    const spool = new Spool(spoolDir, limits['spool-memory']);
    return new IncomingMessage(scan, (wire) => spool.write(wire), limits['max-message-size'], limits['max-line-length'], spool);
  }

  /** A message that will never pass the gate: release its spool; cut-through resets the upstream. */
  async #discardMessage(msg: IncomingMessage): Promise<void> {
    await msg.spool?.dispose();
    if (this.#ctx.forwarding === 'cut-through' && this.#upstream) {
      this.#upstream.reset();
      this.#upstream = null;
    }
  }

  /**
   * The end-of-data gate: nothing reaches the upstream's end of data without a verdict that
   * allows it. Refusals (wire anomalies, size), a vanished client and sink failures are
   * settled first; then the policy decides and enforcement carries it out.
   */
  async #gate(tx: Transaction, msg: IncomingMessage): Promise<void> {
    const cutThrough = this.#ctx.forwarding === 'cut-through';
    try {
      if (!msg.ended) return await this.#clientVanished(tx, msg, cutThrough ? 'reset' : 'quit');
      const refused = this.#refusal(msg);
      if (refused) {
        await this.#abandonUpstream(cutThrough ? 'reset' : 'rset');
        return await this.#finishRefused(tx, msg, refused);
      }
      if (msg.sinkError) {
        // Spool full, or the upstream died mid-stream: the message cannot be complete anywhere.
        if (cutThrough) await this.#abandonUpstream('reset');
        return await this.#transactionFailed(tx, msg.sinkError);
      }
      const { decision, result } = await this.#verdict(tx, msg);
      if (decision.quarantine) await this.#quarantine(tx, msg, decision);
      const enf = enforcementFor(decision, this.#ctx.forwarding, tx.id);
      if (enf.upstream !== 'deliver') return await this.#enforce(tx, msg, decision, result, enf);
      if (msg.spool) {
        // Store-and-forward, allowed: now the upstream gets DATA, the exact bytes, the terminator.
        const go = await this.#forward('DATA', [3, 4, 5]);
        if (go.code !== 354) {
          this.#relay(go);
          return this.#logTransaction(tx, msg, decision, result, replyToString(go), `${go.code}`);
        }
        const up = this.#upstream!;
        if (!msg.spool.onDisk) {
          // A message held in memory goes out with its terminator in one write (one system
          // call, one segment for a small message).
          const chunks: Buffer[] = [];
          for await (const chunk of msg.spool.read()) chunks.push(chunk);
          await up.writeData(Buffer.concat([...chunks, TERMINATOR]), this.#ctx.timeouts['upstream-reply']);
          return await this.#awaitFinalReply(tx, msg, decision, result);
        }
        for await (const chunk of msg.spool.read()) await up.writeData(chunk, this.#ctx.timeouts['upstream-reply']);
      }
      await this.#releaseTerminator(tx, msg, decision, result);
    } catch (err) {
      await this.#transactionFailed(tx, err);
    } finally {
      await msg.spool?.dispose();
      await msg.copy?.dispose();
    }
  }

  /** Cut-through quarantine copies that failed to write (their message went on regardless). */
  readonly #brokenCopies = new WeakSet<Spool>();

  /** Keep a copy of a blocked/rejected message; a failure is logged, never changes the verdict. */
  async #quarantine(tx: Transaction, msg: IncomingMessage, d: Decision): Promise<void> {
    const store = this.#ctx.quarantine;
    const bytes = msg.spool ?? msg.copy;
    if (!store || !bytes) return;
    try {
      if (msg.copy && this.#brokenCopies.has(msg.copy)) throw new Error('the copy of the message could not be written');
      const head = msg.head.toString('latin1');
      const end = head.search(/\r?\n\r?\n/);
      const subject = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(end === -1 ? head : head.slice(0, end))?.[1] ?? '';
      await store.put(
        {
          id: tx.id, time: new Date().toISOString(), listener: this.#ctx.listener, client: this.#client,
          upstream: `${this.#ctx.upstreamHost}:${this.#ctx.upstreamPort}`, mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo],
          subject: subject.replace(/\r?\n[ \t]/g, ' ').slice(0, 998), rule: d.rule, action: d.action, reason: d.reason, threat: d.threat,
        },
        bytes.read(),
      );
      this.#ctx.log('info', 'message quarantined', { session: this.id, transaction: tx.id });
    } catch (err) {
      this.#ctx.log('error', 'quarantine failed', { session: this.id, transaction: tx.id, error: describeError(err) });
    }
  }

  /** A message the wire rules refuse before any verdict (smuggling-class anomaly, size). */
  #refusal(rx: IncomingMessage): { code: number; text: string; event: AnomalyEvent } | null {
    if (rx.anomaly) {
      const r = DATA_ANOMALY_REPLY[rx.anomaly]!;
      return { ...r, event: { name: rx.anomaly, where: 'message' } };
    }
    if (rx.tooBig) {
      const max = this.#ctx.limits['max-message-size'];
      return {
        code: 552,
        text: `5.3.4 Message size exceeds fixed limit of ${max} bytes`,
        event: { name: 'MESSAGE_TOO_BIG', where: 'message', detail: `limit ${max}` },
      };
    }
    return null;
  }

  async #finishRefused(tx: Transaction, rx: IncomingMessage, refused: { code: number; text: string; event: AnomalyEvent }): Promise<void> {
    this.#reply(refused.code, refused.text);
    this.#ctx.log('warn', 'message refused', { session: this.id, transaction: tx.id, anomaly: refused.event.name });
    const { rule, profileName } = this.#ctx.policy.ruleFor(this.#facts(tx));
    this.#writeTraffic(tx, rx, {
      rule,
      profile: profileName,
      action: 'reject',
      reason: `refused: ${refused.event.name}`,
      upstreamReply: '',
      clientReply: `${refused.code} ${refused.text}`,
      events: [refused.event.name],
    });
  }

  async #verdict(tx: Transaction, rx: IncomingMessage): Promise<{ decision: Decision; result: ScanResult | null }> {
    let outcome: ScanOutcome;
    let result: ScanResult | null = null;
    try {
      result = await rx.scan.end(this.#ctx.timeouts.scan);
      outcome = { ok: true, findings: result.findings, events: result.events, files: result.files };
    } catch (err) {
      this.#ctx.log('error', 'scan failed', { session: this.id, transaction: tx.id, error: describeError(err) });
      outcome = { ok: false, error: describeError(err), events: [] };
    }
    return { decision: this.#ctx.policy.decide(this.#facts(tx), outcome), result };
  }

  /** Allowed: send the terminator, relay the upstream's final reply (a 2xx only from it). */
  async #releaseTerminator(tx: Transaction, rx: IncomingMessage, decision: Decision, result: ScanResult | null): Promise<void> {
    const up = this.#upstream;
    if (!up) throw new UpstreamLostError('no upstream connection');
    up.write(TERMINATOR);
    await this.#awaitFinalReply(tx, rx, decision, result);
  }

  /** The upstream's reply to end of data, relayed: the only source of a 2xx for a message. */
  async #awaitFinalReply(tx: Transaction, rx: IncomingMessage, decision: Decision, result: ScanResult | null): Promise<void> {
    const up = this.#upstream;
    if (!up) throw new UpstreamLostError('no upstream connection');
    const final = await up.reply(this.#ctx.timeouts['upstream-reply']);
    if (final.code >= 300 && final.code < 400) {
      up.reset();
      this.#upstream = null;
      throw new UpstreamProtocolError(`unexpected ${final.code} to end of data`);
    }
    this.#relay(final);
    this.#logTransaction(tx, rx, decision, result, replyToString(final), replyToString(final));
  }

  /** Carry out a non-delivering decision (DESIGN.md action table, via enforce.ts). */
  async #enforce(tx: Transaction, rx: IncomingMessage, decision: Decision, result: ScanResult | null, enf: Enforcement): Promise<void> {
    if (enf.reply) this.#reply(enf.reply.code, enf.reply.text);
    this.#logTransaction(tx, rx, decision, result, '', enf.reply ? `${enf.reply.code} ${enf.reply.text}` : '');
    this.#ctx.log('info', 'message stopped', {
      session: this.id,
      transaction: tx.id,
      action: decision.action,
      rule: decision.rule,
      reason: decision.reason,
    });
    if (enf.client === 'continue') {
      await this.#abandonUpstream(enf.upstream === 'reset' ? 'reset' : 'rset');
      return;
    }
    // The session ends: upstream first (RSET/QUIT or RST), then the client.
    const up = this.#upstream;
    this.#upstream = null;
    if (up) {
      if (enf.upstream === 'reset') up.reset();
      else void up.command('RSET', 2000).then(() => up.quit(), () => up.close());
    }
    this.#closing = true;
    if (enf.client === 'reset') {
      if (enf.reply) await this.#flushedAndRead();
      resetConnection(this.#socket, this.#tcp);
    } else {
      this.#out = []; // drop: silence
      this.#socket.destroy();
    }
  }

  /**
   * End the upstream transaction and keep the session usable: RSET when the server has not
   * seen the message (store-and-forward), reset and reconnect when it has (cut-through).
   */
  async #abandonUpstream(how: 'rset' | 'reset'): Promise<void> {
    const up = this.#upstream;
    if (!up) return;
    if (how === 'rset' && up.alive) {
      try {
        const r = await up.command('RSET', this.#ctx.timeouts['upstream-reply']);
        if (r.code === 250) return;
      } catch {
        // An upstream that cannot RSET is replaced below, like a reset one.
      }
    }
    up.reset();
    this.#upstream = null; // reconnected lazily before the next command
  }

  async #clientVanished(tx: Transaction, rx: IncomingMessage, how: 'quit' | 'reset'): Promise<void> {
    const up = this.#upstream;
    this.#upstream = null;
    if (up) {
      if (how === 'reset') up.reset();
      else void up.quit();
    }
    this.#closing = true;
    this.#ctx.log('warn', 'client disconnected during DATA', { session: this.id, transaction: tx.id, bytes: rx.size });
    const { rule, profileName } = this.#ctx.policy.ruleFor(this.#facts(tx));
    this.#writeTraffic(tx, rx, {
      rule,
      profile: profileName,
      action: 'none',
      reason: 'client disconnected before end of data',
      upstreamReply: '',
      clientReply: '',
      events: [],
    });
  }

  /** Any failure inside a transaction: the catalogue's 4xx with the log id, never a 2xx. */
  async #transactionFailed(tx: Transaction, err: unknown): Promise<void> {
    const r = errorReply(err, tx.id);
    this.#ctx.log('error', 'transaction failed', { session: this.id, transaction: tx.id, error: r.detail });
    const code = r.code >= 500 ? r.code : r.code === 421 ? 451 : r.code;
    this.#reply(code, r.text);
    if (this.#upstream && !this.#upstream.alive) this.#upstream = null;
    if (this.#upstream) await this.#abandonUpstream(this.#ctx.forwarding === 'cut-through' ? 'reset' : 'rset');
    const { rule, profileName } = this.#ctx.policy.ruleFor(this.#facts(tx));
    this.#safeLog(() =>
      this.#ctx.logs.addTraffic(
        this.#traffic(tx, null, {
          rule,
          profile: profileName,
          action: 'tempfail',
          reason: `error: ${r.detail}`,
          upstreamReply: '',
          clientReply: `${code} ${r.text}`,
          events: [],
        }),
      ),
    );
  }

  // ---- logs --------------------------------------------------------------------------------

  #facts(tx: Transaction): TransactionFacts {
    return {
      listener: this.#ctx.listener,
      clientAddress: this.clientAddress,
      mailFrom: tx.mailFrom,
      rcptTo: tx.rcptTo,
      serverAddress: this.#ctx.upstreamHost,
      user: this.#authUser,
      direction: this.#ctx.direction ?? '',
    };
  }

  #logTransaction(tx: Transaction, rx: IncomingMessage, d: Decision, result: ScanResult | null, upstreamReply: string, clientReply: string): void {
    this.#writeTraffic(tx, rx, {
      rule: d.rule,
      profile: d.profile,
      action: d.action,
      reason: d.reason,
      upstreamReply,
      clientReply,
      events: (result?.events ?? []).map((e) => e.name),
    });
    // Every engine finding (data-filtering counts are summed into their verdict instead), and
    // every verdict made for an event, a blocked file or a DLP score.
    // Under `allow` a finding is silent (the firewall model: allow passes quietly, alert logs);
    // the traffic record still names the rule.
    const logged = new Set<Finding>((result?.findings ?? []).filter((f) => f.engine !== DLP_ENGINE));
    for (const v of d.verdicts) logged.add(v.finding);
    for (const f of [...logged]) {
      const mine = d.verdicts.filter((v) => v.finding === f || (v.finding.threat === f.threat && v.finding.file.path === f.file.path));
      if (mine.length > 0 && mine.every((v) => v.action === 'allow')) logged.delete(f);
    }
    for (const f of logged) this.#safeLog(() => this.#ctx.logs.addThreat(this.#threat(tx, d, f)));
    const { messageId } = headerFacts(rx.head);
    const delivered = upstreamReply.startsWith('2');
    const verdicts = this.#ctx.verdicts;
    if (verdicts && result && result.files.length > 0) {
      const pending = new Set(result.findings.filter((f) => f.threat.startsWith(PENDING_THREAT_PREFIX)).map((f) => f.file.sha256));
      const judged = this.#ctx.judged ?? (() => true);
      const files = result.files.filter((f) => f.size > 0 && f.path !== RAW_MESSAGE_PATH && judged(f)).map((f) => ({ sha256: f.sha256, path: f.path, pending: pending.has(f.sha256) }));
      const sighting = { time: new Date().toISOString(), transactionId: tx.id, messageId, mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo], action: d.action, delivered };
      this.#safeLog(() => verdicts.sighted(files, sighting));
    }
    // Delivered with an analysis still running: a later malicious verdict names this message.
    if (this.#ctx.retro && delivered) {
      for (const f of result?.findings ?? []) {
        if (!f.threat.startsWith(PENDING_THREAT_PREFIX)) continue;
        this.#ctx.retro.delivered(f.file.sha256, {
          sessionId: this.id, transactionId: tx.id, listener: this.#ctx.listener, client: this.#client,
          server: `${this.#ctx.upstreamHost}:${this.#ctx.upstreamPort}`, mailFrom: tx.mailFrom, rcptTo: [...tx.rcptTo],
          messageId, rule: d.rule, profile: d.profile, time: new Date().toISOString(),
        });
      }
    }
  }

  #writeTraffic(tx: Transaction, rx: IncomingMessage, fields: Outcome): void {
    this.#safeLog(() => this.#ctx.logs.addTraffic(this.#traffic(tx, rx, fields)));
  }

  #sessionFacts(): SessionFacts {
    return {
      sessionId: this.id,
      listener: this.#ctx.listener,
      client: this.#client,
      server: `${this.#ctx.upstreamHost}:${this.#ctx.upstreamPort}`,
      forwarding: this.#ctx.forwarding,
    };
  }

  #traffic(tx: Transaction, rx: IncomingMessage | null, fields: Outcome): TrafficRecord {
    return trafficRecord(this.#sessionFacts(), this.#helo, tx, rx, fields);
  }

  #threat(tx: Transaction, d: Decision, f: Finding): ThreatRecord {
    return threatRecord(this.#sessionFacts(), tx, d, f);
  }

  /** A failing log store must not stop mail or crash the process: report it and go on. */
  #safeLog(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.#ctx.log('error', 'log store write failed', { session: this.id, error: describeError(err) });
    }
  }
}

/** The authentication identity of an accepted PLAIN or LOGIN exchange (RFC 4616), never the password. */
function authUserName(mechanism: string, answers: readonly string[]): string | null {
  const decode = (b64: string | undefined): string | null => (b64 === undefined ? null : Buffer.from(b64, 'base64').toString('utf8'));
  const m = mechanism.toUpperCase();
  if (m === 'PLAIN') {
    const parts = decode(answers[0])?.split('\0');
    return parts && parts.length === 3 ? (parts[1] || parts[0] || null) : null;
  }
  if (m === 'LOGIN') return decode(answers[0])?.slice(0, 256) || null;
  return null;
}
