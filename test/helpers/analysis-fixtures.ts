/**
 * Files for the analysis tests, written by the tests from the formats' specifications: a
 * minimal PE (headers, sections, an import directory), an OLE file carrying a VBA module in
 * an MS-OVBA compressed container, OOXML parts, PDFs, a shortcut, HTML, an ISO image.
 */

import { isoImage } from './archives.ts';

/** A PE32 with the given imports (one DLL), section names, and optionally a random section. */
export function peFile(opts: { imports?: string[]; sections?: string[]; random?: boolean; dll?: boolean } = {}): Buffer {
  const sectionNames = opts.sections ?? ['.text', '.rdata'];
  const b = Buffer.alloc(0x400 + 0x1000 * sectionNames.length);
  b.write('MZ', 0);
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x14c, 0x84);
  b.writeUInt16LE(sectionNames.length, 0x86);
  b.writeUInt16LE(0xe0, 0x94); // size of optional header (PE32)
  b.writeUInt16LE(opts.dll ? 0x2102 : 0x0102, 0x96);
  const opt = 0x98;
  b.writeUInt16LE(0x10b, opt);
  const table = opt + 0xe0;
  sectionNames.forEach((name, i) => {
    const s = table + i * 40;
    b.write(name, s, 'latin1');
    b.writeUInt32LE(0x1000, s + 8); // virtual size
    b.writeUInt32LE(0x1000 * (i + 1), s + 12); // virtual address
    b.writeUInt32LE(0x1000, s + 16); // raw size
    b.writeUInt32LE(0x400 + 0x1000 * i, s + 20); // raw offset
  });
  if (opts.random) {
    let x = 12345;
    for (let p = 0x400; p < 0x1400; p++) {
      x = (x * 1103515245 + 12345) >>> 0;
      b[p] = x >>> 24;
    }
  }
  if (opts.imports?.length) {
    // Import directory in the last section: descriptor, thunks, hint/name entries, DLL name.
    const last = sectionNames.length - 1;
    const raw = 0x400 + 0x1000 * last;
    const va = 0x1000 * (last + 1);
    const names = raw + 0x100;
    const thunks = raw + 0x40;
    let p = names;
    opts.imports.forEach((fn, k) => {
      b.writeUInt32LE(va + (p - raw), thunks + k * 4);
      b.write(`\0\0${fn}\0`, p, 'latin1');
      p += fn.length + 3;
    });
    b.write('kernel32.dll\0', p, 'latin1');
    b.writeUInt32LE(va + (thunks - raw), raw); // OriginalFirstThunk
    b.writeUInt32LE(va + (p - raw), raw + 12); // Name
    b.writeUInt32LE(va + (thunks - raw), raw + 16); // FirstThunk
    b.writeUInt32LE(va, opt + 96 + 8); // data directory 1: imports
    b.writeUInt32LE(40, opt + 96 + 12);
  }
  return b;
}

/**
 * MS-OVBA compression without back-references (valid, if not small): full 4096-byte chunks are
 * stored uncompressed, the last one as literal tokens (it must fit: at most 3584 bytes).
 */
export function compressVba(source: string): Buffer {
  const data = Buffer.from(source, 'latin1');
  const out: Buffer[] = [Buffer.from([0x01])];
  for (let c = 0; c < data.length; c += 4096) {
    const chunk = data.subarray(c, c + 4096);
    const header = Buffer.alloc(2);
    if (chunk.length === 4096) {
      header.writeUInt16LE(0x3000 | (4096 + 2 - 3));
      out.push(header, chunk);
      continue;
    }
    if (chunk.length > 3584) throw new Error('compressVba: the last chunk must be at most 3584 bytes');
    const body: number[] = [];
    for (let i = 0; i < chunk.length; i += 8) body.push(0x00, ...chunk.subarray(i, i + 8));
    header.writeUInt16LE(0x8000 | 0x3000 | (body.length + 2 - 3));
    out.push(header, Buffer.from(body));
  }
  return Buffer.concat(out);
}

/** A Word document (OLE) with a VBA module holding `source`. */
export function oleWithMacro(source: string): Buffer {
  return Buffer.concat([
    Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
    Buffer.alloc(504),
    Buffer.from('WordDocument', 'utf16le'),
    Buffer.alloc(40),
    Buffer.from('_VBA_PROJECT', 'utf16le'),
    Buffer.alloc(100),
    compressVba(`Attribute VB_Name = "ThisDocument"\r\n${source}`),
    Buffer.alloc(200),
  ]);
}

export const pdf = (body: string): Buffer => Buffer.from(`%PDF-1.7\n${body}\n%%EOF\n`, 'latin1');

/** A shell link whose string data runs `target args` (UTF-16, as Windows writes it). */
export function lnk(target: string, args: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46]),
    Buffer.alloc(56),
    Buffer.from(`\0${target}\0`, 'utf16le'),
    Buffer.from(`\0${args}\0`, 'utf16le'),
  ]);
}

/**
 * An ISO 9660 image (with Joliet names) holding the named files: `.exe` a PE that downloads
 * and runs, `.lnk` a shortcut running PowerShell, anything else a line of text.
 */
export function iso(names: string[]): Buffer {
  const content = (n: string): Buffer =>
    n.endsWith('.exe') ? peFile({ imports: ['URLDownloadToFileA', 'WinExec'] }) : n.endsWith('.lnk') ? lnk('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', '-w hidden -c iex') : Buffer.from(`${n}\r\n`);
  return isoImage(names.map((name) => ({ name, data: content(name) })), { joliet: true });
}
