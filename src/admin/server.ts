/**
 * The admin plane's HTTP server (`admin.listen`): the JSON API under /api/v1, /healthz and
 * /metrics. Hono: a small router made for exactly this (typed context, middleware, no
 * dependencies of its own), served by @hono/node-server on Node's own http/https server.
 *
 * It runs where the control socket runs: in the single gateway process, or in the supervisor
 * when `workers` > 1 (figures then come from every worker over IPC and are summed). Reads go
 * to the log database through its own read-only handle (SQLite WAL: never blocking the
 * gateway's writes), each bounded by `limit` ≤ 1000, so no request holds the event loop for
 * long. Every state change needs the admin role and is an audit record naming the user.
 */

import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { Hono, type Context } from 'hono';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { type LogQuery, openLogDatabase, SqliteLogReader, SqliteLogStore } from '../logs/sqlite-store.ts';
import type { LogReader } from '../logs/log-query.ts';
import { type CaptureSink, CaptureStore } from '../logs/capture-store.ts';
import type { SharedStore } from '../shared-store/shared-store.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import { parseConfig } from '../policy/load-config.ts';
import { parseHostPort } from '../policy/config-schema.ts';
import type { LogFn } from '../logs/process-log.ts';
import type { ReloadReport, StatusReport } from '../app/control.ts';
import { probeAll, type Probe } from '../app/health.ts';
import { parseWhen } from '../policy/units.ts';
import { capturePcap } from './pcap.ts';
import { captureLines, captureText } from './capture-text.ts';
import { type AuthResult, Authenticator, type Principal } from './auth.ts';
import { MimeWalker } from '../inspect/mime/walker.ts';
import { escapeUnsafe } from '../logs/escape.ts';
import { type Quarantine, type QuarantineEntry, QuarantineError, QuarantineStore, unstuff } from '../quarantine/store.ts';
import { releaseQuarantined } from '../quarantine/release.ts';
import { SqliteVerdictStore, type VerdictStore } from '../inspect/engines/analysis/verdict-store.ts';
import type { VerdictClass } from '../inspect/engines/analysis/types.ts';
import { mergeSnapshots, processFigures, renderMetrics } from './metrics.ts';
import { resolveUsers } from './first-password.ts';
import { StatsReader } from './stats-reader.ts';
import { ConsoleSessions, MAX_AGE_MS, SESSION_COOKIE } from './console-sessions.ts';
import { consoleAssets, CONTENT_SECURITY_POLICY } from './console-assets.ts';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';

/** How long a health probe's answer is reused (probes open connections to clamd and the like). */
const PROBE_CACHE_MS = 10_000;
const MAX_LIMIT = 1000;
/** How long a dashboard figure is reused: consoles poll it, the log only changes so fast. */
const STATS_CACHE_MS = 2_000;

export interface AdminHandlers {
  status(): Promise<StatusReport>;
  reload(): Promise<ReloadReport>;
  /** The configuration in use (as last reloaded). */
  config(): LoadedConfig;
  /** `gateway` (one process) or `supervisor`. */
  readonly role: string;
  /** The shared store (`store:`): logs, captures, verdicts, quarantine and audit are read and written there. */
  readonly shared?: SharedStore | null;
}

type Env = { Bindings: HttpBindings; Variables: { principal: Principal } };

/** A client's mistake: 4xx with one clear line of JSON, never a stack. */
class ApiError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 413,
    message: string,
  ) {
    super(message);
  }
}

export class AdminServer {
  readonly #server: ReturnType<typeof createAdaptorServer>;
  readonly #auth: Authenticator;
  readonly #sessions: ConsoleSessions;
  readonly #stats = new Map<string, { at: number; body: Promise<unknown> }>();
  #statsReader: StatsReader | null = null;
  #logs: SqliteLogReader | null = null;
  #captures: CaptureStore | null = null;
  #audit: Statement | null = null;
  #probes: { at: number; probes: Promise<Probe[]> } | null = null;
  address: { host: string; port: number } | null = null;

  constructor(
    private readonly handlers: AdminHandlers,
    private readonly log: LogFn,
  ) {
    const cfg = handlers.config();
    this.#auth = new Authenticator(resolveUsers(cfg.admin.users, cfg.dataDirAbs, log));
    this.#sessions = new ConsoleSessions(cfg.admin['session-idle']);
    const app = this.#routes();
    const tls = cfg.admin.tls;
    this.#server = tls
      ? createAdaptorServer({ fetch: app.fetch, createServer: createHttps, serverOptions: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } })
      : createAdaptorServer({ fetch: app.fetch });
  }

  async listen(): Promise<{ host: string; port: number }> {
    const { host, port } = parseHostPort(this.handlers.config().admin.listen)!; // the schema checked it
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const a = this.#server.address() as AddressInfo;
    this.address = { host: a.address, port: a.port };
    return this.address;
  }

  async close(): Promise<void> {
    const s = this.#server as unknown as { closeAllConnections?: () => void; close: (cb: () => void) => void };
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections?.();
    });
    await this.#logs?.close();
    this.#captures?.close();
    this.#audit?.database.close();
    this.#verdicts?.close();
    await this.#statsReader?.close();
  }

  /** After a reload: the new users (and their roles) apply to the next request. */
  reloaded(): void {
    const cfg = this.handlers.config();
    try {
      this.#auth.setUsers(resolveUsers(cfg.admin.users, cfg.dataDirAbs, this.log));
    } catch (err) {
      this.log('error', 'admin plane: the new user list cannot be used; the previous one stays', { error: (err as Error).message });
      return;
    }
    this.#sessions.retain(this.handlers.config().admin.users);
  }

  get #dataDir(): string {
    return this.handlers.config().dataDirAbs;
  }

  get #shared(): SharedStore | null {
    return this.handlers.shared ?? null;
  }

  #logStore(): LogReader {
    if (this.#shared) return this.#shared.reader;
    if (!existsSync(join(this.#dataDir, 'logs.sqlite'))) throw new ApiError(404, 'no log database yet');
    return (this.#logs ??= new SqliteLogReader(new SqliteLogStore(this.#dataDir, { readonly: true })));
  }

  #captureStore(): CaptureSink {
    if (this.#shared) return this.#shared.captures;
    if (!existsSync(join(this.#dataDir, 'logs.sqlite'))) throw new ApiError(404, 'no log database yet');
    return (this.#captures ??= new CaptureStore(this.#dataDir, { readonly: true }));
  }

  #writeAudit(user: string, action: string, target: string, detail: string, client: string): void {
    if (this.#shared) {
      this.#shared.audit.add(user, action, target, detail, client);
      this.log('info', 'admin action', { user, action, target, detail, client });
      return;
    }
    this.#audit ??= openLogDatabase(this.#dataDir, { lockWaitMs: this.handlers.config()['log-database']['lock-wait'] })
      .prepare('INSERT INTO audit (time, user, action, target, detail, client, instance) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#audit.run(new Date().toISOString(), user, action, target, detail, client, this.handlers.config().instanceName);
    this.log('info', 'admin action', { user, action, target, detail, client });
  }

  #verdicts: SqliteVerdictStore | null = null;

  /** Verdicts live in logs.sqlite too; one writable handle, opened on first use. */
  #verdictStore(): VerdictStore {
    if (this.#shared) return this.#shared.verdicts;
    return (this.#verdicts ??= new SqliteVerdictStore(this.#dataDir, { lockWaitMs: this.handlers.config()['log-database']['lock-wait'] }));
  }

  #quarantine(): Quarantine {
    if (this.#shared) return this.#shared.quarantine;
    const cfg = this.handlers.config();
    return new QuarantineStore(cfg.dataDirAbs, { maxAgeMs: cfg.quarantine['max-age'], maxBytes: cfg.quarantine['max-size'] });
  }

  #health(): Promise<Probe[]> {
    const now = Date.now();
    if (!this.#probes || now - this.#probes.at > PROBE_CACHE_MS) this.#probes = { at: now, probes: probeAll(this.handlers.config()) };
    return this.#probes.probes;
  }

  #routes(): Hono<Env> {
    const app = new Hono<Env>();
    const client = (c: Context<Env>): string => c.env.incoming.socket.remoteAddress ?? '';

    app.onError((err, c) => {
      if (err instanceof ApiError) return c.json({ error: err.message }, err.status);
      this.log('error', 'admin request failed', { path: c.req.path, error: err.message });
      return c.json({ error: `internal error: ${err.message}` }, 500);
    });
    app.notFound((c) => c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path}` }, 404));

    app.get('/healthz', async (c) => {
      const [status, probes] = await Promise.all([this.handlers.status(), this.#health()]);
      const down = probes.filter((p) => !p.ok).map((p) => `${p.what}: ${p.detail}`);
      if (status.workers.length === 0 || status.workers.every((w) => w.listeners.length === 0)) down.unshift('listeners: none open');
      return c.json({ ok: down.length === 0, down, checks: probes.map((p) => ({ what: p.what, ok: p.ok, detail: p.detail })) }, down.length ? 503 : 200);
    });

    // Every answer: no framing, no sniffing, no referrer; the console's pages also get the CSP.
    app.use('*', async (c, next) => {
      await next();
      c.header('X-Content-Type-Options', 'nosniff');
      c.header('X-Frame-Options', 'DENY');
      c.header('Referrer-Policy', 'no-referrer');
      c.header('Cache-Control', 'no-store');
      c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    });

    const assets = consoleAssets();
    for (const [path, asset] of assets) {
      app.get(path, (c) => c.body(new Uint8Array(asset.body), 200, { 'Content-Type': asset.type }));
    }

    app.get('/favicon.ico', (c) => c.body(null, 204));

    const secure = this.handlers.config().admin.tls !== undefined;
    // A POST that changes nothing (a draft is checked, not installed): open to viewers too.
    const readsOnly = (c: Context<Env>) => c.req.path === '/api/v1/config/check' && c.req.method === 'POST';
    const isLogin = (c: Context<Env>) => c.req.path === '/api/v1/session' && c.req.method === 'POST';

    const changes = (c: Context<Env>) => c.req.method !== 'GET' && c.req.method !== 'HEAD' && !readsOnly(c);
    const isSessionProbe = (c: Context<Env>) => c.req.path === '/api/v1/session' && c.req.method === 'GET';

    /** A refused login (Basic, bearer or the console's form): logged, audited, answered. */
    const refused = (c: Context<Env>, r: Extract<AuthResult, { ok: false }>, user: string | undefined, what: string): Response => {
      this.log('warn', 'admin login failed', { client: client(c), user: user ?? '', reason: r.reason, path: c.req.path });
      // Bounded by the rate limit: at most FAIL_LIMIT rows per address and window.
      if (r.status === 401) this.#writeAudit(user ?? '', 'login-failed', what, r.reason, client(c));
      if (r.retryAfterS) c.header('Retry-After', String(r.retryAfterS));
      return c.json({ error: r.reason }, r.status);
    };

    /** Who asks: by the console's cookie (with its CSRF token for a change) or by Authorization. */
    const principalOf = async (c: Context<Env>): Promise<Principal | Response> => {
      const authorization = c.req.header('authorization');
      if (authorization === undefined && getCookie(c, SESSION_COOKIE) !== undefined) {
        const session = this.#sessions.get(getCookie(c, SESSION_COOKIE));
        // The console's first question (am I logged in?) is answered, not refused.
        if (!session) return isSessionProbe(c) ? c.json({ user: null }) : c.json({ error: 'the console session has ended: log in again' }, 401);
        // The cookie comes with any request the browser makes; the token only with the console's own.
        const logout = c.req.path === '/api/v1/session' && c.req.method === 'DELETE';
        if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !logout && !ConsoleSessions.csrfMatches(session, c.req.header('x-csrf-token'))) {
          this.log('warn', 'admin request refused: no valid CSRF token', { client: client(c), user: session.principal.name, path: c.req.path });
          return c.json({ error: "a change made with the console's cookie needs its X-CSRF-Token header" }, 403);
        }
        return session.principal;
      }
      if (authorization === undefined && isSessionProbe(c)) return c.json({ user: null });
      const r = await this.#auth.check(authorization, client(c));
      if (r.ok) return r.principal;
      // The console asks by its own form; a challenge would make the browser pop its dialog.
      if (r.status === 401 && c.req.header('x-smtpwall-console') === undefined) c.header('WWW-Authenticate', 'Basic realm="smtpwall", charset="UTF-8"');
      if (authorization === undefined && r.status === 401) return c.json({ error: r.reason }, 401); // no credentials: no failure to count
      return refused(c, r, r.user, c.req.path);
    };

    const authenticate = async (c: Context<Env>, next: () => Promise<void>): Promise<Response | void> => {
      if (isLogin(c)) return next();
      const p = await principalOf(c);
      if (p instanceof Response) return p;
      c.set('principal', p);
      // Reads are for every role; anything that changes state is for admins.
      if (changes(c) && p.role !== 'admin') {
        return c.json({ error: `user "${p.name}" has the viewer role: only an admin may ${c.req.method} ${c.req.path}` }, 403);
      }
      await next();
    };
    app.use('/api/v1/*', authenticate);
    app.use('/metrics', async (c, next) => (this.handlers.config().admin['metrics-auth'] ? authenticate(c, next) : next()));

    app.get('/metrics', async (c) => {
      const status = await this.handlers.status();
      const sessions: Record<string, number> = {};
      for (const w of status.workers) for (const l of w.listeners) sessions[l.name] = (sessions[l.name] ?? 0) + l.sessions;
      const engines = Object.fromEntries((await this.#health()).map((p) => [p.what, p.ok]));
      const processes = status.workers.map((w) => w.process);
      if (this.handlers.role === 'supervisor') processes.unshift(processFigures('supervisor'));
      const body = renderMetrics({ counters: mergeSnapshots(status.workers.map((w) => w.metrics)), sessions, engines, processes });
      return c.body(body, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    });

    // The console's login: user and password checked (and rate-limited) exactly as Basic is.
    app.post('/api/v1/session', async (c) => {
      const body = (await c.req.json().catch(() => null)) as { user?: unknown; password?: unknown } | null;
      if (!body || typeof body.user !== 'string' || typeof body.password !== 'string' || body.user.length > 200 || body.password.length > 1000) {
        throw new ApiError(400, 'body must be {"user": "name", "password": "secret"}');
      }
      const r = await this.#auth.check(`Basic ${Buffer.from(`${body.user}:${body.password}`).toString('base64')}`, client(c));
      if (!r.ok) return refused(c, r, body.user, 'console');
      const { id, csrf } = this.#sessions.create(r.principal);
      setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: 'Strict', path: '/', secure, maxAge: MAX_AGE_MS / 1000 });
      this.log('info', 'admin console login', { user: r.principal.name, role: r.principal.role, client: client(c) });
      return c.json({ user: r.principal.name, role: r.principal.role, csrf });
    });
    app.get('/api/v1/session', (c) => {
      const p = c.get('principal');
      const session = p.via === 'cookie' ? this.#sessions.get(getCookie(c, SESSION_COOKIE)) : null;
      return c.json({ user: p.name, role: p.role, via: p.via, ...(session ? { csrf: session.csrf } : {}) });
    });
    app.delete('/api/v1/session', (c) => {
      this.#sessions.delete(getCookie(c, SESSION_COOKIE));
      deleteCookie(c, SESSION_COOKIE, { path: '/', secure });
      return c.json({ loggedOut: true });
    });

    // The dashboard's figures; the same answer is reused for a few seconds (many consoles, one query).
    app.get('/api/v1/stats', async (c) => {
      const range = c.req.query('range') ?? 'hour';
      if (range !== 'hour' && range !== 'day') throw new ApiError(400, `range must be "hour" or "day", got "${range.slice(0, 40)}"`);
      const cached = this.#stats.get(range);
      if (cached && Date.now() - cached.at < STATS_CACHE_MS) return c.json(await cached.body);
      const now = Date.now();
      const span = range === 'hour' ? 3600_000 : 86_400_000;
      const bucketMs = range === 'hour' ? 60_000 : 600_000;
      const since = new Date(Math.floor((now - span) / bucketMs) * bucketMs + bucketMs).toISOString();
      // On the query thread: a day's GROUP BY must not hold the sessions' event loop.
      const body = (this.#shared
        ? this.#shared.reader.statsSince(since, range === 'hour' ? 16 : 15)
        : existsSync(join(this.#dataDir, 'logs.sqlite'))
        ? (this.#statsReader ??= new StatsReader(this.#dataDir)).query(since, range === 'hour' ? 16 : 15)
        : Promise.resolve({ traffic: [], threats: [], topThreats: [], topSenders: [], topRecipients: [] })
      ).then((stats) => ({ range, since, bucketSeconds: bucketMs / 1000, now: new Date(now).toISOString(), ...stats }));
      // Concurrent consoles share one question in flight; a failed one is not kept.
      this.#stats.set(range, { at: now, body });
      body.catch(() => this.#stats.delete(range));
      return c.json(await body);
    });

    app.get('/api/v1/status', async (c) => {
      const { workers, ...rest } = await this.handlers.status();
      return c.json({ ...rest, workers: workers.map(({ metrics: _m, ...w }) => w) });
    });

    const listOf = (kind: 'traffic' | 'threats') => async (c: Context<Env>) => {
      const q = logQuery(c.req.query());
      const store = this.#logStore();
      const rows: Array<{ id: number; record: object }> = kind === 'traffic' ? await store.queryTraffic(q) : await store.queryThreats(q);
      return c.json({ records: rows.map((r) => ({ id: r.id, ...r.record })), cursor: rows.length ? rows.at(-1)!.id : (q.afterId ?? (await store.lastId(kind))) });
    };
    app.get('/api/v1/traffic', listOf('traffic'));
    app.get('/api/v1/threats', listOf('threats'));

    app.get('/api/v1/threats/:id', async (c) => {
      const id = transactionId(c.req.param('id'));
      const store = this.#logStore();
      const threats = (await store.queryThreats({ id, limit: MAX_LIMIT })).map((r) => ({ id: r.id, ...r.record }));
      const traffic = (await store.queryTraffic({ id, limit: MAX_LIMIT })).map((r) => ({ id: r.id, ...r.record }));
      if (threats.length === 0 && traffic.length === 0) throw new ApiError(404, `no transaction or session ${id} in the log`);
      return c.json({ id, transactions: traffic, threats, explanation: traffic.map((t) => explain(t, threats)) });
    });

    const capture = async (id: string) => {
      const got = await this.#captureStore().get(transactionId(id));
      if (!got) throw new ApiError(404, `no packet capture kept for ${id} (capture.when decides which sessions are kept)`);
      return got;
    };
    app.get('/api/v1/transactions/:id/capture.pcap', async (c) => {
      const got = await capture(c.req.param('id'));
      return c.body(new Uint8Array(capturePcap(got)), 200, {
        'Content-Type': 'application/vnd.tcpdump.pcap',
        'Content-Disposition': `attachment; filename="smtpwall-${got.sessionId}.pcap"`,
      });
    });
    app.get('/api/v1/transactions/:id/transcript', async (c) => {
      const got = await capture(c.req.param('id'));
      if ((c.req.header('accept') ?? '').includes('application/json')) return c.json({ session: got.sessionId, lines: captureLines(got) });
      return c.body(captureText(got), 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    });

    app.get('/api/v1/quarantine', async (c) => c.json({ entries: await this.#quarantine().list() }));

    app.get('/api/v1/quarantine/:id', async (c) => {
      const q = this.#quarantine();
      const entry = await quarantined(q, c.req.param('id'));
      // The message is described, never rendered: header lines as text, the MIME tree as data.
      return c.json({ entry, ...describeMessage(unstuff(await q.content(entry))) });
    });

    app.post('/api/v1/quarantine/:id/release', async (c) => {
      const p = c.get('principal');
      const body = (await c.req.json().catch(() => ({}))) as { to?: unknown; again?: unknown };
      const to = body.to === undefined ? [] : Array.isArray(body.to) && body.to.every((x) => typeof x === 'string' && /^[^\s<>@]+@[^\s<>@]+$/.test(x)) ? (body.to as string[]) : null;
      if (to === null) throw new ApiError(400, '"to" must be a list of addresses (local@domain)');
      const q = this.#quarantine();
      const entry = await quarantined(q, c.req.param('id'));
      const r = await releaseQuarantined(this.handlers.config(), q, entry.id, { to, again: body.again === true, ...(this.#shared ? { logs: this.#shared.logs } : {}) }).catch(asApiError);
      this.#writeAudit(p.name, 'release', entry.id, `${r.outcome} to ${r.to.join(', ')}: ${r.reply}`, client(c));
      const status = r.outcome === 'released' ? 200 : r.outcome === 'already' ? 409 : 502;
      return c.json({ outcome: r.outcome, id: entry.id, to: r.to, reply: r.reply, via: r.via }, status);
    });

    app.delete('/api/v1/quarantine/:id', async (c) => {
      const p = c.get('principal');
      const q = this.#quarantine();
      const entry = await quarantined(q, c.req.param('id'));
      await q.delete(entry.id).catch(asApiError);
      this.#writeAudit(p.name, 'delete', entry.id, `quarantined ${entry.time} (${entry.threat})`, client(c));
      return c.json({ deleted: entry.id });
    });

    app.get('/api/v1/verdicts', async (c) => {
      const limit = c.req.query('limit') === undefined ? 100 : Number(c.req.query('limit'));
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ApiError(400, `limit must be an integer from 1 to ${MAX_LIMIT}`);
      return c.json({ verdicts: await this.#verdictStore().list(limit) });
    });

    app.get('/api/v1/verdicts/:sha256', async (c) => {
      const sha = sha256Of(c.req.param('sha256'));
      const store = this.#verdictStore();
      const verdict = await store.get(sha);
      const sightings = await store.sightings(sha, 100);
      if (!verdict && sightings.length === 0) throw new ApiError(404, `no verdict and no sighting of ${sha}`);
      return c.json({ sha256: sha, verdict, sightings });
    });

    app.put('/api/v1/verdicts/:sha256', async (c) => {
      const p = c.get('principal');
      const sha = sha256Of(c.req.param('sha256'));
      const body = (await c.req.json().catch(() => null)) as { verdict?: unknown; reason?: unknown } | null;
      if (!body || typeof body.verdict !== 'string' || !VERDICTS.includes(body.verdict as VerdictClass)) throw new ApiError(400, `body must be {"verdict": ${VERDICTS.map((v) => `"${v}"`).join(' | ')}, "reason": "why"}`);
      if (typeof body.reason !== 'string' || body.reason.trim() === '' || body.reason.length > 500) throw new ApiError(400, '"reason" must say why (1 to 500 characters)');
      await this.#verdictStore().override(sha, body.verdict as VerdictClass, `${body.reason} (by ${p.name})`);
      this.#writeAudit(p.name, 'verdict', sha, `${body.verdict}: ${body.reason}`, client(c));
      return c.json({ sha256: sha, verdict: await this.#verdictStore().get(sha) });
    });

    app.get('/api/v1/config', (c) => c.json(mask(JSON.parse(JSON.stringify(this.handlers.config())))));

    app.post('/api/v1/config/check', async (c) => {
      const text = await c.req.text();
      if (text.length > 1 << 20) throw new ApiError(413, 'a configuration draft is at most 1 MiB');
      try {
        parseConfig(text, 'draft');
        return c.json({ ok: true, errors: [] });
      } catch (err) {
        return c.json({ ok: false, errors: String((err as Error).message).split('\n').filter(Boolean) }, 422);
      }
    });

    app.post('/api/v1/reload', async (c) => {
      const p = c.get('principal');
      const report = await this.handlers.reload();
      this.#writeAudit(p.name, 'reload', 'config', report.applied ? 'applied' : `refused: ${report.error ?? ''}`, client(c));
      if (report.applied) this.reloaded();
      return c.json(report, report.applied ? 200 : 409);
    });
    return app;
  }
}

/** Open the admin plane when `admin.listen` says so; one that cannot listen is logged and mail goes on. */
export async function openAdmin(handlers: AdminHandlers, log: LogFn): Promise<AdminServer | null> {
  if (handlers.config().admin.listen === 'off') return null;
  try {
    const server = new AdminServer(handlers, log);
    const at = await server.listen();
    log('info', 'admin plane listening', { address: `${at.host}:${at.port}`, tls: handlers.config().admin.tls ? 'yes' : 'no' });
    return server;
  } catch (err) {
    log('error', 'admin plane could not start; mail is not affected', { listen: handlers.config().admin.listen, error: (err as Error).message });
    return null;
  }
}

async function quarantined(q: Quarantine, id: string): Promise<QuarantineEntry> {
  return q.get(id).catch(asApiError);
}

/** A store's refusal (no such entry, not an id, being released) is the client's 4xx. */
function asApiError(err: unknown): never {
  if (err instanceof QuarantineError) throw new ApiError(/^no quarantined/.test(err.message) ? 404 : /being released/.test(err.message) ? 409 : 400, err.message);
  throw err;
}

/** Header lines (as text) and the MIME structure of a message: what an admin inspects before a release. */
export function describeMessage(message: Buffer): { headers: string[]; parts: Array<{ path: string; contentType: string | null; name: string | null; encoding: string | null; size: number }>; events: string[] } {
  const end = message.indexOf('\r\n\r\n');
  const head = message.subarray(0, end < 0 ? Math.min(message.length, 64 * 1024) : end).toString('latin1');
  const headers = head.split(/\r\n(?![ \t])/).map((h) => escapeUnsafe(h.replace(/\r\n[ \t]+/g, ' ')));
  const parts: Array<{ path: string; contentType: string | null; name: string | null; encoding: string | null; size: number }> = [];
  const events: string[] = [];
  const walker = new MimeWalker({
    onLeaf(info) {
      const part = { path: info.path, contentType: info.contentType, name: info.name === null ? null : escapeUnsafe(info.name), encoding: info.encoding, size: 0 };
      parts.push(part);
      return { write: (b: Buffer) => void (part.size += b.length), end() {} };
    },
    onEvent: (e) => void events.push(e.name),
  });
  walker.write(message);
  walker.end();
  return { headers, parts, events: [...new Set(events)] };
}

/** The query string of /traffic and /threats, checked like `smtpwall logs` checks its flags. */
export function logQuery(q: Record<string, string>): LogQuery {
  const known = new Set(['from', 'to', 'client', 'id', 'action', 'rule', 'threat', 'instance', 'since', 'until', 'limit', 'cursor']);
  const unknown = Object.keys(q).filter((k) => !known.has(k));
  if (unknown.length) throw new ApiError(400, `unknown filter ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${[...known].join(', ')})`);
  const limit = q.limit === undefined ? 50 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ApiError(400, `limit must be an integer from 1 to ${MAX_LIMIT}, got "${q.limit}"`);
  const cursor = q.cursor === undefined ? undefined : Number(q.cursor);
  if (cursor !== undefined && (!Number.isInteger(cursor) || cursor < 0)) throw new ApiError(400, `cursor must be a record id (a non-negative integer), got "${q.cursor}"`);
  const time = (v: string | undefined, name: string): string | undefined => {
    if (v === undefined) return undefined;
    const t = parseWhen(v);
    if (t === null) throw new ApiError(400, `${name}: expected a time (2026-12-01T10:00) or a duration ago (2h), got "${v.slice(0, 80)}"`);
    return t;
  };
  return {
    limit,
    from: q.from, to: q.to, client: q.client, id: q.id, action: q.action, rule: q.rule, threat: q.threat, instance: q.instance,
    since: time(q.since, 'since'), until: time(q.until, 'until'),
    ...(cursor !== undefined ? { afterId: cursor } : {}),
  };
}

const VERDICTS: readonly VerdictClass[] = ['benign', 'grayware', 'phishing', 'malicious'];

function sha256Of(v: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new ApiError(400, `"${v.slice(0, 80)}" is not a SHA-256 (64 hex digits)`);
  return v.toLowerCase();
}

function transactionId(id: string): string {
  if (!/^[A-Za-z0-9]{1,64}(\.\d{1,6})?$/.test(id)) throw new ApiError(400, `"${id.slice(0, 80)}" is not a transaction id (like 3XXVMZTHNWB44NG4.1) or a session id`);
  return id;
}

/** The decision of one transaction in words, from its records. */
function explain(t: { transactionId: string; action: string; rule: string; profile: string; reason: string; clientReply: string; upstreamReply: string }, threats: ReadonlyArray<Record<string, unknown>>): string {
  const own = threats.filter((x) => x.transactionId === t.transactionId);
  const deciding = own.find((x) => x.deciding) ?? own[0];
  const what = deciding
    ? `${String(deciding.engine)} found ${String(deciding.threat)}${deciding.signature ? ` (signature ${String(deciding.signature)})` : ''} in ${String(deciding.filePath || deciding.fileName || 'the message')}${deciding.detectedType ? `, a file of type ${String(deciding.detectedType)}` : ''}${deciding.sha256 ? `, SHA-256 ${String(deciding.sha256)}` : ''}`
    : 'no threat was found';
  const rule = t.rule ? `security rule "${t.rule}"${t.profile ? ` with profile "${t.profile}"` : ''}` : 'no rule';
  return `${what}; ${rule} decided ${t.action}${t.reason ? ` (${t.reason})` : ''}. The client was answered "${t.clientReply}"${t.upstreamReply ? `; the upstream said "${t.upstreamReply}"` : ''}.`;
}

/** The configuration with every secret replaced (password and token hashes, keys' contents, passwords). */
export function mask(v: unknown, key = ''): unknown {
  if (/(password|secret|token|hash|passphrase)/i.test(key) && v !== null && typeof v !== 'object') return '********';
  // A database URL may carry its password (postgresql://user:secret@host/db).
  if (typeof v === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:[^/@\s]*@/i.test(v)) return v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:)[^/@\s]*@/i, '$1********@');
  if (Array.isArray(v)) return v.map((x) => mask(x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mask(x, k)]));
  return v;
}
