/**
 * The text of an XML file — above all the parts of Office Open XML documents
 * (`word/document.xml`, `xl/sharedStrings.xml`, `ppt/slides/slide1.xml`) — as a member
 * `(text)`: Word splits a line into runs wherever formatting, spell-checking or revision
 * marks change (`<w:t>4111 11</w:t></w:r><w:r><w:t>11 1111…`), so patterns over the raw XML
 * miss what the reader sees. Tags go, paragraph and row ends become line breaks, tabs stay,
 * entities are decoded. Bounded: the first MAX_XML bytes are read.
 */

import type { UnpackContext, UnpackOutcome } from './unpack.ts';

const MAX_XML = 16 * 1024 * 1024;

/** Elements whose end is a line break in what a reader shows (Word, Excel, PowerPoint, XHTML). */
const BREAKS = /<\/(?:w:p|a:p|si|row|x:row|p|div|li|tr|h[1-6])>|<(?:w:br|w:cr|a:br|br)\b[^>]*\/?>/g;
const TABS = /<(?:w:tab|w:ptab)\b[^>]*\/?>|<\/(?:c|x:c|td|th)>/g;

export async function extractXmlText(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  const xml = b.subarray(0, MAX_XML).toString('utf8');
  const text = decodeEntities(
    xml
      .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_, c: string) => c.replace(/</g, '&lt;'))
      .replace(/<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g, '')
      .replace(BREAKS, '\n')
      .replace(TABS, '\t')
      .replace(/<[^>]*>/g, ''),
  )
    .replace(/[ \t]*\n[ \t]*/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  if (text === '') return {};
  const sink = ctx.member('(text)');
  if (sink === null) return {};
  ctx.copy(sink, Buffer.from(text, 'utf8'));
  sink.end();
  return {};
}

const NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-zA-Z]{2,8});/g, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED[e] ?? m;
  });
}
