/**
 * Quarantine digests: for each recipient, one plain-text mail listing what is held for them
 * (id, when, sender, subject, threat) and how to ask for a release — the end-user view
 * MailScanner and Proxmox Mail Gateway admins know. Built here (pure); `smtpwall quarantine
 * digest` prints or sends them, and a gateway with `quarantine.digest.every` sends them on a
 * schedule (app/digest-run.ts).
 */

import { randomBytes } from 'node:crypto';
import { UNSAFE_TEXT } from '../logs/escape.ts';
import type { QuarantineEntry } from './store.ts';

export interface DigestOptions {
  /** The digest's sender (From and envelope). */
  readonly from: string;
  /** Whom to ask for a release. */
  readonly contact: string;
  /** The gateway's name, in the text and the Message-ID. */
  readonly hostname: string;
  /** How long entries are kept (quarantine.max-age), for the text. */
  readonly keptMs: number;
  readonly now?: Date;
}

export interface DigestMail {
  readonly recipient: string;
  readonly entries: readonly QuarantineEntry[];
  /** The body as text (what `quarantine digest` prints). */
  readonly text: string;
  /** The whole message, CRLF line ends. */
  readonly message: Buffer;
}

/** One digest per recipient of the entries (released ones left out), recipients in order. */
export function buildDigests(entries: readonly QuarantineEntry[], opts: DigestOptions): DigestMail[] {
  const byRecipient = new Map<string, QuarantineEntry[]>();
  for (const e of entries) {
    if (e.released) continue;
    for (const r of e.rcptTo) {
      const key = r.toLowerCase();
      byRecipient.set(key, [...(byRecipient.get(key) ?? []), e]);
    }
  }
  return [...byRecipient.keys()].sort().map((recipient) => {
    const held = byRecipient.get(recipient)!;
    return { recipient, entries: held, ...digestMessage(recipient, held, opts) };
  });
}

function digestMessage(recipient: string, held: readonly QuarantineEntry[], o: DigestOptions): { text: string; message: Buffer } {
  const now = o.now ?? new Date();
  const days = Math.round(o.keptMs / 86_400_000);
  const body = [
    `${held.length} message${held.length === 1 ? ' was' : 's were'} addressed to you and held by the mail gateway ${o.hostname}`,
    'because of what they carried. Held messages are deleted after ' + (days >= 1 ? `${days} day${days === 1 ? '' : 's'}.` : 'a while.'),
    '',
    ...held.flatMap((e) => [
      `  ${e.id}  ${e.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`,
      `    from:    <${e.mailFrom}>`,
      `    subject: ${oneLine(e.subject) || '(none)'}`,
      `    held:    ${oneLine(e.threat)} (${e.action})`,
      '',
    ]),
    'If you expected one of these messages and trust its sender, ask for its release:',
    `write to ${o.contact} and quote its id. Do not release what you did not expect.`,
    '',
  ].join('\r\n');
  const ascii = /^[\x00-\x7f]*$/.test(body);
  const head = [
    `From: smtpwall quarantine <${o.from}>`,
    `To: <${recipient}>`,
    `Subject: Quarantine digest: ${held.length} message${held.length === 1 ? '' : 's'} held for you`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <digest.${randomBytes(8).toString('hex')}@${o.hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
  ].join('\r\n');
  const text = ascii ? body : (Buffer.from(body, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';
  return { text: body, message: Buffer.from(`${head}\r\n\r\n${text}`, 'utf8') };
}

/** Text from the message shown in the digest: no line breaks, no control characters. */
const oneLine = (s: string): string => s.replace(UNSAFE_TEXT, ' ');
