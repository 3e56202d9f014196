/**
 * `smtpwall scan PATH... [--json] [-c FILE]`: scan files, directories, .eml messages and mbox
 * mailboxes with the gateway's own inspection pipeline (MIME decoding, archives, engines).
 * Files are read as streams, so a mailbox of any size costs one message of memory at a time.
 * A progress bar on stderr appears for runs longer than a moment when stderr is a terminal.
 *
 * Exit 0: everything clean; 1: a threat, or content that cannot be inspected (encrypted
 * archives, archive limits: what the gateway would not pass by default); 2: an error.
 */

import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHIVE_LIMIT, INCOMPLETE_INSPECTION, SUSPICIOUS_STRUCTURE } from '../../events.ts';
import { buildInspector } from '../../app/assemble.ts';
import type { Inspector } from '../../inspect/inspector.ts';
import type { ScanResult } from '../../inspect/types.ts';
import { command, CONFIG_OPTION, configOrExample, UsageError } from '../command.ts';
import { inputKind, MboxSplitter, messageLabel } from '../mbox.ts';
import { Progress } from '../progress.ts';
import { escapeUnsafe, safeJson } from '../../logs/escape.ts';

const SCAN_DEADLINE_MS = 120_000;
const READ_CHUNK = 256 * 1024;
/** Bytes of an mbox message kept to name it in the output. */
const HEAD_FOR_LABEL = 16 * 1024;

type Verdict = 'clean' | 'threat' | 'suspicious';

export const scanCommand = command({
  name: 'scan',
  usage: ['scan PATH... [-c FILE] [--json] [-v] [--infected]'],
  summary: 'scan files, directories, .eml messages and mbox mailboxes offline',
  options: {
    ...CONFIG_OPTION,
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
    infected: { type: 'boolean', short: 'i', default: false },
  },
  help: {
    config: ['FILE', 'inspect as the gateway on FILE does (default: $SMTPWALL_CONFIG or a config at a default path, else the example configuration\'s engines and limits)'],
    json: 'one JSON object per file or message, then a summary object',
    verbose: 'also every file found inside, with type, flags, size and sha256, and every reading of an ambiguous part',
    infected: 'print only threats and what cannot be inspected (and the summary)',
  },
  notes: [
    'Exit status: 0 everything clean, 1 a threat or content that cannot be inspected (what the',
    'gateway would not pass by default), 2 an error.',
  ],
  async run({ values, positionals }) {
    if (positionals.length === 0) throw new UsageError('expected at least one PATH to scan');
    const started = Date.now();
    const inspector = buildInspector(configOrExample(values.config));
    const files: { path: string; size: number }[] = [];
    let progress: Progress | null = null;
    const out = new Reporter(values.json, values.verbose, values.infected, () => progress?.clear());
    for (const root of positionals) {
      try {
        for await (const f of walk(root)) files.push(f);
      } catch (err) {
        out.error(root, err as Error);
      }
    }
    const bytes = files.reduce((n, f) => n + f.size, 0);
    progress = new Progress(process.stderr, bytes, files.length);
    try {
      for (const f of files) {
        try {
          await scanFile(inspector, f.path, (n) => progress.advance(n), out);
        } catch (err) {
          out.error(f.path, err as Error);
        }
        progress.fileDone();
      }
    } finally {
      progress.finish();
    }
    out.summary({ files: files.length, bytes, ms: Date.now() - started });
    if (out.errors) return 2;
    return out.notClean ? 1 : 0;
  },
});

async function* walk(path: string): AsyncGenerator<{ path: string; size: number }> {
  const s = await stat(path);
  if (!s.isDirectory()) {
    yield { path, size: s.size };
    return;
  }
  for (const entry of (await readdir(path)).sort()) yield* walk(join(path, entry));
}

async function scanFile(inspector: Inspector, path: string, advance: (n: number) => void, out: Reporter): Promise<void> {
  const kind = await inputKind(path);
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK });
  if (kind === 'mbox') {
    let n = 0;
    let scan = inspector.begin();
    // The start of each message, for its name in the output (Message-ID, else Subject).
    let head: Buffer[] = [];
    let headBytes = 0;
    const pending: Promise<void>[] = [];
    const splitter = new MboxSplitter({
      data: (chunk) => {
        scan.write(chunk);
        if (headBytes < HEAD_FOR_LABEL) {
          head.push(Buffer.from(chunk.subarray(0, HEAD_FOR_LABEL - headBytes)));
          headBytes += chunk.length;
        }
      },
      end: () => {
        const label = messageLabel(path, ++n, Buffer.concat(head));
        head = [];
        headBytes = 0;
        const s = scan;
        scan = inspector.begin();
        pending.push(s.end(SCAN_DEADLINE_MS).then((r) => out.result(label, 'message', r)));
      },
    });
    for await (const chunk of stream) {
      splitter.write(chunk as Buffer);
      advance((chunk as Buffer).length);
      await Promise.all(pending.splice(0)); // one message in flight: memory stays one message
    }
    splitter.end();
    await Promise.all(pending);
    return;
  }
  const scan = kind === 'message' ? inspector.begin() : inspector.beginFile(path);
  for await (const chunk of stream) {
    scan.write(chunk as Buffer);
    advance((chunk as Buffer).length);
  }
  out.result(path, kind, await scan.end(SCAN_DEADLINE_MS));
}

function verdictOf(r: ScanResult): Verdict {
  if (r.findings.length > 0) return 'threat';
  const suspicious = r.events.some((e) => SUSPICIOUS_STRUCTURE.has(e.name) || ARCHIVE_LIMIT.has(e.name) || INCOMPLETE_INSPECTION.has(e.name));
  return suspicious ? 'suspicious' : 'clean';
}

class Reporter {
  errors = 0;
  notClean = 0;
  messages = 0;
  threats = 0;
  constructor(private readonly json: boolean, private readonly verbose: boolean, private readonly infected: boolean, private readonly beforeOutput: () => void) {}

  /** The last line: how much was scanned and what was found (ClamAV's clamscan prints the like). */
  summary(s: { files: number; bytes: number; ms: number }): void {
    this.beforeOutput();
    const totals = { files: s.files, messages: this.messages, threats: this.threats, 'not inspectable': this.notClean - this.threatsIn, errors: this.errors, bytes: s.bytes, seconds: Number((s.ms / 1000).toFixed(2)) };
    if (this.json) process.stdout.write(`${safeJson({ summary: totals })}\n`);
    else process.stdout.write(`scanned ${s.files} file${s.files === 1 ? '' : 's'} (${this.messages} message${this.messages === 1 ? '' : 's'}, ${mb(s.bytes)}) in ${totals.seconds} s: ${this.threats} threat${this.threats === 1 ? '' : 's'} in ${this.threatsIn} of them, ${totals['not inspectable']} not inspectable, ${this.errors} error${this.errors === 1 ? '' : 's'}\n`);
  }

  /** Files or messages with at least one threat. */
  threatsIn = 0;

  error(file: string, err: Error): void {
    this.errors++;
    this.beforeOutput();
    if (this.json) process.stdout.write(`${safeJson({ file, error: err.message })}\n`);
    else process.stdout.write(`${escapeUnsafe(`${file}: ERROR ${err.message}`)}\n`);
  }

  result(label: string, scannedAs: string, r: ScanResult): void {
    const verdict = verdictOf(r);
    if (verdict !== 'clean') this.notClean++;
    if (scannedAs === 'message') this.messages++;
    this.threats += r.findings.length;
    if (r.findings.length) this.threatsIn++;
    if (this.infected && verdict === 'clean') return;
    this.beforeOutput();
    if (this.json) {
      process.stdout.write(
        `${safeJson({
          file: label,
          scannedAs,
          verdict,
          findings: r.findings.map((f) => ({
            threat: f.threat, threatId: f.threatId, engine: f.engine, signature: f.signature, severity: f.severity,
            path: f.file.path, name: f.file.name, detectedType: f.file.detectedType, flags: f.file.flags, sha256: f.file.sha256, size: f.file.size,
          })),
          files: r.files.map((f) => ({
            path: f.path, name: f.name, declaredType: f.declaredType, detectedType: f.detectedType, flags: f.flags, size: f.size, sha256: f.sha256,
            ...(f.textEncoding ? { textEncoding: f.textEncoding } : {}),
            ...(f.openedBy ? { openedBy: f.openedBy } : {}),
          })),
          events: r.events,
        })}\n`,
      );
      return;
    }
    const lines: string[] = [];
    for (const f of r.findings) {
      const where = f.file.path === label ? '' : ` in ${f.file.path}${f.file.name && !f.file.path.endsWith(f.file.name) ? ` (${f.file.name})` : ''}`;
      lines.push(`${label}: FOUND ${f.threat}${where} [${f.engine} ${f.signature.slice(0, 80)}, id ${f.threatId}, sha256 ${f.file.sha256}]`);
    }
    const events = r.events.map((e) => `${e.name} at ${e.where}${e.detail ? ` (${e.detail})` : ''}`);
    if (verdict === 'suspicious') lines.push(`${label}: SUSPICIOUS ${events.join('; ')}`);
    if (verdict === 'clean') lines.push(`${label}: OK${events.length ? ` (events: ${events.join('; ')})` : ''}`);
    if (this.verbose) {
      lines.push(...readingLines(r));
      for (const f of r.files) {
        const flags = f.flags.length ? ` [${f.flags.join(', ')}]` : '';
        const text = f.textEncoding ? `, text in ${f.textEncoding} (decoded: ${f.path}/(text))` : '';
        const opened = f.openedBy ? `, opened by ${f.openedBy}` : '';
        lines.push(`  ${f.path}${f.name && !f.path.endsWith(f.name) ? ` (${f.name})` : ''}: ${f.detectedType}${flags}${text}${opened}, ${f.size} bytes, sha256 ${f.sha256}`);
      }
    }
    // One line per entry: names from the message cannot break a line or drive the terminal.
    process.stdout.write(`${lines.map(escapeUnsafe).join('\n')}\n`);
  }
}

/**
 * For each part read more than one way (a MIME_AMBIGUOUS event), each reading and what was
 * found in it: an admin sees which reading carried the threat, and why there were several.
 */
function readingLines(r: ScanResult): string[] {
  const out: string[] = [];
  for (const e of r.events) {
    if (e.name !== 'MIME_AMBIGUOUS') continue;
    const at = e.where;
    const under = (p: string, root: string): boolean => p === root || p.startsWith(`${root}/`);
    const roots = new Set<string>([at]);
    for (const f of r.files) {
      if (!f.path.startsWith(`${at}~`)) continue;
      roots.add(f.path.split('/').slice(0, at.split('/').length).join('/'));
    }
    out.push(`  readings of ${at} (${e.detail ?? 'more than one'}):`);
    for (const root of roots) {
      const files = r.files.filter((f) => under(f.path, root));
      const threats = [...new Set(r.findings.filter((f) => under(f.file.path, root)).map((f) => `${f.threat} in ${f.file.path}`))];
      out.push(`    ${root}: ${files.length} object${files.length === 1 ? '' : 's'}, ${threats.length ? threats.join('; ') : 'nothing found'}`);
    }
  }
  return out;
}

const mb = (n: number): string => (n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);
