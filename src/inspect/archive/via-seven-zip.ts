/**
 * Containers opened through 7-Zip (`7zz`, seven-zip-tool.ts), recognised here by their magic
 * bytes: the compressors (xz, bzip2, zstd, lzip, lz4, compress `.Z`), the archivers (CAB, ARJ,
 * LHA/LZH, cpio, ar and so `.deb`, RPM, WIM, XAR) and the disk images Windows or a user's
 * unpacker opens on a double click (VHD, VHDX, raw FAT/NTFS images; ext, HFS+, APFS, UDF,
 * SquashFS, CramFS, QCOW, VDI, VMDK and GPT disks; CHM help files; MS-LZ `SZDD` files). Their members come back as
 * files of their own (a `.tar.xz` is an xz with a tar inside, unpacked natively).
 *
 * Without 7-Zip they are recognised and never passed silently: ARCHIVE_UNSUPPORTED, which the
 * profile's `on-unscannable` decides (default block).
 */

import type { ContainerReader } from './types.ts';

/** Format name and the file extension 7-Zip knows it by, from the first bytes. */
export function sevenZipFormat(head: Buffer): { readonly name: string; readonly ext: string; readonly unreadable?: boolean; readonly recognisedOnly?: string } | null {
  const at = (s: string | readonly number[], offset = 0): boolean => {
    if (head.length < offset + s.length) return false;
    for (let i = 0; i < s.length; i++) if (head[offset + i] !== (typeof s === 'string' ? s.charCodeAt(i) : s[i])) return false;
    return true;
  };
  // An Apple disk image (UDIF .dmg): no magic at its start (its first bytes are those of its
  // first chunk: a file system, zlib, bzip2, LZFSE data), only the 512-byte `koly` trailer at
  // its end, so it is recognised when the whole file is here (inspector.ts keeps `.dmg` files).
  if (isDmg(head)) return { name: 'dmg', ext: 'dmg' };
  // Archivers smtpwall does not open (WinACE, StuffIt, Zoo: neither 7-Zip nor libarchive reads
  // them): recognised by their headers, so they are ARCHIVE_UNSUPPORTED (on-unscannable
  // decides), never passed as the plain binary data they would otherwise be typed as.
  if (at('**ACE**', 7)) return { name: 'ace', ext: 'ace', recognisedOnly: 'a WinACE archive, recognised, not opened' };
  if ((at('SIT!') && at('rLau', 10)) || at('StuffIt (c)1997')) return { name: 'sit', ext: 'sit', recognisedOnly: 'a StuffIt archive, recognised, not opened' };
  if (at('ZOO ') && at([0xdc, 0xa7, 0xc4, 0xfd], 20)) return { name: 'zoo', ext: 'zoo', recognisedOnly: 'a Zoo archive, recognised, not opened' };
  if (at([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return { name: 'xz', ext: 'xz' };
  if (at('BZh') && head[3]! >= 0x31 && head[3]! <= 0x39) return { name: 'bzip2', ext: 'bz2' };
  if (at([0x28, 0xb5, 0x2f, 0xfd])) return { name: 'zstd', ext: 'zst' };
  // lzip and lz4: 7-Zip (Debian's 7zz) has no handler for them; libarchive's bsdcat has.
  if (at('LZIP')) return { name: 'lzip', ext: 'lz', unreadable: true };
  if (at([0x04, 0x22, 0x4d, 0x18])) return { name: 'lz4', ext: 'lz4', unreadable: true };
  if (at([0x1f, 0x9d])) return { name: 'compress', ext: 'Z' };
  if (at('MSCF\0\0\0\0')) return { name: 'cab', ext: 'cab' };
  if (at([0x60, 0xea])) return { name: 'arj', ext: 'arj' };
  if (head.length >= 7 && head[2] === 0x2d && head[3] === 0x6c && (head[4] === 0x68 || head[4] === 0x7a) && head[6] === 0x2d) return { name: 'lzh', ext: 'lzh' };
  if (at('070701') || at('070702') || at('070707') || at([0xc7, 0x71]) || at([0x71, 0xc7])) return { name: 'cpio', ext: 'cpio' };
  if (at('!<arch>\n')) return { name: 'ar', ext: 'ar' };
  if (at([0xed, 0xab, 0xee, 0xdb])) return { name: 'rpm', ext: 'rpm' };
  if (at('MSWIM\0\0\0')) return { name: 'wim', ext: 'wim' };
  if (at('xar!')) return { name: 'xar', ext: 'xar' };
  if (lzmaAlone(head)) return { name: 'lzma', ext: 'lzma' };
  if (at('vhdxfile')) return { name: 'vhdx', ext: 'vhdx' };
  if (at('conectix')) return { name: 'vhd', ext: 'vhd' };
  // Disk and file-system images a user's unpacker (7-Zip, The Unarchiver) opens.
  if (at('hsqs') || at('sqsh')) return { name: 'squashfs', ext: 'squashfs' };
  if (at([0x45, 0x3d, 0xcd, 0x28])) return { name: 'cramfs', ext: 'cramfs' };
  if (at([0x51, 0x46, 0x49, 0xfb])) return { name: 'qcow', ext: 'qcow2' };
  if (at([0x7f, 0x10, 0xda, 0xbe], 64)) return { name: 'vdi', ext: 'vdi' };
  if (at('KDMV')) return { name: 'vmdk', ext: 'vmdk' };
  if (at('ITSF\x03\0\0\0')) return { name: 'chm', ext: 'chm' };
  if (at('SZDD\x88\xf0\x27\x33')) return { name: 'mslz', ext: 'mslz' };
  if (at('NXSB', 32)) return { name: 'apfs', ext: 'apfs' };
  if (at('H+\0\x04', 1024) || at('HX\0\x05', 1024)) return { name: 'hfs', ext: 'hfs' };
  if (at([0x53, 0xef], 1080)) return { name: 'ext', ext: 'ext' };
  if (at('EFI PART', 512)) return { name: 'gpt', ext: 'gpt' };
  // UDF without an ISO 9660 volume (a bridge image is read natively as ISO 9660).
  if (at('BEA01', 32769) && (at('NSR02', 34817) || at('NSR03', 34817))) return { name: 'udf', ext: 'udf' };
  // A FAT or NTFS volume boot sector: a raw disk image Windows mounts on a click.
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa && (at('FAT12', 54) || at('FAT16', 54) || at('FAT32', 82) || at('NTFS    ', 3))) {
    return { name: 'img', ext: 'img' };
  }
  return null;
}

/** How far before the end a `koly` trailer is looked for (bytes appended after it, as 7-Zip allows). */
const DMG_TRAILER_SEARCH = 64 * 1024;

/**
 * UDIF: a 512-byte `koly` trailer (version 4, header size 512) — the last 512 bytes, or a
 * little before them with bytes appended after it (7-Zip still opens such a file).
 */
export function isDmg(b: Buffer): boolean {
  if (b.length < 512) return false;
  const koly = (t: number): boolean => t >= 0 && t + 512 <= b.length && b.readUInt32BE(t + 4) === 4 && b.readUInt32BE(t + 8) === 512;
  if (b.toString('latin1', b.length - 512, b.length - 508) === 'koly' && koly(b.length - 512)) return true;
  const from = Math.max(0, b.length - DMG_TRAILER_SEARCH);
  for (let t = b.lastIndexOf('koly', b.length - 512, 'latin1'); t >= from; t = t > 0 ? b.lastIndexOf('koly', t - 1, 'latin1') : -1) if (koly(t)) return true;
  return false;
}

/**
 * An `.lzma` stream (LZMA "alone", `xz --format=lzma`, `lzma`): no magic number, a 13-byte
 * header — the properties byte (lc/lp/pb, < 225; 0x5D by every common writer), a dictionary
 * size (a power of two, or 2^n + 2^(n-1), 4 KiB to 1.5 GiB) and the size (unknown: all ones,
 * or below 2^48). Checked this strictly so that text starting with `]` is not taken for one.
 */
function lzmaAlone(h: Buffer): boolean {
  if (h.length < 13 || h[0] !== 0x5d) return false;
  const dict = h.readUInt32LE(1);
  const log = Math.log2(dict);
  if (dict < 4096 || dict > 0x60000000 || !(Number.isInteger(log) || Number.isInteger(Math.log2(dict / 3) + 1))) return false;
  const low = h.readUInt32LE(5);
  const high = h.readUInt32LE(9);
  return (low === 0xffffffff && high === 0xffffffff) || high < 0x10000;
}

/** The tool's side of the contract: unpack these bytes as this format. */
export interface SevenZipUnpacker {
  unpack(bytes: Buffer, ctx: Parameters<ContainerReader>[1], format: { name: string; ext: string }): ReturnType<ContainerReader>;
}

/**
 * The reader for every format above: 7-Zip when it is there, recognition and the event when
 * not; the compressors 7-Zip lacks (lzip, lz4) through `streams` (libarchive's bsdcat).
 */
export function viaSevenZip(tool: SevenZipUnpacker | null, streams: SevenZipUnpacker | null = null): ContainerReader {
  return async (bytes, ctx) => {
    const format = sevenZipFormat(bytes);
    if (!format) return {};
    if (format.recognisedOnly) {
      ctx.event('ARCHIVE_UNSUPPORTED', `${format.name}: ${format.recognisedOnly}`);
      return {};
    }
    if (format.unreadable) {
      if (streams) return streams.unpack(bytes, ctx, format);
      ctx.event('ARCHIVE_UNSUPPORTED', `${format.name}: recognised, not unpacked (bsdcat, from libarchive-tools, is not installed)`);
      return {};
    }
    if (!tool) {
      ctx.event('ARCHIVE_UNSUPPORTED', `${format.name}: opened through 7-Zip, which is not installed (apt-get install 7zip)`);
      return {};
    }
    return tool.unpack(bytes, ctx, format);
  };
}
