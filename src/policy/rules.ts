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
}

export interface CompiledRule {
  readonly name: string;
  readonly antivirus: string | undefined;
  matches(facts: TransactionFacts): boolean;
}

export function compileRules(rules: readonly RuleConfig[]): CompiledRule[] {
  return rules.map(compileRule);
}

function compileRule(rule: RuleConfig): CompiledRule {
  const conditions: Array<(f: TransactionFacts) => boolean> = [];
  const { listeners, client, from, to } = rule.match;
  if (listeners?.length) {
    const set = new Set(listeners);
    conditions.push((f) => set.has(f.listener));
  }
  if (client?.length) conditions.push(compileAddressMatch(client));
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
    antivirus: rule.profiles.antivirus,
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
 * `example.com` for a whole domain, `*` wildcards (`*@*.example.com`), `<>` the null sender.
 */
export function compileEnvelopeMatch(patterns: readonly string[]): (address: string) => boolean {
  const tests = patterns.map((p): ((a: string) => boolean) => {
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
