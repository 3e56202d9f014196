/**
 * Security rule matching: the first rule whose every given condition matches the transaction
 * wins (an absent condition matches anything). Pure functions over transaction facts.
 */

import { BlockList, isIP } from 'node:net';
import type { RuleConfig } from './config-schema.ts';

/** What is known about a transaction when the policy decides. */
export interface TransactionFacts {
  readonly listener: string;
  readonly clientAddress: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** The receiving server's address (relay: the upstream; transparent: the original destination). */
  readonly serverAddress?: string;
  /** The user the upstream accepted with AUTH, if any. */
  readonly user?: string | null;
  /** The listener's direction label. */
  readonly direction?: string;
}

/** The profiles a rule attaches, by name (a group already expanded). */
export interface RuleProfiles {
  readonly antivirus: string | undefined;
  readonly fileBlocking: string | undefined;
  readonly dataFiltering: string | undefined;
}

export interface CompiledRule extends RuleProfiles {
  readonly name: string;
  matches(facts: TransactionFacts): boolean;
}

export type ProfileGroups = Readonly<Record<string, { antivirus?: string; 'file-blocking'?: string; 'data-filtering'?: string }>>;

export function compileRules(rules: readonly RuleConfig[], groups: ProfileGroups = {}): CompiledRule[] {
  return rules.map((r) => compileRule(r, groups));
}

/** A rule's (or the default rule's) profile names, with a group expanded. */
export function resolveProfiles(refs: RuleConfig['profiles'], groups: ProfileGroups): RuleProfiles {
  const g = refs.group === undefined ? {} : (groups[refs.group] ?? {});
  return {
    antivirus: refs.antivirus ?? g.antivirus,
    fileBlocking: refs['file-blocking'] ?? g['file-blocking'],
    dataFiltering: refs['data-filtering'] ?? g['data-filtering'],
  };
}

function compileRule(rule: RuleConfig, groups: ProfileGroups): CompiledRule {
  const conditions: Array<(f: TransactionFacts) => boolean> = [];
  const { listeners, client, server, from, to, user, direction } = rule.match;
  if (listeners?.length) {
    const set = new Set(listeners);
    conditions.push((f) => set.has(f.listener));
  }
  if (client?.length) conditions.push(compileAddressMatch(client));
  if (server?.length) {
    const test = compileAddressList(server);
    conditions.push((f) => test(f.serverAddress ?? ''));
  }
  if (user?.length) {
    const named = compileEnvelopeMatch(user.filter((u) => u !== '<none>'));
    const none = user.includes('<none>');
    conditions.push((f) => (f.user ? named(f.user) : none));
  }
  if (direction?.length) {
    const set = new Set(direction);
    conditions.push((f) => set.has(f.direction ?? ''));
  }
  if (from?.length) {
    const m = compileEnvelopeMatch(from);
    conditions.push((f) => m(f.mailFrom));
  }
  if (to?.length) {
    const m = compileEnvelopeMatch(to);
    conditions.push((f) => f.rcptTo.some(m));
  }
  return {
    name: rule.name,
    ...resolveProfiles(rule.profiles, groups),
    matches: (f) => conditions.every((c) => c(f)),
  };
}

function compileAddressMatch(entries: readonly string[]): (f: TransactionFacts) => boolean {
  const test = compileAddressList(entries);
  return (f) => test(f.clientAddress);
}

/**
 * Positive entries: the address must be in one of them (if any); negated (`!`): in none.
 * An empty list matches nothing.
 */
export function compileAddressList(entries: readonly string[]): (address: string) => boolean {
  if (entries.length === 0) return () => false;
  const allow = new BlockList();
  const deny = new BlockList();
  let positives = 0;
  for (const e of entries) {
    const negated = e.startsWith('!');
    const list = negated ? deny : allow;
    if (!negated) positives++;
    const [ip, bits] = (negated ? e.slice(1) : e).split('/') as [string, string | undefined];
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(bits), family);
  }
  return (address) => {
    const addr = address.startsWith('::ffff:') ? address.slice(7) : address;
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(addr) === 0) return false;
    if (deny.check(addr, family)) return false;
    return positives === 0 || allow.check(addr, family);
  };
}

/**
 * Envelope address patterns, case-insensitive: `user@example.com` exact, `@example.com` or
 * `example.com` for a whole domain, `*` wildcards (`*@*.example.com`), `/regex/` (searched,
 * case-insensitive; anchor it with ^…$ to match whole addresses), `<>` the null sender.
 */
export function compileEnvelopeMatch(patterns: readonly string[]): (address: string) => boolean {
  const tests = patterns.map((p): ((a: string) => boolean) => {
    if (p.length > 2 && p.startsWith('/') && p.endsWith('/')) {
      const re = new RegExp(p.slice(1, -1), 'i');
      return (a) => re.test(a);
    }
    const pat = p.toLowerCase();
    if (pat === '<>') return (a) => a === '';
    if (pat.includes('*')) {
      const re = new RegExp(`^${pat.split('*').map(escapeRegex).join('.*')}$`);
      return (a) => re.test(a);
    }
    if (pat.startsWith('@')) return (a) => a.endsWith(pat);
    if (!pat.includes('@')) return (a) => a.endsWith(`@${pat}`);
    return (a) => a === pat;
  });
  return (address) => {
    const a = address.toLowerCase();
    return tests.some((t) => t(a));
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
