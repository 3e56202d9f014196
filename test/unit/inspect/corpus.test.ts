import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_ARCHIVE_LIMITS } from '../../../src/inspect/archive/unpack.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { Inspector } from '../../../src/inspect/inspector.ts';
import type { ScanResult } from '../../../src/inspect/types.ts';
import { CORPUS } from '../../fixtures/corpus.ts';
import { byteByByte, randomChunks } from '../../helpers/chunking.ts';

async function scan(inspector: Inspector, chunks: Buffer[]): Promise<ScanResult> {
  const s = inspector.begin();
  for (const c of chunks) s.write(c);
  return s.end(30_000);
}

const summary = (r: ScanResult) => ({
  findings: r.findings.map((f) => `${f.threat}@${f.file.path}`).sort(),
  files: r.files.map((f) => `${f.path}:${f.detectedType}:${f.flags.join('+')}:${f.size}:${f.sha256}`).sort(),
  events: r.events.map((e) => `${e.name}@${e.where}`).sort(),
});

describe('deep-inspection corpus (test/fixtures/corpus.ts)', () => {
  for (const c of CORPUS) {
    it(c.name, async () => {
      const inspector = new Inspector({ engines: [new SignatureEngine()], archives: { ...DEFAULT_ARCHIVE_LIMITS, ...c.limits } });
      const r = await scan(inspector, [c.message]);
      const s = summary(r);
      assert.deepEqual(s.findings, [...c.threats].sort(), 'findings');
      const events = new Set<string>(r.events.map((e) => e.name));
      for (const e of c.events ?? []) assert.ok(events.has(e), `event ${e} in ${[...events].join(', ')}`);
      const byPath = new Map(r.files.map((f) => [f.path, f]));
      for (const [path, type] of Object.entries(c.types ?? {})) assert.equal(byPath.get(path)?.detectedType, type, `type of ${path}`);
      for (const [path, flags] of Object.entries(c.flags ?? {})) {
        for (const flag of flags) assert.ok(byPath.get(path)?.flags.includes(flag), `${path} flagged ${flag} (has ${byPath.get(path)?.flags})`);
      }
      // The same reading for any chunking of the stream.
      if (c.message.length < 200_000) assert.deepEqual(summary(await scan(inspector, byteByByte(c.message))), s, 'byte by byte');
      for (const seed of [1, 2]) assert.deepEqual(summary(await scan(inspector, randomChunks(c.message, seed, 1500))), s, `random chunks, seed ${seed}`);
    });
  }
});
