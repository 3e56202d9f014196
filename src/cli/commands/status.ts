/**
 * `smtpwall status [-c FILE] [--json]`: is the gateway running (pid, version, uptime), its
 * workers and sessions now, messages and threats in the last minute and hour (from the log
 * database), and what it depends on — clamd with its signature database version, the
 * upstreams, 7-Zip, YARA-X, writable directories — each up or down.
 * Exit 0 running, 1 not running, 2 error.
 */

import { withShared } from '../shared.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest, type StatusReport } from '../../app/control.ts';
import { describeProbe, probeAll } from '../../app/health.ts';
import { SqliteLogStore } from '../../logs/sqlite-store.ts';
import { safeJson } from '../../logs/escape.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig } from '../command.ts';

export const statusCommand = command({
  name: 'status',
  usage: ['status [-c FILE] [--json]'],
  summary: 'is it running, sessions, messages and threats lately, engines and upstreams up or down',
  options: { ...CONFIG_OPTION, json: { type: 'boolean', default: false } },
  help: { config: CONFIG_HELP, json: 'one JSON object' },
  notes: ['Exit status: 0 running, 1 not running, 2 error.'],
  async run({ values }) {
    const cfg = loadConfig(values.config);
    let running: StatusReport | null = null;
    let why = '';
    try {
      running = await controlRequest<StatusReport>(cfg.dataDirAbs, 'status', 10_000);
    } catch (err) {
      why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no control socket' : (err as Error).message;
    }
    const now = Date.now();
    let recent: Record<string, { messages: number; stopped: number; threats: number }> | null = null;
    if (cfg.store) {
      // The shared store counts every instance's records; unreachable, the status says so below (probes).
      recent = await withShared(cfg, async (shared) => ({
        'last minute': await shared!.reader.countsSince(new Date(now - 60_000).toISOString()),
        'last hour': await shared!.reader.countsSince(new Date(now - 3_600_000).toISOString()),
      })).catch(() => null);
    } else if (existsSync(join(cfg.dataDirAbs, 'logs.sqlite'))) {
      const store = new SqliteLogStore(cfg.dataDirAbs, { readonly: true });
      try {
        recent = {
          'last minute': store.countsSince(new Date(now - 60_000).toISOString()),
          'last hour': store.countsSince(new Date(now - 3_600_000).toISOString()),
        };
      } finally {
        store.close();
      }
    }
    const probes = await probeAll(cfg);
    if (values.json) {
      process.stdout.write(`${safeJson({ running: running !== null, ...(running ?? { reason: why }), recent, probes })}\n`);
      return running ? 0 : 1;
    }
    const out: string[] = [];
    if (running) {
      out.push(`smtpwall ${running.version}: running, pid ${running.pid}, up ${duration(running.uptimeS)} (since ${running.started})`);
      out.push(`  config: ${running.config}`);
      out.push(`  sessions now: ${running.sessions}${running.workers.length > 1 || running.workers[0]?.pid !== running.pid ? ` in ${running.workers.length} workers (${running.workers.map((w) => `pid ${w.pid}: ${w.sessions}`).join(', ')})` : ''}`);
      const listeners = new Map<string, { address: string; upstream: string; sessions: number }>();
      for (const w of running.workers) {
        for (const l of w.listeners) {
          const seen = listeners.get(l.name);
          listeners.set(l.name, { address: l.address, upstream: l.upstream, sessions: (seen?.sessions ?? 0) + l.sessions });
        }
      }
      for (const [name, l] of listeners) out.push(`  listener ${name}: ${l.address} → ${l.upstream}, ${l.sessions} session${l.sessions === 1 ? '' : 's'}`);
    } else {
      out.push(`smtpwall: NOT running (${why}; data-dir ${cfg.dataDirAbs})`);
    }
    if (recent) {
      for (const [span, c] of Object.entries(recent)) out.push(`  ${span}: ${c.messages} message${c.messages === 1 ? '' : 's'}, ${c.stopped} stopped, ${c.threats} threat record${c.threats === 1 ? '' : 's'}`);
    }
    for (const p of probes) out.push(`  ${describeProbe(p)}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return running ? 0 : 1;
  },
});

function duration(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)}h`;
  return `${(s / 86400).toFixed(1)}d`;
}
