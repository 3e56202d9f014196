/**
 * The configuration reference is generated from the schema: the README's table must be what
 * the schema says today (else: npm run docs:config), every parameter explains itself, and
 * `effectiveParameters` shows a file's values beside the defaults.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { effectiveParameters, parameters, README_BEGIN, README_END, referenceMarkdown } from '../../../src/policy/config-reference.ts';

describe('configuration reference', () => {
  it('the README shows exactly the reference generated from the schema (npm run docs:config writes it)', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8');
    const a = readme.indexOf(README_BEGIN);
    const b = readme.indexOf(README_END);
    assert.ok(a !== -1 && b > a, 'README has the markers');
    assert.equal(readme.slice(a + README_BEGIN.length, b).trim(), referenceMarkdown().trim(), 'README differs from the schema: run npm run docs:config');
  });

  it('every parameter has a meaning, and keys are unique', () => {
    const ps = parameters();
    assert.deepEqual(ps.filter((p) => !p.description).map((p) => p.key), []);
    assert.equal(new Set(ps.map((p) => p.key)).size, ps.length);
    assert.ok(ps.some((p) => p.key === 'limits.max-message-size' && p.kind === 'size' && p.default === '25MiB'));
    assert.ok(ps.some((p) => p.key === 'log-database.retention' && p.kind === 'duration' && p.default === '90d'));
    assert.ok(ps.some((p) => p.key === 'listeners[].name' && p.required));
  });

  it('effective parameters: what the file sets, defaults elsewhere, optional sections only when written', () => {
    const doc = parse('listeners:\n  - { name: a, listen: "127.0.0.1:25", upstream: "127.0.0.1:26" }\nlimits: { max-message-size: 10MiB }\nprofiles:\n  antivirus:\n    strict: { action: reject }\n');
    const shown = new Map(effectiveParameters(doc).map((p) => [p.key, p]));
    assert.deepEqual(shown.get('limits.max-message-size'), { key: 'limits.max-message-size', value: '10MiB', default: '25MiB', set: true });
    assert.deepEqual(shown.get('timeouts.scan'), { key: 'timeouts.scan', value: '30s', default: '30s', set: false });
    assert.equal(shown.get('listeners[0].upstream')?.value, '127.0.0.1:26');
    assert.equal(shown.get('profiles.antivirus.strict.action')?.value, 'reject');
    assert.equal(shown.get('profiles.antivirus.strict.on-error')?.value, 'tempfail');
    assert.equal(shown.has('engines.clamd.timeout'), false, 'clamd is not configured: none of its parameters is shown');
  });
});
