/** The package version (package.json), for `smtpwall --version`, `status` and the greeting of logs. */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let cached: string | null = null;

export function version(): string {
  cached ??= (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
  return cached;
}
