/**
 * `npm run docs:config`: write the configuration reference (generated from the schema) into the
 * README between its markers. test/unit/policy/config-reference.test.ts fails when they differ.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { README_BEGIN, README_END, referenceMarkdown } from '../src/policy/config-reference.ts';

const file = join(import.meta.dirname, '../README.md');
const text = readFileSync(file, 'utf8');
const a = text.indexOf(README_BEGIN);
const b = text.indexOf(README_END);
if (a === -1 || b === -1) throw new Error(`README.md has no ${README_BEGIN} … ${README_END} markers`);
writeFileSync(file, `${text.slice(0, a + README_BEGIN.length)}\n${referenceMarkdown()}\n${text.slice(b)}`);
process.stdout.write('README.md: configuration reference written\n');
