/**
 * A minimal OneNote section writer for tests ([MS-ONESTORE]): the section's header GUID and a
 * 1,024-byte header, then one FileDataStoreObject per file — guidHeader
 * {BDE316E7-2665-4511-A4C4-8D4D0B7A9EAC}, cbLength (64 bits), 12 zero bytes, the data, padding
 * to 8 bytes, guidFooter {71FBA722-0F79-4A0B-BB13-899256426B24} — separated by filler the way
 * file-node lists separate them in a real section. No file-node lists: readers that find the
 * objects by their GUID (ClamAV, ours) read them; OneNote itself would want the lists.
 */

const MAGIC = Buffer.from('e4525c7b8cd8a74daeb15378d02996d3', 'hex');
const HEADER = Buffer.from('e716e3bd65261145a4c48d4d0b7a9eac', 'hex');
const FOOTER = Buffer.from('22a7fb71790f0b4abb13899256426b24', 'hex');

export function fileDataStoreObject(data: Buffer, declaredLength = data.length): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength));
  const pad = Buffer.alloc((8 - (data.length % 8)) % 8);
  return Buffer.concat([HEADER, len, Buffer.alloc(12), data, pad, FOOTER]);
}

export function oneNoteSection(files: readonly Buffer[]): Buffer {
  const header = Buffer.alloc(1024);
  MAGIC.copy(header, 0);
  return Buffer.concat([header, ...files.flatMap((f) => [Buffer.alloc(40, 0x11), fileDataStoreObject(f)])]);
}
