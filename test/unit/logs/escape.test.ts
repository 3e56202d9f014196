/**
 * Log injection: what a client controls (envelope, headers, file names) reaches every sink —
 * process log, JSON lines, RFC 5424, CEF, the CLI's tables — without a raw CR/LF, control
 * byte, C1 control or bidirectional override, and JSON still round-trips exactly.
 */

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { printTable } from '../../../src/cli/table.ts';
import { escapeLogValue } from '../../../src/logs/process-log.ts';
import { escapeUnsafe, safeJson, UNSAFE_TEXT } from '../../../src/logs/escape.ts';
import { formatRecord } from '../../../src/logs/forward.ts';
import type { ThreatRecord } from '../../../src/logs/records.ts';

const hostile = 'invoice\r\nFAKE 250 ok\x1b[31mred\x07\x00\x7f\x9b2J\u2028\u2029\u202eexe.txt\u2066';
const raw = new RegExp(UNSAFE_TEXT.source); // without the g flag: test() must not keep state

const record: ThreatRecord = {
  time: '2026-11-23T00:00:00.000Z', sessionId: 'S', transactionId: 'S.1', listener: 'l', client: '192.0.2.1:1234', server: '192.0.2.2:25',
  mailFrom: `a${hostile}@example.org`, rcptTo: [`b${hostile}@example.com`], threat: `Evil${hostile}`, threatId: '12345678', severity: 'high', engine: 'signatures',
  signature: hostile, fileName: hostile, filePath: `msg/2/${hostile}`, declaredType: hostile, detectedType: 'exe', fileFlags: ['rtlo'], sha256: 'ab', size: 1,
  rule: 'r', profile: 'p', action: 'block', deciding: true, direction: 'client-to-server',
};

describe('log injection', () => {
  it('every record format carries hostile values without a raw unsafe character', () => {
    for (const format of ['json', 'rfc5424', 'cef'] as const) {
      const line = formatRecord('threat', record, format, 'mail');
      assert.doesNotMatch(line, raw, format);
      assert.ok(!line.includes('\n') && !line.includes('\r'), format);
    }
  });

  it('JSON lines parse back to exactly the values that came in', () => {
    const line = formatRecord('threat', record, 'json', 'mail');
    assert.deepEqual(JSON.parse(line), { type: 'threat', ...record });
    assert.equal(JSON.parse(safeJson(hostile)), hostile);
  });

  it('the process log and the CLI table escape them too; CEF shows them as U+XXXX', () => {
    assert.doesNotMatch(escapeLogValue(hostile), raw);
    assert.match(escapeLogValue(hostile), /\\x1b\[31mred.*\\u202e/);
    let out = '';
    printTable(['file'], [[hostile]], new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }));
    assert.doesNotMatch(out.replace(/\n/g, ''), raw);
    assert.match(escapeUnsafe('a\x1bb\u202ec'), /^aU\+001BbU\+202Ec$/);
    assert.match(formatRecord('threat', record, 'cef', 'mail'), /fname=invoice\\nFAKE 250 okU\+001B\[31mred/);
  });

  it('very long values are clipped in the process log', () => {
    assert.ok(escapeLogValue('x'.repeat(100_000)).length < 2100);
  });
});
