/**
 * The streaming MIME walker: from message bytes, in any chunking, to leaves (decoded parts)
 * and anomaly events, without holding the message in memory.
 *
 * Contract: `write` the message content (dot-unstuffed, CRLF or LF line ends), then `end`.
 * For every leaf the walker calls `onLeaf(info)` once and then the returned sink's `write`
 * with the decoded bytes and `end`. Multipart structure, message/rfc822 nesting and
 * transfer encodings are followed as a lenient mail client would. Limits (depth, part count,
 * header size) stop descending and raise an event; they never throw.
 *
 * Memory: one partial line (bounded by MAX_LINE_BYTES; longer lines are passed on in pieces,
 * since a piece past the bound cannot be a boundary), one header block per open part (bounded
 * by the header limit), and one decoder per open leaf.
 */

import type { AnomalyName } from '../../events.ts';
import { type BodyDecoder, DECODED, identity, LazySink, type LeafSink, NULL_SINK, tee, transferDecoder } from './body-decoders.ts';
import { decodeEncodedWords, parseHeaderBlock } from './headers.ts';
import { headerText } from './header-text.ts';
import { MAX_READINGS, partReadings, type Reading } from './readings.ts';

import { DEFAULT_MIME_LIMITS, type LeafInfo, type MimeLimits, type WalkerHandlers } from './types.ts';

export type { LeafSink } from './body-decoders.ts';
export { DEFAULT_MIME_LIMITS, type LeafInfo, type MimeLimits, type WalkerHandlers } from './types.ts';

const LF = 10;
const CR = 13;
const DASH = 45;
/** Longest line kept whole; boundaries are at most 70 chars (RFC 2046 §5.1.1) plus padding. */
const MAX_LINE_BYTES = 8 * 1024;
const BOUNDARY_START = Buffer.from('\n--');
/** Readings beyond the first, per message: ambiguity costs a walk each, so it is bounded. */
const MAX_MESSAGE_READINGS = 64;
/** message/* types that are not a message to walk: a fragment, a reference to content elsewhere. */
const NOT_A_MESSAGE: ReadonlySet<string> = new Set(['message/partial', 'message/external-body']);

/** How to read one part's body: the reading, and what the part's headers say besides. */
interface BodySpec {
  readonly reading: Reading;
  readonly names: readonly string[];
  readonly params: ReadonlyMap<string, string>;
  /** Read as one leaf whatever the type says (a multipart without boundary, to a strict reader). */
  readonly asLeaf?: boolean;
  /** A multipart without boundary: take the first `--` line of the body as its boundary. */
  readonly guessBoundary?: boolean;
  /** An encoded multipart: decode, then walk the result as the multipart. */
  readonly decodeFirst?: boolean;
}

/** Where a walker starts: the top of a message, or a message embedded in an encoded part. */
interface WalkerRoot {
  readonly path: string;
  readonly depth: number;
  readonly outerLayers: number;
  /** Part count and events, shared by a message and the encoded messages inside it. */
  readonly shared: SharedCounts;
}

interface SharedCounts {
  parts: number;
  depthEventRaised: boolean;
  partsEventRaised: boolean;
  readings: number;
  readingsEventRaised: boolean;
}

type Frame = HeaderFrame | MultipartFrame | LeafFrame;

interface BaseFrame {
  readonly path: string;
  readonly depth: number;
}
interface HeaderFrame extends BaseFrame {
  kind: 'headers';
  lines: string[];
  bytes: number;
  overflow: boolean;
  /** The type of a part without Content-Type, as its parent implies it. */
  readonly defaultType: string;
  /** Beyond the part limit: walked for structure, never scanned. */
  readonly detached: boolean;
}
interface MultipartFrame extends BaseFrame {
  kind: 'multipart';
  /** "--" + boundary; null until guessed from the body's first `--` line. */
  delimiter: Buffer | null;
  /** The default type of its parts (message/rfc822 in a digest). */
  readonly childType: string;
  children: number;
  closed: boolean;
}
interface LeafFrame extends BaseFrame {
  kind: 'leaf';
  readonly decoder: BodyDecoder;
  pendingEol: Buffer | null;
}

export class MimeWalker {
  #stack: Frame[] = [];
  #carry: Buffer | null = null;
  /** The previous piece was part of an over-long line: this one is not at a line start. */
  #midLine = false;
  readonly #root: WalkerRoot;

  constructor(
    private readonly handlers: WalkerHandlers,
    private readonly limits: MimeLimits = DEFAULT_MIME_LIMITS,
    root?: WalkerRoot,
    /** Start in the body, read this way (one reading of an ambiguous part). */
    body?: BodySpec,
  ) {
    this.#root = root ?? { path: 'msg', depth: 0, outerLayers: 0, shared: newSharedCounts() };
    if (body) this.#openBody(body, this.#root.path, this.#root.depth);
    else this.#stack.push(newHeaderFrame(this.#root.path, this.#root.depth));
  }

  /**
   * A walker of a message found inside an object (an attachment that is a message whatever
   * it is called, an .eml in a zip): paths below `path`, depth counted from `depth`.
   */
  static nested(handlers: WalkerHandlers, limits: MimeLimits, path: string, depth: number): MimeWalker {
    return new MimeWalker(handlers, limits, { path, depth, outerLayers: 0, shared: newSharedCounts() });
  }

  write(chunk: Buffer): void {
    if (this.#carry) {
      // The carried partial line is completed from the chunk's first line only: joining it to
      // the whole chunk copied every byte of a large message once more. (The walker reads the
      // same whatever the chunking; the fuzzers of test/unit/inspect check that.)
      const carry = this.#carry;
      this.#carry = null;
      const lf = chunk.indexOf(LF);
      if (lf === -1 || lf === chunk.length - 1) return this.#write(Buffer.concat([carry, chunk]));
      this.#write(Buffer.concat([carry, chunk.subarray(0, lf + 1)]));
      return this.#write(chunk.subarray(lf + 1));
    }
    this.#write(chunk);
  }

  #write(buf: Buffer): void {
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      const top = this.#stack[this.#stack.length - 1]!;
      // Fast path: a run of lines inside a leaf that cannot contain a boundary goes in one piece.
      if (top.kind === 'leaf' && top.decoder.bulk && !this.#midLine && buf[pos] !== DASH) {
        const nextDash = buf.indexOf(BOUNDARY_START, pos);
        const blockEnd = nextDash === -1 ? buf.lastIndexOf(LF) : nextDash; // index of an LF
        if (blockEnd >= pos) {
          const contentEnd = blockEnd > pos && buf[blockEnd - 1] === CR ? blockEnd - 1 : blockEnd;
          this.#leafLine(top, buf.subarray(pos, contentEnd), buf.subarray(contentEnd, blockEnd + 1));
          pos = blockEnd + 1;
          continue;
        }
      }
      const lf = buf.indexOf(LF, pos);
      if (lf === -1) {
        if (len - pos > MAX_LINE_BYTES) {
          // Keep a trailing CR back so a CRLF split across chunks stays one line end.
          const cut = buf[len - 1] === CR ? len - 1 : len;
          this.#piece(buf.subarray(pos, cut));
          pos = cut;
        }
        if (pos < len) this.#carry = Buffer.from(buf.subarray(pos));
        return;
      }
      const contentEnd = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
      this.#line(buf.subarray(pos, contentEnd), buf.subarray(contentEnd, lf + 1));
      pos = lf + 1;
    }
  }

  end(): void {
    if (this.#carry) {
      this.#line(this.#carry, Buffer.alloc(0));
      this.#carry = null;
    }
    // A message that ends inside its header block has an empty body.
    while (this.#stack.length) {
      const top = this.#stack[this.#stack.length - 1]!;
      if (top.kind === 'headers') {
        this.#startBody(top);
        continue;
      }
      this.#pop(true);
    }
  }

  /** An over-long line's piece: content only, no line end yet. */
  #piece(content: Buffer): void {
    const top = this.#stack[this.#stack.length - 1]!;
    if (top.kind === 'leaf') {
      if (top.pendingEol && !this.#midLine) {
        top.decoder.eol(top.pendingEol);
        top.pendingEol = null;
      }
      top.decoder.write(content);
    } else if (top.kind === 'headers') {
      this.#headerLine(top, content.toString('latin1'));
    }
    this.#midLine = true;
  }

  #line(content: Buffer, eol: Buffer): void {
    const atLineStart = !this.#midLine;
    this.#midLine = false;
    if (atLineStart && content.length >= 2 && content[0] === DASH && content[1] === DASH && this.#boundary(content)) {
      return;
    }
    const top = this.#stack[this.#stack.length - 1]!;
    switch (top.kind) {
      case 'headers':
        if (atLineStart && content.length === 0) {
          this.#startBody(top);
          return;
        }
        if (atLineStart && !looksLikeHeader(content, top.lines.length > 0)) {
          // Body without a blank line after the headers: the headers ended here.
          this.#startBody(top);
          this.#line(content, eol);
          return;
        }
        this.#headerLine(top, content.toString('latin1'), !atLineStart);
        return;
      case 'multipart':
        // Preamble or epilogue: mail clients hide them, unpackers (ripmime) write them out as
        // files, and a multipart whose boundary never comes is all preamble to Python.
        if (this.#root.shared.parts > this.limits.maxParts) return;
        this.#stack.push({
          kind: 'leaf',
          path: `${top.path}/${top.closed ? 'epilogue' : 'preamble'}`,
          depth: top.depth,
          decoder: identity(new LazySink(() => this.handlers.onLeaf({ path: `${top.path}/${top.closed ? 'epilogue' : 'preamble'}`, contentType: null, name: null, encoding: null, mimeDepth: top.depth }))),
          pendingEol: null,
        });
        this.#line(content, eol);
        return;
      case 'leaf':
        this.#leafLine(top, content, eol, !atLineStart);
        return;
    }
  }

  #leafLine(frame: LeafFrame, content: Buffer, eol: Buffer, continuation = false): void {
    if (frame.pendingEol && !continuation) frame.decoder.eol(frame.pendingEol);
    frame.pendingEol = null;
    if (content.length) frame.decoder.write(content);
    // RFC 2046 §5.1.1: the line end before a boundary belongs to the boundary, so hold it.
    if (eol.length) frame.pendingEol = eol;
  }

  #headerLine(frame: HeaderFrame, text: string, continuation = false): void {
    frame.bytes += text.length;
    if (frame.bytes > this.limits.maxHeaderBytes) {
      if (!frame.overflow) this.#event('MIME_HEADER_TOO_LONG', frame.path);
      frame.overflow = true;
      return;
    }
    if (continuation && frame.lines.length) frame.lines[frame.lines.length - 1] += text;
    else frame.lines.push(text);
  }

  /** A line starting with `--`: does it delimit an open multipart? */
  #boundary(content: Buffer): boolean {
    let guess = -1;
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const f = this.#stack[i]!;
      if (f.kind !== 'multipart' || f.closed) continue;
      const d = f.delimiter;
      if (d === null) {
        if (guess === -1) guess = i;
        continue;
      }
      if (content.length < d.length || content.compare(d, 0, d.length, 0, d.length) !== 0) continue;
      const rest = content.toString('latin1', d.length).trimEnd();
      if (rest !== '' && rest !== '--') continue;
      while (this.#stack.length - 1 > i) this.#pop(true);
      if (rest === '--') {
        f.closed = true;
        return true;
      }
      f.children++;
      const shared = this.#root.shared;
      shared.parts++;
      if (shared.parts > this.limits.maxParts) {
        if (!shared.partsEventRaised) this.#event('MIME_PARTS_EXCEEDED', f.path, `limit ${this.limits.maxParts}`);
        shared.partsEventRaised = true;
        this.#stack.push(newHeaderFrame(`${f.path}/${f.children}`, f.depth + 1, true, f.childType));
        return true;
      }
      this.#stack.push(newHeaderFrame(`${f.path}/${f.children}`, f.depth + 1, false, f.childType));
      return true;
    }
    if (guess !== -1) {
      // The first `--` line of a multipart that named no boundary: a lenient reader's boundary.
      const f = this.#stack[guess] as MultipartFrame;
      const text = content.toString('latin1').trimEnd();
      f.delimiter = Buffer.from(text.endsWith('--') && text.length > 4 ? text.slice(0, -2) : text, 'latin1');
      return this.#boundary(content);
    }
    return false;
  }

  #startBody(frame: HeaderFrame): void {
    this.#stack.pop();
    const fields = parseHeaderBlock(frame.lines);
    const top = frame.path === this.#root.path && this.#root.depth === 0 && this.#root.outerLayers === 0;
    const readings = partReadings(fields, {
      defaultType: frame.defaultType,
      // RFC 2045 §4: without MIME-Version a message is plain text to a strict reader.
      plainTextToo: top && !fields.some((f) => f.name === 'mime-version'),
    });
    if (readings.truncated) this.#event('MIME_READINGS_EXCEEDED', frame.path, `more than ${MAX_READINGS} readings of one part`);
    if (readings.ambiguity !== null && !frame.detached) this.#event('MIME_AMBIGUOUS', frame.path, readings.ambiguity.slice(0, 200));
    const specs: BodySpec[] = readings.readings.map((reading) => ({ reading, names: readings.names, params: readings.params }));
    // Beyond the part limit: followed for structure (depth), never scanned.
    if (frame.detached) return this.#openBody(specs[0]!, frame.path, frame.depth, true);
    this.#fork(specs, frame.path, frame.depth);
  }

  /**
   * Walk a part's body once per reading. One reading: this walker goes on with it. More: the
   * body's bytes (up to the enclosing boundary, which every reading shares) go to one walker
   * per reading; the first keeps the part's path, the others are `path~2`, `path~3`, …
   */
  #fork(specs: readonly BodySpec[], path: string, depth: number): void {
    const shared = this.#root.shared;
    let walked = specs;
    if (specs.length > 1 && shared.readings + specs.length - 1 > MAX_MESSAGE_READINGS) {
      if (!shared.readingsEventRaised) this.#event('MIME_READINGS_EXCEEDED', path, `more than ${MAX_MESSAGE_READINGS} readings in the message`);
      shared.readingsEventRaised = true;
      walked = specs.slice(0, 1);
    }
    if (walked.length === 1) return this.#openBody(walked[0]!, path, depth);
    // Readings are numbered across the message, so nested forks never share a path.
    const walkers = walked.map((spec, i) => {
      const at = i === 0 ? path : `${path}~${++shared.readings + 1}`;
      return new MimeWalker(this.handlers, this.limits, { path: at, depth, outerLayers: this.#root.outerLayers, shared }, spec);
    });
    this.#stack.push({ kind: 'leaf', path, depth, decoder: identity(tee(walkers)), pendingEol: null });
  }

  /** The body of a part, read as `spec` says: a multipart, an embedded message, or a leaf. */
  #openBody(spec: BodySpec, path: string, depth: number, detached = false): void {
    const { reading } = spec;
    const type = reading.type;
    const tooDeep = depth >= this.limits.maxDepth;
    // Names as a mail client shows them: raw 8-bit as UTF-8 (RFC 6532) where it is valid UTF-8,
    // encoded words decoded; the byte-for-byte Latin-1 reading stays among the other names.
    const shown = spec.names.map(headerText);
    const names = [...new Set([...shown, ...spec.names.map(decodeEncodedWords)])];
    const charset = spec.params.get('charset')?.trim().toLowerCase();
    const info: LeafInfo = {
      path,
      contentType: reading.declared ? type : null,
      name: names[0] ?? null,
      ...(names.length > 1 ? { otherNames: names.slice(1) } : {}),
      encoding: reading.encoding,
      mimeDepth: depth,
      ...(this.#root.outerLayers > 0 ? { outerLayers: this.#root.outerLayers } : {}),
      ...(charset ? { charset } : {}),
    };
    if (type === 'message/partial' && !spec.asLeaf) this.#event('MIME_MESSAGE_PARTIAL', path, spec.params.get('id')?.slice(0, 100));
    if (type === 'message/external-body' && !spec.asLeaf) this.#event('MIME_EXTERNAL_BODY', path, externalReference(spec.params));
    if (type.startsWith('multipart/') && !spec.asLeaf && !spec.decodeFirst) {
      if (reading.encoding !== null && DECODED.has(reading.encoding) && !detached) {
        // RFC 2046 §6.4 forbids encoding a multipart; some clients decode it anyway. Both.
        return this.#fork([{ ...spec, reading: { ...reading, encoding: null } }, { ...spec, decodeFirst: true }], path, depth);
      }
      if (reading.boundary === null && !spec.guessBoundary && !detached) {
        this.#event('MIME_MISSING_BOUNDARY', path);
        // No usable boundary: a strict reader sees one text body, a lenient one takes the
        // first `--` line of the body as the boundary. Both.
        return this.#fork([{ ...spec, asLeaf: true }, { ...spec, guessBoundary: true }], path, depth);
      }
      if (tooDeep) this.#depthExceeded(path);
      else {
        this.#stack.push({
          kind: 'multipart',
          path,
          depth,
          delimiter: reading.boundary === null ? null : Buffer.from(`--${reading.boundary}`, 'latin1'),
          childType: type === 'multipart/digest' ? 'message/rfc822' : 'text/plain',
          children: 0,
          closed: false,
        });
        return;
      }
    }
    // (An encoded multipart's raw bytes are a reading of their own: decodeFirst walks only.)
    let sink: LeafSink = detached || spec.decodeFirst ? NULL_SINK : this.handlers.onLeaf(info);
    // Any message/* but partial fragments and external references: scanned whole as a file
    // (mail clients offer a forwarded message as an attachment) and walked as the message it
    // is, also when it was sent base64 (RFC 2046 forbids it; clients open it anyway), so a
    // threat wrapped in twenty such layers is still found (or the depth cap says why not).
    if (type.startsWith('message/') && !NOT_A_MESSAGE.has(type) && !spec.asLeaf && !detached) {
      if (tooDeep) this.#depthExceeded(path);
      else {
        const encoded = reading.encoding !== null && DECODED.has(reading.encoding) ? 1 : 0;
        sink = tee([sink, new MimeWalker(this.handlers, this.limits, { path: `${path}/1`, depth: depth + 1, outerLayers: this.#root.outerLayers + encoded, shared: this.#root.shared })]);
      }
    }
    if (spec.decodeFirst) {
      // The decoded bytes of an encoded multipart, walked as that multipart.
      const inner = new MimeWalker(this.handlers, this.limits, { path: `${path}~decoded`, depth, outerLayers: this.#root.outerLayers + 1, shared: this.#root.shared }, {
        ...spec,
        reading: { ...reading, encoding: null },
        decodeFirst: false,
      });
      sink = inner;
    }
    this.#stack.push({ kind: 'leaf', path, depth, decoder: this.#decoder(reading.encoding, sink, path, info), pendingEol: null });
  }

  /** The part's transfer decoding; an unknown encoding is read raw and by guess (`P~b64`, `P~qp`). */
  #decoder(encoding: string | null, sink: LeafSink, path: string, info: LeafInfo): BodyDecoder {
    return transferDecoder(encoding, sink, (name, detail) => this.#event(name, path, detail), (e, tag) =>
      this.handlers.onLeaf({ ...info, path: `${path}~${tag}`, encoding: e }),
    );
  }

  #depthExceeded(path: string): void {
    if (!this.#root.shared.depthEventRaised) this.#event('MIME_DEPTH_EXCEEDED', path, `limit ${this.limits.maxDepth}`);
    this.#root.shared.depthEventRaised = true;
  }

  /** Close the innermost frame; at the end of the message the last line end is content. */
  #pop(atEnd: boolean): void {
    const f = this.#stack.pop();
    if (!f) return;
    if (f.kind === 'leaf') {
      if (atEnd && this.#stack.length === 0 && f.pendingEol) f.decoder.eol(f.pendingEol);
      f.decoder.end();
    } else if (f.kind === 'multipart' && !f.closed) {
      this.#event('MIME_UNTERMINATED_MULTIPART', f.path);
    } else if (f.kind === 'headers') {
      // A part cut off inside its headers still has a (empty) body: let #startBody replace
      // the frame with its body frame, then close that.
      this.#stack.push(f);
      this.#startBody(f);
      this.#pop(atEnd);
    }
  }

  #event(name: AnomalyName, where: string, detail?: string): void {
    this.handlers.onEvent(detail === undefined ? { name, where } : { name, where, detail });
  }
}

function newHeaderFrame(path: string, depth: number, detached = false, defaultType = 'text/plain'): HeaderFrame {
  return { kind: 'headers', path, depth, lines: [], bytes: 0, overflow: false, defaultType, detached };
}

/** A header line (`Name: value`) or, after the first field, a folded continuation. */
function looksLikeHeader(content: Buffer, haveField: boolean): boolean {
  const first = content[0];
  if ((first === 32 || first === 9) && haveField) return true;
  const colon = content.indexOf(58);
  if (colon <= 0) return false;
  // Field names are printable ASCII without spaces (RFC 5322 §2.2).
  return /^[\x21-\x39\x3b-\x7e]+$/.test(content.toString('latin1', 0, colon));
}

function newSharedCounts(): SharedCounts {
  return { parts: 1, depthEventRaised: false, partsEventRaised: false, readings: 0, readingsEventRaised: false };
}

/**
 * Where a message/external-body points (RFC 2046 §5.2.3, RFC 2017 URL): what a reader would
 * fetch, for the record — `URL https://…`, `anon-ftp ftp.example.org/pub/x.exe`, `local-file …`.
 */
function externalReference(params: ReadonlyMap<string, string>): string {
  const access = (params.get('access-type') ?? '?').toLowerCase();
  const p = (k: string): string => params.get(k) ?? '';
  const where =
    access === 'url' ? p('url').replace(/\s+/g, '')
      : access === 'anon-ftp' || access === 'ftp' || access === 'tftp' ? [p('site'), p('directory'), p('name')].filter(Boolean).join('/')
        : access === 'local-file' ? [p('site'), p('name')].filter(Boolean).join(':')
          : access === 'mail-server' ? p('server')
            : '';
  return `${access}${where ? ` ${where}` : ''}`.slice(0, 300);
}
