/**
 * 7z archives unpacked by 7-Zip itself (`7zz`, Debian's `7zip` package) when it is installed:
 * no maintained pure-JS LZMA/7z reader installs here, and 7-Zip is the format's reference.
 * It runs as a separate process on a private copy of the archive, so a crafted archive that
 * crashes or hangs it costs that process (killed at the deadline), never the gateway.
 *
 *   1. `7zz l -slt` lists the members (path, size, directory, encrypted);
 *   2. if they or the listing are encrypted, passwords found in the message are tried with
 *      `7zz t` (the first few: one process each);
 *   3. `7zz x -so` writes every file's bytes to stdout in listing order; the stream is cut
 *      into members by the listed sizes and fed through the message's archive budget, and the
 *      process is killed the moment a limit is reached (a 7z bomb costs the limit, not its
 *      expanded size).
 *
 * Without 7zz, 7z archives are only recognised (sevenzip.ts).
 */

import { spawn } from 'node:child_process';
import { accessSync, constants, createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectSevenZip } from './sevenzip.ts';
import { type SevenZipUnpacker, viaSevenZip } from './via-seven-zip.ts';
import type { ContainerReader, UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';

/** Passwords tried per archive (each is a 7zz process). */
const MAX_PASSWORD_TRIES = 20;
/** Bytes of member listing read from 7-Zip. */
const MAX_LISTING = 8 * 1024 * 1024;
/** 7-Zip processes at once per gateway: each may need its archive's dictionary in memory. */
const MAX_CONCURRENT = 2;
/** The format 7-Zip is asked about when no other is named. */
const SEVEN_Z = { name: '7z', ext: '7z' } as const;
/** 7-Zip never sees an empty password option (it would prompt): a stand-in for "none". */
const NO_PASSWORD = 'smtpwall-no-password';

type MemberSinkLike = NonNullable<ReturnType<UnpackContext['member']>>;

const DEFAULT_MEMORY = 512 * 1024 * 1024;

export interface Member {
  readonly path: string;
  readonly size: number;
}

export class SevenZipTool {
  /** Runs waiting for one of the MAX_CONCURRENT slots. */
  readonly #waiting: Array<() => void> = [];
  #running = 0;

  constructor(
    readonly binary: string,
    readonly timeoutMs: number,
    /** Where the private copy of an archive is written (the gateway's spool directory). */
    readonly workDir: string = tmpdir(),
    /**
     * Address space each 7-Zip process may use: a crafted 7z can declare a dictionary of
     * gigabytes, which 7-Zip would allocate; past this it fails instead (the archive is then
     * reported, and the policy's on-unscannable applies).
     */
    readonly memoryBytes: number = DEFAULT_MEMORY,
  ) {}

  /** `auto`: /usr/bin/7zz if it is there; `off`: none; else the path given (must be executable). */
  static find(setting: string, timeoutMs: number, workDir?: string, memoryBytes?: number): SevenZipTool | null {
    if (setting === 'off') return null;
    const path = setting === 'auto' ? '/usr/bin/7zz' : setting;
    try {
      accessSync(path, constants.X_OK);
    } catch {
      if (setting === 'auto') return null;
      throw new Error(`${path}: not an executable 7-Zip (engines.seven-zip)`);
    }
    return new SevenZipTool(path, timeoutMs, workDir, memoryBytes);
  }

  /**
   * Unpack an archive 7-Zip reads (7z by default; via-seven-zip.ts names the others) into the
   * context's members, at most MAX_CONCURRENT at once.
   */
  async unpack(bytes: Buffer, ctx: UnpackContext, format: { readonly name: string; readonly ext: string } = SEVEN_Z): Promise<UnpackOutcome> {
    ctx.openedBy?.(format.name === 'zip' ? 'smtpwall, members in other methods through 7-Zip (7zz)' : '7-Zip (7zz)');
    if (this.#running >= MAX_CONCURRENT) await new Promise<void>((r) => this.#waiting.push(r));
    this.#running++;
    try {
      return await this.#unpack(bytes, ctx, format);
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  async #unpack(bytes: Buffer, ctx: UnpackContext, format: { readonly name: string; readonly ext: string }): Promise<UnpackOutcome> {
    mkdirSync(this.workDir, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(join(this.workDir, '7z-'));
    // The extension tells 7-Zip which handler to try first (it falls back to the signatures).
    const file = join(dir, `archive.${format.ext}`);
    const f = format.name;
    // A compressor's one stream has no name of its own: it is named after the container.
    const streamName = (ctx.name ?? '').replace(/\.[^./]*$/, '') || `(${f} data)`;
    try {
      writeFileSync(file, bytes, { mode: 0o600 });
      let password = NO_PASSWORD;
      let listing = await this.#list(file, password, streamName);
      if ('failed' in listing && !/password|encrypted/i.test(listing.failed)) {
        // Damaged or not a 7z 7-Zip can read: reported, and recognised the way it would be without 7-Zip.
        ctx.event('ARCHIVE_CORRUPT', `${f}: 7-Zip cannot list it${listing.failed ? `: ${listing.failed}` : ''}`);
        return {};
      }
      const locked = 'failed' in listing || listing.encrypted;
      if (locked) {
        const found = await this.#findPassword(file, ctx.passwords());
        if (found === null) {
          ctx.event('ARCHIVE_ENCRYPTED', `${f}: no password in the message opens it`);
          return { type: `encrypted-${f}` };
        }
        password = found;
        listing = await this.#list(file, password, streamName);
        if ('failed' in listing) {
          ctx.event('ARCHIVE_CORRUPT', `${f}: 7-Zip cannot list it: ${listing.failed}`);
          return { type: `encrypted-${f}` };
        }
        ctx.event('ARCHIVE_DECRYPTED', `${f}: with a password found in the message`);
      }
      if ('failed' in listing) return {}; // handled above; narrows the type
      await this.#extract(file, password, listing.members, ctx, f);
      return locked ? { type: `encrypted-${f}` } : {};
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Members in archive order, or why 7-Zip cannot list the archive (encrypted names, damage). */
  async #list(file: string, password: string, streamName: string): Promise<{ members: Member[]; encrypted: boolean } | { failed: string }> {
    const out: Buffer[] = [];
    let bytes = 0;
    // A listing longer than MAX_LISTING (millions of names) is cut: the members past it are not
    // unpacked, and the archive-files limit would stop them anyway.
    const r = await this.#run(['l', '-slt', '-ba', `-p${password}`, '--', file], (c) => {
      bytes += c.length;
      if (bytes > MAX_LISTING) return false;
      out.push(c);
      return true;
    });
    if (r.code !== 0 && bytes <= MAX_LISTING) return { failed: r.timedOut ? `no listing within ${this.timeoutMs} ms` : r.stderr };
    const members: Member[] = [];
    let encrypted = false;
    for (const block of Buffer.concat(out).toString('utf8').split(/\r?\n\r?\n/)) {
      const field = (name: string): string | undefined => new RegExp(`^${name} = (.*)$`, 'm').exec(block)?.[1];
      // A compressor's single stream is listed without a path (and often without a size).
      const size = field('Size');
      const path = field('Path') ?? (size !== undefined ? streamName : undefined);
      if (path === undefined) continue;
      if (field('Encrypted') === '+') encrypted = true;
      if (field('Folder') === '+' || (field('Attributes') ?? '').startsWith('D')) continue;
      // An unknown size (a bzip2 or gzip stream): the member is whatever the stream gives.
      members.push({ path, size: size === undefined || size.trim() === '' ? Infinity : Number(size) || 0 });
    }
    return { members, encrypted };
  }

  async #findPassword(file: string, candidates: readonly string[]): Promise<string | null> {
    for (const p of candidates.slice(0, MAX_PASSWORD_TRIES)) {
      if ((await this.#run(['t', `-p${p}`, '--', file], () => true)).code === 0) return p;
    }
    return null;
  }

  /** Every file's bytes from one `x -so`, cut into members by their listed sizes. */
  #extract(file: string, password: string, members: readonly Member[], ctx: UnpackContext, f: string): Promise<void> {
    return extractMembers((onStdout) => this.#run(['x', '-so', `-p${password}`, '--', file], onStdout), members, ctx, f, this.timeoutMs);
  }

  /** Run 7zz; `onStdout` returning false kills it (a limit was reached). */
  #run(args: string[], onStdout: (chunk: Buffer) => boolean): Promise<{ code: number | null; timedOut: boolean; stderr: string }> {
    return runLimited(this.binary, ['-bd', '-y', ...args], this.memoryBytes, this.timeoutMs, onStdout);
  }

}

/** The 7z reader: 7-Zip when configured, else recognition only. */
export function sevenZipReader(tool: SevenZipTool | null): (b: Buffer, ctx: UnpackContext) => Promise<UnpackOutcome> {
  return tool ? (b, ctx) => tool.unpack(b, ctx) : inspectSevenZip;
}

/** Zips read by 7-Zip (for members in methods only it decodes); null without 7-Zip. */
export function zipBySevenZipReader(tool: SevenZipTool | null): ContainerReader | undefined {
  return tool ? (b, ctx) => tool.unpack(b, ctx, { name: 'zip', ext: 'zip' }) : undefined;
}

/**
 * NSIS installers read by 7-Zip (its Nsis handler unpacks the installer's files: zlib, bzip2
 * or LZMA, solid or not); none without 7-Zip (sfx.ts then says ARCHIVE_UNSUPPORTED).
 */
export function nsisReader(tool: SevenZipTool | null): ContainerReader | undefined {
  return tool ? (b, ctx) => tool.unpack(b, ctx, { name: 'nsis', ext: 'exe' }) : undefined;
}

/** The reader of the formats via-seven-zip.ts recognises (7-Zip, or ARCHIVE_UNSUPPORTED without it). */
export function otherFormatsReader(tool: SevenZipTool | null, streams: SevenZipUnpacker | null = null): ContainerReader {
  return viaSevenZip(tool, streams);
}

/**
 * One extractor process's stdout (every file's bytes in listing order) cut into members by
 * their listed sizes, through the message's archive budget; shared by 7-Zip and bsdtar.
 */
export async function extractMembers(
run: (onStdout: (chunk: Buffer) => boolean) => Promise<{ code: number | null; timedOut: boolean; stderr: string }>,
members: readonly Member[],
ctx: UnpackContext,
f: string,
timeoutMs: number,
/** The unpacker, as events name it. */
tool = '7-Zip',
): Promise<void> {
  let i = 0;
  let left = members[0]?.size ?? 0;
  let sink = members.length > 0 ? ctx.member(cleanMemberName(members[0]!.path)) : null;
  let stopped = sink === null && members.length > 0;
  // Members with no bytes end before any output arrives.
  const advance = (): void => {
    while (!stopped && left === 0 && i < members.length) {
      sink?.end();
      i++;
      if (i >= members.length) return;
      left = members[i]!.size;
      sink = ctx.member(cleanMemberName(members[i]!.path));
      if (sink === null) stopped = true;
    }
  };
  advance();
  // Bytes beyond what the listing accounts for (a name the listing parser could not read,
  // a damaged listing) are still scanned, as one more member, and reported.
  let unlisted: MemberSinkLike | null = null;
  const r = await run((chunk) => {
    let rest = chunk;
    while (rest.length > 0 && !stopped && i < members.length) {
      const piece = rest.subarray(0, left);
      rest = rest.subarray(piece.length);
      left -= piece.length;
      if (!ctx.copy(sink!, piece)) {
        sink!.end();
        stopped = true;
        return false;
      }
      advance();
    }
    if (rest.length > 0 && !stopped) {
      if (unlisted === null) {
        ctx.event('ARCHIVE_CORRUPT', `${f}: more data than the listing accounts for`);
        unlisted = ctx.member('(unlisted)');
        if (unlisted === null) stopped = true;
      }
      if (unlisted !== null && !ctx.copy(unlisted, rest)) stopped = true;
    }
    return !stopped;
  });
  (unlisted as MemberSinkLike | null)?.end();
  if (!stopped && i < members.length) sink?.end(); // output ended early: the member is what arrived
  // A member of unknown size (the last, a compressor's stream) ends where the output ends.
  const short = i < members.length && !(i === members.length - 1 && members[i]!.size === Infinity);
  if (r.timedOut) ctx.event('ARCHIVE_CORRUPT', `${f}: ${tool} did not finish within ${timeoutMs} ms`);
  else if (!stopped && (r.code !== 0 || short)) ctx.event('ARCHIVE_CORRUPT', `${f}: ${tool} reported an error (exit ${r.code})${r.stderr ? `: ${r.stderr}` : ''}`);
}

/**
 * Run an unpacker under an address-space limit and a deadline; `onStdout` returning false
 * kills it (a limit was reached). Its stderr comes back short, without the private copy's path.
 */
export function runLimited(
  binary: string,
  args: string[],
  memoryBytes: number,
  timeoutMs: number,
  onStdout: (chunk: Buffer) => boolean,
  /** A file given as standard input (read as a stream: no seeking to its end). */
  stdinFile?: string,
): Promise<{ code: number | null; timedOut: boolean; stderr: string }> {
  return new Promise((resolve) => {
    // The shell sets the address-space limit, then becomes 7-Zip (exec): one process, killable.
    const limitKb = Math.max(1, Math.floor(memoryBytes / 1024));
    const child = spawn('/bin/sh', ['-c', `ulimit -v ${limitKb} && exec "$0" "$@"`, binary, ...args], { stdio: [stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (stdinFile) {
      // A real pipe, not the file itself: a redirected file would still be seekable.
      child.stdin!.on('error', () => {}); // the reader may stop (or be killed) before the end: EPIPE
      createReadStream(stdinFile).on('error', () => child.stdin!.destroy()).pipe(child.stdin!);
    }
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      if (!onStdout(c)) child.kill('SIGKILL');
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < 500) stderr += c.toString('utf8');
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, timedOut, stderr: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      // The private copy's path means nothing to an admin (and names the spool): cut it.
      const file = args.at(-1) ?? '';
      resolve({ code, timedOut, stderr: stderr.split(file).join(file.slice(file.lastIndexOf('/') + 1)).replace(/\s+/g, ' ').trim().slice(0, 200) });
    });
  });
}
