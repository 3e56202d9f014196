/**
 * The decision: (transaction facts, scan outcome) → what happens to the message, and why.
 * A pure function of its inputs and the compiled policy; tested with tables.
 *
 * Order of reasoning:
 *   1. the first matching rule (or the built-in default rule) picks the antivirus profile;
 *   2. a scan that could not complete (engine error, deadline, an inspection limit) gets the
 *      profile's `on-error` action: never "clean";
 *   3. every finding gets the profile's `action`; content that cannot be inspected (encrypted
 *      or unsupported archives, message/partial) gets `on-unscannable`; an archive limit
 *      (zip bomb, too many members, too deep) gets `on-archive-limit`; a MIME limit gets
 *      `on-error`. The most severe action wins; a finding wins a tie, and the finding or
 *      event that decided is named;
 *   4. nothing found: allow.
 */

import { ARCHIVE_LIMIT, type AnomalyEvent, INCOMPLETE_INSPECTION, SUSPICIOUS_STRUCTURE } from '../events.ts';
import { threatIdFor } from '../inspect/engines/engine.ts';
import type { FileInfo, Finding } from '../inspect/types.ts';
import { type Action, severityOf } from './actions.ts';
import { type AntivirusProfile, BUILTIN_ANTIVIRUS_PROFILE, type Config, DEFAULT_REPLIES } from './config-schema.ts';
import { type CompiledRule, compileRules, type TransactionFacts } from './rules.ts';

export const DEFAULT_RULE_NAME = 'default';

export type ScanOutcome =
  | {
      readonly ok: true;
      readonly findings: readonly Finding[];
      readonly events: readonly AnomalyEvent[];
      /** The files inspected, to name the file an event was raised on (optional). */
      readonly files?: readonly FileInfo[];
    }
  | { readonly ok: false; readonly error: string; readonly events: readonly AnomalyEvent[] };

export interface Decision {
  readonly action: Action;
  readonly rule: string;
  readonly profile: string;
  /** One line a human can read: why this action. */
  readonly reason: string;
  /**
   * The finding whose action won. When an event decided (an encrypted archive, a zip bomb),
   * a finding of engine `inspector` named after the event, so it is logged like a threat.
   */
  readonly deciding: Finding | null;
  /** Threat name for reply templates: the deciding finding's, or a label for errors. */
  readonly threat: string;
  /** Reply templates of the profile that decided. */
  readonly replies: AntivirusProfile['replies'];
}

export const BUILTIN_PROFILE: AntivirusProfile = Object.freeze({
  action: 'block',
  'on-error': 'tempfail',
  'on-archive-limit': 'block',
  'on-unscannable': 'block',
  replies: Object.freeze({ ...DEFAULT_REPLIES }),
});

export class Policy {
  readonly #rules: CompiledRule[];
  readonly #profiles: Readonly<Record<string, AntivirusProfile>>;

  constructor(cfg: Pick<Config, 'rules' | 'profiles'>) {
    this.#rules = compileRules(cfg.rules);
    this.#profiles = cfg.profiles.antivirus;
  }

  /** The rule that governs a transaction: first match, else the built-in default. */
  ruleFor(facts: TransactionFacts): { rule: string; profileName: string; profile: AntivirusProfile } {
    const rule = this.#rules.find((r) => r.matches(facts));
    const profileName = rule?.antivirus ?? BUILTIN_ANTIVIRUS_PROFILE;
    const profile = this.#profiles[profileName] ?? BUILTIN_PROFILE;
    return { rule: rule?.name ?? DEFAULT_RULE_NAME, profileName, profile };
  }

  decide(facts: TransactionFacts, outcome: ScanOutcome): Decision {
    const { rule, profileName, profile } = this.ruleFor(facts);
    const base = { rule, profile: profileName, replies: profile.replies };
    if (!outcome.ok) {
      return { ...base, action: profile['on-error'], reason: `scan incomplete: ${outcome.error}`, deciding: null, threat: 'scan-error' };
    }
    // Every reason to act, with its action; the most severe wins (a finding on a tie, since
    // it is the most precise explanation).
    let best: Decision | null = null;
    const consider = (d: Decision): void => {
      if (best === null || severityOf(d.action) > severityOf(best.action)) best = d;
    };
    for (const f of outcome.findings) {
      const where = f.file.name ? `${f.file.path} (${f.file.name})` : f.file.path;
      consider({ ...base, action: profile.action, reason: `${f.engine} found ${f.threat} in ${where}`, deciding: f, threat: f.threat });
    }
    const eventRule = (e: AnomalyEvent): { action: Action; why: string } | null => {
      if (SUSPICIOUS_STRUCTURE.has(e.name)) return { action: profile['on-unscannable'], why: 'cannot be inspected' };
      if (ARCHIVE_LIMIT.has(e.name)) return { action: profile['on-archive-limit'], why: 'archive limit' };
      if (INCOMPLETE_INSPECTION.has(e.name)) return { action: profile['on-error'], why: 'inspection incomplete' };
      return null;
    };
    for (const e of outcome.events) {
      const r = eventRule(e);
      if (r === null) continue;
      const detail = e.detail ? ` (${e.detail})` : '';
      const f = eventFinding(e, outcome.files ?? []);
      consider({ ...base, action: r.action, reason: `${r.why}: ${e.name} at ${e.where}${detail}`, deciding: f, threat: e.name });
    }
    if (best !== null) return best;
    return { ...base, action: 'allow', reason: 'no threat found', deciding: null, threat: '' };
  }
}

export const INSPECTOR_ENGINE = 'inspector';

/** An event as a finding of the inspector itself, on the file it was raised on when known. */
function eventFinding(e: AnomalyEvent, files: readonly FileInfo[]): Finding {
  const file =
    files.find((f) => f.path === e.where) ??
    files.find((f) => e.where.startsWith(`${f.path}/`) && f.depth === 0) ?? {
      path: e.where, name: null, declaredType: null, detectedType: '', flags: [], depth: 0, size: 0, sha256: '', md5: '', encoding: null,
    };
  return {
    engine: INSPECTOR_ENGINE,
    threat: e.name,
    threatId: threatIdFor(INSPECTOR_ENGINE, e.name),
    signature: `event:${e.name}${e.detail ? ` ${e.detail}` : ''}`.slice(0, 200),
    severity: ARCHIVE_LIMIT.has(e.name) ? 'high' : 'medium',
    file,
  };
}

/** Fill a reply template's placeholders; values are censored to printable ASCII. */
export function renderReply(template: string, values: { threat: string; id: string; rule: string }): { code: number; text: string } {
  const clean = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  const text = template.replace(/\{(threat|id|rule)\}/g, (_, k: 'threat' | 'id' | 'rule') => clean(values[k]));
  return { code: Number(text.slice(0, 3)), text: text.slice(4) };
}
