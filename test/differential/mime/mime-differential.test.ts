/**
 * Differential testing of the MIME walker against parsers nobody here wrote (Python's email
 * package with both policies, Perl's MIME-tools, ripmime, munpack, mailparser, postal-mime):
 * every file any of them extracts from a message must be among the objects the inspector
 * scanned (see oracle.ts for how files are compared). A fixed-seed sample of the mutation
 * fuzzer runs here; `npm run fuzz:mime` runs long ones (FUZZ_RUNS, FUZZ_SEED).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { mutatedMessage } from './mutate.ts';
import { misses } from './oracle.ts';
import { availableParsers, extractAll } from './references.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const BATCH = 250;
/** Where a message that made the oracle fail is kept, to become a fixture. */
const KEEP = process.env.FUZZ_KEEP ?? join(tmpdir(), 'smtpwall-mime-misses');

describe('MIME differential: reference parsers', () => {
  it('has every reference parser installed (.ci/run installs them)', () => {
    const have = availableParsers();
    const missing = ['python-compat32', 'python-default', 'mime-tools', 'ripmime', 'munpack', 'mailparser', 'postal-mime'].filter((p) => !have.includes(p as never));
    if (missing.length && process.env.CI !== 'true') {
      // Outside CI a developer may lack a Debian package: say which, do not pretend.
      console.log(`# reference parsers missing here: ${missing.join(', ')}`);
      return;
    }
    assert.deepEqual(missing, []);
  });

  it('munpack 1.6 decodes quoted-printable wrongly (0xFF at a soft line break): its QP files are not compared', () => {
    if (!availableParsers().includes('munpack')) return;
    const dir = mkdtempSync(join(tmpdir(), 'smtpwall-munpack-'));
    try {
      const msg = 'From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc=\r\ndef\r\n--x--\r\n';
      writeFileSync(join(dir, 'm.eml'), msg);
      mkdirSync(join(dir, 'out'));
      spawnSync('munpack', ['-q', '-C', join(dir, 'out'), join(dir, 'm.eml')], { stdio: 'ignore' });
      const got = readFileSync(join(dir, 'out', 'a.bin'));
      // If this fails, munpack was fixed: drop the exception in the fuzz test below.
      assert.ok(got.includes(0xff), `munpack wrote ${JSON.stringify(got.toString('latin1'))}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(`MIME differential: ${RUNS} mutated messages (seed ${SEED})`, () => {
  for (let start = 0; start < RUNS; start += BATCH) {
    const end = Math.min(RUNS, start + BATCH);
    it(`messages ${start}…${end - 1}: no file a reference parser extracts goes unscanned`, async () => {
      const batch = Array.from({ length: end - start }, (_, i) => mutatedMessage(SEED, start + i));
      const extracted = await extractAll(batch.map((m) => m.message));
      // The payload must be found by at least one parser, or the fuzzer tests nothing.
      const found = batch.filter((m, i) => [...extracted.values()].some((files) => files[i]!.some((f) => f.equals(m.payload)))).length;
      assert.ok(found > batch.length / 2, `reference parsers extracted the payload of only ${found} of ${batch.length} messages`);
      const missed = await misses(batch.map((m) => m.message), { extracted, skip: (i, parser) => parser === 'munpack' && batch[i]!.quotedPrintable });
      if (missed.length) {
        mkdirSync(KEEP, { recursive: true });
        for (const m of missed) writeFileSync(join(KEEP, `${SEED}-${start + m.index}.eml`), batch[m.index]!.message);
      }
      assert.deepEqual(
        missed.map((m) => `#${start + m.index} ${m.parser}: ${m.size} bytes ${m.head} (${batch[m.index]!.recipe})`),
        [],
        `messages kept in ${KEEP}`,
      );
    });
  }
});
