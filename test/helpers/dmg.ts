/**
 * A UDIF writer (Apple disk image, `.dmg`) for tests: no tool writes one on Linux. The data
 * fork in chunks of 256 sectors, raw (UDRW, chunk type 1) or zlib-compressed (UDZO,
 * 0x80000005), listed by a `mish` block table in the XML property list's `blkx` entry, and
 * the 512-byte `koly` trailer (big-endian) that says where both are. 7-Zip reads it.
 */

import { deflateSync } from 'node:zlib';

/** UDIF around `data`: chunks of CHUNK sectors, raw (type 1) or zlib (0x80000005). */
export function udif(data: Buffer, method: 'raw' | 'zlib'): Buffer {
  const CHUNK = 256; // sectors
  const sectors = Math.ceil(data.length / 512);
  const chunks: Buffer[] = [];
  const table: Array<{ type: number; sector: number; count: number; offset: number; length: number }> = [];
  let offset = 0;
  for (let s = 0; s < sectors; s += CHUNK) {
    const count = Math.min(CHUNK, sectors - s);
    const plain = data.subarray(s * 512, (s + count) * 512);
    const stored = method === 'raw' ? plain : deflateSync(plain);
    table.push({ type: method === 'raw' ? 1 : 0x80000005, sector: s, count, offset, length: stored.length });
    chunks.push(stored);
    offset += stored.length;
  }
  table.push({ type: 0xffffffff, sector: sectors, count: 0, offset, length: 0 });
  const mish = Buffer.alloc(204 + 40 * table.length);
  mish.write('mish', 0, 'latin1');
  mish.writeUInt32BE(1, 4);
  mish.writeBigUInt64BE(BigInt(sectors), 16);
  mish.writeUInt32BE(table.length, 200);
  table.forEach((c, i) => {
    const p = 204 + 40 * i;
    mish.writeUInt32BE(c.type, p);
    mish.writeBigUInt64BE(BigInt(c.sector), p + 8);
    mish.writeBigUInt64BE(BigInt(c.count), p + 16);
    mish.writeBigUInt64BE(BigInt(c.offset), p + 24);
    mish.writeBigUInt64BE(BigInt(c.length), p + 32);
  });
  const fork = Buffer.concat(chunks);
  const part = 'disk image (DOS_FAT_12 : 0)';
  const xml = Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
      `<plist version="1.0"><dict><key>resource-fork</key><dict><key>blkx</key><array><dict>` +
      `<key>Attributes</key><string>0x0050</string><key>CFName</key><string>${part}</string><key>Data</key><data>${mish.toString('base64')}</data>` +
      `<key>ID</key><string>0</string><key>Name</key><string>${part}</string></dict></array></dict></dict></plist>\n`,
  );
  const koly = Buffer.alloc(512);
  koly.write('koly', 0, 'latin1');
  koly.writeUInt32BE(4, 4);
  koly.writeUInt32BE(512, 8);
  koly.writeUInt32BE(1, 12);
  koly.writeBigUInt64BE(BigInt(fork.length), 32);
  koly.writeUInt32BE(1, 56);
  koly.writeUInt32BE(1, 60);
  koly.writeBigUInt64BE(BigInt(fork.length), 216);
  koly.writeBigUInt64BE(BigInt(xml.length), 224);
  koly.writeUInt32BE(1, 488);
  koly.writeBigUInt64BE(BigInt(sectors), 492);
  return Buffer.concat([fork, xml, koly]);
}

