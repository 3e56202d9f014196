/**
 * The container oracle: for every container of a seeded corpus (corpus.ts: written by the
 * real tools, and by our own writer for the malformed ones), every file that ANY reference
 * extractor gets out of it — 7-Zip, bsdtar, unzip, cabextract, unar, pdfdetach (PDF attachments, in
 * PDFs qpdf wrote), Python's zipfile and tarfile
 * (references.ts) — must be among the objects the inspector scanned, by SHA-256. The inspector
 * is the gateway's own (app/assemble.ts: 7-Zip and bsdtar readers as configured by default).
 * A fixed-seed sample runs in `npm test`; `npm run fuzz:containers` runs long ones (FUZZ_RUNS,
 * FUZZ_SEED) and keeps each container that fails in $TMPDIR/smtpwall-container-misses.
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildInspector } from '../../../src/app/assemble.ts';
import { SignatureEngine } from '../../../src/inspect/engines/signatures.ts';
import { parseConfig } from '../../../src/policy/load-config.ts';
import { container } from './corpus.ts';
import { availableExtractors, extractAll } from './references.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const BATCH = 50;
const KEEP = process.env.FUZZ_KEEP ?? join(tmpdir(), 'smtpwall-container-misses');

const work = mkdtempSync(join(tmpdir(), 'smtpwall-cdiff-'));
const inspector = buildInspector(parseConfig(`data-dir: ${JSON.stringify(join(work, 'data'))}\nlisteners: [{ name: t, listen: "127.0.0.1:0", upstream: "127.0.0.1:25" }]\n`), [new SignatureEngine()]);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

after(() => rmSync(work, { recursive: true, force: true }));

describe('container differential: reference extractors', () => {
  it('has every reference extractor installed (.ci/run installs them)', () => {
    const missing = ['7zz', 'bsdtar', 'unzip', 'cabextract', 'pdfdetach', 'unar', 'python'].filter((x) => !availableExtractors().includes(x as never));
    if (missing.length && process.env.CI !== 'true') return void console.log(`# reference extractors missing here: ${missing.join(', ')}`);
    assert.deepEqual(missing, []);
  });
});

describe(`container differential: ${RUNS} containers (seed ${SEED})`, () => {
  for (let start = 0; start < RUNS; start += BATCH) {
    const end = Math.min(RUNS, start + BATCH);
    it(`containers ${start}…${end - 1}: no file a reference extracts goes unscanned`, async () => {
      const batch = Array.from({ length: end - start }, (_, i) => container(SEED, start + i));
      const dir = join(work, `batch-${start}`);
      mkdirSync(dir, { recursive: true });
      const paths = batch.map((c) => {
        const p = join(dir, c.name);
        writeFileSync(p, c.bytes);
        return p;
      });
      const extracted = await extractAll(paths);
      // The corpus must give the references something to extract, or the oracle tests nothing.
      const opened = batch.filter((_, i) => [...extracted.values()].some((files) => files[i]!.length > 0)).length;
      assert.ok(opened > batch.length * 0.8, `reference extractors opened only ${opened} of ${batch.length} containers`);
      const missed: string[] = [];
      for (let i = 0; i < batch.length; i++) {
        const c = batch[i]!;
        const r = await inspector.scanBuffer(c.bytes, false, 60_000, c.name);
        const scanned = new Set(r.files.map((f) => f.sha256));
        for (const [ref, files] of extracted) {
          for (const f of files[i]!) {
            if (f.length === 0 || scanned.has(sha(f))) continue;
            missed.push(`#${start + i} ${c.name} (${c.recipe}): ${ref} extracted ${f.length} bytes the inspector did not scan; events ${JSON.stringify(r.events.map((e) => `${e.name}: ${e.detail ?? ''}`))}`);
          }
        }
      }
      if (missed.length) {
        mkdirSync(KEEP, { recursive: true });
        for (const m of new Set(missed.map((x) => Number(/^#(\d+)/.exec(x)![1])))) writeFileSync(join(KEEP, `${SEED}-${m}-${batch[m - start]!.name}`), batch[m - start]!.bytes);
      }
      assert.deepEqual([...new Set(missed)], [], `containers kept in ${KEEP}`);
    });
  }
});
