/**
 * bench/profile.ts's analysis of a V8 CPU profile: only samples inside the measured window
 * count, idle time never, and each sample goes to the innermost smtpwall file on its stack.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analyse } from '../../../bench/profile.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });

describe('bench profile analysis', () => {
  it('counts the window only, leaves idle out, gives node frames to the smtpwall file that called them', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 5, 6] },
        { id: 2, callFrame: frame('run', `file://${ROOT}src/gateway/session.ts`), children: [3] },
        { id: 3, callFrame: frame('write', 'node:net'), children: [] },
        { id: 5, callFrame: frame('(idle)', ''), children: [] },
        { id: 6, callFrame: frame('(garbage collector)', ''), children: [] },
      ],
      startTime: 1000,
      // at 1010 (before the window), 1100, 1200, 1300, 1400 (after it)
      samples: [3, 3, 5, 6, 3],
      timeDeltas: [10, 90, 100, 100, 100],
    };
    const r = analyse(profile, 1050, 1350, 2);
    // Samples at 1100 (net write: 100 µs until the next), 1200 (idle: left out), 1300 (GC: 100 µs).
    assert.deepEqual(r.byFile, [['src/gateway/session.ts', 50], ['(node) (garbage collector)', 50]]);
    assert.equal(r.msPerMessage, 0.1);
    assert.deepEqual(r.byFunction.map(([k]) => k), ['write node:net:1', '(garbage collector) ']);
  });
});
