/**
 * The reference extractors of the container oracle, each behind one adapter: given container
 * files, the bytes of every file each extractor gets out of each. None was written here:
 * 7-Zip (`7zz`), libarchive's `bsdtar`, Info-ZIP's `unzip`, `cabextract`, Poppler's `pdfdetach`, The Unarchiver's `unar`, and Python's
 * `zipfile` and `tarfile` (one batch process for all containers). The command-line tools run
 * once per container in a fresh directory; what they leave there is their answer, whatever
 * their exit status (a tool that extracts part of a damaged archive and fails still extracted
 * that part, and a user would open it).
 */

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));

export type ExtractorName = '7zz' | 'bsdtar' | 'unzip' | 'cabextract' | 'pdfdetach' | 'unar' | 'python';

/** Files per extractor, per container (same order as the input). */
export type Extracted = Map<ExtractorName, Buffer[][]>;

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The extractors installed here (`.ci/run` installs all of them). */
export function availableExtractors(): ExtractorName[] {
  const out: ExtractorName[] = [];
  for (const [name, bin] of [['7zz', '7zz'], ['bsdtar', 'bsdtar'], ['unzip', 'unzip'], ['cabextract', 'cabextract'], ['pdfdetach', 'pdfdetach'], ['unar', 'unar'], ['python', 'python3']] as const) if (has(bin)) out.push(name);
  return out;
}

/** Every regular file under a directory, recursively (links and devices are not files). */
function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(readFileSync(p));
  }
  return out;
}

/**
 * A command run on one container in an empty directory; its files are the answer. With
 * `alone`, the container is first copied into a directory of its own: unar looks beside a
 * RAR for its other volumes by name, and would read another container of the batch as one.
 */
function extractWith(bin: string, args: (file: string, out: string) => string[], file: string, alone = false): Buffer[] {
  const out = mkdtempSync(join(tmpdir(), 'smtpwall-cref-'));
  const own = alone ? mkdtempSync(join(tmpdir(), 'smtpwall-cin-')) : null;
  if (own) {
    copyFileSync(file, join(own, basename(file)));
    file = join(own, basename(file));
  }
  try {
    // A wrong password, never a prompt: encrypted members are not extracted by anyone here.
    spawnSync(bin, args(file, out), { cwd: out, stdio: 'ignore', timeout: 30_000, input: '' });
    return filesUnder(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
    if (own) rmSync(own, { recursive: true, force: true });
  }
}

const COMMANDS: Readonly<Record<Exclude<ExtractorName, 'python'>, readonly [string, (file: string, out: string) => string[]]>> = {
  '7zz': ['7zz', (f, o) => ['x', '-y', '-bd', '-pnopassword', `-o${o}`, f]],
  bsdtar: ['bsdtar', (f, o) => ['-x', '-f', f, '-C', o]],
  unzip: ['unzip', (f, o) => ['-o', '-qq', '-P', 'nopassword', f, '-d', o]],
  cabextract: ['cabextract', (f, o) => ['-q', '-d', o, f]],
  // Poppler's pdfdetach: every embedded file of a PDF (attachments and file annotations).
  pdfdetach: ['pdfdetach', (f, o) => ['-saveall', '-o', o, f]],
  // The Unarchiver (unar): its own readers of RAR (4, 5, volumes), zip, 7z, cab, ISO, disk
  // images and more, written apart from libarchive and 7-Zip.
  unar: ['unar', (f, o) => ['-q', '-f', '-D', '-p', 'nopassword', '-o', o, f]],
};

/** Python's zipfile and tarfile over many containers: one JSON line (hex of each file) per path. */
function python(paths: readonly string[]): Promise<Buffer[][]> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [join(HERE, 'ref_python.py')], { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.length > 0);
      if (lines.length !== paths.length) return reject(new Error(`ref_python.py: ${lines.length} answers for ${paths.length} containers (exit ${code})`));
      resolve(lines.map((l) => (JSON.parse(l) as string[]).map((h) => Buffer.from(h, 'hex'))));
    });
    child.stdin.end(paths.join('\n') + '\n');
  });
}

export async function extractAll(paths: readonly string[], extractors = availableExtractors()): Promise<Extracted> {
  const result: Extracted = new Map();
  for (const name of extractors) {
    if (name === 'python') result.set(name, await python(paths));
    else {
      const [bin, args] = COMMANDS[name];
      result.set(name, paths.map((p) => extractWith(bin, args, p, name === 'unar')));
    }
  }
  return result;
}
