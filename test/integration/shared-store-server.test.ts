/**
 * TLS to the shared store, against a private PostgreSQL with ssl = on: `verify` with the CA
 * that signed the server's certificate connects over TLS; `verify` with another CA is refused
 * with one clear line; `require` takes any certificate; `off` speaks plain TCP. And the shared
 * store's retention, on a server of its own.
 */

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { rmSync } from 'node:fs';
import { parseConfig } from '../../src/policy/load-config.ts';
import { SharedStore } from '../../src/shared-store/shared-store.ts';
import { pruneShared } from '../../src/shared-store/retention.ts';
import { makeCert, type TestCert } from '../helpers/certs.ts';
import { type PrivatePostgres, postgresBin, startPostgres } from '../helpers/postgres.ts';

const quiet = (): void => undefined;

describe('shared store over TLS', { skip: postgresBin() ? false : 'PostgreSQL is not installed' }, () => {
  let server: PrivatePostgres;
  let cert: TestCert;
  let other: TestCert;

  before(async () => {
    [cert, other] = [makeCert(), makeCert()];
    server = await startPostgres({ tls: cert });
  });

  after(() => {
    server?.destroy();
    for (const c of [cert, other]) if (c) rmSync(c.dir, { recursive: true, force: true });
  });

  const open = (tls: string): Promise<SharedStore> =>
    SharedStore.open(parseConfig(`store: { url: "${server.url}", tls: ${tls} }\nlisteners: [{ name: a, listen: "127.0.0.1:1", upstream: "127.0.0.1:2" }]\n`), quiet, { gateway: false });

  const encrypted = async (s: SharedStore): Promise<boolean> => (await s.pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl as boolean;

  it('verify with the right CA: connected over TLS, the schema migrated', async () => {
    const s = await open(`{ mode: verify, ca: "${cert.certFile}" }`);
    assert.equal(await encrypted(s), true);
    assert.equal((await s.pool.query('SELECT version FROM smtpwall_schema')).rows[0].version, 1);
    await s.close();
  });

  it('verify with another CA: refused, saying why in one line', async () => {
    await assert.rejects(open(`{ mode: verify, ca: "${other.certFile}" }`), (err: Error) => {
      assert.match(err.message, /^store\.url: PostgreSQL cannot be used: .*(self[- ]signed|certificate)/i);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  });

  it('require takes any certificate; off speaks plain TCP', async () => {
    const r = await open(`{ mode: require, ca: "${other.certFile}" }`);
    assert.equal(await encrypted(r), true);
    await r.close();
    const plain = await open('{ mode: off }');
    assert.equal(await encrypted(plain), false);
    await plain.close();
  });
});

describe('shared store retention', { skip: postgresBin() ? false : 'PostgreSQL is not installed' }, () => {
  it('records older than log-database.retention are deleted, newer ones kept', async () => {
    const server = await startPostgres();
    try {
      const cfg = parseConfig(`store: { url: "${server.url}" }\nlog-database: { retention: 30d }\nlisteners: [{ name: a, listen: "127.0.0.1:1", upstream: "127.0.0.1:2" }]\n`);
      const s = await SharedStore.open(cfg, quiet, { gateway: false });
      const row = (time: string) =>
        `INSERT INTO traffic (uid, instance, time, session_id, transaction_id, listener, client, server, helo, mail_from, rcpt_to, size, message_id, subject, forwarding, rule, profile, action, reason, upstream_reply, client_reply, duration_ms, events)
         VALUES ('${time}', 'x', '${time}', 'S', 'S.1', 'a', 'c', 's', 'h', 'f', '[]', 1, '', '', 'f', 'r', '', 'allow', '', '', '', 1, '[]')`;
      await s.pool.query(row(new Date(Date.now() - 40 * 86_400_000).toISOString()));
      await s.pool.query(row(new Date().toISOString()));
      assert.deepEqual(await pruneShared(s, cfg), { traffic: 1 });
      assert.equal(Number((await s.pool.query('SELECT count(*) AS n FROM traffic')).rows[0].n), 1);
      await s.close();
    } finally {
      server.destroy();
    }
  });
});
