/**
 * A private Exim (Debian's default MTA) for the end-to-end tests, as the sending MTA in front of
 * the gateway. Debian's exim4 packages conflict with postfix as installed packages, so the
 * binary is unpacked, not installed: `.ci/run` does `apt-get download exim4-daemon-light` and
 * `dpkg -x` into EXIM_ROOT (default /var/cache/smtpwall-lab/exim), and creates the
 * `Debian-exim` user the binary was built for. Each instance has its own configuration (given
 * with -C: Exim then drops root, which suits a sender), spool, logs and mailbox; nothing of
 * the machine's mail setup is touched.
 *
 * Found while making this work: the binary re-executes itself at its built-in path unless the
 * configuration sets `exim_path`; with -C it runs as Debian-exim, so spool and log belong to
 * that user; local deliveries may not run as root (fixed_never_users); a file name built from
 * `$local_part` is tainted and refused (Exim 4.94+), so the test mailbox is one fixed file.
 */

import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const EXIM_ROOT = process.env.SMTPWALL_EXIM_ROOT ?? '/var/cache/smtpwall-lab/exim';
const EXIM = join(EXIM_ROOT, 'usr/sbin/exim4');

export function eximUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'a private Exim needs root';
  if (!existsSync(EXIM)) return `no unpacked Exim at ${EXIM} (.ci/run: apt-get download exim4-daemon-light && dpkg -x … ${EXIM_ROOT})`;
  try {
    execFileSync('id', ['-u', 'Debian-exim'], { stdio: 'ignore' });
  } catch {
    return 'the Debian-exim user is missing (useradd --system Debian-exim; .ci/run does it)';
  }
  return null;
}

export interface EximInstance {
  /** The main log (one line per arrival `<=`, delivery `=>`, failure `**`, deferral `==`). */
  log(): string;
  /** The local mailbox (mbox): bounces to the local sender arrive here. */
  mailbox(): string;
  /** Submit a message and attempt delivery at once (`-odi`); resolves when Exim is done. */
  send(from: string, to: string, message: string): Promise<void>;
}

/**
 * @param routes recipient domain → gateway port; every other domain is undeliverable
 * @param localDomain the sender's own domain, delivered to the mailbox
 */
export function startExim(opts: { dir: string; hostname: string; localDomain: string; routes: Record<string, number> }): EximInstance {
  const { dir } = opts;
  const spool = join(dir, 'spool');
  const logs = join(dir, 'log');
  const mail = join(dir, 'mail');
  for (const d of [spool, logs, mail]) mkdirSync(d, { recursive: true });
  const uid = Number(execFileSync('id', ['-u', 'Debian-exim'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'Debian-exim'], { encoding: 'utf8' }).trim());
  for (const d of [spool, logs, mail]) chownSync(d, uid, gid);
  chmodSync(dir, 0o755);
  const routers = Object.entries(opts.routes).map(([domain, port], i) => `r${i}:\n  driver = manualroute\n  domains = ${domain}\n  route_list = * 127.0.0.1\n  self = send\n  transport = t${i}\n`);
  const transports = Object.entries(opts.routes).map(([, port], i) => `t${i}:\n  driver = smtp\n  port = ${port}\n  hosts_avoid_tls = *\n`);
  const conf = join(dir, 'exim.conf');
  writeFileSync(
    conf,
    [
      `primary_hostname = ${opts.hostname}`,
      `exim_path = ${EXIM}`,
      'keep_environment =',
      `spool_directory = ${spool}`,
      `log_file_path = ${logs}/%slog`,
      'exim_user = Debian-exim',
      'exim_group = Debian-exim',
      `domainlist local_domains = ${opts.localDomain}`,
      `qualify_domain = ${opts.localDomain}`,
      'begin routers',
      'local:\n  driver = accept\n  domains = +local_domains\n  transport = mbox\n',
      ...routers,
      'begin transports',
      `mbox:\n  driver = appendfile\n  file = ${mail}/mbox\n  user = Debian-exim\n  return_path_add\n`,
      ...transports,
      // Retry a deferred message only much later: a test sees exactly one attempt.
      'begin retry',
      '* * F,2h,1h',
      '',
    ].join('\n'),
  );
  return {
    log: () => (existsSync(join(logs, 'mainlog')) ? readFileSync(join(logs, 'mainlog'), 'utf8') : ''),
    mailbox: () => (existsSync(join(mail, 'mbox')) ? readFileSync(join(mail, 'mbox'), 'latin1') : ''),
    send: (from, to, message) =>
      new Promise<void>((resolve, reject) => {
        const child = execFile(EXIM, ['-C', conf, '-odi', '-f', from, to], (err) => (err ? reject(err) : resolve()));
        child.stdin!.end(Buffer.from(message, 'latin1'));
      }),
  };
}
