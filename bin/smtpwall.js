#!/usr/bin/env node
// Entry point of the `smtpwall` command. The sources are TypeScript, transpiled by esbuild as
// they load (src/runtime/typescript.mjs), so what runs is always what is in src/ — no stale
// build output.
import { registerTypeScript } from '../src/runtime/typescript.mjs';

registerTypeScript();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
