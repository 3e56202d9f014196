/**
 * A limit of V8 in Node 20 that shaped smtpwall's hot path, shown beside the ladder: an object
 * literal with properties after a spread (`{ ...base, action: 'allow' }`) leaves the fast clone
 * and costs about a microsecond per property after it, against tens of nanoseconds for the same
 * object written out. The policy's decision object was built that way (13 µs a message); the
 * gateway's hot path now writes such objects out or builds them once (decide.ts, session.ts,
 * data-reader.ts). `node --import tsx bench/object-spread.ts` runs it alone.
 */

const profiles = { antivirus: 'default' };

const CASES: ReadonlyArray<readonly [string, () => unknown]> = [
  ['spread, then 8 properties', () => {
    const base = { rule: 'r', profile: 'p', profiles, replies: null };
    return { ...base, action: 'allow', reason: 'no threat found', deciding: null, threat: '', verdicts: [], quarantine: false, a: 1, b: 2 };
  }],
  ['spread, then 1 property', () => {
    const base = { rule: 'r', profile: 'p', profiles, replies: null };
    return { ...base, action: 'allow' };
  }],
  ['spread alone', () => {
    const base = { rule: 'r', profile: 'p', profiles, replies: null };
    return { ...base };
  }],
  ['the same 12 properties written out', () => ({ rule: 'r', profile: 'p', profiles, replies: null, action: 'allow', reason: 'no threat found', deciding: null, threat: '', verdicts: [], quarantine: false, a: 1, b: 2 })],
];

/** Nanoseconds per object for each case, after a warm-up. */
export function objectSpreadBench(): Array<{ name: string; ns: number }> {
  return CASES.map(([name, make]) => {
    let keep: unknown;
    for (let i = 0; i < 50_000; i++) keep = make();
    const n = 200_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) keep = make();
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (keep === undefined) throw new Error('unreachable');
    return { name, ns };
  });
}

export function printObjectSpread(): void {
  process.stdout.write('\nV8 here (Node ' + process.versions.node + '), ns per object literal:\n');
  for (const r of objectSpreadBench()) process.stdout.write(`  ${r.name.padEnd(38)} ${r.ns.toFixed(0).padStart(7)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) printObjectSpread();
