/**
 * Builders for the archives the tests feed the inspector: written from the format
 * specifications (PKWARE APPNOTE, POSIX tar, MS-OXTNEF, RAR and 7z headers), byte by byte, so
 * each trick (data descriptors, zip64 fields, a prefix, a missing central directory,
 * encryption flags) is explicit in the test that uses it.
 */

import { createHmac, pbkdf2Sync } from 'node:crypto';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { aesCtrLE } from '../../src/inspect/archive/zipaes.ts';
import { zipCryptoEncrypt } from '../../src/inspect/archive/zipcrypto.ts';

export interface ZipEntry {
  readonly name: string;
  readonly data: Buffer;
  readonly method?: 'stored' | 'deflate';
  /** Set the "encrypted" flag (the data is then taken as it is, unless a password is given). */
  readonly encrypted?: boolean;
  /** Encrypt with traditional PKWARE encryption under this password (sets the flag). */
  readonly password?: string;
  /** Sizes and CRC in a data descriptor after the data, zeros in the local header. */
  readonly descriptor?: boolean;
  /** Sizes and offset in a zip64 extra field (the 32-bit fields all ones). */
  readonly zip64?: boolean;
  /** WinZip AES encryption (method 99, extra field 0x9901) under this password; strength 3 = AES-256. */
  readonly aes?: { readonly password: string; readonly strength?: 1 | 2 | 3 };
}

/** WinZip AES: salt ‖ verifier ‖ AES-CTR (little-endian counter) ‖ HMAC-SHA1/10, and the 0x9901 extra field. */
function aesEncrypt(plain: Buffer, method: number, password: string, strength: 1 | 2 | 3): { packed: Buffer; extra: Buffer } {
  const key = { 1: 16, 2: 24, 3: 32 }[strength];
  const salt = Buffer.alloc(key / 2, 0x37);
  const material = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, 1000, 2 * key + 2, 'sha1');
  const cipher = aesCtrLE(material.subarray(0, key), plain);
  const mac = createHmac('sha1', material.subarray(key, 2 * key)).update(cipher).digest().subarray(0, 10);
  const extra = Buffer.alloc(11);
  extra.writeUInt16LE(0x9901, 0);
  extra.writeUInt16LE(7, 2);
  extra.writeUInt16LE(2, 4); // AE-2: no CRC (the HMAC protects the data)
  extra.write('AE', 6, 'latin1');
  extra[8] = strength;
  extra.writeUInt16LE(method, 9);
  return { packed: Buffer.concat([salt, material.subarray(2 * key), cipher, mac]), extra };
}

export function zip(entries: readonly ZipEntry[], opts: { prefix?: Buffer; noCentral?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = opts.prefix?.length ?? 0;
  if (opts.prefix) parts.push(opts.prefix);
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const realMethod = e.method === 'stored' ? 0 : 8;
    const method = e.aes ? 99 : realMethod;
    const crc = crc32(e.data);
    const compressed = realMethod === 8 && !e.encrypted ? deflateRawSync(e.data) : e.data;
    const aes = e.aes ? aesEncrypt(compressed, realMethod, e.aes.password, e.aes.strength ?? 3) : null;
    const packed = aes ? aes.packed : e.password !== undefined ? zipCryptoEncrypt(realMethod === 8 ? deflateRawSync(e.data) : e.data, e.password, crc >>> 24) : compressed;
    const localExtra = aes ? aes.extra : Buffer.alloc(0);
    const flags = (e.encrypted || e.password !== undefined || e.aes ? 1 : 0) | (e.descriptor ? 8 : 0) | 0x800;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    if (!e.descriptor) {
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(packed.length, 18);
      local.writeUInt32LE(e.data.length, 22);
    }
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(localExtra.length, 28);
    parts.push(local, name, localExtra, packed);
    if (e.descriptor) {
      const dd = Buffer.alloc(16);
      dd.writeUInt32LE(0x08074b50, 0);
      dd.writeUInt32LE(crc, 4);
      dd.writeUInt32LE(packed.length, 8);
      dd.writeUInt32LE(e.data.length, 12);
      parts.push(dd);
    }
    const extra = e.zip64 ? Buffer.alloc(28) : Buffer.from(localExtra);
    if (e.zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(e.data.length), 4);
      extra.writeBigUInt64LE(BigInt(packed.length), 12);
      extra.writeBigUInt64LE(BigInt(offset - (opts.prefix?.length ?? 0)), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.zip64 ? 0xffffffff : packed.length, 20);
    c.writeUInt32LE(e.zip64 ? 0xffffffff : e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(extra.length, 30);
    c.writeUInt32LE(e.zip64 ? 0xffffffff : offset - (opts.prefix?.length ?? 0), 42);
    central.push(c, name, extra);
    offset += local.length + name.length + localExtra.length + packed.length + (e.descriptor ? 16 : 0);
  }
  if (opts.noCentral) return Buffer.concat(parts);
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset - (opts.prefix?.length ?? 0), 16);
  return Buffer.concat([...parts, cd, eocd]);
}

/** A zip nested `levels` deep around `inner` (named inner file at the centre). */
export function nestedZip(levels: number, name: string, inner: Buffer): Buffer {
  let data = zip([{ name, data: inner }]);
  for (let i = 1; i < levels; i++) data = zip([{ name: `level${levels - i}.zip`, data }]);
  return data;
}

export function tar(entries: readonly { name: string; data: Buffer }[]): Buffer {
  const blocks: Buffer[] = [];
  const header = (name: string, size: number, type: string): Buffer => {
    const h = Buffer.alloc(512);
    h.write(name.slice(0, 100), 0, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type, 156);
    h.write('ustar\x0000', 257, 'latin1');
    let sum = 0;
    for (const x of h) sum += x;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    return h;
  };
  const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);
  for (const e of entries) {
    if (Buffer.byteLength(e.name) > 100) {
      const long = Buffer.from(`${e.name}\0`);
      blocks.push(header('././@LongLink', long.length, 'L'), long, pad(long.length));
    }
    blocks.push(header(e.name, e.data.length, '0'), e.data, pad(e.data.length));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export function gzip(data: Buffer, name?: string): Buffer {
  const gz = gzipSync(data);
  if (name === undefined) return gz;
  // Set FNAME and insert the zero-terminated name after the 10-byte header.
  const head = Buffer.from(gz.subarray(0, 10));
  head[3] = head[3]! | 8;
  return Buffer.concat([head, Buffer.from(`${name}\0`, 'latin1'), gz.subarray(10)]);
}

/** winmail.dat with the given attachments (MS-OXTNEF attributes; checksums as Outlook writes them). */
/** One TNEF attribute: level, id, length, data, and the 16-bit sum of the data. */
export function tnefAttribute(level: number, id: number, data: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h[0] = level;
  h.writeUInt32LE(id, 1);
  h.writeUInt32LE(data.length, 5);
  const sum = Buffer.alloc(2);
  let s = 0;
  for (const x of data) s = (s + x) & 0xffff;
  sum.writeUInt16LE(s);
  return Buffer.concat([h, data, sum]);
}

export function tnef(attachments: readonly { name: string; data: Buffer }[]): Buffer {
  const attr = tnefAttribute;
  const out = [Buffer.from([0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00]), attr(1, 0x00089006, Buffer.from([1, 0, 1, 0]))];
  for (const a of attachments) {
    out.push(attr(2, 0x00069002, Buffer.alloc(14)), attr(2, 0x00018010, Buffer.from(`${a.name}\0`, 'latin1')), attr(2, 0x0006800f, a.data));
  }
  return Buffer.concat(out);
}

/**
 * A TNEF whose one attachment lives only in its MAPI properties (attAttachment:
 * PR_ATTACH_LONG_FILENAME in UTF-16, PR_ATTACH_DATA_BIN), as Outlook writes some.
 */
export function tnefMapiOnly(name: string, data: Buffer): Buffer {
  const attr = tnefAttribute;
  const prop = (type: number, id: number, value: Buffer): Buffer => {
    const head = Buffer.alloc(12);
    head.writeUInt16LE(type, 0);
    head.writeUInt16LE(id, 2);
    head.writeUInt32LE(1, 4);
    head.writeUInt32LE(value.length, 8);
    return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
  };
  const count = Buffer.alloc(4);
  count.writeUInt32LE(2);
  const props = Buffer.concat([count, prop(0x001f, 0x3707, Buffer.from(`${name}\0`, 'utf16le')), prop(0x0102, 0x3701, data)]);
  return Buffer.concat([Buffer.from([0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00]), attr(1, 0x00089006, Buffer.from([1, 0, 1, 0])), attr(2, 0x00069002, Buffer.alloc(14)), attr(2, 0x00069005, props)]);
}

/** A RAR 4 archive head with one file header, its "encrypted" flag as asked. */
export function rar4(encrypted: boolean): Buffer {
  const sig = Buffer.from('Rar!\x1a\x07\x00', 'latin1');
  const main = Buffer.from([0, 0, 0x73, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0]);
  const name = Buffer.from('secret.exe');
  const file = Buffer.alloc(32 + name.length);
  file[2] = 0x74;
  file.writeUInt16LE(0x8000 | (encrypted ? 0x04 : 0), 3);
  file.writeUInt16LE(file.length, 5);
  file.writeUInt32LE(4, 7); // packed size
  file.writeUInt16LE(name.length, 26);
  name.copy(file, 32);
  return Buffer.concat([sig, main, file, Buffer.from('DATA'), Buffer.from([0xc4, 0x3d, 0x7b, 0, 0x40, 0x07, 0])]);
}

/** A RAR 5 archive with one file header; with `encrypted`, an archive encryption header first. */
export function rar5(encrypted: boolean): Buffer {
  const sig = Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1');
  const header = (body: number[]): Buffer => Buffer.concat([Buffer.alloc(4), Buffer.from([body.length, ...body])]);
  const main = header([1, 0, 0]);
  const enc = header([4, 0, 0, 0, 15, ...Array(16).fill(1)]);
  const file = header([2, 0, 0, 0, 4, 0, 0, 0, 0, 4, ...Buffer.from('a.exe')]);
  return Buffer.concat([sig, ...(encrypted ? [enc] : [main, file]), header([5, 0, 0])]);
}

/** A 7z signature header pointing at a next header; with `encrypted`, it names the AES coder. */
export function sevenZip(encrypted: boolean): Buffer {
  const nextHeader = Buffer.from(encrypted ? [0x17, 0x06, 0x0b, 0x01, 0x24, 0x06, 0xf1, 0x07, 0x01, 0x00] : [0x01, 0x04, 0x06, 0x00, 0x00]);
  const h = Buffer.alloc(32);
  Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]).copy(h);
  h.writeBigUInt64LE(16n, 12);
  h.writeBigUInt64LE(BigInt(nextHeader.length), 20);
  return Buffer.concat([h, Buffer.alloc(16, 0x55), nextHeader]);
}

/**
 * An ISO 9660 image (ECMA-119) with the files given, in the root or one directory level down
 * (`dir/name`); with `joliet`, also a Joliet volume whose UCS-2 names are the real ones (the
 * primary volume then has 8.3-style upper-case names, as mkisofs writes them).
 */
export function isoImage(files: ReadonlyArray<{ name: string; data: Buffer }>, opts: { joliet?: boolean } = {}): Buffer {
  const SECTOR = 2048;
  const sectors: Buffer[] = Array.from({ length: 16 }, () => Buffer.alloc(SECTOR));
  const record = (lba: number, size: number, dir: boolean, id: Buffer): Buffer => {
    const len = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
    const r = Buffer.alloc(len);
    r[0] = len;
    r.writeUInt32LE(lba, 2);
    r.writeUInt32BE(lba, 6);
    r.writeUInt32LE(size, 10);
    r.writeUInt32BE(size, 14);
    r[25] = dir ? 2 : 0;
    r.writeUInt16LE(1, 28);
    r.writeUInt16BE(1, 30);
    r[32] = id.length;
    id.copy(r, 33);
    return r;
  };
  const descriptor = (type: number, root: Buffer, joliet: boolean): Buffer => {
    const d = Buffer.alloc(SECTOR);
    d[0] = type;
    d.write('CD001', 1, 'latin1');
    d[6] = 1;
    if (joliet) d.write('%/E', 88, 'latin1');
    d.writeUInt16LE(SECTOR, 128);
    d.writeUInt16BE(SECTOR, 130);
    root.copy(d, 156);
    return d;
  };
  const dirs = [...new Set(files.filter((f) => f.name.includes('/')).map((f) => f.name.split('/')[0]!))];
  const volumes = opts.joliet ? 2 : 1;
  // Sectors: 16 primary, [17 Joliet], terminator, then per volume: root + one per directory, then file data.
  const firstDir = 16 + volumes + 1;
  const dirLba = (v: number, d: number): number => firstDir + v * (1 + dirs.length) + d; // d = 0: root
  let next = firstDir + volumes * (1 + dirs.length);
  const fileLba = files.map((f) => {
    const at = next;
    next += Math.max(1, Math.ceil(f.data.length / SECTOR));
    return at;
  });
  const idOf = (name: string, joliet: boolean, dir: boolean): Buffer => {
    if (!joliet) return Buffer.from(dir ? name.toUpperCase() : `${name.toUpperCase()};1`, 'latin1');
    const s = Buffer.alloc(name.length * 2);
    for (let i = 0; i < name.length; i++) s.writeUInt16BE(name.charCodeAt(i), i * 2);
    return s;
  };
  const dirSectors: Buffer[] = [];
  for (let v = 0; v < volumes; v++) {
    const joliet = v === 1;
    for (let d = 0; d <= dirs.length; d++) {
      const self = dirLba(v, d);
      const parent = dirLba(v, 0);
      const entries = [record(self, SECTOR, true, Buffer.from([0])), record(parent, SECTOR, true, Buffer.from([1]))];
      if (d === 0) dirs.forEach((name, i) => entries.push(record(dirLba(v, i + 1), SECTOR, true, idOf(name, joliet, true))));
      files.forEach((f, i) => {
        const [head, ...rest] = f.name.split('/');
        const inDir = rest.length ? dirs.indexOf(head!) + 1 : 0;
        if (inDir === d) entries.push(record(fileLba[i]!, f.data.length, false, idOf(rest.length ? rest.join('/') : f.name, joliet, false)));
      });
      const sector = Buffer.concat([...entries, Buffer.alloc(SECTOR)]).subarray(0, SECTOR);
      dirSectors.push(sector);
    }
  }
  sectors.push(descriptor(1, record(dirLba(0, 0), SECTOR, true, Buffer.from([0])), false));
  if (opts.joliet) sectors.push(descriptor(2, record(dirLba(1, 0), SECTOR, true, Buffer.from([0])), true));
  const terminator = Buffer.alloc(SECTOR);
  terminator[0] = 255;
  terminator.write('CD001', 1, 'latin1');
  sectors.push(terminator, ...dirSectors);
  for (const f of files) {
    const padded = Buffer.alloc(Math.max(1, Math.ceil(f.data.length / SECTOR)) * SECTOR);
    f.data.copy(padded);
    sectors.push(padded);
  }
  return Buffer.concat(sectors);
}

const vint = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};

/**
 * A RAR 5 archive with the files stored (method 0), written to the format's specification:
 * each header with its CRC32, a file header with the data CRC32. bsdtar (libarchive) reads it,
 * which test/unit/inspect/rar.test.ts checks first: RAR's own tool is not free software.
 */
export function rar5Stored(files: ReadonlyArray<{ name: string; data: Buffer }>): Buffer {
  const header = (body: number[]): Buffer => {
    const rest = Buffer.concat([Buffer.from(vint(body.length)), Buffer.from(body)]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(rest) >>> 0);
    return Buffer.concat([crc, rest]);
  };
  const parts: Buffer[] = [Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1'), header([1, 0, 0])];
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(f.data) >>> 0);
    // type 2 (file), flags: data area; file flags: CRC32 present; size; attributes; CRC; compression 0 (store); host OS 0; name
    parts.push(header([2, 0x02, ...vint(f.data.length), 0x04, ...vint(f.data.length), ...vint(0x20), ...crc, 0, 0, ...vint(name.length), ...name]), f.data);
  }
  parts.push(header([5, 0, 0]));
  return Buffer.concat(parts);
}

/**
 * One file stored across `count` RAR 5 volumes (`name.part1.rar`, …), written to the format's
 * specification: every volume has its signature, a main header with the "volume" flag (and
 * its number after the first), the file header with "continues from/in" flags and this
 * volume's piece, and an end header saying whether more volumes follow. The data CRC32 (of
 * the whole file) is in the last volume's header.
 */
export function rar5StoredVolumes(name: string, data: Buffer, count: number): Buffer[] {
  const header = (body: number[]): Buffer => {
    const rest = Buffer.concat([Buffer.from(vint(body.length)), Buffer.from(body)]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(rest) >>> 0);
    return Buffer.concat([crc, rest]);
  };
  const nameBytes = Buffer.from(name, 'utf8');
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32(data) >>> 0);
  const per = Math.ceil(data.length / count);
  return Array.from({ length: count }, (_, v) => {
    const piece = data.subarray(v * per, (v + 1) * per);
    const last = v === count - 1;
    const main = header([1, 0, ...vint(0x0001 | (v > 0 ? 0x0002 : 0)), ...(v > 0 ? vint(v) : [])]);
    const flags = 0x02 | (v > 0 ? 0x08 : 0) | (last ? 0 : 0x10);
    const file = header([2, ...vint(flags), ...vint(piece.length), last ? 0x04 : 0, ...vint(data.length), ...vint(0x20), ...(last ? [...crc] : []), 0, 0, ...vint(nameBytes.length), ...nameBytes]);
    return Buffer.concat([Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1'), main, file, piece, header([5, 0, ...vint(last ? 0 : 1)])]);
  });
}

/**
 * One file stored across `count` RAR 4 volumes (`name.rar`, `name.r00`, …): marker block,
 * archive header (MHD_VOLUME; MHD_FIRSTVOLUME on the first), a file header with
 * LHD_SPLIT_BEFORE/AFTER and this volume's piece, and an end block with EARC_NEXT_VOLUME
 * before the last. As RAR writes it, a piece's header carries the CRC32 of that piece, the
 * last one that of the whole file. Header CRCs are the low 16 bits of CRC32.
 */
export function rar4StoredVolumes(name: string, data: Buffer, count: number): Buffer[] {
  const block = (type: number, flags: number, body: Buffer): Buffer => {
    const h = Buffer.alloc(7);
    h[2] = type;
    h.writeUInt16LE(flags, 3);
    h.writeUInt16LE(7 + body.length, 5);
    const whole = Buffer.concat([h, body]);
    whole.writeUInt16LE(crc32(whole.subarray(2)) & 0xffff, 0);
    return whole;
  };
  const nameBytes = Buffer.from(name, 'latin1');
  const per = Math.ceil(data.length / count);
  return Array.from({ length: count }, (_, v) => {
    const piece = data.subarray(v * per, (v + 1) * per);
    const last = v === count - 1;
    const main = block(0x73, 0x0001 | (v === 0 ? 0x0100 : 0), Buffer.alloc(6));
    const f = Buffer.alloc(25 + nameBytes.length);
    f.writeUInt32LE(piece.length, 0); // PACK_SIZE
    f.writeUInt32LE(data.length, 4); // UNP_SIZE
    f[8] = 0; // HOST_OS: MS-DOS
    f.writeUInt32LE(crc32(last ? data : piece) >>> 0, 9);
    f.writeUInt32LE(0x21, 13); // FTIME (DOS): 1980-01-01
    f[17] = 20; // UNP_VER 2.0
    f[18] = 0x30; // METHOD: store
    f.writeUInt16LE(nameBytes.length, 19);
    f.writeUInt32LE(0x20, 21); // ATTR
    nameBytes.copy(f, 25);
    const file = block(0x74, 0x8000 | (v > 0 ? 0x01 : 0) | (last ? 0 : 0x02), f);
    const end = block(0x7b, last ? 0 : 0x0001, Buffer.alloc(0));
    return Buffer.concat([Buffer.from('Rar!\x1a\x07\x00', 'latin1'), main, file, piece, end]);
  });
}
