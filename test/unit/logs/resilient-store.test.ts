/**
 * The log database failing under the gateway: records wait in memory in order, are written
 * once it works again, beyond the buffer are counted as dropped, and at stop whatever is still
 * unwritten goes to the process log. The outage is reported once, not per record.
 */

import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { LogRecord, LogStore, ThreatRecord, TrafficRecord } from '../../../src/logs/records.ts';
import { BATCH_MS, ResilientLogStore } from '../../../src/logs/resilient-store.ts';

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
      assert.equal(store.healthy, true, 'batched, not yet tried');
      mock.timers.tick(BATCH_MS); // the batch is written: the database fails
      assert.equal(store.healthy, false);
      assert.equal(store.buffered, 3);
      mock.timers.tick(1000); // still failing: stays buffered
      assert.deepEqual(inner.written, []);
      inner.failing = false;
      mock.timers.tick(1000);
      assert.deepEqual(inner.written, ['t1', 'threat t1', 't2']);
      assert.equal(store.healthy, true);
      store.addTraffic(traffic('t3'));
      store.flush();
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
    store.flush();
    assert.equal(store.buffered, 2);
    store.close();
    assert.equal(inner.closed, true);
    const stop = lines.find(([m]) => m.includes('at stop'));
    assert.deepEqual(stop?.[1], { records: 2, dropped: 2 });
    const unwritten = lines.filter(([m]) => m === 'unwritten traffic record').map(([, f]) => JSON.parse(f!.record as string).transactionId);
    assert.deepEqual(unwritten, ['a', 'b']);
  });

  it('in normal operation records are written in one batch within BATCH_MS, in order, all or none', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const batches: string[][] = [];
      const inner = new FlakyStore();
      inner.failing = false;
      const batching = Object.assign(inner, {
        addBatch(records: readonly LogRecord[]): void {
          batches.push(records.map((x) => `${x.kind} ${x.r.transactionId}`));
        },
      });
      const store = new ResilientLogStore(batching, 100, () => {});
      store.addTraffic(traffic('m1'));
      store.addThreat(threat('m1'));
      store.addTraffic(traffic('m2'));
      assert.deepEqual(batches, [], 'nothing is written on the session\'s path');
      mock.timers.tick(BATCH_MS);
      assert.deepEqual(batches, [['traffic m1', 'threat m1', 'traffic m2']]);
      store.addTraffic(traffic('m3'));
      store.listTraffic(10); // a reader sees every record: the batch is written first
      assert.deepEqual(batches.at(-1), ['traffic m3']);
      store.addTraffic(traffic('m4'));
      store.close(); // a stop writes what is queued
      assert.deepEqual(batches.at(-1), ['traffic m4']);
    } finally {
      mock.timers.reset();
    }
  });

  it('a failed batch waits whole, in order, ahead of later records', () => {
    const inner = new FlakyStore();
    const store = new ResilientLogStore(inner, 100, () => {});
    store.addTraffic(traffic('x1'));
    store.addTraffic(traffic('x2'));
    store.flush(); // fails: both wait
    store.addTraffic(traffic('x3')); // during the outage: behind them
    inner.failing = false;
    store.close();
    assert.deepEqual(inner.written, ['x1', 'x2', 'x3']);
  });
});
