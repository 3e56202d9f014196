/**
 * The log database failing under the gateway: records wait in memory in order, are written
 * once it works again, beyond the buffer are counted as dropped, and at stop whatever is still
 * unwritten goes to the process log. The outage is reported once, not per record.
 */

import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { LogStore, ThreatRecord, TrafficRecord } from '../../../src/logs/records.ts';
import { ResilientLogStore } from '../../../src/logs/resilient-store.ts';

class FlakyStore implements LogStore {
  failing = true;
  readonly written: string[] = [];
  closed = false;
  addTraffic(r: TrafficRecord): void {
    if (this.failing) throw new Error('SQLITE_FULL: database or disk is full');
    this.written.push(r.transactionId);
  }
  addThreat(r: ThreatRecord): void {
    if (this.failing) throw new Error('SQLITE_BUSY: database is locked');
    this.written.push(`threat ${r.transactionId}`);
  }
  listTraffic(): TrafficRecord[] {
    return [];
  }
  listThreats(): ThreatRecord[] {
    return [];
  }
  close(): void {
    this.closed = true;
  }
}

const traffic = (id: string) => ({ transactionId: id }) as TrafficRecord;
const threat = (id: string) => ({ transactionId: id }) as ThreatRecord;

describe('log store that outlives database failures', () => {
  it('keeps records in order while failing, writes them on the retry, reports start and end once', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const inner = new FlakyStore();
      const lines: string[] = [];
      const store = new ResilientLogStore(inner, 100, (level, msg) => lines.push(`${level} ${msg}`));
      store.addTraffic(traffic('t1'));
      store.addThreat(threat('t1'));
      store.addTraffic(traffic('t2'));
      assert.equal(store.healthy, false);
      assert.equal(store.buffered, 3);
      mock.timers.tick(1000); // still failing: stays buffered
      assert.deepEqual(inner.written, []);
      inner.failing = false;
      mock.timers.tick(1000);
      assert.deepEqual(inner.written, ['t1', 'threat t1', 't2']);
      assert.equal(store.healthy, true);
      store.addTraffic(traffic('t3'));
      assert.deepEqual(inner.written.at(-1), 't3');
      assert.deepEqual(lines, ['error log database cannot be written; records are kept in memory until it can', 'info log database writable again']);
    } finally {
      mock.timers.reset();
    }
  });

  it('beyond the buffer, records are counted as dropped; at close the unwritten ones go to the process log', () => {
    const inner = new FlakyStore();
    const lines: Array<[string, Record<string, unknown> | undefined]> = [];
    const store = new ResilientLogStore(inner, 2, (_level, msg, fields) => lines.push([msg, fields]));
    for (const id of ['a', 'b', 'c', 'd']) store.addTraffic(traffic(id));
    assert.equal(store.buffered, 2);
    store.close();
    assert.equal(inner.closed, true);
    const stop = lines.find(([m]) => m.includes('at stop'));
    assert.deepEqual(stop?.[1], { records: 2, dropped: 2 });
    const unwritten = lines.filter(([m]) => m === 'unwritten traffic record').map(([, f]) => JSON.parse(f!.record as string).transactionId);
    assert.deepEqual(unwritten, ['a', 'b']);
  });
});
