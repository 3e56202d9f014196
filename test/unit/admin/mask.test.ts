/** The configuration the admin API shows: secrets masked, also a password inside a database URL. */

import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { mask } from '../../../src/admin/server.ts';

it('masks secret keys and the password of a store URL, nothing else', () => {
  assert.deepEqual(
    mask({
      store: { url: 'postgresql://smtpwall:s3cr%40t@db.example.net:5432/smtpwall', pool: 10 },
      other: { url: 'postgresql://smtpwall@db.example.net/smtpwall' },
      admin: { users: [{ name: 'alice', 'password-hash': 'scrypt$x', role: 'admin' }] },
    }),
    {
      store: { url: 'postgresql://smtpwall:********@db.example.net:5432/smtpwall', pool: 10 },
      other: { url: 'postgresql://smtpwall@db.example.net/smtpwall' },
      admin: { users: [{ name: 'alice', 'password-hash': '********', role: 'admin' }] },
    },
  );
});
