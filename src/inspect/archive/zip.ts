/**
 * ZIP (PKWARE APPNOTE 6.3): stored and deflate members, data descriptors, zip64, archives
 * behind a prefix (self-extractors, junk), all from the central directory — what Windows
 * Explorer, 7-Zip and Outlook's preview use. When there is no central directory (truncated or
 * crafted archives) the local headers are walked instead, as lenient tools do, and the archive
 * is reported corrupt.
 *
 * Encrypted members: traditional PKWARE encryption and WinZip AES (method 99) are tried with
 * passwords found in the message (ARCHIVE_DECRYPTED, and the member is inspected); otherwise
 * they cannot be read and are reported (ARCHIVE_ENCRYPTED). Either way the archive's type is
 * `encrypted-zip` so file blocking can act on it. Methods other than stored and deflate are reported as ARCHIVE_UNSUPPORTED.
 */

import type { MemberSink, UnpackContext, UnpackOutcome } from './types.ts';
import { cleanMemberName } from './types.ts';
import { readAesField, tryAesPasswords } from './zipaes.ts';
import { tryPasswords } from './zipcrypto.ts';
import { crc32, inflateRawSync } from 'node:zlib';

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

interface Entry {
  readonly name: string;
  readonly flags: number;
  readonly method: number;
  readonly packedSize: number;
  readonly localOffset: number;
  readonly crc: number;
  readonly modTime: number;
}

export async function unpackZip(bytes: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const central = readCentralDirectory(bytes);
  if (central === null && ctx.embedded) return {};
  const entries = central ?? walkLocalHeaders(bytes);
  if (central === null) ctx.event('ARCHIVE_CORRUPT', 'no central directory; local headers walked');
  // Where readers disagree (Explorer and 7-Zip read the central directory, streaming readers
  // and some unpackers the local headers), every reading is inspected. Inside another file
  // (a program, an image) only local headers that look like a real entry count: a stub or an
  // image may hold the four bytes `PK\3\4` by chance.
  if (central !== null) entries.push(...otherReadings(bytes, central, ctx, ctx.embedded));
  let encrypted = false;
  // AES key derivation is deliberately slow (PBKDF2): the candidates are tried on the first
  // AES member only; later members get the password that opened it, or none (an archive of a
  // thousand AES members must not cost a thousand times the candidates).
  const aes: AesState = { candidates: null };
  /** Members left to 7-Zip: only these are taken from its reading of the archive. */
  const byTool = new Set<string>();
  for (const e of entries) {
    if (ctx.stopped) break;
    if (e.name.endsWith('/') && e.packedSize === 0) continue; // a directory
    const name = cleanMemberName(e.name);
    let data = memberData(bytes, e);
    let method = e.method;
    if ((e.flags & 1) !== 0 || e.method === 99) {
      encrypted = true;
      // The password may be in the message itself (that is how such mail works).
      const opened = data === null ? null : e.method === 99 ? await openAes(bytes, e, data, name, ctx, aes) : openZipCrypto(e, data, ctx);
      if (opened === null) {
        ctx.event('ARCHIVE_ENCRYPTED', e.method === 99 ? `${name} (AES)` : name);
        continue;
      }
      ctx.event('ARCHIVE_DECRYPTED', `${name}: ${e.method === 99 ? 'AES, ' : ''}with a password found in the message`);
      data = opened.plain;
      method = opened.method;
    }
    if (data === null) {
      ctx.event('ARCHIVE_CORRUPT', `${name}: data outside the archive`);
      continue;
    }
    if (method !== 0 && method !== 8) {
      // deflate64, bzip2, lzma, ppmd, xz, zstd …: 7-Zip reads them, below; without it, reported.
      if (ctx.zipBySevenZip && (e.flags & 1) === 0) byTool.add(name);
      else ctx.event('ARCHIVE_UNSUPPORTED', `${name}: compression method ${method}`);
      continue;
    }
    const sink = ctx.member(name);
    if (sink === null) break;
    if (method === 0) {
      ctx.copy(sink, data);
      sink.end();
      continue;
    }
    const r = await ctx.inflate('raw', data, sink);
    sink.end();
    if (r === 'corrupt') ctx.event('ARCHIVE_CORRUPT', `${name}: bad deflate data`);
    if (r === 'limit') break;
  }
  if (byTool.size > 0 && ctx.zipBySevenZip && !ctx.stopped) {
    // 7-Zip lists and extracts every member; the others were read above and are discarded here.
    const only: UnpackContext = Object.create(ctx, {
      member: { value: (n: string) => (byTool.has(n) ? ctx.member(n) : DISCARD) },
      copy: { value: (sink: MemberSink, data: Buffer) => (sink === DISCARD ? true : ctx.copy(sink, data)) },
    });
    await ctx.zipBySevenZip(bytes, only);
  }
  return encrypted ? { type: 'encrypted-zip' } : {};
}

/** Where the members 7-Zip extracts a second time go. */
const DISCARD: MemberSink = { write() {}, end() {} };

/**
 * What a reader of local headers sees that the central directory does not say: entries with
 * no central record (hidden from Explorer, extracted by streaming readers), and entries whose
 * local header gives another method or size (each read the local way too, as `name~local`).
 * A zip in the end-of-central-directory comment or after the archive is a member `(appended)`.
 */
function otherReadings(b: Buffer, central: readonly Entry[], ctx: UnpackContext, strict = false): Entry[] {
  const out: Entry[] = [];
  const byOffset = new Map(central.map((e) => [e.localOffset, e]));
  const ranges = central.map((e) => [e.localOffset, e.localOffset + 30 + e.packedSize] as const);
  const inside = (p: number): boolean => ranges.some(([s, e]) => p > s && p < e);
  for (const l of walkLocalHeaders(b)) {
    const c = byOffset.get(l.localOffset);
    if (c === undefined) {
      if (inside(l.localOffset)) continue; // a stored member's own contents (a zip in a zip)
      if (strict && !plausibleLocal(b, l.localOffset)) continue;
      ctx.event('ARCHIVE_AMBIGUOUS', `zip: ${cleanMemberName(l.name)} has a local header and no central directory entry`);
      out.push(l);
      continue;
    }
    // The local header's own size field (walkLocalHeaders measures unsized members instead).
    const localSize = b.readUInt32LE(l.localOffset + 18);
    const sized = (l.flags & 8) === 0 && localSize !== 0xffffffff && c.packedSize < 0xffffffff;
    if (l.method !== c.method || (sized && localSize !== c.packedSize)) {
      ctx.event('ARCHIVE_AMBIGUOUS', `zip: ${cleanMemberName(c.name)}: the local header says method ${l.method}, ${localSize} bytes; the central directory method ${c.method}, ${c.packedSize} bytes`);
      out.push({ ...l, name: `${c.name}~local` });
    }
  }
  const eocd = findEocd(b);
  // Another end record before the last one: two archives, one in the other's comment or
  // behind it. Readers that take the first record see the first archive (its members were
  // walked above as local headers), those that take the last see the last.
  const earlier = eocd <= 0 ? -1 : b.lastIndexOf('PK\x05\x06', eocd - 1, 'latin1');
  if (earlier !== -1 && earlier + 22 <= b.length) ctx.event('ARCHIVE_AMBIGUOUS', 'zip: more than one end-of-central-directory record (an archive inside or after another)');
  const tail = eocd === -1 ? -1 : b.indexOf('PK\x03\x04', eocd + 22, 'latin1');
  if (tail !== -1) {
    ctx.event('ARCHIVE_AMBIGUOUS', 'zip: another archive in the comment or after the end of the archive');
    out.push({ name: '(appended)', flags: 0, method: 0, packedSize: b.length - tail, localOffset: -1 - tail, crc: 0, modTime: 0 });
  }
  return out;
}

/** Traditional encryption: the header's check byte comes from the CRC, or the time with a data descriptor. */
function openZipCrypto(e: Entry, data: Buffer, ctx: UnpackContext): { plain: Buffer; method: number } | null {
  const check = (e.flags & 8) !== 0 ? (e.modTime >>> 8) & 0xff : e.crc >>> 24;
  const opened = tryPasswords(data, check, ctx.passwords(), (plain) => plausible(e, plain));
  return opened && { plain: opened.plain, method: e.method };
}

/** Largest inflation tried to tell a wrong ZipCrypto password from the right one. */
const VERIFY_INFLATE_MAX = 1024 * 1024;

/**
 * Decrypted data that is the member: stored, its CRC matches; deflated, it inflates (to its
 * CRC when it fits in VERIFY_INFLATE_MAX; a longer valid stream is taken as right — garbage
 * fails within its first blocks). Other methods cannot be told here and pass.
 */
function plausible(e: Entry, plain: Buffer): boolean {
  // A local header with a data descriptor may carry no CRC (an entry read from local headers only).
  const crcKnown = (e.flags & 8) === 0 || e.crc !== 0;
  if (e.method === 0) return !crcKnown || (crc32(plain) >>> 0) === (e.crc >>> 0);
  if (e.method !== 8) return true;
  try {
    const out = inflateRawSync(plain, { maxOutputLength: VERIFY_INFLATE_MAX });
    return !crcKnown || (crc32(out) >>> 0) === (e.crc >>> 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
  }
}

/** Passwords still worth trying on this archive's AES members (null: none tried yet). */
interface AesState {
  candidates: readonly string[] | null;
}

/** Candidates tried on an archive's first AES member (each costs a PBKDF2 derivation). */
const MAX_AES_TRIES = 50;

/** WinZip AES: the key strength and real method are in the local header's 0x9901 field. */
async function openAes(b: Buffer, e: Entry, data: Buffer, name: string, ctx: UnpackContext, state: AesState): Promise<{ plain: Buffer; method: number } | null> {
  const field = readAesField(localExtra(b, e));
  if (field === null) return null;
  const r = await tryAesPasswords(data, field, (state.candidates ??= ctx.passwords().slice(0, MAX_AES_TRIES)));
  if (r.kind === 'malformed') ctx.event('ARCHIVE_CORRUPT', `${name}: ${r.why}`);
  if (r.kind === 'no-password') state.candidates = [];
  if (r.kind !== 'opened') return null;
  state.candidates = [r.password];
  if (!r.authentic) ctx.event('ARCHIVE_CORRUPT', `${name}: AES authentication code does not match (altered after encryption)`);
  return { plain: r.plain, method: field.method };
}

/** The extra field of a member's local header (empty if the header is unreadable). */
function localExtra(b: Buffer, e: Entry): Buffer {
  const p = e.localOffset;
  if (p + 30 > b.length || b.readUInt32LE(p) !== LOCAL) return Buffer.alloc(0);
  const start = p + 30 + b.readUInt16LE(p + 26);
  return b.subarray(start, Math.min(b.length, start + b.readUInt16LE(p + 28)));
}

/** The entries of the central directory, or null if the archive has none that parses. */
function readCentralDirectory(b: Buffer): Entry[] | null {
  const eocd = findEocd(b);
  if (eocd === -1) return null;
  let count = b.readUInt16LE(eocd + 10);
  let cdSize = b.readUInt32LE(eocd + 12);
  let cdOffset = b.readUInt32LE(eocd + 16);
  let cdEnd = eocd;
  const locator = eocd - 20;
  if ((count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && locator >= 0 && b.readUInt32LE(locator) === ZIP64_LOCATOR) {
    const z = Number(b.readBigUInt64LE(locator + 8));
    if (z + 56 <= b.length && b.readUInt32LE(z) === ZIP64_EOCD) {
      count = Number(b.readBigUInt64LE(z + 32));
      cdSize = Number(b.readBigUInt64LE(z + 40));
      cdOffset = Number(b.readBigUInt64LE(z + 48));
      cdEnd = z;
    }
  }
  // Offsets are relative to the archive's start; a prefix (an SFX stub, junk) shifts them all.
  // A negative shift — offsets counted from the start of a file these bytes were cut from (a
  // zip appended to an image, read from its first local header on) — counts only when the
  // central directory is really there.
  const measured = cdEnd - cdSize - cdOffset;
  const shift = measured >= 0 || (cdOffset + measured >= 0 && cdOffset + measured + 4 <= b.length && b.readUInt32LE(cdOffset + measured) === CENTRAL) ? measured : 0;
  let p = cdOffset + shift;
  const entries: Entry[] = [];
  while (p + 46 <= b.length && b.readUInt32LE(p) === CENTRAL && entries.length < count + 1) {
    const flags = b.readUInt16LE(p + 8);
    const method = b.readUInt16LE(p + 10);
    let packed = b.readUInt32LE(p + 20);
    const unpackedField = b.readUInt32LE(p + 24);
    const nameLen = b.readUInt16LE(p + 28);
    const extraLen = b.readUInt16LE(p + 30);
    const commentLen = b.readUInt16LE(p + 32);
    let local = b.readUInt32LE(p + 42);
    const name = decodeName(b.subarray(p + 46, p + 46 + nameLen), flags);
    // zip64 extended information: the 64-bit values, in this order, for fields set to all ones.
    const extra = b.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let q = 0; q + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(q);
      const len = extra.readUInt16LE(q + 2);
      if (id === 0x0001) {
        let f = q + 4;
        const next = (): number | null => (f + 8 <= q + 4 + len && f + 8 <= extra.length ? Number(extra.readBigUInt64LE((f += 8) - 8)) : null);
        if (unpackedField === 0xffffffff) next();
        if (packed === 0xffffffff) packed = next() ?? packed;
        if (local === 0xffffffff) local = next() ?? local;
      }
      q += 4 + len;
    }
    // (A member said to start before these bytes is outside them: b.length, never negative,
    // which memberData reads as "raw bytes from an offset".)
    const at = local + shift >= 0 ? local + shift : b.length;
    entries.push({ name, flags, method, packedSize: packed, localOffset: at, crc: b.readUInt32LE(p + 16), modTime: b.readUInt16LE(p + 12) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries.length > 0 || count === 0 ? entries : null;
}

function findEocd(b: Buffer): number {
  const from = Math.max(0, b.length - 22 - MAX_COMMENT);
  for (let p = b.lastIndexOf('PK\x05\x06', b.length - 22, 'latin1'); p >= from; p = b.lastIndexOf('PK\x05\x06', p - 1, 'latin1')) {
    if (p + 22 <= b.length && b.readUInt32LE(p) === EOCD) return p;
    if (p === 0) break;
  }
  return -1;
}

/** A member's packed bytes, from its local header (whose name/extra lengths may differ). */
function memberData(b: Buffer, e: Entry): Buffer | null {
  if (e.localOffset < 0) return b.subarray(-1 - e.localOffset); // raw bytes from an offset (an appended archive)
  const p = e.localOffset;
  if (p + 30 > b.length || b.readUInt32LE(p) !== LOCAL) return null;
  const start = p + 30 + b.readUInt16LE(p + 26) + b.readUInt16LE(p + 28);
  if (start > b.length) return null;
  // A truncated member is inflated as far as it goes (and reported corrupt by zlib).
  return b.subarray(start, Math.min(b.length, start + e.packedSize));
}

/**
 * Without a central directory: every local header in order. A member with a data descriptor
 * (sizes unknown in its header) runs to the next local header, which zlib tolerates: deflate
 * ends where its stream ends.
 */
function walkLocalHeaders(b: Buffer): Entry[] {
  const entries: Entry[] = [];
  for (let p = b.indexOf('PK\x03\x04', 0, 'latin1'); p !== -1 && p + 30 <= b.length; ) {
    const flags = b.readUInt16LE(p + 6);
    const method = b.readUInt16LE(p + 8);
    let packed = b.readUInt32LE(p + 18);
    const nameLen = b.readUInt16LE(p + 26);
    const extraLen = b.readUInt16LE(p + 28);
    const start = p + 30 + nameLen + extraLen;
    const sized = (flags & 8) === 0 && packed !== 0 && packed !== 0xffffffff;
    // A member of known size is skipped whole (a stored inner zip holds local headers too);
    // one of unknown size ends at its data descriptor, or at the next record.
    const end = sized ? start + packed : unsizedEnd(b, Math.max(start, p + 4));
    if (!sized) packed = end - start;
    const next = b.indexOf('PK\x03\x04', end, 'latin1');
    entries.push({
      name: decodeName(b.subarray(p + 30, p + 30 + nameLen), flags), flags, method, packedSize: Math.max(0, packed), localOffset: p,
      crc: b.readUInt32LE(p + 14), modTime: b.readUInt16LE(p + 10),
    });
    p = next;
  }
  return entries;
}

/**
 * Where the data of a member without sizes in its local header ends (bit 3: sizes in a data
 * descriptor after the data), as streaming readers find it: at a descriptor whose compressed
 * size is the distance from the data's start (`PK\7\8`, zip64's too), else at the next local
 * header, central directory or end record — less a descriptor without signature just before.
 */
function unsizedEnd(b: Buffer, start: number): number {
  let n = 0;
  for (let q = b.indexOf('PK\x07\x08', start, 'latin1'); q !== -1 && n < 10_000; q = b.indexOf('PK\x07\x08', q + 1, 'latin1'), n++) {
    if (q + 16 <= b.length && b.readUInt32LE(q + 8) === q - start) return q;
    if (q + 24 <= b.length && Number(b.readBigUInt64LE(q + 8)) === q - start) return q;
  }
  let end = b.length;
  for (const sig of ['PK\x03\x04', 'PK\x01\x02', 'PK\x05\x06']) {
    const at = b.indexOf(sig, start, 'latin1');
    if (at !== -1 && at < end) end = at;
  }
  if (end - 12 >= start && b.readUInt32LE(end - 8) === end - 12 - start) return end - 12;
  return end;
}

/** Methods real writers use (stored, deflate, deflate64, bzip2, lzma, zstd, xz, ppmd, AES). */
const KNOWN_METHODS: ReadonlySet<number> = new Set([0, 8, 9, 12, 14, 93, 95, 98, 99]);

/** A local header that a writer made, not four chance bytes: a known method and version, a printable name. */
function plausibleLocal(b: Buffer, p: number): boolean {
  if (p + 30 > b.length) return false;
  const version = b.readUInt16LE(p + 4) & 0xff;
  const nameLen = b.readUInt16LE(p + 26);
  if (version > 63 || !KNOWN_METHODS.has(b.readUInt16LE(p + 8)) || nameLen === 0 || nameLen > 1024 || p + 30 + nameLen > b.length) return false;
  const name = b.subarray(p + 30, p + 30 + nameLen);
  for (const c of name) if (c < 0x20 || c === 0x7f) return false;
  return true;
}

/** UTF-8 when general purpose bit 11 says so; otherwise CP437 in theory, latin1 as read. */
function decodeName(raw: Buffer, flags: number): string {
  return raw.toString((flags & 0x800) !== 0 ? 'utf8' : 'latin1');
}
