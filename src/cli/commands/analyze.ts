/**
 * `smtpwall analyze FILE... [--json]`: the local analysis of each file — and of every file
 * inside it (archives, documents) — with the verdict and every reason. Exit 0 all benign,
 * 1 grayware/phishing/malicious found, 2 error.
 *
 * `smtpwall verdicts list|show SHA256|set SHA256 benign|grayware|phishing|malicious --reason
 * TEXT -c FILE`: the verdict store of a gateway; a manual verdict wins over analysis.
 */

import { readFile } from 'node:fs/promises';
import { analyze } from '../../inspect/engines/analysis/analyze.ts';
import { SqliteVerdictStore, type StoredVerdict, type VerdictStore } from '../../inspect/engines/analysis/verdict-store.ts';
import { withShared } from '../shared.ts';
import type { VerdictClass } from '../../inspect/engines/analysis/types.ts';
import { SignatureEngine } from '../../inspect/engines/signatures.ts';
import { Inspector } from '../../inspect/inspector.ts';
import type { Engine, EngineScan } from '../../inspect/engines/engine.ts';
import { type FileInfo, type Finding, RAW_MESSAGE_PATH } from '../../inspect/types.ts';
import { command, CONFIG_HELP, CONFIG_OPTION, loadConfig, UsageError } from '../command.ts';
import { inputKind, messageLabel, splitMbox } from '../mbox.ts';
import { escapeUnsafe, safeJson } from '../../logs/escape.ts';
import { SevenZipTool, sevenZipReader } from '../../inspect/archive/seven-zip-tool.ts';
import { BsdtarTool, rarReader } from '../../inspect/archive/bsdtar-tool.ts';

/** One line of text output: names and reasons from files and messages cannot break it or drive the terminal. */
const line = (s: string): void => void process.stdout.write(`${escapeUnsafe(s)}\n`);

export const analyzeCommand = command({
  name: 'analyze',
  usage: ['analyze FILE... [--json]'],
  summary: 'static analysis: verdict and reasons for each file (messages and mboxes: each file in them)',
  options: { json: { type: 'boolean', default: false } },
  help: { json: 'one JSON object per analysed file' },
  notes: [
    '.eml files and mbox mailboxes are read as messages: every attachment (and every file inside',
    'archives) is analysed. Exit status: 0 all benign, 1 grayware, phishing or malicious, or a',
    'signature found, 2 error.',
  ],
  async run({ values, positionals }) {
    if (positionals.length === 0) throw new UsageError('expected at least one FILE to analyze');
    let bad = 0;
    for (const path of positionals) {
      const bytes = await readFile(path);
      const kind = await inputKind(path);
      const inputs = kind === 'mbox' ? splitMbox(bytes).map((m, i) => ({ label: messageLabel(path, i + 1, m), bytes: m, asMessage: true })) : [{ label: path, bytes, asMessage: kind === 'message' }];
      for (const input of inputs) bad += await analyzeOne(input.label, input.bytes, input.asMessage, values.json);
    }
    return bad ? 1 : 0;
  },
});

/** The analysis of one file or message; returns how many files were not benign (or had findings). */
async function analyzeOne(label: string, bytes: Buffer, asMessage: boolean, json: boolean): Promise<number> {
  let bad = 0;
  const seen: Array<{ file: FileInfo; bytes: Buffer }> = [];
  const inspector = new Inspector({ engines: [new SignatureEngine(), collector(seen)], readers: { '7z': sevenZipReader(SevenZipTool.find('auto', 30_000)), rar: rarReader(BsdtarTool.find('auto', 30_000)) } });
  const r = await inspector.scanBuffer(bytes, asMessage, 60_000, label);
  if (asMessage && !json) line(`${label}: message, ${seen.filter((x) => x.file.path !== RAW_MESSAGE_PATH).length} file(s)`);
  for (const { file, bytes: b } of seen) {
    if (file.path === RAW_MESSAGE_PATH) continue; // the message as a whole: its parts are analysed
    const v = analyze({ bytes: b, detectedType: file.detectedType, name: file.name, flags: file.flags });
    if (v.verdict !== 'benign') bad++;
    if (json) {
      process.stdout.write(`${safeJson({ input: label, path: file.path, name: file.name, type: file.detectedType, sha256: file.sha256, ...v })}\n`);
      continue;
    }
    if (v.analyzers.length === 0 && file.path !== label) continue; // nothing to say about a plain member
    line(`${file.path}${file.name && !file.path.endsWith(file.name) ? ` (${file.name})` : ''}: ${v.verdict.toUpperCase()} (score ${v.score}, ${file.detectedType}, sha256 ${file.sha256})`);
    for (const i of v.indicators) line(`  +${String(i.score).padStart(2)} ${i.analyzer}: ${i.reason}`);
  }
  for (const f of r.findings) {
    bad++;
    if (json) process.stdout.write(`${safeJson({ input: label, path: f.file.path, name: f.file.name, sha256: f.file.sha256, found: f.threat, engine: f.engine })}\n`);
    else line(`${f.file.path}: FOUND ${f.threat} (${f.engine})`);
  }
  return bad;
}

/** An engine that only keeps each file's bytes (up to 10 MiB) for the analysis above. */
function collector(out: Array<{ file: FileInfo; bytes: Buffer }>): Engine {
  return {
    name: 'collect',
    open(): EngineScan {
      const chunks: Buffer[] = [];
      let size = 0;
      return {
        write(c) {
          if (size < 10 * 1024 * 1024) chunks.push(Buffer.from(c));
          size += c.length;
        },
        async end(file): Promise<Finding[]> {
          out.push({ file, bytes: Buffer.concat(chunks) });
          return [];
        },
      };
    },
  };
}

const CLASSES: readonly VerdictClass[] = ['benign', 'grayware', 'phishing', 'malicious'];

export const verdictsCommand = command({
  name: 'verdicts',
  usage: ['verdicts list [-c FILE] [--json] [--limit N]', 'verdicts show SHA256 [-c FILE] [--json]', 'verdicts set SHA256 benign|grayware|phishing|malicious --reason TEXT [-c FILE]'],
  summary: 'the verdict store: list, show (with where the file went), set (a manual verdict wins)',
  options: { ...CONFIG_OPTION, reason: { type: 'string' }, json: { type: 'boolean', default: false }, limit: { type: 'string', default: '50' } },
  help: { config: CONFIG_HELP, reason: ['TEXT', 'why (set; logged with the verdict)'], json: 'one JSON object per verdict', limit: ['N', 'list: the N most recent; show: N sightings (default 50)'] },
  run: runVerdicts,
});

async function runVerdicts({ values, positionals }: { values: { config?: string; reason?: string; json: boolean; limit: string }; positionals: string[] }): Promise<number> {
  const cfg = loadConfig(values.config);
  return withShared(cfg, (shared) => verdictVerb(shared?.verdicts ?? new SqliteVerdictStore(cfg.dataDirAbs, { instance: cfg.instanceName }), values, positionals, shared !== null));
}

async function verdictVerb(store: VerdictStore, values: { json: boolean; reason?: string; limit: string }, positionals: string[], shared: boolean): Promise<number> {
  try {
    const [verb, sha256, verdict] = positionals;
    const show = (v: StoredVerdict): void => {
      if (values.json) process.stdout.write(`${safeJson(v)}\n`);
      else {
        line(`${v.sha256}  ${v.verdict.padEnd(9)} ${String(v.score).padStart(3)}  ${v.source.padEnd(8)} seen ${v.seen}  ${v.fileType} ${v.fileName}`);
        for (const r of v.reasons) line(`    ${r}`);
      }
    };
    if (verb === 'list') {
      for (const v of await store.list(Number(values.limit))) show(v);
      return 0;
    }
    if (!sha256 || !/^[0-9a-f]{64}$/i.test(sha256)) throw new UsageError('expected a SHA-256 (64 hex digits)');
    if (verb === 'show') {
      const v = await store.get(sha256.toLowerCase());
      if (!v) throw new Error(`no verdict for ${sha256}`);
      // Where the file went: every message it was in, newest first (who got it, if delivered).
      const seen = await store.sightings(v.sha256, Number(values.limit));
      if (values.json) {
        process.stdout.write(`${safeJson({ ...v, sightings: seen })}\n`);
        return 0;
      }
      show(v);
      process.stdout.write(seen.length === 0 ? '  no sightings recorded\n' : `  sightings (newest first, up to ${values.limit}):\n`);
      for (const x of seen) {
        line(`    ${x.time}  ${(x.delivered ? 'delivered' : 'not delivered').padEnd(13)} ${x.action.padEnd(6)} tx ${x.transactionId}  ${x.messageId || '(no Message-ID)'}`);
        line(`      from <${x.mailFrom}> to ${x.rcptTo.map((r) => `<${r}>`).join(', ')}  as ${x.filePath}${x.instance ? `  on ${x.instance}` : ''}`);
      }
      return 0;
    }
    if (verb === 'set') {
      if (!CLASSES.includes(verdict as VerdictClass)) throw new UsageError(`expected one of ${CLASSES.join(', ')}`);
      if (!values.reason) throw new UsageError('--reason TEXT is required (it is logged with the verdict)');
      await store.override(sha256.toLowerCase(), verdict as VerdictClass, values.reason);
      process.stdout.write(`${sha256.toLowerCase()}: ${verdict} (manual: ${values.reason})${shared ? ' — in the shared store: every instance applies it within a second' : ''}\n`);
      return 0;
    }
    throw new UsageError('expected "verdicts list", "verdicts show SHA256" or "verdicts set SHA256 VERDICT --reason TEXT"');
  } finally {
    if (!shared) await store.close();
  }
}
