/**
 * The shared store's ordered writer against a real PostgreSQL, at the two moments a network
 * can fail a write: the connection killed in the middle of the transaction
 * (pg_terminate_backend on its own backend before the INSERT), and a COMMIT that did commit
 * but whose answer never arrived. Either way every record is there once, in order; a record
 * the server refuses for its content is logged and does not hold the others.
 */

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrateShared } from '../../src/shared-store/connection.ts';
import { SharedWriter } from '../../src/shared-store/writer.ts';
import type { TrafficRecord } from '../../src/logs/records.ts';
import { until } from '../helpers/peers.ts';
import { type PrivatePostgres, postgresBin, startPostgres } from '../helpers/postgres.ts';

const record = (subject: string, instance: string): TrafficRecord & { instance: string } => ({
  time: new Date().toISOString(), sessionId: 'S', transactionId: `S.${subject}`, listener: 'in', client: '127.0.0.1:1', server: '127.0.0.1:2',
  helo: 'h', mailFrom: 'a@example.org', rcptTo: ['b@example.com'], size: 1, messageId: '', subject, forwarding: 'store-and-forward',
  rule: 'r', profile: '', action: 'allow', reason: '', upstreamReply: '250 ok', clientReply: '', durationMs: 1, events: [], instance,
});

/** A pool whose clients misbehave once, at the statement `when` picks. */
function faultyPool(inner: pg.Pool, fault: (client: pg.PoolClient, text: string) => Promise<void> | null): pg.Pool {
  let armed = true;
  return {
    connect: async () => {
      const client = await inner.connect();
      const query = client.query.bind(client) as (text: string, values?: unknown[]) => Promise<pg.QueryResult>;
      return new Proxy(client, {
        get(target, prop, receiver) {
          if (prop !== 'query') return Reflect.get(target, prop, receiver);
          return async (text: string, values?: unknown[]) => {
            const f = armed ? fault(client, text) : null;
            if (f) {
              armed = false;
              await f;
            }
            return query(text, values);
          };
        },
      });
    },
  } as unknown as pg.Pool;
}

describe('shared store writer', { skip: postgresBin() ? false : 'PostgreSQL is not installed' }, () => {
  let server: PrivatePostgres;
  let pool: pg.Pool;
  const logged: string[] = [];
  const log = (_level: string, msg: string): void => void logged.push(msg);

  before(async () => {
    server = await startPostgres();
    pool = new pg.Pool({ connectionString: server.url, max: 4 });
    pool.on('error', () => undefined); // the killed connections: expected here
    await migrateShared(pool);
  });

  after(async () => {
    await pool?.end();
    server?.destroy();
  });

  const subjects = (instance: string): string[] => {
    const out = server.psql(`SELECT subject FROM traffic WHERE instance = '${instance}' ORDER BY id`);
    return out === '' ? [] : out.split('\n');
  };

  it('a connection killed mid-transaction: the batch is written again, once', async () => {
    const killer = new pg.Client({ connectionString: server.url });
    await killer.connect();
    // Before the INSERT of the first batch: BEGIN has run on this backend, then it is terminated.
    const w = new SharedWriter(
      faultyPool(pool, (client, text) => (text.startsWith('INSERT INTO traffic') ? killer.query('SELECT pg_terminate_backend($1)', [(client as unknown as { processID: number }).processID]).then(() => undefined) : null)),
      1000,
      log,
    );
    for (let i = 0; i < 10; i++) w.push({ kind: 'traffic', uid: w.uid(), r: record(`m-${i}`, 'kill') });
    await until('the batch after the retry', () => subjects('kill').length >= 10, 10_000);
    assert.deepEqual(subjects('kill'), Array.from({ length: 10 }, (_, i) => `m-${i}`));
    assert.ok(logged.some((l) => /cannot be written/.test(l)), 'the outage was logged');
    await until('the end of the outage logged', () => logged.some((l) => /writable again/.test(l)));
    await w.close(1000);
    await killer.end();
  });

  it('a COMMIT whose answer is lost: the retry finds the rows there and writes none twice', async () => {
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), {});
    const w = new SharedWriter(
      faultyPool(pool, (client, text) => (text === 'COMMIT' ? (client as unknown as pg.Client).query('COMMIT').then(() => Promise.reject(lost)) : null)),
      1000,
      log,
    );
    for (let i = 0; i < 10; i++) w.push({ kind: 'traffic', uid: w.uid(), r: record(`m-${i}`, 'ack') });
    await until('the outage logged', () => logged.filter((l) => /cannot be written/.test(l)).length >= 2);
    await until('the retry done', () => logged.filter((l) => /writable again/.test(l)).length >= 2, 10_000);
    assert.deepEqual(subjects('ack'), Array.from({ length: 10 }, (_, i) => `m-${i}`));
    await w.close(1000);
  });

  it('a record refused for its content is logged and the others are written', async () => {
    const w = new SharedWriter(pool, 1000, log);
    w.push({ kind: 'traffic', uid: w.uid(), r: record('before', 'bad') });
    // A NUL from the wire is kept visible (U+FFFD), not a failed row.
    w.push({ kind: 'traffic', uid: w.uid(), r: record('nul\0inside', 'bad') });
    w.push({ kind: 'sql', what: 'broken statement', text: 'INSERT INTO no_such_table VALUES ($1)', values: [1] });
    w.push({ kind: 'traffic', uid: w.uid(), r: record('after', 'bad') });
    await until('the good records', () => subjects('bad').length === 3, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${subjects('bad').join(',')} / ${logged.join(' | ')}`);
    });
    assert.deepEqual(subjects('bad'), ['before', 'nul\uFFFDinside', 'after']);
    assert.ok(logged.some((l) => /shared store refused a broken statement/.test(l)));
    await w.close(1000);
  });

  it('records are numbered in commit order across writers (a follower by id misses none)', async () => {
    // Writer A stops before its COMMIT until writer B's batch waits for the order lock: B's
    // rows then get higher ids than A's and commit after them, never the other way round.
    const monitor = new pg.Client({ connectionString: server.url });
    await monitor.connect();
    const advisory = async (granted: boolean): Promise<number> =>
      Number((await monitor.query(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted = $1`, [granted])).rows[0].n);
    const waitFor = async (what: string, granted: boolean): Promise<void> => {
      const end = Date.now() + 10_000;
      while ((await advisory(granted)) === 0) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    };
    const a = new SharedWriter(faultyPool(pool, (_c, text) => (text === 'COMMIT' ? waitFor('B waiting for the order lock', false) : null)), 1000, log);
    const b = new SharedWriter(pool, 1000, log);
    a.push({ kind: 'traffic', uid: a.uid(), r: record('first', 'order') });
    await waitFor('A inside its transaction, holding the order lock', true);
    b.push({ kind: 'traffic', uid: b.uid(), r: record('second', 'order') });
    await Promise.all([a.flush(), b.flush()]);
    await until('both committed', () => subjects('order').length === 2, 10_000);
    assert.deepEqual(subjects('order'), ['first', 'second']);
    await Promise.all([a.close(1000), b.close(1000)]);
    await monitor.end();
  });

  it('past store.buffer records are counted as dropped and the loss is logged; the rest are written in order', async () => {
    const mine: Array<{ msg: string; f: Record<string, unknown> }> = [];
    const w = new SharedWriter(pool, 5, (_l: string, msg: string, f?: Record<string, unknown>) => void mine.push({ msg, f: f ?? {} }), { ready: false });
    for (let i = 0; i < 8; i++) w.push({ kind: 'traffic', uid: w.uid(), r: record(`b-${i}`, 'full') });
    assert.equal(w.healthy, false);
    w.ready();
    await until('the buffered five', () => subjects('full').length === 5, 10_000);
    assert.deepEqual(subjects('full'), ['b-0', 'b-1', 'b-2', 'b-3', 'b-4']);
    await until('the loss logged', () => mine.some((l) => /records dropped, the buffer was full/.test(l.msg)));
    assert.equal(mine.find((l) => /records dropped/.test(l.msg))!.f.dropped, 3);
    assert.equal(w.healthy, true, 'healthy again once the loss is reported');
    await w.close(1000);
  });
});
