#!/usr/bin/env -S node --max-semi-space-size=32
// Entry point of the `smtpwall` command. The sources are TypeScript, transpiled by esbuild as
// they load (src/runtime/typescript.mjs), so what runs is always what is in src/ — no stale
// build output. The shebang's V8 option is the gateway's (src/app/node-flags.ts says why).
import { registerTypeScript } from '../src/runtime/typescript.mjs';

registerTypeScript();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
