/**
 * A private Sendmail for the end-to-end tests, as the sending MTA in front of the gateway.
 * Debian's sendmail packages conflict with postfix as installed packages, so they are unpacked,
 * not installed: `.ci/run` does `apt-get download sendmail-bin sendmail-cf` and `dpkg -x` into
 * SENDMAIL_ROOT (default /var/cache/smtpwall-lab/sendmail), and installs m4 (which turns a
 * .mc into a sendmail.cf) and libwrap0 (which the binary links). Each instance has its own
 * configuration (given with -C), queue and mailbox; nothing of the machine's mail setup is
 * touched. Every message is sent through one smart host, the gateway's port; local mail (the
 * bounces to the sender) goes to a one-line shell mailer that appends to the instance's mbox.
 *
 * Found while making this work: Sendmail will not start on a host whose name has no dot and
 * cannot be made canonical — it logs "My unqualified host name (vm) unknown; sleeping for
 * retry" and sleeps 60 s per run. Its AAAA lookup of the name fails here, and the IPv4 retry
 * is not made for the canonical check. So each run gets a UTS namespace of its own (`unshare
 * --uts`) whose host name is the instance's qualified name; no DNS is asked at all then.
 */

import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SENDMAIL_ROOT = process.env.SMTPWALL_SENDMAIL_ROOT ?? '/var/cache/smtpwall-lab/sendmail';
const SENDMAIL = join(SENDMAIL_ROOT, 'usr/libexec/sendmail/sendmail');
const CF_DIR = join(SENDMAIL_ROOT, 'usr/share/sendmail/cf');

const have = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

export function sendmailUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'a private Sendmail needs root (and a UTS namespace of its own)';
  if (!existsSync(SENDMAIL) || !existsSync(join(CF_DIR, 'm4/cf.m4'))) return `no unpacked Sendmail at ${SENDMAIL_ROOT} (.ci/run: apt-get download sendmail-bin sendmail-cf && dpkg -x … ${SENDMAIL_ROOT})`;
  if (!have('m4')) return 'm4 is missing (apt-get install m4; .ci/run does it)';
  if (!have('unshare')) return 'unshare (util-linux) is missing';
  return null;
}

export interface SendmailRun {
  /** What `sendmail -v` printed: the SMTP dialogue with the relay and the outcome per recipient. */
  readonly transcript: string;
  /**
   * Its exit status: 0, or a sysexits code — 76 (EX_PROTOCOL) when the relay closed the
   * connection after its reply (a block's reset), 75 (EX_TEMPFAIL) when the message was queued.
   */
  readonly status: number;
}

export interface SendmailInstance {
  /** Submit a message and deliver it at once in the foreground (`-odi -v`); resolves when done. */
  send(from: string, to: string, message: string): Promise<SendmailRun>;
  /** The local mailbox (mbox-like): bounces to the local sender arrive here. */
  mailbox(): string;
  /** Messages waiting in the queue (a deferred message stays here). */
  queued(): string[];
}

/**
 * @param port the smart host's port on 127.0.0.1 (the gateway): every non-local recipient goes there
 * @param localDomain the sender's own domain, delivered to the mailbox
 */
export function startSendmail(opts: { dir: string; hostname: string; localDomain: string; port: number }): SendmailInstance {
  const { dir } = opts;
  const queue = join(dir, 'queue');
  const mail = join(dir, 'mail');
  mkdirSync(queue, { recursive: true, mode: 0o700 });
  mkdirSync(mail, { recursive: true });
  chmodSync(dir, 0o755);
  // The local mailer runs as Sendmail's default user (nobody): the mailbox directory is open to it.
  chmodSync(mail, 0o1777);
  const mbox = join(mail, 'mbox');
  const mailer = join(dir, 'deliver.sh');
  writeFileSync(mailer, `#!/bin/sh\n{ cat; echo; } >> '${mbox}'\n`, { mode: 0o755 });
  writeFileSync(join(dir, 'service.switch'), 'hosts files\naliases files\n');
  writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost ${opts.hostname}\n`);
  const q = (s: string): string => `\`${s}'`;
  const mc = [
    'divert(-1)',
    'divert(0)dnl',
    `include(${q(join(CF_DIR, 'm4/cf.m4'))})dnl`,
    `VERSIONID(${q('smtpwall lab')})dnl`,
    `OSTYPE(${q('linux')})dnl`,
    `define(${q('confDOMAIN_NAME')}, ${q(opts.hostname)})dnl`,
    `define(${q('confDONT_PROBE_INTERFACES')}, ${q('True')})dnl`,
    `define(${q('QUEUE_DIR')}, ${q(queue)})dnl`,
    `define(${q('confHOSTS_FILE')}, ${q(join(dir, 'hosts'))})dnl`,
    `define(${q('confSERVICE_SWITCH_FILE')}, ${q(join(dir, 'service.switch'))})dnl`,
    `define(${q('STATUS_FILE')}, ${q(join(dir, 'statistics'))})dnl`,
    `define(${q('confDEF_USER_ID')}, ${q('nobody:nogroup')})dnl`,
    `define(${q('confBIND_OPTS')}, ${q('-DNSRCH -DEFNAMES')})dnl`,
    // One relay for everything: the gateway, by address (brackets: no MX lookup).
    `define(${q('SMART_HOST')}, ${q('esmtp:[127.0.0.1]')})dnl`,
    `define(${q('ESMTP_MAILER_ARGS')}, ${q(`TCP $h ${opts.port}`)})dnl`,
    `define(${q('LOCAL_MAILER_PATH')}, ${q(mailer)})dnl`,
    `define(${q('LOCAL_MAILER_ARGS')}, ${q('deliver.sh $u')})dnl`,
    // Local mail without aliases (no database to build) and without a passwd entry (w) for
    // the recipient: with the default flags Sendmail queues the bounce instead of delivering it.
    `define(${q('_DEF_LOCAL_MAILER_FLAGS')}, ${q('lsDFMq')})dnl`,
    `define(${q('LOCAL_MAILER_FLAGS')}, ${q('')})dnl`,
    `LOCAL_DOMAIN(${q(opts.localDomain)})dnl`,
    `DAEMON_OPTIONS(${q('Family=inet, Name=MTA-v4, Port=smtp, Addr=127.0.0.1')})dnl`,
    `FEATURE(${q('nocanonify')})dnl`,
    `FEATURE(${q('no_default_msa')})dnl`,
    `MAILER(${q('local')})dnl`,
    `MAILER(${q('smtp')})dnl`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'sendmail.mc'), mc);
  const cf = join(dir, 'sendmail.cf');
  writeFileSync(cf, execFileSync('m4', [`-D_CF_DIR_=${CF_DIR}/`, join(dir, 'sendmail.mc')], { encoding: 'utf8' }));
  const inNamespace = (args: string[]): string[] => ['--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', opts.hostname, SENDMAIL, '-C', cf, ...args];
  return {
    send: (from, to, message) =>
      new Promise<SendmailRun>((resolve, reject) => {
        const child = execFile(
          'unshare',
          inNamespace(['-odi', '-oi', '-v', '-f', from, to]),
          { encoding: 'utf8', timeout: 60_000 },
          (err, stdout, stderr) => {
            const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
            if (status === null) reject(new Error(`sendmail did not finish: ${err!.message}\n${stdout}${stderr}`));
            else resolve({ transcript: stdout + stderr, status });
          },
        );
        child.stdin!.end(Buffer.from(message, 'latin1'));
      }),
    mailbox: () => (existsSync(mbox) ? readFileSync(mbox, 'latin1') : ''),
    queued: () => readdirSync(queue).filter((f) => f.startsWith('qf')),
  };
}
