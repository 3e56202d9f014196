/**
 * File type identification by content (magic numbers), never by name. A first table for the
 * types mail threats arrive in; deep inspection extends it.
 */

const MAGIC: ReadonlyArray<readonly [string, Buffer, number]> = [
  ['pe', Buffer.from('MZ'), 0],
  ['elf', Buffer.from([0x7f, 0x45, 0x4c, 0x46]), 0],
  ['zip', Buffer.from([0x50, 0x4b, 0x03, 0x04]), 0],
  ['zip', Buffer.from([0x50, 0x4b, 0x05, 0x06]), 0],
  ['gzip', Buffer.from([0x1f, 0x8b]), 0],
  ['pdf', Buffer.from('%PDF-'), 0],
  ['ole2', Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), 0],
  ['rar', Buffer.from('Rar!\x1a\x07', 'latin1'), 0],
  ['7z', Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]), 0],
  ['rtf', Buffer.from('{\\rtf'), 0],
  ['png', Buffer.from([0x89, 0x50, 0x4e, 0x47]), 0],
  ['jpeg', Buffer.from([0xff, 0xd8, 0xff]), 0],
  ['gif', Buffer.from('GIF8'), 0],
];

/** Bytes of a file's start needed to identify it. */
export const SNIFF_BYTES = 512;

export function detectFileType(head: Buffer): string {
  if (head.length === 0) return 'empty';
  for (const [type, magic, offset] of MAGIC) {
    if (head.length >= offset + magic.length && head.compare(magic, 0, magic.length, offset, offset + magic.length) === 0) {
      return type;
    }
  }
  // Text if no NUL and few control bytes in the sniffed head (at most SNIFF_BYTES: bounded).
  if (head.indexOf(0) === -1) {
    let controls = 0;
    const n = Math.min(head.length, SNIFF_BYTES);
    for (let i = 0; i < n; i++) {
      const b = head[i]!;
      if (b < 0x09 || (b > 0x0d && b < 0x20)) controls++;
    }
    if (controls <= head.length / 100) return 'text';
  }
  return 'binary';
}
