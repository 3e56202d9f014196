/**
 * `smtpwall capture show ID` prints the packet capture of a session as a transcript (both
 * legs, every line, resets and closes); `smtpwall capture export ID -o FILE` writes it as a
 * pcap for Wireshark or tshark. ID: the id a reply names (`541 … id: 3XXVMZTHNWB44NG4.1`),
 * a transaction id or a session id from `smtpwall logs`.
 */

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureText } from '../../admin/capture-text.ts';
import { capturePcap } from '../../admin/pcap.ts';
import { CaptureStore, type StoredCapture } from '../../logs/capture-store.ts';
import { withShared } from '../shared.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig, UsageError } from '../command.ts';

export const captureCommand = command({
  name: 'capture',
  usage: ['capture show ID [-c FILE]', 'capture export ID -o FILE.pcap [-c FILE]'],
  summary: 'the packet capture of a blocked transaction: as a transcript, or as a pcap file',
  options: { ...CONFIG_OPTION, output: { type: 'string', short: 'o' } },
  help: { config: CONFIG_HELP, output: ['FILE', 'export: where to write the pcap ("-": standard output)'] },
  notes: [
    'Captures are kept for sessions with a threat record (capture.when: threats, the default).',
    'Exit status: 0 done, 1 no capture for that id, 2 error.',
  ],
  async run({ values, positionals }) {
    const [verb, id] = positionals;
    if ((verb !== 'show' && verb !== 'export') || !id || positionals.length !== 2) throw new UsageError('expected "capture show ID" or "capture export ID -o FILE"');
    if (verb === 'export' && !values.output) throw new UsageError('export needs -o FILE (or -o - for standard output)');
    const cfg = loadConfig(values.config);
    if (cfg.store) return withShared(cfg, async (shared) => showCapture(await shared!.captures.get(id), verb, values.output));
    if (!existsSync(join(cfg.dataDirAbs, 'logs.sqlite'))) {
      process.stderr.write(`no log database yet in ${cfg.dataDirAbs} (start the gateway first)\n`);
      return 1;
    }
    const store = new CaptureStore(cfg.dataDirAbs, { readonly: true });
    try {
      return showCapture(store.get(id), verb, values.output);
    } finally {
      store.close();
    }
  },
});

function showCapture(c: StoredCapture | null, verb: 'show' | 'export', output: string | undefined): number {
  if (!c) {
    process.stderr.write(`no capture for that id (kept for sessions with a threat while capture.when is threats; see smtpwall logs threats)\n`);
    return 1;
  }
  if (verb === 'show') {
    process.stdout.write(`session ${c.sessionId} (listener ${c.listener}), stored ${c.time}\n${captureText(c)}`);
    return 0;
  }
  const pcap = capturePcap(c);
  if (output === '-') process.stdout.write(pcap);
  else {
    writeFileSync(output!, pcap);
    process.stdout.write(`wrote ${output} (${pcap.length} bytes, ${c.connections.length} TCP connections)\n`);
  }
  return 0;
}
