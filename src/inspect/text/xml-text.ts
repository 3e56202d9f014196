/**
 * The text of an XML file — above all the parts of Office Open XML documents
 * (`word/document.xml`, `xl/sharedStrings.xml`, `ppt/slides/slide1.xml`) — as a member
 * `(text)`: Word splits a line into runs wherever formatting, spell-checking or revision
 * marks change (`<w:t>4111 11</w:t></w:r><w:r><w:t>11 1111…`), so patterns over the raw XML
 * miss what the reader sees. Tags go, paragraph and row ends become line breaks, tabs stay,
 * entities are decoded. Bounded: the first MAX_XML bytes are read. An XDP file also gives the
 * PDF it carries (xdpDocument).
 */

import type { UnpackContext, UnpackOutcome } from '../archive/types.ts';
import { decodeCharRefs } from './char-refs.ts';

const MAX_XML = 16 * 1024 * 1024;

/** Elements whose end is a line break in what a reader shows (Word, Excel, PowerPoint, XHTML). */
const BREAK_END = new Set(['w:p', 'a:p', 'si', 'row', 'x:row', 'p', 'div', 'li', 'tr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
const BREAK_EMPTY = new Set(['w:br', 'w:cr', 'a:br', 'br']);
const TAB_EMPTY = new Set(['w:tab', 'w:ptab']);
const TAB_END = new Set(['c', 'x:c', 'td', 'th']);

export async function extractXmlText(b: Buffer, ctx: UnpackContext): Promise<UnpackOutcome> {
  xdpDocument(b, ctx);
  const text = xmlText(b.subarray(0, MAX_XML).toString('utf8'))
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

/** Adobe's XML Data Package namespace: an XDP file that Acrobat opens as the PDF it carries. */
const XDP_NAMESPACE = Buffer.from('http://ns.adobe.com/xdp/', 'latin1');

/**
 * An XDP file (`.xdp`, XFA forms): Acrobat opens the PDF it carries base64-encoded in the
 * `<chunk>` elements of its `<pdf>` packet, so that PDF is a member (`document.pdf`), scanned and
 * unpacked like any PDF. The chunks are joined in order, whitespace and all (base64 skips it).
 */
function xdpDocument(b: Buffer, ctx: UnpackContext): void {
  if (b.indexOf(XDP_NAMESPACE) === -1) return;
  const xml = b.subarray(0, MAX_XML).toString('latin1');
  const parts: string[] = [];
  for (let at = xml.indexOf('<chunk'); at !== -1; ) {
    const open = xml.indexOf('>', at);
    const close = open === -1 ? -1 : xml.indexOf('</chunk>', open);
    if (close === -1) break;
    parts.push(xml.slice(open + 1, close));
    at = xml.indexOf('<chunk', close);
  }
  if (parts.length === 0) return;
  const sink = ctx.member('document.pdf');
  if (sink === null) return;
  ctx.copy(sink, Buffer.from(parts.join(''), 'base64'));
  sink.end();
}

/**
 * Tags out, text in, in one pass with indexOf (regular expressions over tags took a minute on
 * 200 KB of crafted `<`): comments and processing instructions skipped, CDATA kept, element
 * ends that break a line or a cell turned into `\n` and `\t`, entities decoded.
 */
function xmlText(xml: string): string {
  const parts: string[] = [];
  let pos = 0;
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    if (lt === -1) {
      parts.push(decodeEntities(xml.slice(pos)));
      break;
    }
    parts.push(decodeEntities(xml.slice(pos, lt)));
    if (xml.startsWith('<!--', lt) || xml.startsWith('<![CDATA[', lt)) {
      const cdata = xml.startsWith('<![CDATA[', lt);
      const close = xml.indexOf(cdata ? ']]>' : '-->', lt + 4);
      if (close === -1) break;
      if (cdata) parts.push(xml.slice(lt + 9, close));
      pos = close + 3;
      continue;
    }
    const gt = xml.indexOf('>', lt + 1);
    if (gt === -1) break; // an unterminated tag: nothing after it is text
    const tag = xml.slice(lt + 1, gt);
    const closing = tag.startsWith('/');
    const name = (closing ? tag.slice(1) : tag).split(/[\s/]/, 1)[0]!;
    if (closing ? BREAK_END.has(name) : BREAK_EMPTY.has(name)) parts.push('\n');
    else if (closing ? TAB_END.has(name) : TAB_EMPTY.has(name)) parts.push('\t');
    pos = gt + 1;
  }
  return parts.join('');
}

const NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(s: string): string {
  return decodeCharRefs(s, NAMED, false);
}
