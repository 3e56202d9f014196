/**
 * `smtpwall scan PATH... [--json] [-c FILE]`: scan files, directories and .eml messages with
 * the gateway's own inspection pipeline. Exit 0 clean, 1 threat found, 2 error.
 */

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildInspector } from '../../gateway/gateway.ts';
import { SignatureEngine } from '../../inspect/engines/signatures.ts';
import { Inspector } from '../../inspect/inspector.ts';
import type { ScanResult } from '../../inspect/types.ts';
import { loadConfigFile } from '../../policy/load-config.ts';

const SCAN_DEADLINE_MS = 60_000;

export async function runScan(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, config: { type: 'string', short: 'c' } },
  });
  if (positionals.length === 0) throw new Error('expected at least one PATH to scan');
  const inspector = values.config ? buildInspector(loadConfigFile(values.config)) : new Inspector({ engines: [new SignatureEngine()] });
  let threats = 0;
  let errors = 0;
  for (const root of positionals) {
    for await (const file of walk(root)) {
      try {
        const bytes = await readFile(file);
        const asMessage = /\.(eml|msg\.txt)$/i.test(file) || looksLikeMessage(bytes);
        const result = await inspector.scanBuffer(bytes, asMessage, SCAN_DEADLINE_MS, file);
        threats += result.findings.length ? 1 : 0;
        report(file, asMessage, result, values.json);
      } catch (err) {
        errors++;
        if (values.json) process.stdout.write(`${JSON.stringify({ file, error: (err as Error).message })}\n`);
        else process.stdout.write(`${file}: ERROR ${(err as Error).message}\n`);
      }
    }
  }
  if (errors) return 2;
  return threats ? 1 : 0;
}

async function* walk(path: string): AsyncGenerator<string> {
  const s = await stat(path);
  if (!s.isDirectory()) {
    yield path;
    return;
  }
  for (const entry of (await readdir(path)).sort()) yield* walk(join(path, entry));
}

/** A file that starts with RFC 5322 header fields is scanned as a message (MIME decoded). */
function looksLikeMessage(bytes: Buffer): boolean {
  const head = bytes.toString('latin1', 0, Math.min(bytes.length, 2048));
  return /^(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*){2,}/.test(head) && /^(from|to|subject|date|message-id|mime-version|received|return-path):/im.test(head);
}

function report(file: string, asMessage: boolean, r: ScanResult, json: boolean): void {
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        file,
        scannedAs: asMessage ? 'message' : 'file',
        verdict: r.findings.length ? 'threat' : 'clean',
        findings: r.findings.map((f) => ({
          threat: f.threat, threatId: f.threatId, engine: f.engine, signature: f.signature, severity: f.severity,
          path: f.file.path, name: f.file.name, detectedType: f.file.detectedType, sha256: f.file.sha256, size: f.file.size,
        })),
        files: r.files.map((f) => ({ path: f.path, name: f.name, declaredType: f.declaredType, detectedType: f.detectedType, size: f.size, sha256: f.sha256 })),
        events: r.events,
      })}\n`,
    );
    return;
  }
  if (r.findings.length === 0) {
    process.stdout.write(`${file}: OK${r.events.length ? ` (events: ${r.events.map((e) => e.name).join(', ')})` : ''}\n`);
    return;
  }
  for (const f of r.findings) {
    const where = f.file.path === 'file' ? '' : ` in ${f.file.path}${f.file.name ? ` (${f.file.name})` : ''}`;
    process.stdout.write(`${file}: FOUND ${f.threat}${where} [${f.engine} ${f.signature.slice(0, 80)}, id ${f.threatId}, sha256 ${f.file.sha256}]\n`);
  }
}
