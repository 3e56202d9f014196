/**
 * Every configuration parameter, generated from the one schema (config-schema.ts): its key,
 * kind, default and meaning. `smtpwall config show` prints the effective values beside the
 * defaults (like Postfix's `postconf -n` / `postconf -d`), and the README's configuration
 * reference is this table — a test fails when the README and the schema differ.
 */

import { z } from 'zod';
import { configSchema } from './config-schema.ts';

export interface Parameter {
  /** `limits.max-message-size`, `listeners[].tls.mode`, `profiles.antivirus.NAME.action`. */
  readonly key: string;
  /** `size`, `duration`, `integer 1..64`, `true | false`, `relay | transparent`, `list of text`, … */
  readonly kind: string;
  /** The default as written in a config (JSON for lists); undefined: none (required or optional). */
  readonly default: unknown;
  readonly required: boolean;
  readonly description: string;
  /** Per key segment: an optional section (absent unless written, like engines.clamd). */
  readonly optional: readonly boolean[];
}

type Node = {
  type?: string | string[];
  description?: string;
  unit?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  items?: Node;
  minimum?: number;
  maximum?: number;
};

let cached: Parameter[] | null = null;

export function parameters(): readonly Parameter[] {
  if (cached) return cached;
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Node;
  const out: Parameter[] = [];
  walk(root, '', true, out, []);
  cached = out;
  return out;
}

/** Objects are walked into; lists of objects as `key[]`, maps as `key.NAME`; everything else is a leaf. */
function walk(node: Node, key: string, required: boolean, out: Parameter[], opt: boolean[]): void {
  const section = (k: string, kind: string, description: string): void => void out.push({ key: k, kind, default: undefined, required, description, optional: opt });
  if (isObject(node) && node.properties) {
    // An object without a default that is not required is a section present only when written.
    const here = key ? [...opt.slice(0, -1), !required && node.default === undefined] : opt;
    if (key && node.description && !out.some((p) => p.key === key)) section(key, 'section', node.description);
    for (const [name, child] of Object.entries(node.properties)) walk(child, key ? `${key}.${name}` : name, node.required?.includes(name) ?? false, out, [...here, false]);
    return;
  }
  if (isObject(node) && typeof node.additionalProperties === 'object') {
    section(`${key}.NAME`, 'section', node.description ?? `named entries (${key.split('.').at(-1)})`);
    walk(node.additionalProperties, `${key}.NAME`, true, out, [...opt, false]);
    return;
  }
  if (node.type === 'array' && node.items && isObject(node.items) && node.items.properties) {
    section(`${key}[]`, 'list', node.description ?? `a list of entries (${key.split('.').at(-1)})`);
    walk(node.items, `${key}[]`, true, out, opt);
    return;
  }
  out.push({ key, kind: kindOf(node), default: node.default, required: required && node.default === undefined, description: node.description ?? '', optional: opt });
}

const isObject = (n: Node): boolean => n.type === 'object';

function kindOf(n: Node): string {
  if (n.unit) return n.unit;
  if (n.enum) return n.enum.join(' | ');
  if (n.const !== undefined) return String(n.const);
  if (n.anyOf) return n.anyOf.map(kindOf).join(' | ');
  if (n.type === 'boolean') return 'true | false';
  if (n.type === 'integer' || n.type === 'number') {
    const range = n.minimum !== undefined && n.maximum !== undefined ? ` ${n.minimum}..${n.maximum}` : n.minimum !== undefined ? ` ≥ ${n.minimum}` : '';
    return `${n.type === 'integer' ? 'integer' : 'number'}${range}`;
  }
  if (n.type === 'array') return `list of ${n.items ? kindOf(n.items) : 'values'}`;
  return 'text';
}

/** A value as it is written in YAML (flow style for lists and maps). */
export function formatValue(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return /^[\w./:@-]+$/.test(v) && v !== '' ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

/** The README's reference table (Markdown), in schema order. */
export function referenceMarkdown(): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = parameters().map((p) => {
    const def = p.kind === 'section' || p.kind === 'list' ? '' : p.required ? '(required)' : p.default === undefined ? '(none)' : `\`${esc(formatValue(p.default))}\``;
    return `| \`${p.key}\` | ${esc(p.kind)} | ${def} | ${esc(p.description)} |`;
  });
  return ['| key | kind | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

export interface ShownParameter {
  /** The key with indexes and names filled in: `listeners[0].upstream`, `profiles.antivirus.strict.action`. */
  readonly key: string;
  readonly value: unknown;
  readonly default: unknown;
  /** Set in the file (else: the default applies). */
  readonly set: boolean;
}

/**
 * The effective configuration: every leaf parameter of the file's document (as written in it,
 * sizes and durations in their units) or, where the file is silent, its default. Lists of
 * entries and named maps are shown per entry; an entry that is absent has no leaves shown.
 */
export function effectiveParameters(doc: unknown): ShownParameter[] {
  const out: ShownParameter[] = [];
  for (const p of parameters()) {
    if (p.kind === 'section' || p.kind === 'list') continue;
    for (const { key, value } of resolve(doc, p.key.split('.'), '', p.optional)) {
      out.push({ key, value: value === undefined ? p.default : value, default: p.default, set: value !== undefined });
    }
  }
  return out;
}

/** Expand `NAME` and `x[]` segments against the document; each concrete key with its value. */
function resolve(node: unknown, parts: string[], prefix: string, optional: readonly boolean[]): Array<{ key: string; value: unknown }> {
  if (parts.length === 0) return [{ key: prefix, value: node }];
  const [head, ...rest] = parts as [string, ...string[]];
  const obj = node && typeof node === 'object' && !Array.isArray(node) ? (node as Record<string, unknown>) : undefined;
  const [opt = false, ...restOpt] = optional;
  if (head === 'NAME') {
    return Object.entries(obj ?? {}).flatMap(([name, v]) => resolve(v, rest, `${prefix}.${name}`, restOpt));
  }
  if (head.endsWith('[]')) {
    const name = head.slice(0, -2);
    const list = obj?.[name];
    if (!Array.isArray(list)) return [];
    return list.flatMap((item, i) => resolve(item, rest, `${join(prefix, name)}[${i}]`, restOpt));
  }
  if (rest.length === 0) return [{ key: join(prefix, head), value: obj?.[head] }];
  // An absent section: its leaves have their defaults (limits, timeouts…), unless it is optional.
  if (opt && obj?.[head] === undefined) return [];
  return resolve(obj?.[head], rest, join(prefix, head), restOpt);
}

const join = (prefix: string, key: string): string => (prefix ? `${prefix}.${key}` : key);

/** Where the reference sits in README.md (scripts/config-reference.ts writes between them). */
export const README_BEGIN = '<!-- config-reference: generated by npm run docs:config from src/policy/config-schema.ts -->';
export const README_END = '<!-- end of config-reference -->';
