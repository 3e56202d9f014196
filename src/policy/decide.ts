/**
 * The decision: (transaction facts, scan outcome) → what happens to the message, and why.
 * A pure function of its inputs and the compiled policy; tested with tables, and what
 * `smtpwall policy test` prints.
 *
 * Order of reasoning:
 *   1. the first matching security rule (or the default rule) picks the profiles: antivirus,
 *      file blocking, data filtering;
 *   2. a scan that could not complete (engine error, deadline) gets the antivirus profile's
 *      `on-error` action: never "clean";
 *   3. every reason to act becomes a verdict with an action:
 *      - each engine finding: the profile's `action` (`analysis-action` for analysis), or a
 *        threat exception's action when one names its threat id (and sender/recipient);
 *      - events: content that cannot be inspected → `on-unscannable`, archive limits →
 *        `on-archive-limit`, MIME limits → `on-error`;
 *      - file blocking: each file whose type, flags or extension a rule names → alert, or the
 *        profile's `action` for block (and for continue, which SMTP cannot ask a user about);
 *      - data filtering: the weighted count of the profile's patterns against its thresholds;
 *   4. the most severe action wins (a finding wins a tie: the most precise explanation); no
 *      verdict: allow. All verdicts are kept for the log and the explanation.
 */

import { ARCHIVE_LIMIT, type AnomalyEvent, INCOMPLETE_INSPECTION, SUSPICIOUS_STRUCTURE } from '../events.ts';
import { threatIdFor } from '../inspect/engines/engine.ts';
import { extensionOf } from '../inspect/file-flags.ts';
import type { FileInfo, Finding, ScanError, ScanResult } from '../inspect/types.ts';
import { describeError } from '../errors.ts';
import { type Action, severityOf } from './actions.ts';
import {
  type AntivirusProfile,
  BUILTIN_ANTIVIRUS_PROFILE,
  type Config,
  type DataFilteringProfile,
  DEFAULT_REPLIES,
  type FileBlockingProfile,
} from './config-schema.ts';
import { compileEnvelopeMatch, type CompiledRule, compileRules, resolveProfiles, type RuleProfiles, type TransactionFacts } from './rules.ts';

export const DEFAULT_RULE_NAME = 'default';
/** What `action: default` means for SMTP here. The firewall this follows alerts; we block. */
export const SMTP_DEFAULT_ACTION: Action = 'block';
export const INSPECTOR_ENGINE = 'inspector';
export const FILE_BLOCKING_ENGINE = 'file-blocking';
/** The engine name of a data-filtering verdict's finding (the counts come from the DLP engine). */
export const DATA_FILTERING_ENGINE = 'data-filtering';

export type ScanOutcome =
  | {
      readonly ok: true;
      readonly findings: readonly Finding[];
      readonly events: readonly AnomalyEvent[];
      /** The files inspected: file blocking judges them, events name them. */
      readonly files?: readonly FileInfo[];
      /** Engines that failed on an object; the others' findings still count. */
      readonly errors?: readonly ScanError[];
    }
  | { readonly ok: false; readonly error: string; readonly events: readonly AnomalyEvent[] };

/** One reason to act, from one profile. */
export interface Verdict {
  readonly source: 'antivirus' | 'exception' | 'inspection' | 'file-blocking' | 'data-filtering';
  readonly action: Action;
  /** The verdict's profile keeps a copy of what it blocks or rejects. */
  readonly quarantine?: boolean;
  readonly reason: string;
  /** What is logged as the threat: an engine finding, or one made for this verdict. */
  readonly finding: Finding;
}

export interface Decision {
  readonly action: Action;
  readonly rule: string;
  /** The antivirus profile (reply texts come from it). */
  readonly profile: string;
  readonly profiles: RuleProfiles;
  /** One line a human can read: why this action. */
  readonly reason: string;
  /** The finding whose verdict won (an engine's, or one made for an event, file or DLP score). */
  readonly deciding: Finding | null;
  /** Threat name for reply templates. */
  readonly threat: string;
  readonly replies: AntivirusProfile['replies'];
  /** Every verdict, most severe first. */
  readonly verdicts: readonly Verdict[];
  /** Keep a copy: the deciding profile says `quarantine: true` and the action blocks or rejects. */
  readonly quarantine: boolean;
}

export const BUILTIN_PROFILE: AntivirusProfile = Object.freeze({
  action: 'default',
  'analysis-action': 'default',
  'grayware-action': 'alert',
  'analysis-on-timeout': 'tempfail',
  exceptions: [],
  quarantine: false,
  'on-error': 'tempfail',
  'on-archive-limit': 'block',
  'on-unscannable': 'block',
  replies: Object.freeze({ ...DEFAULT_REPLIES }),
});

const resolve = (a: Action | 'default'): Action => (a === 'default' ? SMTP_DEFAULT_ACTION : a);

interface CompiledException {
  readonly threatId: string;
  readonly action: Action;
  readonly applies: (facts: TransactionFacts) => boolean;
}

export class Policy {
  readonly #rules: CompiledRule[];
  readonly #default: RuleProfiles;
  readonly #av: Readonly<Record<string, AntivirusProfile>>;
  readonly #fb: Readonly<Record<string, FileBlockingProfile>>;
  readonly #dlp: Readonly<Record<string, DataFilteringProfile>>;
  readonly #exceptions = new Map<string, CompiledException[]>();

  constructor(cfg: Pick<Config, 'rules' | 'profiles'> & Partial<Pick<Config, 'profile-groups' | 'default-rule'>>) {
    const groups = cfg['profile-groups'] ?? {};
    this.#rules = compileRules(cfg.rules, groups);
    this.#default = resolveProfiles(cfg['default-rule'] ?? {}, groups);
    this.#av = cfg.profiles.antivirus;
    this.#fb = cfg.profiles['file-blocking'] ?? {};
    this.#dlp = cfg.profiles['data-filtering'] ?? {};
    for (const [name, p] of Object.entries(this.#av)) {
      this.#exceptions.set(
        name,
        p.exceptions.map((e) => {
          const from = e.from ? compileEnvelopeMatch(e.from) : null;
          const to = e.to ? compileEnvelopeMatch(e.to) : null;
          return {
            threatId: e['threat-id'],
            action: e.action,
            applies: (f: TransactionFacts) => (!from || from(f.mailFrom)) && (!to || f.rcptTo.some(to)),
          };
        }),
      );
    }
  }

  readonly #resolvedProfiles = new WeakMap<object, RuleProfiles>();

  /** The rule that governs a transaction: first match, else the default rule. */
  ruleFor(facts: TransactionFacts): { rule: string; profileName: string; profile: AntivirusProfile; profiles: RuleProfiles } {
    const rule = this.#rules.find((r) => r.matches(facts));
    const profiles = rule ?? this.#default;
    const profileName = profiles.antivirus ?? BUILTIN_ANTIVIRUS_PROFILE;
    const profile = this.#av[profileName] ?? BUILTIN_PROFILE;
    // One resolved copy per rule (the policy is immutable; a reload builds a new one): asked
    // several times a message, and a copy with a property after a spread is slow in V8.
    let resolved = this.#resolvedProfiles.get(profiles);
    if (resolved === undefined) this.#resolvedProfiles.set(profiles, (resolved = { ...profiles, antivirus: profileName }));
    return { rule: rule?.name ?? DEFAULT_RULE_NAME, profileName, profile, profiles: resolved };
  }

  /** Whether a block or reject under this transaction's rule would keep a copy. */
  mayQuarantine(facts: TransactionFacts): boolean {
    const { profile, profiles } = this.ruleFor(facts);
    const fb = profiles.fileBlocking === undefined ? undefined : this.#fb[profiles.fileBlocking];
    const dlp = profiles.dataFiltering === undefined ? undefined : this.#dlp[profiles.dataFiltering];
    return profile.quarantine || Boolean(fb?.quarantine) || Boolean(dlp?.quarantine);
  }

  /**
   * The whole judgement of one message, shared by the gateway's gate and `smtpwall policy
   * test`: end the scan (a scan that fails is an outcome, never "clean"), then decide.
   */
  async evaluate(
    facts: TransactionFacts,
    scan: () => Promise<ScanResult>,
    onScanError?: (err: unknown) => void,
  ): Promise<{ decision: Decision; result: ScanResult | null; outcome: ScanOutcome }> {
    let outcome: ScanOutcome;
    let result: ScanResult | null = null;
    try {
      result = await scan();
      outcome = { ok: true, findings: result.findings, events: result.events, files: result.files, errors: result.errors };
    } catch (err) {
      onScanError?.(err);
      outcome = { ok: false, error: describeError(err), events: [] };
    }
    return { decision: this.decide(facts, outcome), result, outcome };
  }

  decide(facts: TransactionFacts, outcome: ScanOutcome): Decision {
    const { rule, profileName, profile, profiles } = this.ruleFor(facts);
    // Decisions are written out field by field: `{ ...base, action, … }` took V8's slow path
    // for a spread followed by properties, 12 µs a message (measured: 13 → 0.8 µs a decision).
    const replies = profile.replies;
    if (!outcome.ok) {
      return { rule, profile: profileName, profiles, replies, action: profile['on-error'], reason: `scan incomplete: ${outcome.error}`, deciding: null, threat: 'scan-error', verdicts: [], quarantine: false };
    }
    const verdicts: Verdict[] = [
      ...this.#antivirus(profileName, profile, facts, outcome.findings),
      ...eventVerdicts(profile, outcome.events, outcome.files ?? []),
      ...errorVerdicts(profile, outcome.errors ?? [], outcome.files ?? []),
    ];
    const fb = profiles.fileBlocking === undefined ? undefined : this.#fb[profiles.fileBlocking];
    if (fb) verdicts.push(...fileBlocking(profiles.fileBlocking!, fb, outcome.files ?? [], outcome.events));
    const dlp = profiles.dataFiltering === undefined ? undefined : this.#dlp[profiles.dataFiltering];
    if (dlp) {
      const v = dataFiltering(profiles.dataFiltering!, dlp, outcome.findings);
      if (v) verdicts.push(v);
    }
    // Most severe first; among equals, engine findings first (the stable sort keeps their order).
    const order = (v: Verdict): number => (v.source === 'antivirus' || v.source === 'exception' ? 0 : 1);
    verdicts.sort((a, b) => severityOf(b.action) - severityOf(a.action) || order(a) - order(b));
    const top = verdicts[0];
    if (!top) return { rule, profile: profileName, profiles, replies, action: 'allow', reason: 'no threat found', deciding: null, threat: '', verdicts, quarantine: false };
    const keep = (top.action === 'block' || top.action === 'reject') && (top.quarantine ?? profile.quarantine);
    return { rule, profile: profileName, profiles, replies, action: top.action, reason: top.reason, deciding: top.finding, threat: top.finding.threat, verdicts, quarantine: keep };
  }

  #antivirus(name: string, profile: AntivirusProfile, facts: TransactionFacts, findings: readonly Finding[]): Verdict[] {
    const exceptions = this.#exceptions.get(name) ?? [];
    return findings
      .filter((f) => f.verdict !== 'count')
      .map((f): Verdict => {
        const where = f.file.name && !f.file.path.endsWith(f.file.name) ? `${f.file.path} (${f.file.name})` : f.file.path;
        const found = `${f.engine} found ${f.threat} in ${where}`;
        const ex = exceptions.find((e) => e.threatId === f.threatId && e.applies(facts));
        if (ex) return { source: 'exception', action: ex.action, reason: `${found}; threat exception ${f.threatId} → ${ex.action}`, finding: f };
        return { source: 'antivirus', action: findingAction(profile, f), reason: found, finding: f };
      });
  }
}

/** The antivirus profile's action for a finding, by what the finding says (its typed verdict). */
function findingAction(profile: AntivirusProfile, f: Finding): Action {
  switch (f.verdict ?? 'malicious') {
    case 'grayware':
      return profile['grayware-action'];
    case 'pending':
      return profile['analysis-on-timeout'];
    default:
      if (f.basis !== 'analysis') return resolve(profile.action);
      return resolve(profile['analysis-action'] === 'default' ? profile.action : profile['analysis-action']);
  }
}

function eventVerdicts(profile: AntivirusProfile, events: readonly AnomalyEvent[], files: readonly FileInfo[]): Verdict[] {
  const out: Verdict[] = [];
  for (const e of events) {
    const rule = SUSPICIOUS_STRUCTURE.has(e.name)
      ? { action: profile['on-unscannable'], why: 'cannot be inspected' }
      : ARCHIVE_LIMIT.has(e.name)
        ? { action: profile['on-archive-limit'], why: 'archive limit' }
        : INCOMPLETE_INSPECTION.has(e.name)
          ? { action: profile['on-error'], why: 'inspection incomplete' }
          : null;
    if (rule === null) continue;
    const detail = e.detail ? ` (${e.detail})` : '';
    out.push({ source: 'inspection', action: rule.action, reason: `${rule.why}: ${e.name} at ${e.where}${detail}`, finding: eventFinding(e, files) });
  }
  return out;
}

/**
 * An engine that failed on an object: the profile's on-error, beside what the other engines
 * found — a signature match still blocks when clamd is down, whatever on-error says.
 */
function errorVerdicts(profile: AntivirusProfile, errors: readonly ScanError[], files: readonly FileInfo[]): Verdict[] {
  const first = errors[0];
  if (!first) return [];
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return [{
    source: 'inspection',
    action: profile['on-error'],
    reason: `scan incomplete: ${first.message} at ${first.path}${more}`,
    finding: made(first.engine, 'scan-error', `error:${first.message}`, 'medium', fileAt(first.path, files)),
  }];
}

/** The file an event or path is about: exact path, else the top-level file that holds it. */
function fileAt(where: string, files: readonly FileInfo[]): FileInfo {
  return (
    files.find((f) => f.path === where) ??
    files.find((f) => where.startsWith(`${f.path}/`) && f.depth === 0) ?? {
      path: where, name: null, declaredType: null, detectedType: '', flags: [], depth: 0, layers: 0, size: 0, sha256: '', md5: '', encoding: null,
    }
  );
}

function made(engine: string, threat: string, signature: string, severity: Finding['severity'], file: FileInfo): Finding {
  return { engine, threat, threatId: threatIdFor(engine, threat), signature: signature.slice(0, 300), severity, file };
}

/** An event as a finding of the inspector itself, on the file it was raised on when known. */
function eventFinding(e: AnomalyEvent, files: readonly FileInfo[]): Finding {
  return made(INSPECTOR_ENGINE, e.name, `event:${e.name}${e.detail ? ` ${e.detail}` : ''}`, ARCHIVE_LIMIT.has(e.name) ? 'high' : 'medium', fileAt(e.where, files));
}

const UNSCANNABLE_TYPES = new Set(['encrypted-zip', 'encrypted-rar', 'encrypted-7z']);

/** The names file blocking knows a file by: its detected type, its flags, special types. */
export function fileBlockingTypes(f: FileInfo, events: readonly AnomalyEvent[], multiEncodingThreshold: number): Set<string> {
  const types = new Set<string>([f.detectedType, ...f.flags]);
  if (f.layers > multiEncodingThreshold) types.add('multi-encoding');
  const unreadable = events.some(
    (e) => (e.name === 'ARCHIVE_UNSUPPORTED' || e.name === 'ARCHIVE_CORRUPT' || e.name === 'ARCHIVE_ENCRYPTED') &&
      (e.where === f.path || (f.name !== null && e.where === `${f.path}/${f.name}`)),
  );
  if (UNSCANNABLE_TYPES.has(f.detectedType) || unreadable) types.add('unscannable');
  return types;
}

function fileBlocking(name: string, profile: FileBlockingProfile, files: readonly FileInfo[], events: readonly AnomalyEvent[]): Verdict[] {
  const out: Verdict[] = [];
  for (const f of files) {
    if (f.path === 'message') continue;
    const types = fileBlockingTypes(f, events, profile['multi-encoding-threshold']);
    // Every name a parser gives the file: the recipient's client may show any of them.
    const exts = [f.name, ...(f.otherNames ?? [])].flatMap((n) => (n === null ? [] : [extensionOf(n)])).filter((e): e is string => e !== null);
    let best: { rule: string; action: 'alert' | 'block' | 'continue'; matched: string } | null = null;
    for (const r of profile.rules) {
      if (r.direction === 'download') continue; // SMTP carries files from client to server
      const byType = r.types.find((t) => types.has(t));
      const byExt = r.extensions.find((e) => exts.includes(e.toLowerCase().replace(/^\./, '')));
      const matched = byType ? `type ${byType}` : byExt ? `extension .${byExt.replace(/^\./, '')}` : null;
      if (matched === null) continue;
      // Most restrictive wins: block and continue over alert.
      if (best === null || (best.action === 'alert' && r.action !== 'alert')) best = { rule: r.name, action: r.action, matched };
    }
    if (best === null) continue;
    const action = best.action === 'alert' ? 'alert' : profile.action;
    const note = best.action === 'continue' ? ' (continue: no user to ask on SMTP, treated as block)' : '';
    const where = f.name && !f.path.endsWith(f.name) ? `${f.path} (${f.name})` : f.path;
    out.push({
      source: 'file-blocking',
      action,
      quarantine: profile.quarantine,
      reason: `file blocking ${name}/${best.rule}: ${best.matched} in ${where}${note}`,
      finding: made(FILE_BLOCKING_ENGINE, `file:${best.matched.replace(/^(type|extension) /, '')}`, `file-blocking:${name}/${best.rule} ${best.matched}${note}`, 'medium', f),
    });
  }
  return out;
}

/** The weighted score of the profile's patterns over the whole message. */
function dataFiltering(name: string, profile: DataFilteringProfile, findings: readonly Finding[]): Verdict | null {
  let score = 0;
  const parts: string[] = [];
  let first: Finding | null = null;
  for (const p of profile.patterns) {
    const key = `${name}/${p.name}`;
    const hits = findings.filter((f) => f.verdict === 'count' && f.threat === key);
    const count = hits.reduce((n, f) => n + (f.matches?.count ?? 0), 0);
    if (count === 0) continue;
    first ??= hits[0]!;
    score += count * p.weight;
    const samples = hits.flatMap((f) => f.matches?.samples ?? []).slice(0, 3);
    parts.push(`${p.name} x${count} (${samples.join(', ')})`);
  }
  if (first === null || score < profile['alert-threshold']) return null;
  const action = score >= profile['block-threshold'] ? profile.action : 'alert';
  const summary = `data filtering ${name}: score ${score} (alert ${profile['alert-threshold']}, block ${profile['block-threshold']}): ${parts.join('; ')}`;
  return { source: 'data-filtering', action, quarantine: profile.quarantine, reason: summary, finding: made(DATA_FILTERING_ENGINE, `DLP:${name}`, summary, 'medium', { ...first.file }) };
}

/** Fill a reply template's placeholders; values are censored to printable ASCII. */
export function renderReply(template: string, values: { threat: string; id: string; rule: string }): { code: number; text: string } {
  const clean = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  const text = template.replace(/\{(threat|id|rule)\}/g, (_, k: 'threat' | 'id' | 'rule') => clean(values[k]));
  return { code: Number(text.slice(0, 3)), text: text.slice(4) };
}

/** The reply a decision gives the client when it is the gateway's to give (block, reject, tempfail). */
export function decisionReply(decision: Decision, transactionId: string): { code: number; text: string } | null {
  const values = { threat: decision.threat || 'none', id: transactionId, rule: decision.rule };
  const r = decision.replies;
  if (decision.action === 'block') return renderReply(r.block, values);
  if (decision.action === 'reject') return renderReply(r.reject, values);
  if (decision.action === 'tempfail') return renderReply(r.tempfail, values);
  return null;
}
