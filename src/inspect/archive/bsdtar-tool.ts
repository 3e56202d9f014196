/**
 * RAR archives (4.x and 5.x, stored and compressed) unpacked by libarchive's `bsdtar`
 * (Debian's `libarchive-tools`, BSD-licensed): Debian's 7-Zip is built without RAR, and no
 * maintained pure-JS RAR decompressor installs here. Like 7-Zip it runs as a separate
 * process on a private copy, under an address-space limit and a deadline:
 *
 *   1. the native walk (rar.ts) says whether the archive is encrypted — libarchive cannot
 *      decrypt RAR, so an encrypted one is ARCHIVE_ENCRYPTED without running anything;
 *   2. `bsdtar -tvf` lists the members (regular files with their sizes, in archive order);
 *   3. `bsdtar -xOf` writes their bytes to stdout, cut into members by those sizes and fed
 *      through the message's archive budget (extractMembers, shared with 7-Zip).
 *
 * Without bsdtar, RAR stays recognised only: ARCHIVE_UNSUPPORTED (rar.ts).
 */

import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inspectRar, missingVolumes, rarEncrypted } from './rar.ts';
import { extractMembers, type Member, runLimited } from './seven-zip-tool.ts';
import { cleanMemberName, type ContainerReader, type UnpackContext, type UnpackOutcome } from './types.ts';
import type { SevenZipUnpacker } from './via-seven-zip.ts';

/** Bytes of listing read from bsdtar. */
const MAX_LISTING = 8 * 1024 * 1024;

export class BsdtarTool {
  constructor(
    readonly binary: string,
    readonly timeoutMs: number,
    readonly workDir: string = tmpdir(),
    readonly memoryBytes: number = 512 * 1024 * 1024,
  ) {}

  /** `auto`: /usr/bin/bsdtar when installed; `off`: none; else that path (which must run). */
  static find(setting: string, timeoutMs: number, workDir?: string, memoryBytes?: number): BsdtarTool | null {
    if (setting === 'off') return null;
    const path = setting === 'auto' ? '/usr/bin/bsdtar' : setting;
    try {
      accessSync(path, constants.X_OK);
    } catch {
      if (setting === 'auto') return null;
      throw new Error(`${path}: not an executable bsdtar (engines.bsdtar.path)`);
    }
    return new BsdtarTool(path, timeoutMs, workDir, memoryBytes);
  }

  async unpack(bytes: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
    if (rarEncrypted(bytes)) return inspectRar(bytes, ctx); // ARCHIVE_ENCRYPTED, as without bsdtar
    ctx.openedBy?.('bsdtar (libarchive)');
    mkdirSync(this.workDir, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(join(this.workDir, 'rar-'));
    const file = join(dir, 'archive.rar');
    try {
      writeFileSync(file, bytes, { mode: 0o600 });
      const out: Buffer[] = [];
      let size = 0;
      // Read as a stream (`-f -`): a seekable read lets libarchive prefer a zip whose central
      // directory sits at the end of the file (a zip stored inside the RAR) over the RAR itself,
      // which is what RAR readers open; from a pipe only the RAR signature at the start counts.
      const listed = await runLimited(this.binary, ['-tvf', '-'], this.memoryBytes, this.timeoutMs, (c) => {
        size += c.length;
        if (size > MAX_LISTING) return false;
        out.push(c);
        return true;
      }, file);
      if (listed.code !== 0 && size <= MAX_LISTING) {
        ctx.event(/encrypt/i.test(listed.stderr) ? 'ARCHIVE_ENCRYPTED' : 'ARCHIVE_CORRUPT', `rar: bsdtar cannot list it${listed.stderr ? `: ${listed.stderr}` : ''}`);
        return /encrypt/i.test(listed.stderr) ? { type: 'encrypted-rar' } : {};
      }
      const members = parseListing(Buffer.concat(out).toString('utf8'));
      // A volume without the rest of its set: what it holds is inspected, and the event says
      // why the member is short (bsdtar's own "truncated" error would say less).
      const missing = missingVolumes(bytes);
      if (missing !== null) ctx.event('ARCHIVE_CORRUPT', `rar: ${missing}`);
      const extractCtx: UnpackContext = missing === null ? ctx : { ...ctx, event: (name, detail) => name !== 'ARCHIVE_CORRUPT' && ctx.event(name, detail), get stopped() { return ctx.stopped; } };
      await extractMembers((onStdout) => runLimited(this.binary, ['-xOf', '-'], this.memoryBytes, this.timeoutMs, onStdout, file), members, extractCtx, 'rar', this.timeoutMs, 'bsdtar');
      return {};
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/**
 * A compressed stream 7-Zip cannot read (lzip, lz4) decompressed by libarchive's `bsdcat`
 * (beside bsdtar in libarchive-tools), in the same bounded process as bsdtar: its output is
 * one member, named like the file without its compression suffix (`report.tar.lz` →
 * `report.tar`, which the tar reader then opens), through the message's archive budget.
 */
export class BsdcatStreams implements SevenZipUnpacker {
  constructor(private readonly tool: BsdtarTool) {}

  static of(tool: BsdtarTool | null): BsdcatStreams | null {
    if (!tool) return null;
    try {
      accessSync(join(dirname(tool.binary), 'bsdcat'), constants.X_OK);
    } catch {
      return null;
    }
    return new BsdcatStreams(tool);
  }

  async unpack(bytes: Buffer, ctx: UnpackContext, format: { name: string; ext: string }): Promise<UnpackOutcome> {
    ctx.openedBy?.('bsdcat (libarchive)');
    const t = this.tool;
    mkdirSync(t.workDir, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(join(t.workDir, 'stream-'));
    const file = join(dir, `stream.${format.ext}`);
    try {
      writeFileSync(file, bytes, { mode: 0o600 });
      const sink = ctx.member(cleanMemberName(streamMemberName(ctx.name, format)));
      if (sink === null) return {};
      let within = true;
      const r = await runLimited(join(dirname(t.binary), 'bsdcat'), [], t.memoryBytes, t.timeoutMs, (c) => (within = ctx.copy(sink, c)) && !ctx.stopped, file);
      sink.end();
      if (within && (r.code !== 0 || r.timedOut)) ctx.event('ARCHIVE_CORRUPT', `${format.name}: bsdcat ${r.timedOut ? 'timed out' : `failed${r.stderr ? `: ${r.stderr}` : ''}`}`);
      return {};
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** `a.tar.lz` → `a.tar`, `a.tlz` → `a.tar`, `a.lz` → `a`; a name without the suffix: `(lzip)`. */
export function streamMemberName(name: string | null, format: { name: string; ext: string }): string {
  const lower = name?.toLowerCase() ?? '';
  if (name && lower.endsWith(`.t${format.ext}`)) return `${name.slice(0, -(format.ext.length + 2))}.tar`;
  if (name && lower.endsWith(`.${format.ext}`) && lower.length > format.ext.length + 1) return name.slice(0, -(format.ext.length + 1));
  return `(${format.name})`;
}

/**
 * `bsdtar -tv` lines, `ls -l` style: mode, links, owner, group, size, date, name. Only regular
 * files (mode `-…`) have bytes in `-xO`'s output; directories and links are left out.
 */
export function parseListing(text: string): Member[] {
  const members: Member[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S)\S*\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+[\d:]+\s(.*)$/.exec(line);
    if (!m || m[1] !== '-') continue;
    members.push({ path: m[3]!, size: Number(m[2]) });
  }
  return members;
}

/** The RAR reader: bsdtar when it is there, recognition (and the event) when not. */
export function rarReader(tool: BsdtarTool | null): ContainerReader {
  return tool ? (b, ctx) => tool.unpack(b, ctx) : inspectRar;
}
