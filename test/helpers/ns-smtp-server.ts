/**
 * A receiving server for tests that run in a network namespace: smtp-server on the given
 * address, each message written to DIR as it arrives. Prints "ready" when listening.
 * Usage: node --import tsx ns-smtp-server.ts HOST PORT DIR
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

const [host = '0.0.0.0', port = '25', dir = '.'] = process.argv.slice(2);
let n = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  onData(stream, session, cb) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      writeFileSync(join(dir, `${++n}.eml`), Buffer.concat(chunks));
      writeFileSync(join(dir, `${n}.json`), JSON.stringify({ client: session.remoteAddress, to: session.envelope.rcptTo.map((r) => r.address) }));
      cb();
    });
  },
});
server.listen(Number(port), host, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
