/**
 * Sending quarantine digests: the entries held since a time, one mail per recipient, each
 * delivered through a listener's receiving server (app/deliver.ts). Used by `smtpwall
 * quarantine digest --send` and by the gateway's schedule (`quarantine.digest.every`), which
 * remembers in DATA-DIR/quarantine-digest.json which entries were reported.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogFn } from '../logs/process-log.ts';
import type { LoadedConfig } from '../policy/load-config.ts';
import { deliver } from './deliver.ts';
import { buildDigests, type DigestMail } from '../quarantine/digest.ts';
import { type Quarantine, QuarantineStore } from '../quarantine/store.ts';

export interface DigestSent {
  readonly recipient: string;
  readonly entries: number;
  readonly ok: boolean;
  readonly reply: string;
}

export function digestsSince(cfg: LoadedConfig, entries: Awaited<ReturnType<Quarantine['list']>>, since: string | undefined): DigestMail[] {
  const d = cfg.quarantine.digest;
  const from = d?.from ?? `postmaster@${cfg.hostname}`;
  return buildDigests(since ? entries.filter((e) => e.time >= since) : entries, {
    from, contact: d?.contact ?? from, hostname: cfg.hostname, keptMs: cfg.quarantine['max-age'],
  });
}

export async function sendDigests(cfg: LoadedConfig, mails: readonly DigestMail[]): Promise<DigestSent[]> {
  const d = cfg.quarantine.digest;
  const listener = d?.listener ?? cfg.listeners.find((l) => l.upstream)?.name ?? cfg.listeners[0]!.name;
  const from = d?.from ?? `postmaster@${cfg.hostname}`;
  const sent: DigestSent[] = [];
  for (const m of mails) {
    const r = await deliver(cfg, listener, '', from, [m.recipient], m.message);
    sent.push({ recipient: m.recipient, entries: m.entries.length, ok: r.ok, reply: r.reply });
  }
  return sent;
}

/** Beside the quarantine directory, not in it (that holds entries only). */
const MARKER = 'quarantine-digest.json';

/**
 * The schedule: every `quarantine.digest.every`, digests of what was held since the last run.
 * DATA-DIR/quarantine-digest.json lists the entries already reported (not a time: an entry
 * stamped just before a run but written just after it must not be skipped).
 */
/**
 * @param shared the shared store's quarantine (`store:`): every instance reports the entries it
 *   quarantined itself, so a recipient gets one digest per entry, not one per instance
 */
export function startDigestSchedule(cfg: LoadedConfig, log: LogFn, shared?: Quarantine): () => void {
  const d = cfg.quarantine.digest;
  if (!d) return () => {};
  const store = shared ?? new QuarantineStore(cfg.dataDirAbs, { maxAgeMs: cfg.quarantine['max-age'], maxBytes: cfg.quarantine['max-size'] });
  const marker = join(cfg.dataDirAbs, MARKER);
  let running = false;
  const run = async (): Promise<void> => {
    const reported = new Set(await readFile(marker, 'utf8').then((t) => (JSON.parse(t) as { reported?: string[] }).reported ?? [], () => [] as string[]));
    const entries = (await store.list()).filter((e) => !shared || e.instance === cfg.instanceName);
    const fresh = entries.filter((e) => !reported.has(e.id));
    if (fresh.length === 0) return;
    const sent = await sendDigests(cfg, digestsSince(cfg, fresh, undefined));
    for (const s of sent) log(s.ok ? 'info' : 'warn', s.ok ? 'quarantine digest sent' : 'quarantine digest NOT sent', { to: s.recipient, entries: s.entries, reply: s.reply });
    // Only a run in which every digest went out marks its entries: the others are tried again.
    if (!sent.every((s) => s.ok)) return;
    const live = new Set(entries.map((e) => e.id));
    const next = [...[...reported].filter((id) => live.has(id)), ...fresh.map((e) => e.id)];
    await writeFile(marker, `${JSON.stringify({ reported: next })}\n`);
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    run()
      .catch((err: Error) => log('error', 'quarantine digest failed', { error: err.message }))
      .finally(() => (running = false));
  }, d.every);
  timer.unref();
  return () => clearInterval(timer);
}
