/** Messages the tests send: clean ones with awkward bytes, and EICAR in every encoding. */

import { EICAR } from '../../src/inspect/engines/signatures.ts';

const HEAD = 'From: Sender <sender@example.org>\r\nTo: Rcpt <rcpt@example.com>\r\nMessage-ID: <t1@example.org>\r\nMIME-Version: 1.0\r\n';

export function plain(subject: string, body: string): Buffer {
  return Buffer.from(`${HEAD}Subject: ${subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`, 'latin1');
}

function multipart(subject: string, partHeaders: string, partBody: string): Buffer {
  const b = '----=_Part_42';
  return Buffer.from(
    `${HEAD}Subject: ${subject}\r\nContent-Type: multipart/mixed;\r\n boundary="${b}"\r\n\r\nThis is a multi-part message.\r\n` +
      `--${b}\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n` +
      `--${b}\r\n${partHeaders}\r\n\r\n${partBody}\r\n--${b}--\r\n`,
    'latin1',
  );
}

const qpAll = (b: Buffer): string =>
  [...b].map((x) => `=${x.toString(16).toUpperCase().padStart(2, '0')}`).join('').replace(/(.{72})/g, '$1=\r\n');

/** uuencode (the classic format: length char, 4 chars per 3 bytes, "`" for zero). */
export function uuencode(data: Buffer, name: string): string {
  const ch = (v: number): string => (v === 0 ? '`' : String.fromCharCode(v + 32));
  let out = `begin 644 ${name}\r\n`;
  for (let i = 0; i < data.length; i += 45) {
    const line = data.subarray(i, i + 45);
    let enc = ch(line.length);
    for (let j = 0; j < line.length; j += 3) {
      const a = line[j]!, b = line[j + 1] ?? 0, c = line[j + 2] ?? 0;
      enc += ch(a >> 2) + ch(((a & 3) << 4) | (b >> 4)) + ch(((b & 15) << 2) | (c >> 6)) + ch(c & 63);
    }
    out += `${enc}\r\n`;
  }
  return `${out}\`\r\nend\r\n`;
}

/** EICAR carried every way the core issue names. */
export const EICAR_MESSAGES: Record<string, Buffer> = {
  'raw in the body': plain('raw', `Hello\r\n${EICAR.toString('latin1')}\r\nbye\r\n`),
  'base64 attachment': multipart(
    'b64',
    'Content-Type: application/octet-stream; name="eicar.com"\r\nContent-Disposition: attachment; filename="eicar.com"\r\nContent-Transfer-Encoding: base64',
    EICAR.toString('base64').replace(/(.{20})/g, '$1\r\n'),
  ),
  'quoted-printable attachment': multipart(
    'qp',
    'Content-Type: application/octet-stream; name="eicar.txt"\r\nContent-Transfer-Encoding: Quoted-Printable',
    qpAll(EICAR),
  ),
  '7bit attachment': multipart('7bit', 'Content-Type: application/octet-stream; name="e.com"\r\nContent-Transfer-Encoding: 7bit', EICAR.toString('latin1')),
  '8bit attachment': multipart('8bit', 'Content-Type: application/octet-stream; name="e.com"\r\nContent-Transfer-Encoding: 8bit', `\xe9\r\n${EICAR.toString('latin1')}`),
  'uuencoded inside a text body': plain('uu', `Hi,\r\nbegin the meeting at noon\r\n\r\n${uuencode(EICAR, 'invoice.com')}\r\nbye\r\n`),
  'uuencoded inside a base64 text part': multipart(
    'uu-b64',
    'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64',
    Buffer.from(`see below\r\n${uuencode(EICAR, 'e.com')}`).toString('base64').replace(/(.{76})/g, '$1\r\n'),
  ),
  'plain-text attachment': multipart('txt', 'Content-Type: text/plain; name="readme.txt"\r\nContent-Disposition: attachment; filename="readme.txt"', EICAR.toString('latin1')),
};

/** A fragment of a split message (RFC 2046 §5.2.2): uninspectable, so not clean. */
export const PARTIAL_MESSAGE = Buffer.from(
  `${HEAD}Subject: part 1 of 2\r\nContent-Type: message/partial; id="frag@example.org"; number=1; total=2\r\n\r\n` +
    'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nWDVPIVAlQEFQWzRcUFpYNTQo\r\n',
  'latin1',
);

/** Clean messages whose bytes are easy to damage on the way. */
export const CLEAN_MESSAGES: Record<string, Buffer> = {
  'leading dots': plain('dots', '.\r\n..\r\n.leading\r\n...three\r\nend\r\n'),
  '8-bit body': Buffer.concat([plain('8bit', ''), Buffer.from([0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0x80, 0x0d, 0x0a])]),
  '998-byte lines': plain('long', `${'a'.repeat(998)}\r\n${'.'.repeat(998)}\r\n`),
  'empty body': plain('empty', ''),
  'no trailing CRLF in body': plain('nocrlf', 'last line without newline'),
};

export function bigAttachmentMessage(approxBytes: number): Buffer {
  const bytes = Math.floor(approxBytes / 4) * 4;
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i); // not compressible, no EICAR
  return multipart('big', 'Content-Type: application/octet-stream; name="big.bin"\r\nContent-Transfer-Encoding: base64', data.toString('base64').replace(/(.{76})/g, '$1\r\n'));
}
