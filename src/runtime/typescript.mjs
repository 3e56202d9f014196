// Run smtpwall's TypeScript sources in this thread: bin/smtpwall.js and the entry points of
// worker threads (which do not inherit the main thread's hooks) call this before importing .ts.
import { register } from 'node:module';

export function registerTypeScript() {
  register('./typescript-hooks.mjs', import.meta.url);
  // Stack traces (for developers; users get one line) point into the .ts sources.
  process.setSourceMapsEnabled(true);
}
