// Module hooks (node:module register) that run smtpwall's TypeScript sources as they are: each
// .ts file is transpiled by esbuild when it is loaded — types stripped, nothing bundled, the
// result cached by the source's hash (below), so what runs is always what is in src/.
//
// tsx, which the tests use, does the same but always asks esbuild for keepNames: every function
// and closure then goes through a __name() helper that defines its `name` property when it is
// created — measured at ~4 % of the gateway's CPU per small message, closures being created per
// command and per object. Without identifier minification names are kept anyway, so the helper
// buys nothing here. The options below are otherwise tsx's (target this Node, the project's
// compiler options for class-field semantics, inline source maps for stack traces).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync, version } from 'esbuild';

const tsconfig = JSON.parse(readFileSync(new URL('../../tsconfig.json', import.meta.url), 'utf8'));
const tsconfigRaw = { compilerOptions: { target: tsconfig.compilerOptions.target, useDefineForClassFields: tsconfig.compilerOptions.useDefineForClassFields } };
const target = `node${process.versions.node}`;

/**
 * Transpiled files are kept in node_modules/.cache/smtpwall-ts, named by the SHA-256 of the
 * source, esbuild's version and the options: a command then starts without running esbuild
 * (which costs ~0.5 s for all of smtpwall's files, and leaves its service process beside the
 * gateway). A source that changes gets a new name; an install that cannot be written (a
 * read-only tree, an unprivileged user) transpiles every time.
 */
const CACHE = fileURLToPath(new URL('../../node_modules/.cache/smtpwall-ts/', import.meta.url));
const optionsKey = JSON.stringify([version, target, tsconfigRaw]);

function transpile(file, source, cjs) {
  const key = createHash('sha256').update(optionsKey).update('\0').update(file).update('\0').update(source).digest('hex');
  const cached = join(CACHE, `${key}.js`);
  try {
    return readFileSync(cached, 'utf8');
  } catch {
    // not cached yet
  }
  const { code } = transformSync(source, { loader: 'ts', format: cjs ? 'cjs' : 'esm', target, sourcefile: file, sourcemap: 'inline', tsconfigRaw });
  try {
    mkdirSync(CACHE, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, cached); // whole or not at all, whoever else writes it at the same time
  } catch {
    // not writable here: transpiled again next time
  }
  return code;
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !/\.[cm]?ts$/.test(url)) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const cjs = url.endsWith('.cts');
  return { format: cjs ? 'commonjs' : 'module', source: transpile(file, readFileSync(file, 'utf8'), cjs), shortCircuit: true };
}
