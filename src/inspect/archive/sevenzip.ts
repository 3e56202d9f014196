/**
 * 7z: recognised, not unpacked (no maintained pure-JS LZMA/7z reader installs here without a
 * native binary). Encryption is detected from the AES-256 coder id (06 F1 07 01), which sits
 * in the (possibly packed) header at the end of the archive: present means `encrypted-7z`
 * with ARCHIVE_ENCRYPTED, otherwise ARCHIVE_UNSUPPORTED so the policy decides.
 */

import type { UnpackContext, UnpackOutcome } from './types.ts';

const AES_CODER = Buffer.from([0x06, 0xf1, 0x07, 0x01]);

export async function inspectSevenZip(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  if (b.length >= 32) {
    const next = Number(b.readBigUInt64LE(12)) + 32;
    const size = Number(b.readBigUInt64LE(20));
    const header = next < b.length ? b.subarray(next, Math.min(b.length, next + size)) : b.subarray(32);
    if (header.indexOf(AES_CODER) !== -1) {
      ctx.event('ARCHIVE_ENCRYPTED', '7z');
      return { type: 'encrypted-7z' };
    }
  }
  ctx.event('ARCHIVE_UNSUPPORTED', '7z members are not unpacked');
  return {};
}
