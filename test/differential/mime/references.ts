/**
 * The reference MIME parsers, each behind one adapter: given messages, the files each parser
 * extracts from each. None of them was written here: Python's email package (compat32 and
 * default policies), Perl's MIME-tools, ripmime and munpack (Debian), mailparser and
 * postal-mime (npm). Batch adapters (Python, Perl) read many messages in one process; the
 * command-line unpackers run once per message in a fresh directory.
 */

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import PostalMime from 'postal-mime';

const HERE = fileURLToPath(new URL('.', import.meta.url));

export type ParserName = 'python-compat32' | 'python-default' | 'mime-tools' | 'ripmime' | 'munpack' | 'mailparser' | 'postal-mime';

/** Files per parser, per message (same order as the input). */
export type Extracted = Map<ParserName, Buffer[][]>;

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** The parsers installed here (`.ci/run` installs all of them). */
export function availableParsers(): ParserName[] {
  const out: ParserName[] = ['mailparser', 'postal-mime'];
  if (has('python3', ['-c', 'import email.policy'])) out.push('python-compat32', 'python-default');
  if (has('perl', ['-MMIME::Parser', '-e', '1'])) out.push('mime-tools');
  if (has('sh', ['-c', 'command -v ripmime'])) out.push('ripmime');
  if (has('sh', ['-c', 'command -v munpack'])) out.push('munpack');
  return out;
}

/** Run a batch adapter: paths on stdin, one output line per path. */
function batch(cmd: string, args: string[], paths: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.length > 0);
      if (lines.length !== paths.length) reject(new Error(`${cmd} ${args.join(' ')}: ${lines.length} answers for ${paths.length} messages (exit ${code})`));
      else resolve(lines);
    });
    child.stdin.end(paths.join('\n') + '\n');
  });
}

/** Every regular file under a directory, recursively. */
function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(readFileSync(p));
  }
  return out;
}

/** A command-line unpacker run on one message in an empty directory; its files are the answer. */
function unpackWith(cmd: (msg: string, out: string) => [string, string[]], path: string): Buffer[] {
  const out = mkdtempSync(join(tmpdir(), 'smtpwall-ref-'));
  try {
    const [bin, args] = cmd(path, out);
    spawnSync(bin, args, { cwd: out, stdio: 'ignore', timeout: 20_000 });
    return filesUnder(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export async function extractAll(messages: readonly Buffer[], parsers = availableParsers()): Promise<Extracted> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpwall-diff-'));
  const result: Extracted = new Map();
  try {
    const paths = messages.map((m, i) => {
      const p = join(dir, `${String(i).padStart(5, '0')}.eml`);
      writeFileSync(p, m);
      return p;
    });
    const want = new Set(parsers);
    if (want.has('python-compat32') || want.has('python-default')) {
      const lines = await batch('python3', [join(HERE, 'ref_python.py')], paths);
      const rows = lines.map((l) => JSON.parse(l) as { compat32: string[]; default: string[] });
      if (want.has('python-compat32')) result.set('python-compat32', rows.map((r) => r.compat32.map((s) => Buffer.from(s, 'base64'))));
      if (want.has('python-default')) result.set('python-default', rows.map((r) => r.default.map((s) => Buffer.from(s, 'base64'))));
    }
    if (want.has('mime-tools')) {
      const lines = await batch('perl', [join(HERE, 'ref_mimetools.pl')], paths);
      result.set('mime-tools', lines.map((l) => (l.split('\t')[1] ?? '').split(' ').filter(Boolean).map((s) => Buffer.from(s, 'base64'))));
    }
    if (want.has('ripmime')) {
      result.set('ripmime', paths.map((p) => unpackWith((msg, out) => ['ripmime', ['-i', msg, '-d', out, '--no-paranoid', '--overwrite']], p)));
    }
    if (want.has('munpack')) {
      result.set('munpack', paths.map((p) => unpackWith((msg, out) => ['munpack', ['-q', '-t', '-C', out, msg]], p)));
    }
    if (want.has('mailparser')) {
      const all: Buffer[][] = [];
      for (const m of messages) {
        try {
          const parsed = await simpleParser(m, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
          all.push(parsed.attachments.map((a) => a.content));
        } catch {
          all.push([]);
        }
      }
      result.set('mailparser', all);
    }
    if (want.has('postal-mime')) {
      const all: Buffer[][] = [];
      for (const m of messages) {
        try {
          const parsed = await PostalMime.parse(m, { attachmentEncoding: 'arraybuffer' });
          all.push(parsed.attachments.map((a) => (typeof a.content === 'string' ? Buffer.from(a.content) : Buffer.from(a.content as ArrayBuffer))));
        } catch {
          all.push([]);
        }
      }
      result.set('postal-mime', all);
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
