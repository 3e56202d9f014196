#!/usr/bin/env node
// Entry point of the `smtpwall` command. The sources are TypeScript run through tsx's loader
// (a runtime dependency), so what runs is always what is in src/ — no stale build output.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
