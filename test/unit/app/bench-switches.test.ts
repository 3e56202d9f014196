import assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchOff, NO_INSPECTION } from '../../../src/app/bench-switches.ts';

test('SMTPWALL_BENCH_OFF: unset switches nothing off; stages are named; a typo is refused, not ignored', async () => {
  assert.equal(benchOff({}).size, 0);
  assert.deepEqual([...benchOff({ SMTPWALL_BENCH_OFF: 'inspect, records' })], ['inspect', 'records']);
  assert.throws(() => benchOff({ SMTPWALL_BENCH_OFF: 'inspection' }), /unknown stage inspection/);
  const scan = NO_INSPECTION.begin();
  scan.write(Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'));
  assert.deepEqual(await scan.end(1000), { findings: [], files: [], events: [] });
});
