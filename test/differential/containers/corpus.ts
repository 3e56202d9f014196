/**
 * Seeded containers for the oracle, written by the real tools where they are installed —
 * Python's zipfile and tarfile (every method and format they write), 7-Zip (7z with each coder,
 * zip with each method, tar), the single-stream compressors (gzip, xz, bzip2, zstd, lz4,
 * lzip) alone and around a tar — and by the test's own zip writer for what no tool writes on
 * purpose: entries only in local headers, a zip inside another's end-record comment or after
 * it, junk before or after, duplicate names, data descriptors. Then, sometimes, a structural
 * mutation (junk around it, another archive appended). Members are random bytes under random
 * names, so every extracted file is told apart by its SHA-256.
 */

import { udif } from '../../helpers/dmg.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isoImage, rar5Stored, zip } from '../../helpers/archives.ts';

export interface Container {
  readonly name: string;
  readonly bytes: Buffer;
  /** How it was made, for a failure's message. */
  readonly recipe: string;
}

/** xorshift32, seeded per container: the same (seed, index) makes the same container. */
function rng(seed: number): () => number {
  let s = (seed >>> 0) || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const TOOLS = Object.fromEntries(['7zz', 'python3', 'gzip', 'xz', 'bzip2', 'zstd', 'lz4', 'lzip', 'tar', 'cpio', 'gcab', 'arj', 'lha', 'genisoimage', 'mkfs.fat', 'mcopy', 'dpkg-deb', 'qpdf'].map((t) => [t, has(t)])) as Record<string, boolean>;

const NAMES = ['a.txt', 'invoice.exe', 'docs/readme.md', 'deep/er/still/file.bin', 'Résumé.pdf', 'данные.dat', 'x', 'setup.msi', 'report 2026.docx'];

interface Member {
  readonly name: string;
  readonly data: Buffer;
}

function members(next: () => number): Member[] {
  const n = 1 + Math.floor(next() * 4);
  const used = new Set<string>();
  const out: Member[] = [];
  for (let i = 0; i < n; i++) {
    let name = NAMES[Math.floor(next() * NAMES.length)]!;
    if (used.has(name)) name = `${i}-${name.split('/').pop()}`;
    used.add(name);
    const size = 1 + Math.floor(next() * 3000);
    const data = Buffer.alloc(size);
    for (let j = 0; j < size; j++) data[j] = Math.floor(next() * 256);
    out.push({ name, data });
  }
  return out;
}

/** Members written as files under a fresh directory (for the command-line writers). */
function onDisk(work: string, files: readonly Member[]): string {
  const root = join(work, 'in');
  for (const f of files) {
    mkdirSync(dirname(join(root, f.name)), { recursive: true });
    writeFileSync(join(root, f.name), f.data);
  }
  return root;
}

const PY_ZIP = `import sys, zipfile, json
spec = json.loads(sys.argv[2])
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for name, hexdata, method in spec:
        z.writestr(zipfile.ZipInfo(name), bytes.fromhex(hexdata), compress_type=method)`;
const PY_TAR = `import sys, tarfile, json, io
spec = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], 'w:' + sys.argv[3], format=int(sys.argv[4])) as t:
    for name, hexdata in spec:
        data = bytes.fromhex(hexdata)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))`;

type Recipe = (files: readonly Member[], next: () => number, work: string) => { bytes: Buffer; recipe: string; ext: string } | null;

const pick = <T>(next: () => number, xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;

const RECIPES: ReadonlyArray<Recipe> = [
  // Python's zipfile: stored, deflate, bzip2, lzma (a method per member).
  (files, next, work) => {
    if (!TOOLS.python3) return null;
    const spec = files.map((f) => [f.name, f.data.toString('hex'), pick(next, [0, 8, 12, 14])]);
    const out = join(work, 'py.zip');
    execFileSync('python3', ['-c', PY_ZIP, out, JSON.stringify(spec)]);
    return { bytes: readFileSync(out), recipe: `python zipfile methods ${spec.map((s) => s[2]).join(',')}`, ext: 'zip' };
  },
  // Python's tarfile: ustar, GNU, pax; plain, gz, bz2, xz.
  (files, next, work) => {
    if (!TOOLS.python3) return null;
    const comp = pick(next, ['', 'gz', 'bz2', 'xz']);
    const format = pick(next, [0, 1, 2]); // USTAR, GNU, PAX
    const out = join(work, 'py.tar');
    execFileSync('python3', ['-c', PY_TAR, out, JSON.stringify(files.map((f) => [f.name, f.data.toString('hex')])), comp, String(format)]);
    return { bytes: readFileSync(out), recipe: `python tarfile format ${format} ${comp || 'plain'}`, ext: comp ? `tar.${comp}` : 'tar' };
  },
  // 7-Zip: 7z with a coder, zip with a method, tar.
  (files, next, work) => {
    if (!TOOLS['7zz']) return null;
    const root = onDisk(work, files);
    const [type, opt] = pick(next, [
      ['7z', '-m0=LZMA2'], ['7z', '-m0=PPMd'], ['7z', '-m0=BZip2'], ['7z', '-m0=Copy'], ['7z', '-m0=Deflate'],
      ['zip', '-mm=Deflate'], ['zip', '-mm=Deflate64'], ['zip', '-mm=BZip2'], ['zip', '-mm=LZMA'], ['zip', '-mm=PPMd'], ['zip', '-mm=Copy'],
      ['tar', ''],
    ] as const);
    const out = join(work, `7.${type}`);
    execFileSync('7zz', ['a', '-bd', '-y', `-t${type}`, ...(opt ? [opt] : []), out, '.'], { cwd: root, stdio: 'ignore' });
    return { bytes: readFileSync(out), recipe: `7zz -t${type} ${opt}`, ext: type };
  },
  // A single-stream compressor, alone (the first member) or around a tar of all members.
  (files, next, work) => {
    const tools = ['gzip', 'xz', 'lzma', 'bzip2', 'zstd', 'lz4', 'lzip'].filter((t) => TOOLS[t === 'lzma' ? 'xz' : t]);
    if (tools.length === 0 || !TOOLS.tar) return null;
    const tool = pick(next, tools);
    const ext = { gzip: 'gz', xz: 'xz', lzma: 'lzma', bzip2: 'bz2', zstd: 'zst', lz4: 'lz4', lzip: 'lz' }[tool]!;
    const root = onDisk(work, files);
    const withTar = next() < 0.5;
    const input = join(work, withTar ? 'all.tar' : 'one');
    if (withTar) execFileSync('tar', ['cf', input, '-C', root, '.']);
    else writeFileSync(input, files[0]!.data);
    const command = tool === 'lzma' ? 'xz --format=lzma' : tool;
    const bytes = execFileSync('sh', ['-c', `${command} -c < "$0"`, input], { stdio: ['ignore', 'pipe', 'ignore'] });
    return { bytes, recipe: `${tool}${withTar ? ' of a tar' : ''}`, ext: withTar ? `tar.${ext}` : ext };
  },
  // RAR 5 (stored, written to the specification: RAR's own tool is not free) and ISO 9660.
  (files, next) => {
    if (next() < 0.5) return { bytes: rar5Stored(files.map((f) => ({ name: f.name, data: f.data }))), recipe: 'own rar5, stored', ext: 'rar' };
    const flat = files.map((f, i) => ({ name: `F${i}.BIN`, data: f.data }));
    return { bytes: isoImage(flat, { joliet: next() < 0.5 }), recipe: 'own iso9660', ext: 'iso' };
  },
  // The other archivers of the class, each by its own tool: CAB (gcab), ARJ, LHA (jlha-utils),
  // ISO 9660 with Rock Ridge and Joliet (genisoimage), a FAT image (mkfs.fat + mtools), the
  // same in a .dmg, a .deb.
  (files, next, work) => {
    const root = onDisk(work, files);
    const out = join(work, 'out.bin');
    const flat = (): string[] => files.map((f) => f.name);
    const makers: Array<readonly [string, boolean | undefined, () => void]> = [
      ['cab', TOOLS.gcab, () => void execFileSync('gcab', ['-c', ...(next() < 0.5 ? ['-z'] : []), out, ...flat()], { cwd: root, stdio: 'ignore' })],
      ['arj', TOOLS.arj, () => void execFileSync('arj', ['a', '-r', '-y', join(work, 'out.arj'), ...flat()], { cwd: root, stdio: 'ignore' })],
      ['lzh', TOOLS.lha, () => void execFileSync('lha', ['a', join(work, 'out.lzh'), ...flat()], { cwd: root, stdio: 'ignore' })],
      ['iso', TOOLS.genisoimage, () => void execFileSync('genisoimage', ['-quiet', '-R', '-J', '-o', out, '.'], { cwd: root, stdio: 'ignore' })],
      ['img', TOOLS['mkfs.fat'] && TOOLS.mcopy, () => {
        execFileSync('mkfs.fat', ['-C', out, '2048'], { stdio: 'ignore' });
        for (const f of files) execFileSync('mcopy', ['-i', out, '-s', f.name.split('/')[0]!, '::'], { cwd: root, stdio: 'ignore' });
      }],
      // An Apple disk image (our own UDIF writer, test/helpers/dmg.ts) around a FAT image.
      ['dmg', TOOLS['mkfs.fat'] && TOOLS.mcopy, () => {
        const fat = join(work, 'fat.img');
        execFileSync('mkfs.fat', ['-C', fat, '2048'], { stdio: 'ignore' });
        for (const f of files) execFileSync('mcopy', ['-i', fat, '-s', f.name.split('/')[0]!, '::'], { cwd: root, stdio: 'ignore' });
        writeFileSync(out, udif(readFileSync(fat), next() < 0.5 ? 'raw' : 'zlib'));
      }],
      ['deb', TOOLS['dpkg-deb'], () => {
        mkdirSync(join(root, 'DEBIAN'), { recursive: true });
        writeFileSync(join(root, 'DEBIAN', 'control'), 'Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@x>\nDescription: t\n');
        execFileSync('dpkg-deb', ['-Zxz', '--root-owner-group', '-b', root, out], { stdio: 'ignore' });
      }],
    ];
    const usable = makers.filter((m) => m[1]);
    if (usable.length === 0) return null;
    const [ext, , make] = pick(next, usable);
    make();
    const file = ext === 'arj' ? join(work, 'out.arj') : ext === 'lzh' ? join(work, 'out.lzh') : out;
    return { bytes: readFileSync(file), recipe: `${ext} by its own tool`, ext };
  },
  // cpio (newc), written by GNU cpio.
  (files, _next, work) => {
    if (!TOOLS.cpio) return null;
    const root = onDisk(work, files);
    const bytes = execFileSync('sh', ['-c', 'find . -type f | cpio -o -H newc 2>/dev/null'], { cwd: root });
    return { bytes, recipe: 'cpio newc', ext: 'cpio' };
  },
  // A polyglot: an image-like file of 40–200 KB (past what the inspector sniffs) with a zip
  // appended by Python's zipfile (offsets from the file's start, as `zip -A` writes them).
  (files, next, work) => {
    if (!TOOLS.python3) return null;
    const size = 40_000 + Math.floor(next() * 160_000);
    const image = Buffer.alloc(size);
    for (let i = 0; i < size; i++) image[i] = Math.floor(next() * 256);
    image.set([0xff, 0xd8, 0xff, 0xe0], 0);
    const out = join(work, 'poly.jpg');
    writeFileSync(out, image);
    const spec = files.map((f) => [f.name, f.data.toString('hex'), 8]);
    execFileSync('python3', ['-c', PY_ZIP.replace("'w'", "'a'"), out, JSON.stringify(spec)]);
    return { bytes: readFileSync(out), recipe: `image of ${size} bytes + zip appended by python`, ext: 'jpg' };
  },
  // The test's own zips, for what no tool writes on purpose.
  (files, next) => {
    const entries = files.map((f) => ({ name: f.name, data: f.data, method: pick(next, ['stored', 'deflate'] as const), descriptor: next() < 0.3 }));
    const trick = pick(next, ['plain', 'prefix', 'local-only', 'in-comment', 'appended', 'duplicate-name', 'method-disagrees'] as const);
    const extra = { name: 'hidden.bin', data: Buffer.from(`hidden ${next()}`), method: 'stored' as const };
    let bytes: Buffer;
    if (trick === 'plain') bytes = zip(entries);
    else if (trick === 'prefix') bytes = zip(entries, { prefix: Buffer.from(`junk before the archive ${next()}\n`.repeat(3)) });
    else if (trick === 'local-only') {
      // An entry with a local header and no central record, in front of a normal archive.
      const lone = zip([extra], { noCentral: true });
      const rest = zip(entries, { prefix: lone });
      bytes = rest;
    } else if (trick === 'in-comment') {
      const inner = zip([extra]);
      const outer = zip(entries);
      // Set the outer end record's comment length and put the inner zip there.
      const withComment = Buffer.concat([outer, inner]);
      withComment.writeUInt16LE(inner.length, outer.length - 2);
      bytes = withComment;
    } else if (trick === 'appended') bytes = Buffer.concat([zip(entries), zip([extra])]);
    else if (trick === 'duplicate-name') bytes = zip([...entries, { ...extra, name: entries[0]!.name }]);
    else {
      // The first member stored; its central record then claims deflate (readers that trust
      // the local header read the bytes, those that trust the central directory fail).
      bytes = zip([{ ...entries[0]!, method: 'stored', descriptor: false }, ...entries.slice(1)]);
      const first = bytes.indexOf('PK\x01\x02', 0, 'latin1');
      if (first !== -1) bytes.writeUInt16LE(8, first + 10);
    }
    return { bytes, recipe: `own zip: ${trick}`, ext: 'zip' };
  },
  // qpdf: a PDF carrying the members as embedded files (attachments), its streams compressed
  // or not, its objects in object streams or not (pdfdetach is the reference that reads it).
  (files, next, work) => {
    if (!TOOLS.qpdf) return null;
    const root = onDisk(work, files);
    const base = join(work, 'base.pdf');
    const out = join(work, 'out.pdf');
    execFileSync('qpdf', ['--empty', base]);
    const compress = pick(next, ['y', 'n']);
    const objects = pick(next, ['generate', 'disable', 'preserve']);
    const attach = files.flatMap((f) => ['--add-attachment', join(root, f.name), `--key=${f.name}`, '--']);
    execFileSync('qpdf', [base, out, ...attach, `--compress-streams=${compress}`, `--object-streams=${objects}`], { stdio: 'ignore' });
    return { bytes: readFileSync(out), recipe: `qpdf attachments, compress-streams=${compress}, object-streams=${objects}`, ext: 'pdf' };
  },
];

/** The container for (seed, index): a recipe, then maybe a mutation. */
export function container(seed: number, index: number): Container {
  const next = rng(seed * 7919 + index * 104729 + 1);
  const work = mkdtempSync(join(tmpdir(), 'smtpwall-corpus-'));
  try {
    for (;;) {
      const files = members(next);
      const made = pick(next, RECIPES)(files, next, work);
      if (made === null) continue;
      let { bytes, recipe } = made;
      const m = next();
      if (m < 0.1) {
        bytes = Buffer.concat([bytes, Buffer.from(`trailing junk ${index}\n`)]);
        recipe += ', junk after';
      } else if (m < 0.15) {
        bytes = Buffer.concat([bytes, zip([{ name: 'second.bin', data: Buffer.from(`a second archive ${index}`), method: 'stored' }])]);
        recipe += ', a zip appended';
      }
      return { name: `c${index}.${made.ext}`, bytes, recipe };
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
