/**
 * Private Postfix instances for the end-to-end tests and `npm run lab` (Debian's postfix; see
 * ../shared/LAB-NOTES.md): each with its own config directory, queue, data directory and
 * log file, chroot off, started and stopped with `postfix -c DIR`. Mailboxes are Maildirs
 * delivered by virtual(8) as `nobody`, so no Unix users are needed.
 */

import { execFile } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const NOBODY = 65534;

export const POSTFIX = '/usr/sbin/postfix';

/** Why Postfix tests cannot run here, or null when they can. */
export function postfixUnavailable(): string | null {
  if (!existsSync(POSTFIX)) return 'postfix is not installed (apt-get install postfix; .ci/run does it)';
  if (process.getuid?.() !== 0) return 'Postfix instances need root';
  return null;
}

function postfixUid(): number {
  return Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim());
}

export { freePort } from '../test/helpers/ports.ts';

export interface PostfixInstance {
  readonly dir: string;
  readonly logFile: string;
  log(): string;
  /** Maildir messages of one virtual mailbox (e.g. `alice@send.test`). */
  mailbox(address: string): string[];
  sendmail(from: string, to: string, message: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startPostfix(opts: {
  base: string;
  name: string;
  hostname: string;
  /** Extra main.cf lines. */
  main: string[];
  /** `host:port` for an smtpd listener; none if absent. */
  listen?: string;
  /** Virtual mailboxes this instance delivers to. */
  mailboxes: string[];
}): Promise<PostfixInstance> {
  const dir = join(opts.base, opts.name);
  const mailBase = join(dir, 'mail');
  const logFile = `/var/log/smtpwall-e2e-${opts.name}-${process.pid}.log`;
  // Postfix's daemons run as the postfix user: every directory on the path must let it in.
  chmodSync(opts.base, 0o755);
  mkdirSync(join(dir, 'queue'), { recursive: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  chownSync(join(dir, 'data'), postfixUid(), 0);
  mkdirSync(mailBase, { recursive: true });
  chownSync(mailBase, NOBODY, NOBODY);
  const domains = [...new Set(opts.mailboxes.map((m) => m.split('@')[1]))];
  writeFileSync(
    join(dir, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${join(dir, 'queue')}`,
      `data_directory = ${join(dir, 'data')}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      `myhostname = ${opts.hostname}`,
      'mydestination =',
      'mynetworks = 127.0.0.0/8',
      `maillog_file = ${logFile}`,
      'smtp_tls_security_level = none',
      'smtpd_tls_security_level = none',
      'disable_dns_lookups = yes',
      'smtp_host_lookup = native',
      'biff = no',
      `virtual_mailbox_domains = ${domains.join(' ')}`,
      `virtual_mailbox_base = ${mailBase}`,
      `virtual_mailbox_maps = inline:{ ${opts.mailboxes.map((m) => `{ ${m} = ${m}/ }`).join(', ')} }`,
      `virtual_uid_maps = static:${NOBODY}`,
      `virtual_gid_maps = static:${NOBODY}`,
      ...opts.main,
    ].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'master.cf'), readFileSync('/etc/postfix/master.cf'));
  const postconf = (...args: string[]) => exec('/usr/sbin/postconf', ['-c', dir, ...args]);
  await postconf('-F', '*/*/chroot = n');
  await postconf('-M', 'postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd');
  await postconf('-MX', 'smtp/inet');
  if (opts.listen) await postconf('-M', `${opts.listen}/inet=${opts.listen} inet n - n - - smtpd`);
  else await postconf('-e', 'master_service_disable = inet');
  await exec(POSTFIX, ['-c', dir, 'start']);
  return {
    dir,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    mailbox: (address) => {
      const d = join(mailBase, address, 'new');
      return existsSync(d) ? readdirSync(d).sort().map((f) => readFileSync(join(d, f), 'latin1')) : [];
    },
    sendmail: async (from, to, message) => {
      await new Promise<void>((resolve, reject) => {
        const child = execFile('/usr/sbin/sendmail', ['-C', dir, '-f', from, to], (err) => (err ? reject(err) : resolve()));
        child.stdin!.end(Buffer.from(message, 'latin1'));
      });
    },
    stop: async () => {
      await exec(POSTFIX, ['-c', dir, 'stop']).catch(() => undefined);
      rmSync(logFile, { force: true });
    },
  };
}

/** Poll `check` until it returns a value, or fail after `ms` with `what` and context. */
/**
 * Every smtpd session of a receiving Postfix has ended — a `disconnect from` for every
 * `connect from` — and none by a timeout in DATA (smtpd logs one only after minutes, so a
 * gateway that left a connection hanging shows as a count that never matches).
 */
export async function everySessionEnded(receiver: PostfixInstance, context: () => string): Promise<{ connects: number; disconnects: number }> {
  const counts = await waitFor(
    'every receiving smtpd session to end',
    () => {
      const log = receiver.log();
      const connects = (log.match(/smtpd\[\d+\]: connect from/g) ?? []).length;
      const disconnects = (log.match(/smtpd\[\d+\]: disconnect from/g) ?? []).length;
      return connects > 0 && connects === disconnects ? { connects, disconnects } : null;
    },
    15_000,
    context,
  );
  if (/timeout after (DATA|END-OF-MESSAGE)/.test(receiver.log())) throw new Error(`a receiving session timed out in DATA\n${context()}`);
  return counts;
}

export async function waitFor<T>(what: string, check: () => T | null | undefined | false, ms = 20_000, context = (): string => ''): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
