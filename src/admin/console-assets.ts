/**
 * The console's files (src/admin/console/): one HTML page, one stylesheet, one script, read
 * once when the admin plane starts. Plain files and no build step: the console is small enough
 * that a bundler would be the largest thing in it, and nothing is fetched from the internet.
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * No inline script or style, nothing from another origin, no framing, forms only to ourselves.
 * `img-src data:` is for nothing today; it is not granted.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const FILES: ReadonlyArray<[path: string, file: string, type: string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/console/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/console/charts.js', 'charts.js', 'text/javascript; charset=utf-8'],
  ['/console/app.css', 'app.css', 'text/css; charset=utf-8'],
];

export function consoleAssets(): Map<string, { body: Buffer; type: string }> {
  const dir = fileURLToPath(new URL('./console/', import.meta.url));
  return new Map(FILES.map(([path, file, type]) => [path, { body: readFileSync(dir + file), type }]));
}
