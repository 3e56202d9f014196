/**
 * `npm run lab`: the whole deployment on this machine, to try by hand. A sending Postfix
 * (submit with swaks to its port, or with sendmail -C) relays through smtpwall to a receiving
 * Postfix. Prints where to look; Ctrl-C tears everything down.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '../src/app/gateway.ts';
import { createLogger } from '../src/logs/process-log.ts';
import { loadConfigFile } from '../src/policy/load-config.ts';
import { freePort, postfixUnavailable, startPostfix } from './postfix-instance.ts';

const forwarding = process.argv.includes('--cut-through') ? 'cut-through' : 'store-and-forward';
const action = /--action=(\S+)/.exec(process.argv.join(' '))?.[1] ?? 'block';

const why = postfixUnavailable();
if (why) {
  process.stderr.write(`npm run lab: ${why}\n`);
  process.exit(2);
}

const base = mkdtempSync(join(tmpdir(), 'smtpwall-lab-'));
const receiverPort = await freePort();
const senderPort = await freePort();
const gatewayPort = await freePort();
const receiver = await startPostfix({ base, name: 'receiver', hostname: 'mx.rcpt.test', listen: `127.0.0.1:${receiverPort}`, mailboxes: ['bob@rcpt.test'], main: ['recipient_delimiter = +'] });
const cfgFile = join(base, 'smtpwall.yaml');
writeFileSync(
  cfgFile,
  `data-dir: ./data\nlisteners:\n  - name: lab\n    listen: 127.0.0.1:${gatewayPort}\n    upstream: 127.0.0.1:${receiverPort}\n    forwarding: ${forwarding}\nprofiles:\n  antivirus:\n    av: { action: ${action} }\nrules:\n  - name: scan-all\n    profiles: { antivirus: av }\n`,
);
const gateway = new Gateway(loadConfigFile(cfgFile), createLogger());
await gateway.start();
const sender = await startPostfix({
  base,
  name: 'sender',
  hostname: 'mta.send.test',
  listen: `127.0.0.1:${senderPort}`,
  mailboxes: ['alice@send.test'],
  main: [`relayhost = [127.0.0.1]:${gatewayPort}`, 'recipient_delimiter = +'],
});

process.stdout.write(`
smtpwall lab is up (${forwarding}, action ${action}):

  sending Postfix   127.0.0.1:${senderPort}   log ${sender.logFile}
  smtpwall          127.0.0.1:${gatewayPort}   config ${cfgFile}
  receiving Postfix 127.0.0.1:${receiverPort}   log ${receiver.logFile}

Send mail into the sending Postfix:
  swaks --server 127.0.0.1:${senderPort} --from alice@send.test --to bob@rcpt.test --body hello
  printf 'X5O!P%%@AP[4\\\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' > /tmp/eicar.com
  swaks --server 127.0.0.1:${senderPort} --from alice@send.test --to bob@rcpt.test --attach /tmp/eicar.com

Then look:
  tail -f ${sender.logFile}                 (status=sent / bounced / deferred)
  ls ${join(receiver.dir, 'mail/bob@rcpt.test/new')}    (delivered mail)
  ls ${join(sender.dir, 'mail/alice@send.test/new')}    (bounces to the sender)
  npx smtpwall logs threats -c ${cfgFile}
  npx smtpwall logs traffic -c ${cfgFile}

Options: npm run lab -- --cut-through --action=reset-both
Ctrl-C stops everything and removes ${base}.
`);

await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
process.stdout.write('\nstopping the lab…\n');
await sender.stop();
await receiver.stop();
await gateway.stop(1000);
rmSync(base, { recursive: true, force: true });
