/** `smtpwall quarantine digest [--since WHEN] [--send]`: print or send the per-recipient digests. */

import type { LoadedConfig } from '../../policy/load-config.ts';
import { digestsSince, sendDigests } from '../../app/digest-run.ts';
import type { Quarantine } from '../../quarantine/store.ts';

export async function runDigest(cfg: LoadedConfig, store: Quarantine, opts: { since?: string; send: boolean }, out: (s: string) => boolean): Promise<number> {
  const mails = digestsSince(cfg, await store.list(), opts.since);
  if (mails.length === 0) {
    out('no quarantined messages to report');
    return 0;
  }
  if (!opts.send) {
    for (const m of mails) {
      out(`=== digest for <${m.recipient}>: ${m.entries.length} held (smtpwall quarantine digest --send sends it) ===`);
      for (const line of m.text.split('\r\n')) out(line);
    }
    return 0;
  }
  const sent = await sendDigests(cfg, mails);
  for (const s of sent) out(`${s.ok ? 'sent' : 'NOT sent'} digest to <${s.recipient}> (${s.entries} held): ${s.reply}`);
  return sent.every((s) => s.ok) ? 0 : 1;
}
