/**
 * admin.users[].password-file: a missing file gets a random password (mode 0600) and the log
 * says where; that password logs in, a wrong one does not; a file readable by others is made
 * private; a short password is refused with a clear line.
 */

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Authenticator } from '../../../src/admin/auth.ts';
import { resolveUsers } from '../../../src/admin/first-password.ts';

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('admin password-file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-firstpw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is written once with a random password that logs in', async () => {
    const logged: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const log = (level: string, msg: string, f?: Record<string, unknown>) => void logged.push([level, msg, f]);
    const users = resolveUsers([{ name: 'admin', 'password-file': 'admin-password', role: 'admin' }], dir, log);
    const file = join(dir, 'admin-password');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const password = readFileSync(file, 'utf8').trim();
    assert.match(password, /^[\w-]{24}$/);
    assert.ok(logged.some(([, m, f]) => /first password was generated/.test(m) && f?.file === file));
    const auth = new Authenticator(users);
    assert.equal((await auth.check(basic('admin', password), '192.0.2.1')).ok, true);
    assert.equal((await auth.check(basic('admin', `${password}x`), '192.0.2.1')).ok, false);
    // The second start reads the same file: no new password.
    logged.length = 0;
    const again = resolveUsers([{ name: 'admin', 'password-file': 'admin-password', role: 'admin' }], dir, log);
    assert.equal(again[0]!.password, password);
    assert.equal(logged.length, 0);
  });

  it('a file readable by others is made private; a short password is refused', () => {
    const file = join(dir, 'loose');
    writeFileSync(file, 'a-long-enough-password\n');
    chmodSync(file, 0o644);
    const logged: string[] = [];
    resolveUsers([{ name: 'a', 'password-file': file, role: 'viewer' }], dir, (_l, m) => void logged.push(m));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(logged.some((m) => /readable by others/.test(m)));
    writeFileSync(join(dir, 'short'), 'abc\n', { mode: 0o600 });
    assert.throws(() => resolveUsers([{ name: 'b', 'password-file': 'short', role: 'viewer' }], dir, () => {}), /shorter than 8 characters/);
  });
});
