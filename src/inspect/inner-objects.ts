/**
 * Objects inside objects that no container format announces: files written as text
 * (uuencode, `begin-base64`, yEnc, BinHex) anywhere in a part or an archive member, files a
 * page smuggles as data: URIs or encoded script strings (decode/smuggled.ts), and
 * messages (an .eml, a forwarded message, an mbox) whatever they are declared or named. Real
 * clients and unpackers open both (MIME-tools and ripmime decode uuencode in any text part;
 * a user double-clicks `invoice.eml` in a zip), so the inspector must read them too.
 *
 * Contract: `innerObjects(info, open)` returns a sink that takes an object's bytes as they
 * stream and calls `open` for every object it finds inside, then streams that object's bytes
 * into what `open` returned. Streaming and bounded: the extractors look for their markers with
 * indexOf and hold at most one line; the message sniffer holds the first SNIFF_MESSAGE_BYTES.
 */

import type { AnomalyEvent } from '../events.ts';
import { BinHexExtractor } from './decode/binhex.ts';
import { signedContent } from './decode/cms.ts';
import { dearmor, literalData, looksLikePackets } from './decode/openpgp.ts';
import { UuExtractor } from './decode/uuencode.ts';
import { pageLike, SmuggledObjectExtractor } from './decode/smuggled.ts';
import { YencExtractor } from './decode/yenc.ts';
import type { LeafInfo, LeafSink, MimeLimits } from './mime/walker.ts';
import { MimeWalker } from './mime/walker.ts';

/** Bytes looked at to tell whether an object is a message: its header block's start. */
const SNIFF_MESSAGE_BYTES = 4096;
const LF = 10;

/** Header fields that mark the start of a message (RFC 5322 §3.6, trace fields, MIME). */
const MESSAGE_FIELDS = new Set([
  'from', 'to', 'cc', 'subject', 'date', 'message-id', 'received', 'return-path', 'mime-version',
  'content-type', 'reply-to', 'sender', 'delivered-to', 'x-mailer', 'content-transfer-encoding', 'in-reply-to', 'references',
]);

export interface InnerObjectOpener {
  /** Open an object found inside; `how` says what decoding made it (for layer counting). */
  (info: LeafInfo, how: 'text-encoding' | 'message'): LeafSink;
}

/** What to look for in an object, from what is known of it before its bytes. */
export function innerObjects(info: LeafInfo, open: InnerObjectOpener, limits: MimeLimits, onEvent: (e: AnomalyEvent) => void): LeafSink | null {
  const sinks: LeafSink[] = [];
  let uu = 0;
  let ye = 0;
  let bh = 0;
  const path = info.path;
  sinks.push(new UuExtractor((name) => open({ path: `${path}/uu${++uu}`, name, contentType: null, encoding: 'uuencode', mimeDepth: info.mimeDepth ?? 0 }, 'text-encoding')));
  sinks.push(new YencExtractor((name) => open({ path: `${path}/yenc${++ye}`, name, contentType: null, encoding: 'yenc', mimeDepth: info.mimeDepth ?? 0 }, 'text-encoding')));
  sinks.push(
    new BinHexExtractor(
      (name) => open({ path: `${path}/binhex${++bh}`, name, contentType: null, encoding: 'binhex', mimeDepth: info.mimeDepth ?? 0 }, 'text-encoding'),
      info.contentType === 'application/mac-binhex40',
    ),
  );
  sinks.push(
    new SmuggledObjectExtractor(
      path,
      (p, name, how) => open({ path: p, name, contentType: null, encoding: how, mimeDepth: info.mimeDepth ?? 0 }, 'text-encoding'),
      onEvent,
      pageLike(info.contentType, [info.name, ...(info.otherNames ?? [])]),
    ),
  );
  // iCalendar (RFC 5545 §3.8.1.1): ATTACH;ENCODING=BASE64;VALUE=BINARY:… carries a file inline.
  if (/^text\/calendar$|^application\/ics$/i.test(info.contentType ?? '') || /\.(ics|vcs)$/i.test(info.name ?? '')) {
    let n = 0;
    const openAttach = (name: string | null): LeafSink => open({ path: `${path}/attach${++n}`, name, contentType: null, encoding: 'base64', mimeDepth: info.mimeDepth ?? 0 }, 'text-encoding');
    sinks.push(new WholeObject(MAX_WRAPPER_BYTES, (whole) => calendarAttachments(whole, openAttach)));
  }
  // OpenPGP messages that need no key (literal, compressed, signed): their file is readable.
  {
    let n = 0;
    const openPgp = (name: string | null): LeafSink => open({ path: `${path}/pgp${++n}`, name, contentType: null, encoding: 'openpgp', mimeDepth: info.mimeDepth ?? 0 }, 'text-encoding');
    const binary = /\.(gpg|pgp)$/i.test(info.name ?? '') || /^application\/pgp/i.test(info.contentType ?? '');
    const use = (whole: Buffer): void => openPgpLiterals(whole, openPgp);
    sinks.push(binary ? new WholeObject(MAX_WRAPPER_BYTES, use) : new ArmoredPgp(use, true));
  }
  // S/MIME opaque signed data: the signed entity inside is a message to walk (no key needed).
  if (/^application\/(x-)?pkcs7-mime$/.test(info.contentType ?? '') || /\.p7m$/i.test(info.name ?? '')) {
    const depth = (info.mimeDepth ?? 0) + 1;
    sinks.push(
      new WholeObject(MAX_WRAPPER_BYTES, (whole) => {
        const content = signedContent(whole);
        if (!content || content.length === 0) return;
        if (depth >= limits.maxDepth) return onEvent({ name: 'MIME_DEPTH_EXCEEDED', where: path, detail: `limit ${limits.maxDepth}` });
        const w = MimeWalker.nested({ onLeaf: (leaf) => open(leaf, 'message'), onEvent }, limits, `${path}/signed`, depth);
        w.write(content);
        w.end();
      }),
    );
  }
  // A declared message/* is walked by the MIME walker itself.
  if (info.contentType === null || !info.contentType.startsWith('message/')) {
    const depth = (info.mimeDepth ?? 0) + 1;
    sinks.push(
      new MessageSniffer(() => {
        if (depth >= limits.maxDepth) {
          onEvent({ name: 'MIME_DEPTH_EXCEEDED', where: path, detail: `limit ${limits.maxDepth}` });
          return null;
        }
        return new MboxWalker((n) =>
          MimeWalker.nested({ onLeaf: (leaf) => open(leaf, 'message'), onEvent }, limits, `${path}/${n}`, depth),
        );
      }),
    );
  }
  return {
    write: (chunk) => {
      for (const s of sinks) s.write(chunk);
    },
    end: () => {
      for (const s of sinks) s.end();
    },
  };
}

/**
 * Holds an object whole (up to `max` bytes; beyond it, nothing is held) and hands it to
 * `use` at its end: for wrappers whose content can only be read once all of it is there
 * (S/MIME, calendars, OpenPGP). Only objects already known to be such a wrapper are held.
 */
class WholeObject implements LeafSink {
  #held: Buffer[] | null = [];
  #bytes = 0;

  constructor(
    private readonly max: number,
    private readonly use: (whole: Buffer) => void,
  ) {}

  write(chunk: Buffer): void {
    if (this.#held === null) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.max) this.#held = null;
    else this.#held.push(Buffer.from(chunk));
  }

  end(): void {
    const held = this.#held;
    this.#held = null;
    if (held && held.length > 0) this.use(Buffer.concat(held));
  }
}

/** Largest wrapper held whole (S/MIME, calendar, OpenPGP): mail carries far less. */
const MAX_WRAPPER_BYTES = 64 * 1024 * 1024;
const ARMOR = Buffer.from('-----BEGIN PGP MESSAGE-----');
/** The armor line must start within an object's first bytes to be read. */
const ARMOR_WITHIN = 64 * 1024;

/**
 * An armored OpenPGP message inside text: each chunk is searched for the armor line, and only
 * from the armor on is anything held — objects without one (nearly all) cost a search, no copy.
 */
class ArmoredPgp implements LeafSink {
  #seen = 0;
  #tail: Buffer = Buffer.alloc(0);
  #whole: WholeObject | null = null;
  #done = false;
  /** The first bytes, held until PACKET_SNIFF of them are here (binary sniffing only). */
  #first: Buffer[] | null;
  #firstBytes = 0;

  constructor(
    private readonly use: (whole: Buffer) => void,
    /** Also take binary packets at the very start (looksLikePackets), whatever the name. */
    private readonly sniffBinary = false,
  ) {
    this.#first = sniffBinary ? [] : null;
  }

  write(chunk: Buffer): void {
    if (this.#whole) return this.#whole.write(chunk);
    if (this.#done) return;
    if (this.#first !== null) {
      // Binary packets are judged on the same first bytes however the object was cut: a
      // decoder may hand its first byte alone.
      this.#first.push(Buffer.from(chunk));
      this.#firstBytes += chunk.length;
      if (this.#firstBytes < PACKET_SNIFF) return;
      const first = this.#takeFirst();
      if (!this.#startsWithPackets(first)) this.#search(first);
      return;
    }
    this.#search(chunk);
  }

  #takeFirst(): Buffer {
    const first = Buffer.concat(this.#first!);
    this.#first = null;
    return first;
  }

  #startsWithPackets(first: Buffer): boolean {
    if (first.length === 0 || (first[0]! & 0x80) === 0 || !looksLikePackets(first.subarray(0, PACKET_SNIFF))) return false;
    this.#whole = new WholeObject(MAX_WRAPPER_BYTES, this.use);
    this.#whole.write(first);
    return true;
  }

  /** Look for the armor's first line in the first ARMOR_WITHIN bytes. */
  #search(chunk: Buffer): void {
    // In the chunk, or straddling it and the previous one (a small join: no copy of the chunk).
    let at = chunk.indexOf(ARMOR);
    let from: Buffer = chunk;
    if (at === -1 && this.#tail.length) {
      const seam = Buffer.concat([this.#tail, chunk.subarray(0, ARMOR.length - 1)]);
      const s = seam.indexOf(ARMOR);
      if (s !== -1) {
        at = s - this.#tail.length; // negative: the armor began in the previous chunk
        from = Buffer.concat([this.#tail.subarray(s), chunk]);
      }
    }
    if (at !== -1 && this.#seen + at < ARMOR_WITHIN) {
      this.#whole = new WholeObject(MAX_WRAPPER_BYTES, this.use);
      this.#whole.write(at >= 0 ? chunk.subarray(at) : from);
      return;
    }
    this.#seen += chunk.length;
    if (this.#seen >= ARMOR_WITHIN) this.#done = true;
    else this.#tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (ARMOR.length - 1))));
  }

  end(): void {
    if (this.#first !== null) {
      const first = this.#takeFirst();
      if (!this.#startsWithPackets(first) && first.length) this.#search(first);
    }
    this.#whole?.end();
  }
}

/** Bytes of an object's start on which binary OpenPGP packets are recognised. */
const PACKET_SNIFF = 64;

/** Every literal data packet of an OpenPGP message, opened as a file. */
function openPgpLiterals(whole: Buffer, open: (name: string | null) => LeafSink): void {
  const packets = dearmor(whole);
  if (!packets) return;
  for (const lit of literalData(packets)) {
    // A BZip2 stream of packets: an object of its own, decompressed as a bzip2 file (7-Zip).
    const sink = open(lit.bzip2 ? '(bzip2 packets)' : lit.name);
    sink.write(lit.data);
    sink.end();
  }
}

/** Inline ATTACH properties of a calendar (RFC 5545 §3.8.1.1, base64), each opened as a file. */
function calendarAttachments(whole: Buffer, open: (name: string | null) => LeafSink): void {
  // Unfold (a line starting with a space or tab continues the one before), then look at ATTACH.
  const text = whole.toString('latin1').replace(/\r?\n[ \t]/g, '');
  for (const m of text.matchAll(/^ATTACH((?:;[^:\r\n]*)?):([^\r\n]*)/gim)) {
    const params = m[1] ?? '';
    if (!/;ENCODING=BASE64\b/i.test(params)) continue; // a URI: a reference, nothing inline
    const name = /;(?:X-FILENAME|FILENAME|X-APPLE-FILENAME)=("?)([^";:]{1,255})\1/i.exec(params)?.[2] ?? null;
    const sink = open(name);
    sink.write(Buffer.from(m[2]!, 'base64'));
    sink.end();
  }
}

/**
 * Holds an object's first bytes until it can tell whether they are a message's header block;
 * if so, everything goes on to the walker `start` returns.
 */
class MessageSniffer implements LeafSink {
  #held: Buffer[] = [];
  #heldBytes = 0;
  #decided = false;
  #walker: LeafSink | null = null;

  constructor(private readonly start: () => LeafSink | null) {}

  write(chunk: Buffer): void {
    if (this.#decided) {
      this.#walker?.write(chunk);
      return;
    }
    // Most objects are told apart by their first bytes (binary, or text that is no header):
    // decided before anything is copied.
    if (this.#held.length === 0 && messageHead(chunk, false) === 'not') {
      this.#decided = true;
      return;
    }
    this.#held.push(Buffer.from(chunk));
    this.#heldBytes += chunk.length;
    const head = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held);
    const verdict = messageHead(head, this.#heldBytes >= SNIFF_MESSAGE_BYTES);
    if (verdict === 'undecided') return;
    this.#decide(verdict === 'message', head);
  }

  end(): void {
    if (!this.#decided) {
      const head = Buffer.concat(this.#held);
      this.#decide(messageHead(head, true) === 'message', head);
    }
    this.#walker?.end();
  }

  #decide(isMessage: boolean, head: Buffer): void {
    this.#decided = true;
    this.#held = [];
    if (!isMessage) return;
    this.#walker = this.start();
    this.#walker?.write(head);
  }
}

/**
 * Whether bytes start like a message: an mbox `From ` line or header fields, every line up to
 * the blank line (or as far as we have) a field or a continuation, one a message field.
 */
export function messageHead(head: Buffer, final: boolean): 'message' | 'not' | 'undecided' {
  // A header block starts with a field name's character (or an mbox `From `): not NUL, not
  // a space, not a byte beyond ASCII.
  const first = head[0];
  if (first !== undefined && (first < 0x21 || first > 0x7e || first === 0x3a)) return 'not';
  // Line by line, each made a string only when it is reached: prose is decided at its first
  // line, without a string of the whole window and an array of its lines.
  const n = Math.min(head.length, SNIFF_MESSAGE_BYTES);
  let fields = 0;
  let known = false;
  for (let start = 0, i = 0; ; i++) {
    const lf = head.indexOf(LF, start);
    const end = lf === -1 || lf >= n ? -1 : lf;
    if (end === -1 && !final) break; // the last piece may be a partial line
    let line = head.toString('latin1', start, end === -1 ? n : end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (!(i === 0 && line.startsWith('From '))) {
      // (an mbox separator is skipped)
      if (line === '') return fields > 0 && known ? 'message' : 'not';
      if (!((line[0] === ' ' || line[0] === '\t') && fields > 0)) {
        const m = /^([\x21-\x39\x3b-\x7e]+):/.exec(line);
        if (!m) return fields >= 2 && known ? 'message' : 'not';
        fields++;
        if (MESSAGE_FIELDS.has(m[1]!.toLowerCase())) known = true;
      }
    }
    if (end === -1) break;
    start = end + 1;
  }
  if (final || head.length >= SNIFF_MESSAGE_BYTES) return fields >= 2 && known ? 'message' : 'not';
  return 'undecided';
}

/**
 * An mbox is messages after `From ` lines (each after an empty line, or at the very start):
 * one walker per message, numbered from 1; the `From ` line itself is no header.
 */
class MboxWalker implements LeafSink {
  #n = 0;
  #walker: LeafSink | null = null;
  #carry: Buffer | null = null;
  #atStart = true;
  #skippingFromLine = false;

  constructor(private readonly walkerFor: (n: number) => LeafSink) {}

  write(chunk: Buffer): void {
    const buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = null;
    let pos = 0;
    for (;;) {
      if (this.#skippingFromLine) {
        const lf = buf.indexOf(10, pos);
        if (lf === -1) return;
        pos = lf + 1;
        this.#skippingFromLine = false;
        continue;
      }
      let at = buf.indexOf(FROM, pos);
      while (at !== -1 && !this.#startsMessage(buf, at)) at = buf.indexOf(FROM, at + 1);
      if (at === -1) {
        // Keep the last bytes back: with the next chunk they may be "\n\nFrom ".
        const cut = Math.max(pos, buf.length - FROM.length - 3);
        this.#feed(buf.subarray(pos, cut));
        if (cut < buf.length) this.#carry = Buffer.from(buf.subarray(cut));
        return;
      }
      this.#feed(buf.subarray(pos, at));
      this.#walker?.end();
      this.#walker = null;
      this.#atStart = false;
      this.#skippingFromLine = true;
      pos = at;
    }
  }

  end(): void {
    if (this.#carry) this.#feed(this.#carry);
    this.#carry = null;
    this.#walker?.end();
  }

  #startsMessage(buf: Buffer, at: number): boolean {
    if (at === 0) return this.#atStart;
    if (buf[at - 1] !== 10) return false;
    if (at === 1) return this.#atStart;
    return buf[at - 2] === 10 || (buf[at - 2] === 13 && at >= 3 && buf[at - 3] === 10);
  }

  #feed(b: Buffer): void {
    if (b.length === 0) return;
    this.#walker ??= this.walkerFor(++this.#n);
    this.#walker.write(b);
    this.#atStart = false;
  }
}

const FROM = Buffer.from('From ');
