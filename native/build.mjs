// npm install hook: builds the SO_ORIGINAL_DST addon used by `mode: transparent` listeners.
// A failed build does not fail the install (relay mode does not need it); it says why, and a
// transparent listener then refuses to start with the same explanation.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

if (process.platform !== 'linux') {
  console.warn('smtpwall: transparent mode needs Linux; the SO_ORIGINAL_DST addon was not built.');
  process.exit(0);
}
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = join(dirname(require.resolve('node-gyp/package.json', { paths: [dirname(process.execPath), join(dirname(process.execPath), '../lib/node_modules/npm')] })), 'bin/node-gyp.js');
} catch {
  gyp = null;
}
// The Node.js headers: those of the installed package (/usr/include/node, Debian's and
// NodeSource's nodejs) when they are there, so no download is needed; else node-gyp fetches them.
const nodedir = [dirname(dirname(process.execPath)), '/usr'].find((d) => existsSync(join(d, 'include/node/common.gypi')));
const args = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const cmd = gyp ? [process.execPath, [gyp, ...args]] : ['node-gyp', args];
const r = spawnSync(cmd[0], cmd[1], { stdio: 'inherit', cwd: join(dirname(new URL(import.meta.url).pathname), '..') });
if (r.status !== 0) {
  console.warn(
    'smtpwall: could not build the SO_ORIGINAL_DST addon (native/original-dst.c) — it needs a C compiler, make, python3 and the Node.js headers.\n' +
      'Relay listeners work without it; `mode: transparent` listeners will refuse to start until `npm rebuild smtpwall` succeeds.',
  );
}
