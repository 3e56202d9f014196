/**
 * Send one message from inside a network namespace and print the result as JSON.
 * Usage: node --import tsx ns-send.ts HOST PORT clean|eicar
 */

import { sendMessage } from '../../src/mailbox/smtp-client.ts';
import { EICAR } from '../../src/inspect/engines/signatures.ts';

const [host = '', port = '25', kind = 'clean'] = process.argv.slice(2);
const body = kind === 'eicar' ? `Subject: eicar\r\n\r\n${EICAR.toString('latin1')}\r\n` : 'Subject: clean\r\n\r\nclean through a transparent gateway\r\n';
const r = await sendMessage({ host, port: Number(port), from: 'a@client.test', to: ['b@server.test'], message: Buffer.from(body, 'latin1'), timeoutMs: 10_000 });
process.stdout.write(`${JSON.stringify(r)}\n`);
