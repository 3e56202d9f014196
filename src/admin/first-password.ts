/**
 * `admin.users[].password-file`: the way a first start gets a login without anyone running
 * `smtpwall admin hash-password` (the example config uses it). A missing file is created with a
 * random password, readable by the gateway's user only, and the log says where it is; an
 * admin who wants their own password writes it there, or replaces the entry with a
 * password-hash. The file is read at start and at each reload.
 */

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { AdminUser } from './auth.ts';
import type { LogFn } from '../logs/process-log.ts';

export function resolveUsers(users: ReadonlyArray<AdminUser & { 'password-file'?: string | undefined }>, dataDir: string, log: LogFn): AdminUser[] {
  return users.map((u) => {
    const file = u['password-file'];
    if (!file) return u;
    const path = resolve(dataDir, file);
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      log('warn', 'admin plane: a first password was generated', { user: u.name, file: path, hint: 'log in with it, then replace it (or use password-hash)' });
    }
    if ((statSync(path).mode & 0o077) !== 0) {
      chmodSync(path, 0o600);
      log('warn', 'admin plane: a password file was readable by others; now 0600', { file: path });
    }
    const password = readFileSync(path, 'utf8').split(/\r?\n/)[0] ?? '';
    if (password.length < 8) throw new Error(`admin.users ${u.name}: the password in ${path} is shorter than 8 characters`);
    return { ...u, password };
  });
}
