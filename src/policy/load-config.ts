/**
 * Loading a configuration file: YAML → schema validation → a frozen, resolved Config.
 *
 * Errors name the file, the line and column of the offending value, the key path and what was
 * expected, e.g. `smtpwall.yaml:7:15: listeners[0].forwarding: expected one of …`. Nothing is
 * read at import time; callers load, then inject the result.
 */

import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { BUILTIN_ANTIVIRUS_PROFILE, type Config, configSchema } from './config-schema.ts';

export interface LoadedConfig extends Config {
  /** Absolute path of the file it came from (or `<inline>`). */
  readonly source: string;
  /** `data-dir` resolved against the config file's directory. */
  readonly dataDirAbs: string;
  /** `instance`, or the host name when absent: named on every record this gateway writes. */
  readonly instanceName: string;
}

export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read config: ${(err as Error).message}`, { cause: err });
  }
  refuseWorldWritable(path, 'config file', 'anyone on this host could rewrite the policy');
  const cfg = parseConfig(text, resolve(path));
  refuseWorldWritable(cfg.dataDirAbs, 'data directory', 'anyone on this host could plant or alter logs, spool and quarantine');
  return cfg;
}

/**
 * The admin surfaces (start, reload, every CLI command) trust the config file and the data
 * directory; a world-writable one would hand the gateway's policy and records to every local
 * user. A path that does not exist yet is fine (the data directory is created 0750).
 */
function refuseWorldWritable(path: string, what: string, why: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return;
  }
  if ((mode & 0o002) !== 0) {
    throw new ConfigError(`${path}: ${what} is world-writable (mode ${(mode & 0o7777).toString(8)}): ${why}; fix with: chmod o-w ${path}`);
  }
}

/** The host name, as an instance name may be spelled. */
export function defaultInstanceName(): string {
  return hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'smtpwall';
}

function resolveTls(t: NonNullable<Config['store']>['tls'], baseDir: string): NonNullable<Config['store']>['tls'] {
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(baseDir, p));
  return { mode: t.mode, ca: abs(t.ca), cert: abs(t.cert), key: abs(t.key) };
}

export function parseConfig(text: string, source = '<inline>'): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lineCounter.linePos(e.pos[0]);
    throw new ConfigError(`${source}:${pos.line}:${pos.col}: YAML syntax error: ${e.message.split('\n')[0]}`);
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, doc.contents, lineCounter, source));
  const cfg = result.data;
  checkReferences(cfg, doc.contents, lineCounter, source);
  const baseDir = source === '<inline>' ? process.cwd() : dirname(source);
  const loaded: LoadedConfig = {
    ...cfg,
    source,
    dataDirAbs: resolve(baseDir, cfg['data-dir']),
    instanceName: cfg.instance ?? defaultInstanceName(),
    ...(cfg.store ? { store: { ...cfg.store, tls: resolveTls(cfg.store.tls, baseDir) } } : {}),
    engines: {
      ...cfg.engines,
      analysis: { ...cfg.engines.analysis, yara: cfg.engines.analysis.yara.map((p) => resolve(baseDir, p)) },
      signatures: {
        'hash-lists': cfg.engines.signatures['hash-lists'].map((p) => resolve(baseDir, p)),
        databases: cfg.engines.signatures.databases.map((p) => resolve(baseDir, p)),
      },
    },
    'log-forwarding': cfg['log-forwarding'].map((f) => (f.path ? { ...f, path: resolve(baseDir, f.path) } : f)),
    listeners: cfg.listeners.map((l) => ({
      ...l,
      upstream: l.upstream?.startsWith('mailbox:') ? `mailbox:${resolve(baseDir, l.upstream.slice(8))}` : l.upstream,
      tls: {
        ...l.tls,
        mode: l.tls.mode ?? (l.tls.cert && l.tls.key ? 'terminate' : 'strip'),
        cert: l.tls.cert && resolve(baseDir, l.tls.cert),
        key: l.tls.key && resolve(baseDir, l.tls.key),
      },
      'upstream-tls': { ...l['upstream-tls'], ca: l['upstream-tls'].ca && resolve(baseDir, l['upstream-tls'].ca) },
    })),
  };
  return deepFreeze(loaded);
}

/** Cross-references the schema cannot express: names that must exist, names that must be unique. */
function checkReferences(cfg: Config, root: unknown, lc: LineCounter, source: string): void {
  const problems: z.core.$ZodIssue[] = [];
  const add = (path: (string | number)[], message: string): void => {
    problems.push({ code: 'custom', path, message, input: undefined } as z.core.$ZodIssue);
  };
  const seen = new Set<string>();
  cfg.listeners.forEach((l, i) => {
    if (seen.has(l.name)) add(['listeners', i, 'name'], `duplicate listener name "${l.name}"`);
    seen.add(l.name);
    if (l.mode === 'relay' && !l.upstream) add(['listeners', i], 'relay mode needs upstream (host:port or mailbox:DIR)');
    if (l.mode !== 'relay' && l.upstream) add(['listeners', i, 'upstream'], `${l.mode} mode takes the original destination of each connection; remove upstream`);
    if (l.mode !== 'relay' && l['upstream-reuse']) add(['listeners', i, 'upstream-reuse'], 'transparent mode connects each client to its own destination: upstream sessions cannot be reused');
    if (l['proxy-protocol'] && l.mode !== 'relay') add(['listeners', i, 'proxy-protocol'], 'transparent mode sees the client itself: no load balancer between');
    if (l['proxy-protocol'] && l['proxy-from'].length === 0) add(['listeners', i, 'proxy-from'], 'proxy-protocol needs proxy-from: the load balancers\' addresses (anyone else could name any client)');
    if (l['proxy-protocol'] && l.tls.implicit) add(['listeners', i, 'proxy-protocol'], 'proxy-protocol with implicit TLS is not supported yet (use STARTTLS on the port behind the load balancer)');
    const hasCert = Boolean(l.tls.cert && l.tls.key);
    if (Boolean(l.tls.cert) !== Boolean(l.tls.key)) add(['listeners', i, 'tls'], 'cert and key go together');
    if (l.tls.mode === 'terminate' && !hasCert) add(['listeners', i, 'tls', 'mode'], 'terminate needs cert and key');
    if (l.tls.implicit && !hasCert) add(['listeners', i, 'tls', 'implicit'], 'implicit TLS needs cert and key');
    if (l.tls.implicit && l.tls.mode && l.tls.mode !== 'terminate') add(['listeners', i, 'tls', 'implicit'], 'implicit TLS is only possible with mode terminate');
    if (l['upstream-tls'].verify === 'pinned' && !l['upstream-tls'].ca) add(['listeners', i, 'upstream-tls', 'ca'], 'verify: pinned needs ca');
  });
  const known = {
    antivirus: cfg.profiles.antivirus,
    'file-blocking': cfg.profiles['file-blocking'],
    'data-filtering': cfg.profiles['data-filtering'],
  } as const;
  const checkRefs = (refs: Partial<Record<'antivirus' | 'file-blocking' | 'data-filtering' | 'group', string>>, at: (string | number)[]): void => {
    for (const kind of ['antivirus', 'file-blocking', 'data-filtering'] as const) {
      const p = refs[kind];
      if (p === undefined || (kind === 'antivirus' && p === BUILTIN_ANTIVIRUS_PROFILE) || p in known[kind]) continue;
      add([...at, kind], `no ${kind} profile named "${p}" (defined: ${Object.keys(known[kind]).join(', ') || 'none'})`);
    }
    if (refs.group !== undefined && !(refs.group in cfg['profile-groups'])) {
      add([...at, 'group'], `no profile group named "${refs.group}" (defined: ${Object.keys(cfg['profile-groups']).join(', ') || 'none'})`);
    }
  };
  for (const [name, g] of Object.entries(cfg['profile-groups'])) checkRefs(g, ['profile-groups', name]);
  checkRefs(cfg['default-rule'], ['default-rule']);
  cfg.rules.forEach((r, i) => {
    checkRefs(r.profiles, ['rules', i, 'profiles']);
    for (const [j, name] of (r.match.listeners ?? []).entries()) {
      if (!seen.has(name)) add(['rules', i, 'match', 'listeners', j], `no listener named "${name}"`);
    }
  });
  if (problems.length) throw new ConfigError(formatIssues(problems, root, lc, source));
}

function formatIssues(issues: readonly z.core.$ZodIssue[], root: unknown, lc: LineCounter, source: string): string {
  return issues
    .slice(0, 10)
    .map((issue) => {
      const path = issue.path.map((k) => String(k));
      // An unknown key is best shown where the key itself is written.
      const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
      const where = locate(root, unknownKey === undefined ? path : [...path, unknownKey], lc, unknownKey !== undefined);
      const key = formatPath(issue.path as (string | number)[]) || '(top level)';
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      if (issue.code === 'invalid_value' && 'values' in issue) message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      return `${source}:${where.line}:${where.col}: ${key}: ${message}`;
    })
    .join('\n');
}

function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Line and column of the deepest YAML node on the path (the key itself for unknown keys). */
function locate(root: unknown, path: string[], lc: LineCounter, atKey = false): { line: number; col: number } {
  let node = root as YamlNode | null | undefined;
  let best = node;
  for (const [i, key] of path.entries()) {
    if (!node) break;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (!pair) break;
      const wantKey = atKey && i === path.length - 1;
      node = wantKey ? (pair.key as YamlNode) : ((pair.value as YamlNode | null) ?? (pair.key as YamlNode));
    } else if ('items' in node && Array.isArray((node as { items: unknown[] }).items)) {
      node = (node as { items: YamlNode[] }).items[Number(key)];
    } else break;
    if (node) best = node;
  }
  const offset = best?.range?.[0] ?? 0;
  return lc.linePos(offset);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
