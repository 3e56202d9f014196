/**
 * A session: one client connection paired with one upstream connection, relaying the SMTP
 * conversation command by command and holding every message at the end-of-data gate until
 * the policy has a verdict. This file is the loop: read a command, settle what the command
 * table (commands.ts) says must be settled first, ask admit() whether it may run in the
 * current state, run its handler. The state (SessionState) changes in one method, #enter.
 *
 * Contract: every command is read whole (CRLF only) and answered locally or relayed, the
 * upstream's reply checked for its class and censored; a message gets a 2xx only when the
 * upstream accepted exactly its bytes; the terminator reaches the upstream only after an
 * allowing verdict (gate.ts); pipelined replies leave in one write per batch.
 * It never decides (policy does), phrases a reply (enforce.ts) or writes a record (journal.ts).
 */

import type { Socket } from 'node:net';
import { ClientTimeoutError, UpstreamLostError } from '../errors.ts';
import type { TransactionFacts } from '../policy/rules.ts';
import { type Command, parseCommand, parsePath } from '../smtp/command.ts';
import { editEhloReply } from '../smtp/ehlo.ts';
import { censorText, replyToString } from '../smtp/reply.ts';
import { relayAuth } from './auth-relay.ts';
import { ClientLeg } from './client-leg.ts';
import { type Admission, admit, COMMANDS, ehloEdit, mailRefusal, type SessionState, type SessionView } from './commands.ts';
import { COMMAND_ANOMALY_REPLY, type LocalReply, REPLY, sessionErrorReply } from './enforce.ts';
import { CutThrough } from './forwarding/cut-through.ts';
import { StoreAndForward } from './forwarding/store-and-forward.ts';
import type { ForwardingStrategy } from './forwarding/strategy.ts';
import { Gate } from './gate.ts';
import type { IncomingMessage } from './incoming.ts';
import { Journal } from './journal.ts';
import { ruleFacts, type SessionContext, type SessionSnapshot } from './session-context.ts';
import { startTls } from './starttls.ts';
import { newSessionId } from './transaction-log.ts';
import { newTransaction, receiveChunk, receiveData, startBdat, type Transaction } from './transaction.ts';
import { UpstreamLeg } from './upstream-leg.ts';
import { connectAsClient } from './original-dst.ts';
import { maskAuth, type Transcript, transcript } from './transcript.ts';
import { SessionCapture } from './capture.ts';


export class Session {
  /** 16-char base32 id, in every log line and record of this session. */
  readonly id = newSessionId();
  readonly #ctx: SessionContext;
  readonly #client: ClientLeg;
  readonly #upstream: UpstreamLeg;
  readonly #forwarding: ForwardingStrategy;
  readonly #journal: Journal;
  readonly #gate: Gate;
  /** The client may send XCLIENT/XFORWARD. */
  readonly #trusted: boolean;
  #state: SessionState = 'greeting';
  #tx: Transaction | null = null;
  #helo = '';
  /** The user name the upstream accepted with AUTH (PLAIN, LOGIN), for rules; null if none. */
  #authUser: string | null = null;
  #transactions = 0;
  /** The message arriving now (DATA, or BDAT from the first chunk to LAST). */
  #receiving: IncomingMessage | null = null;
  #badCommands = 0;
  readonly #transcript: Transcript | null;
  /** Both legs' bytes, kept when the session has a threat (or every session: capture.when all). */
  readonly #capture: SessionCapture | null;

  constructor(socket: Socket, ctx: SessionContext) {
    this.#ctx = ctx;
    this.#capture = ctx.capture ? new SessionCapture(ctx.capture.maxBytes) : null;
    this.#client = new ClientLeg(socket, this.#capture, ctx.peer ?? null);
    this.#trusted = ctx.isTrusted(this.#client.address);
    const { upstreamHost: host, upstreamPort: port, limits, spoolDir } = ctx;
    const clientPassthrough = ctx.clientTls.mode === 'passthrough';
    const reuse = ctx.upstreamPool ? { pool: ctx.upstreamPool, hostname: ctx.hostname, xforward: ctx.upstreamXforward ?? true } : null;
    const client = (): { address: string; helo: string } => ({ address: this.#client.address, helo: this.#helo });
    // debug-peers: a transcript of both legs for listed client or upstream addresses only.
    const debug = ctx.debugPeer && (ctx.debugPeer(this.#client.address) || ctx.debugPeer(host)) ? transcript(ctx.log, this.id) : null;
    this.#client.transcript = debug;
    this.#transcript = debug;
    const openSocket = ctx.connectAsClient ? () => connectAsClient(this.#client.address, host, port) : undefined;
    this.#upstream = new UpstreamLeg({ host, port, timeouts: ctx.timeouts, tls: ctx.upstreamTls, clientPassthrough, log: ctx.log, sessionId: this.id, reuse, client, transcript: debug, openSocket, capture: this.#capture });
    // The forwarding mode is chosen here, once: no other line of the session asks for it.
    this.#forwarding = ctx.forwarding === 'cut-through' ? new CutThrough(this.#upstream, limits, spoolDir) : new StoreAndForward(this.#upstream, limits, spoolDir);
    const facts = { sessionId: this.id, listener: ctx.listener, client: this.#client.label, server: this.#upstream.target, forwarding: ctx.forwarding };
    this.#journal = new Journal(ctx, facts, () => this.#helo, this.#capture);
    // The fields the gate reads, not `{ ...ctx, sessionId }`: a copy of the whole context with a
    // property after the spread took V8's slow path, ~10 µs a session.
    const gateCtx = { sessionId: this.id, listener: ctx.listener, limits: ctx.limits, timeouts: ctx.timeouts, policy: ctx.policy, quarantine: ctx.quarantine ?? null, log: ctx.log };
    this.#gate = new Gate(gateCtx, this.#client, this.#upstream, this.#forwarding, this.#journal, (tx) => this.#facts(tx));
  }

  get clientAddress(): string {
    return this.#client.address;
  }

  /** What the session is doing, for status views and tests that wait for a state. */
  snapshot(): SessionSnapshot {
    return { id: this.id, client: this.#client.label, state: this.#state, messageBytes: this.#receiving?.size ?? 0 };
  }

  /** Run the session to its end; never rejects (every failure is answered and logged). */
  async run(): Promise<void> {
    const { limits, timeouts } = this.#ctx;
    try {
      const greeting = await this.#upstream.connect();
      this.#client.relay(greeting);
      this.#enter(greeting.code === 220 ? 'ready' : 'closing');
      while (this.#state !== 'closing') {
        // Envelope commands relayed ahead are settled before the session waits for the client.
        if (this.#upstream.pending() && !this.#client.reader.hasLine()) await this.#upstream.settle();
        // Under stress (listener.ts) an idle client gets the short timeout, as Postfix's smtpd does.
        const idle = this.#ctx.stressed?.() ? timeouts['stress-client-idle'] : timeouts['client-idle'];
        this.#waitingSince = Date.now();
        let r: Awaited<ReturnType<ClientLeg['reader']['readLine']>>;
        try {
          r = await this.#client.reader.readLine(limits['max-command-line'], idle);
        } finally {
          this.#waitingSince = null; // no extra promise per command (a .finally() would make one)
        }
        if (r.kind === 'eof') break;
        if (this.#transcript) this.#transcript('client>', r.kind === 'line' ? transcribed(r.line) : `(${r.kind} line)`);
        if (r.kind === 'bad' || r.kind === 'overflow') {
          await this.#upstream.settle();
          const anomaly = r.kind === 'bad' ? r.anomaly : 'LINE_TOO_LONG';
          this.#ctx.log('warn', 'command refused', { session: this.id, anomaly });
          this.#bad(COMMAND_ANOMALY_REPLY[anomaly]!);
          continue;
        }
        if (r.kind === 'line') await this.#command(parseCommand(r.line));
      }
    } catch (err) {
      this.#failSession(err);
    } finally {
      this.#enter('closing');
      this.#client.flush();
      this.#client.end();
      await this.#upstream.close();
      this.#keepCapture();
      this.#capture?.release();
    }
  }

  /** The capture goes to the store when it is wanted; a failure to store it is logged, not fatal. */
  #keepCapture(): void {
    const want = this.#ctx.capture;
    if (!want || !this.#capture || (want.when === 'threats' && !this.#capture.threat)) return;
    try {
      want.store.put(this.id, this.#ctx.listener, this.#capture.snapshot());
    } catch (err) {
      this.#ctx.log('error', 'packet capture could not be stored', { session: this.id, error: (err as Error).message });
    }
  }

  /**
   * How long the session has waited for the client's next command, when it may be closed to
   * make room under stress: waiting (nothing of ours pending) and no transaction open. Null
   * otherwise — a session in a transaction is never cut for room.
   */
  idleFor(now: number): number | null {
    if (this.#waitingSince === null || this.#state !== 'ready' || this.#evicted) return null;
    return now - this.#waitingSince;
  }

  /** Close an idle session to make room: 421 4.7.0, then the connection (the upstream gets QUIT). */
  evict(): boolean {
    if (this.idleFor(Date.now()) === null) return false;
    this.#evicted = true;
    this.#client.send(REPLY.evicted(this.#ctx.hostname));
    this.#client.flush();
    this.#ctx.log('info', 'idle session closed to make room (stress)', { session: this.id, client: this.#client.label });
    this.#client.socket.destroySoon(); // the reader sees the close; the loop ends as on EOF
    return true;
  }

  #waitingSince: number | null = null;
  #evicted = false;

  /** The one place the state changes; `closing` is final. */
  #enter(state: SessionState): void {
    if (this.#state !== 'closing') this.#state = state;
  }

  #view(): SessionView {
    const ctx = this.#ctx;
    return { state: this.#state, bdatFailed: this.#tx?.bdatFailed ?? null, relayAuth: ctx.relayAuth, trusted: this.#trusted, tls: ctx.clientTls, clientTls: this.#client.tls };
  }

  async #command(cmd: Command): Promise<void> {
    const spec = COMMANDS[cmd.verb];
    // RFC 2920 §3.1: only pipelinable commands are relayed ahead; any other waits for the
    // replies owed, so replies and state changes stay in command order.
    if (!spec?.pipelinable) await this.#upstream.settle();
    if (this.#state === 'bdat' && cmd.verb !== 'BDAT' && this.#forwarding.inDataDuringBdat) {
      // The upstream is inside DATA for the chunks so far: no command may reach it now.
      await this.#dropTransaction();
    }
    if (!(await this.#upstreamReady(spec?.usesUpstream ?? false))) return;
    const a = admit(cmd.verb, cmd.arg, this.#view());
    if (!a.ok) return this.#refused(a);
    switch (cmd.verb) {
      case 'HELO':
      case 'EHLO':
        return this.#hello(cmd);
      case 'MAIL':
        return this.#mail(cmd);
      case 'RCPT':
        return this.#rcpt(cmd);
      case 'DATA':
        return this.#data();
      case 'BDAT':
        return this.#bdat(a.bdat!.size, a.bdat!.last);
      case 'RSET':
        await this.#dropTransaction();
        return this.#client.relay(await this.#upstream.forward('RSET', [2, 4, 5]));
      case 'QUIT':
        return this.#quit();
      case 'STARTTLS':
        return this.#starttls();
      case 'AUTH':
        return this.#auth(cmd);
      case 'VRFY':
      case 'EXPN':
        return this.#addressProbe(cmd);
      default: // NOOP, HELP; XCLIENT and XFORWARD from trusted clients
        if (cmd.verb === 'XCLIENT' || cmd.verb === 'XFORWARD') this.#upstream.taint(); // they change the upstream session
        return this.#client.relay(await this.#upstream.forward(cmd.raw, [2, 4, 5]));
    }
  }

  /**
   * VRFY and EXPN ask the receiving server about its addresses (harvesting uses them):
   * relayed, or refused with 502 (`listeners[].vrfy: refuse`, Postfix's disable_vrfy_command);
   * either way logged with what the client asked and was told.
   */
  async #addressProbe(cmd: Command): Promise<void> {
    let reply: string;
    if (this.#ctx.vrfy === 'refuse') {
      const refusal = REPLY.addressProbeDisabled(cmd.verb);
      this.#client.send(refusal);
      reply = `${refusal.code} ${refusal.text}`;
    } else {
      const r = await this.#upstream.forward(cmd.raw, [2, 4, 5]);
      this.#client.relay(r);
      reply = replyToString(r);
    }
    this.#ctx.log('info', 'address probe', { session: this.id, client: this.#client.label, verb: cmd.verb, arg: cmd.arg.slice(0, 200), reply });
  }

  /** Before a command: an upstream that spoke unasked or went away ends the session. */
  async #upstreamReady(usesUpstream: boolean): Promise<boolean> {
    if (!this.#upstream.connected && !usesUpstream) return true; // nothing to relay
    try {
      const lost = await this.#upstream.ready();
      if (lost === null) return true;
      this.#ctx.log('warn', 'upstream ended the session', { session: this.id, reply: lost });
      this.#failSession(new UpstreamLostError(`upstream ended the session: ${lost}`));
    } catch (err) {
      this.#failSession(err);
    }
    return false;
  }

  async #refused(a: Extract<Admission, { ok: false }>): Promise<void> {
    await this.#upstream.settle(); // a local reply must not overtake relayed ones
    if (a.discard !== undefined) {
      if (!(await this.#client.reader.discard(a.discard, this.#ctx.timeouts['client-idle']))) return;
      if (a.endsTransaction) this.#endTransaction();
    }
    if (a.log) this.#ctx.log('info', a.log, { session: this.id });
    if (a.bad) return this.#bad(a.reply);
    this.#client.send(a.reply);
    if (a.close) this.#enter('closing');
  }

  /** An error that ends the session: its catalogue reply (421 class), then close. */
  #failSession(err: unknown): void {
    this.#enter('closing');
    if (this.#client.destroyed) return;
    if (err instanceof ClientTimeoutError) {
      this.#client.send(REPLY.timeout(this.#ctx.hostname));
      this.#ctx.log('info', 'client timed out', { session: this.id });
      return;
    }
    const r = sessionErrorReply(err, this.id);
    this.#client.send(r);
    this.#ctx.log(r.severe ? 'error' : 'warn', 'session failed', { session: this.id, error: r.detail });
  }

  #bad(reply: LocalReply): void {
    this.#client.send(reply);
    this.#badCommands++;
    // Under stress one bad command is enough (Postfix: smtpd_hard_error_limit drops to 1).
    if (this.#badCommands >= (this.#ctx.stressed?.() ? 1 : this.#ctx.limits['max-bad-commands'])) {
      this.#client.send(REPLY.tooManyErrors(this.#ctx.hostname));
      this.#ctx.log('warn', 'too many bad commands', { session: this.id, count: this.#badCommands });
      this.#enter('closing');
    }
  }

  // ---- greeting and session commands -------------------------------------------------------

  async #hello(cmd: Command): Promise<void> {
    const ehlo = cmd.verb === 'EHLO';
    const r = await this.#upstream.hello(cmd.raw, cmd.verb);
    if (r.code !== 250) return this.#client.relay(r);
    this.#helo = cmd.arg.trim();
    await this.#dropTransaction(); // RFC 5321 §4.1.4: EHLO/HELO reset the transaction state
    if (!ehlo) return this.#client.relay(r);
    const ctx = this.#ctx;
    const offer = { tls: ctx.clientTls, clientTls: this.#client.tls, upstreamTls: this.#upstream.tls, relayAuth: ctx.relayAuth, trusted: this.#trusted };
    this.#client.relay(editEhloReply(r, ehloEdit(offer, ctx.limits['max-message-size'])).reply);
  }

  async #starttls(): Promise<void> {
    const before = this.#state;
    this.#enter('tls-handshake');
    const end = await startTls({ ...this.#ctx, sessionId: this.id, tls: this.#ctx.clientTls }, this.#client, this.#upstream, this.#journal, () => this.#enter('tunnel'));
    if (end === 'declined') return this.#enter(before);
    if (end === 'ended') return this.#enter('closing');
    // RFC 3207 §4.2: everything learned before TLS is forgotten; the client greets again.
    this.#helo = '';
    await this.#dropTransaction();
  }

  async #auth(cmd: Command): Promise<void> {
    this.#upstream.taint(); // an authenticated upstream session belongs to this client alone
    const end = await relayAuth(cmd, this.#client, this.#upstream, this.#ctx.limits, this.#ctx.timeouts);
    if (end === 'eof') this.#enter('closing');
    else if (end.accepted) this.#authUser = end.user;
  }

  async #quit(): Promise<void> {
    const r = await this.#upstream.quit();
    if (r && r.code === 221) this.#client.relay(r);
    else this.#client.send(REPLY.bye(this.#ctx.hostname));
    this.#enter('closing');
  }

  // ---- the envelope ------------------------------------------------------------------------

  async #mail(cmd: Command): Promise<void> {
    const p = parsePath(cmd.arg, 'FROM');
    const refusal = mailRefusal(p, this.#ctx.limits['max-message-size']) ?? (this.#logsDown() ? REPLY.logsUnavailable : null);
    if (refusal || !p.ok) {
      await this.#upstream.settle(); // a local reply must not overtake relayed ones
      return p.ok ? this.#client.send(refusal!) : this.#bad(refusal!);
    }
    const mailFrom = p.path.address;
    this.#upstream.sendMail(cmd.raw, (r) => {
      if (r.code >= 200 && r.code < 300) {
        this.#tx = newTransaction(`${this.id}.${++this.#transactions}`, mailFrom);
        this.#enter('mail');
      }
      this.#client.relay(r);
    });
  }

  /** log-database.on-failure: tempfail — no transaction the log database cannot account for. */
  #logsDown(): boolean {
    if (!this.#ctx.logsUnavailable?.()) return false;
    this.#ctx.log('warn', 'transaction refused: log database cannot be written (log-database.on-failure: tempfail)', { session: this.id, client: this.#client.label });
    return true;
  }

  async #rcpt(cmd: Command): Promise<void> {
    const p = parsePath(cmd.arg, 'TO');
    const max = this.#ctx.limits['max-recipients'];
    if (!p.ok || (this.#tx?.rcptTo.length ?? 0) + this.#upstream.pending('RCPT') >= max) {
      await this.#upstream.settle(); // settle what is in flight, then judge with the real count
      if (!p.ok) return this.#bad({ code: p.reply.code, text: `${p.reply.enhanced} ${p.reply.text}` });
      if (this.#tx && this.#tx.rcptTo.length >= max) return this.#client.send(REPLY.tooManyRecipients);
    }
    const address = p.path.address;
    this.#upstream.sendAhead(cmd.raw, 'RCPT', (r) => {
      // The transaction is the one current when the reply is applied (its MAIL was applied first).
      if (this.#tx && r.code >= 200 && r.code < 300) {
        this.#tx.rcptTo.push(address);
        if (this.#state === 'mail') this.#enter('rcpt');
      }
      this.#client.relay(r);
    });
  }

  /** The transaction is over (its message, if any, is in the gate's hands or discarded). */
  #endTransaction(): void {
    this.#tx = null;
    this.#enter('ready');
  }

  /** Forget the transaction; a half-received BDAT message is discarded, never delivered. */
  async #dropTransaction(): Promise<void> {
    const tx = this.#tx;
    this.#endTransaction();
    if (tx?.bdat) await this.#forwarding.discard(tx.bdat.msg);
  }

  #facts(tx: Transaction): TransactionFacts {
    return ruleFacts(this.#ctx, this.#client.address, tx, this.#authUser);
  }


  // ---- the message -------------------------------------------------------------------------

  async #open(tx: Transaction, chunk: { size: number; last: boolean } | null): Promise<IncomingMessage | null> {
    const discarded = (): Promise<boolean> => (chunk ? this.#client.reader.discard(chunk.size, this.#ctx.timeouts['client-idle']) : Promise.resolve(true));
    let open;
    try {
      open = await this.#forwarding.open();
    } catch (err) {
      this.#endTransaction();
      await discarded();
      this.#after(await this.#gate.failed(tx, err));
      return null;
    }
    if (!open.go) {
      // A refused first chunk fails the transaction's later chunks too (RFC 3030 §2).
      if (chunk) tx.bdatFailed = { code: open.reply.code, text: open.reply.lines.map(censorText).join(' ') };
      if (!(await discarded())) return null;
      if (!chunk || chunk.last) this.#endTransaction();
      this.#client.relay(open.reply);
      return null;
    }
    if (!chunk) {
      if (open.reply) this.#client.relay(open.reply);
      else this.#client.send(REPLY.startData);
    }
    return this.#forwarding.incoming(this.#ctx.inspector.begin(), () => !!this.#ctx.quarantine && this.#ctx.policy.mayQuarantine(this.#facts(tx)));
  }

  async #data(): Promise<void> {
    const tx = this.#tx!; // admitted: a transaction with a recipient
    this.#enter('data'); // whatever happens now, this transaction ends with this DATA
    this.#tx = null;
    const msg = await this.#open(tx, null);
    if (!msg) return;
    try {
      this.#receiving = msg;
      await receiveData(this.#client.reader, msg, this.#ctx.timeouts);
    } catch (err) {
      await this.#forwarding.discard(msg);
      throw err; // client timeout: the session ends with 421, the upstream never completes
    }
    await this.#pass(tx, msg);
  }

  /**
   * BDAT (RFC 3030): each chunk is read by its exact length into one DATA stream; the
   * upstream receives the message as DATA (no CHUNKING needed there). A failed transaction
   * still has its chunks read and discarded, each answered with the failure (admit()).
   */
  async #bdat(size: number, last: boolean): Promise<void> {
    const tx = this.#tx!; // admitted: a transaction with a recipient, no failed chunk
    if (!tx.bdat) {
      const msg = await this.#open(tx, { size, last });
      if (!msg) return;
      startBdat(tx, msg);
      this.#receiving = msg;
      this.#enter('bdat');
    }
    const bdat = tx.bdat!;
    let complete: boolean;
    try {
      complete = await receiveChunk(this.#client.reader, bdat, size, last, this.#ctx.timeouts);
    } catch (err) {
      this.#endTransaction();
      await this.#forwarding.discard(bdat.msg);
      throw err;
    }
    if (complete && !last) return this.#client.send(REPLY.bdatChunk(size));
    this.#endTransaction();
    await this.#pass(tx, bdat.msg);
  }

  async #pass(tx: Transaction, msg: IncomingMessage): Promise<void> {
    this.#receiving = null;
    this.#enter('gate');
    this.#after(await this.#gate.pass(tx, msg));
  }

  #after(end: 'continue' | 'closed'): void {
    this.#enter(end === 'closed' ? 'closing' : 'ready');
  }
}

export type { SessionContext, SessionSnapshot } from './session-context.ts';

/** A client command for the transcript: AUTH arguments masked (its continuation lines are never read here). */
function transcribed(line: Buffer): string {
  const text = line.toString('latin1');
  return /^AUTH\b/i.test(text) ? maskAuth(text) : text;
}
