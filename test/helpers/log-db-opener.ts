/**
 * A child process of the "many processes open one new database" test: loads, says "ready",
 * and opens DATA-DIR/logs.sqlite when its parent writes a line, so all children open at once.
 */
import { openLogDatabase } from '../../src/logs/sqlite-store.ts';

const dir = process.argv[2]!;
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  try {
    openLogDatabase(dir).close();
    process.stdout.write('opened\n');
  } catch (err) {
    process.stdout.write(`failed: ${(err as Error).message}\n`);
  }
  process.exit(0);
});
