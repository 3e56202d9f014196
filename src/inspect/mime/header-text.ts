/**
 * Header values as a person reads them, for logs, records and the CLI: raw UTF-8 (RFC 6532)
 * decoded as UTF-8 (other 8-bit bytes kept as Latin-1), folding undone, RFC 2047 encoded
 * words decoded. Every sink still escapes what could drive a terminal (logs/escape.ts).
 */

import { decodeEncodedWords, parseHeaderBlock } from './headers.ts';

/**
 * Message-ID and Subject from the message's header block, as a person reads them: raw UTF-8
 * (RFC 6532) decoded as UTF-8 (other 8-bit bytes as Latin-1), RFC 2047 encoded words decoded.
 * Every sink escapes what could drive a terminal or a parser (logs/escape.ts).
 */
export function messageHeaderFacts(head: Buffer): { messageId: string; subject: string } {
  const text = head.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const lines = (end === -1 ? text : text.slice(0, end)).split(/\r?\n/);
  const fields = parseHeaderBlock(lines);
  const get = (n: string): string => headerText(fields.find((f) => f.name === n)?.value ?? '');
  return { messageId: get('message-id'), subject: get('subject') };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A header value read as Latin-1 (byte for byte), as text: UTF-8 where valid, encoded words decoded. */
export function headerText(latin1: string): string {
  let text = latin1;
  if (/[\x80-\xff]/.test(latin1)) {
    try {
      text = UTF8.decode(Buffer.from(latin1, 'latin1'));
    } catch {
      // not UTF-8: the bytes stay Latin-1 characters
    }
  }
  return decodeEncodedWords(text.replace(/\r?\n[ \t]/g, ' '));
}

