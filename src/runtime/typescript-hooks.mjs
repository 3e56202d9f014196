// Module hooks (node:module register) that run smtpwall's TypeScript sources as they are: each
// .ts file is transpiled by esbuild when it is loaded — types stripped, nothing bundled, the
// result never written to disk, so what runs is always what is in src/.
//
// tsx, which the tests use, does the same but always asks esbuild for keepNames: every function
// and closure then goes through a __name() helper that defines its `name` property when it is
// created — measured at ~4 % of the gateway's CPU per small message, closures being created per
// command and per object. Without identifier minification names are kept anyway, so the helper
// buys nothing here. The options below are otherwise tsx's (target this Node, the project's
// compiler options for class-field semantics, inline source maps for stack traces).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';

const tsconfig = JSON.parse(readFileSync(new URL('../../tsconfig.json', import.meta.url), 'utf8'));
const tsconfigRaw = { compilerOptions: { target: tsconfig.compilerOptions.target, useDefineForClassFields: tsconfig.compilerOptions.useDefineForClassFields } };
const target = `node${process.versions.node}`;

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !/\.[cm]?ts$/.test(url)) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const { code } = transformSync(readFileSync(file, 'utf8'), {
    loader: 'ts',
    format: url.endsWith('.cts') ? 'cjs' : 'esm',
    target,
    sourcefile: file,
    sourcemap: 'inline',
    tsconfigRaw,
  });
  return { format: url.endsWith('.cts') ? 'commonjs' : 'module', source: code, shortCircuit: true };
}
